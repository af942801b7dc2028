//! The tree: an immutable snapshot of datasets, groups and arrays built from the config and the
//! catalog (NetCDF files assembled by `build.rs`, Zarr stores mirrored by `zarr.rs`). Each
//! array carries its metadata and a per-chunk [`Recipe`]. A re-index builds a new snapshot;
//! readers in flight keep the old one.

mod build;
pub mod calendar;
mod chunking;
mod concat;
pub mod fixes;
mod new_dims;
mod plan;
mod time;
mod zarr;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::MountConfig;
use crate::operators::{Geometry, Recipe};
use crate::sources::catalog::Catalog;
use crate::sources::model::Attr;

/// A dataset that cannot be assembled as configured.
#[derive(Debug, thiserror::Error)]
#[error("dataset {dataset}: {message}")]
pub struct TreeError {
    /// The dataset.
    pub dataset: String,
    /// What is wrong, naming the files involved.
    pub message: String,
}

/// A group: attributes and named children.
#[derive(Debug, Default)]
pub struct GroupNode {
    /// Group attributes.
    pub attrs: Vec<Attr>,
    /// Child groups and arrays by name.
    pub children: BTreeMap<String, Node>,
}

/// A node of the tree.
#[derive(Debug)]
pub enum Node {
    /// A group.
    Group(GroupNode),
    /// An array.
    Array(Arc<ArrayNode>),
}

/// An array: metadata and the recipe for its chunks.
#[derive(Debug)]
pub struct ArrayNode {
    /// Unique within the snapshot; part of memory-cache keys.
    pub id: usize,
    /// Path from the mount root, e.g. `sst/analysed_sst`, for logs and errors.
    pub path: String,
    /// Dimension names.
    pub dims: Vec<String>,
    /// Shape, chunking, type and fill value.
    pub geometry: Geometry,
    /// Attributes as in the first source (including `_FillValue`).
    pub attrs: Vec<Attr>,
    /// How to compute a chunk.
    pub recipe: Recipe,
}

/// The whole served tree.
#[derive(Debug, Default)]
pub struct Tree {
    /// The mount root; its children are the datasets.
    pub root: GroupNode,
    /// What building it found worth reporting: fixes that matched files, missing cells.
    pub notes: Vec<String>,
}

impl Tree {
    /// Builds the snapshot for `config` from an up-to-date catalog.
    ///
    /// # Errors
    /// [`TreeError`] when a dataset's files cannot be joined as configured (naming the files).
    pub fn build(config: &MountConfig, catalog: &Catalog) -> Result<Tree, TreeError> {
        let mut next_id = 0;
        let mut root = GroupNode::default();
        let mut notes = Vec::new();
        for dataset in &config.datasets {
            let fail = |message: String| TreeError {
                dataset: dataset.name.clone(),
                message,
            };
            if dataset.zarr.is_some() {
                let store = catalog.zarr_store(&dataset.name).map_err(fail)?;
                let group = zarr::dataset(store, &dataset.name, &mut next_id);
                root.children
                    .insert(dataset.name.clone(), Node::Group(group));
                continue;
            }
            let fixes = dataset
                .fixes
                .as_deref()
                .map(fixes::FixSet::load)
                .transpose()
                .map_err(|e| fail(e.to_string()))?;
            let (files, membership) = catalog.dataset(&dataset.name);
            let layout = membership.map(|m| m.layout.clone()).unwrap_or_default();
            let group = build::dataset(
                dataset,
                &files,
                &layout,
                fixes.as_ref(),
                &mut next_id,
                &mut notes,
            )?;
            root.children
                .insert(dataset.name.clone(), Node::Group(group));
        }
        Ok(Tree { root, notes })
    }

    /// The node at a `/`-separated path relative to the root (`""` is the root).
    pub fn node(&self, path: &str) -> Option<NodeRef<'_>> {
        let mut group = &self.root;
        let mut parts = path.split('/').filter(|p| !p.is_empty()).peekable();
        while let Some(name) = parts.next() {
            match group.children.get(name)? {
                Node::Group(g) => group = g,
                Node::Array(a) => {
                    return if parts.peek().is_none() {
                        Some(NodeRef::Array(a))
                    } else {
                        None
                    }
                }
            }
        }
        Some(NodeRef::Group(group))
    }

    /// Every array, with its path, in tree order.
    pub fn arrays(&self) -> Vec<Arc<ArrayNode>> {
        fn walk(group: &GroupNode, out: &mut Vec<Arc<ArrayNode>>) {
            for child in group.children.values() {
                match child {
                    Node::Group(g) => walk(g, out),
                    Node::Array(a) => out.push(a.clone()),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }
}

/// A borrowed node.
#[derive(Debug, Clone, Copy)]
pub enum NodeRef<'a> {
    /// A group.
    Group(&'a GroupNode),
    /// An array.
    Array(&'a Arc<ArrayNode>),
}
