//! The tree: an immutable snapshot of datasets, groups and arrays built from the config and the
//! catalog (NetCDF files assembled by `build.rs`, Zarr stores mirrored by `zarr.rs`). Each
//! array carries its metadata and a per-chunk [`Recipe`]. A re-index builds a new snapshot;
//! readers in flight keep the old one.

mod build;
pub mod calendar;
mod checks;
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
use crate::views::RangeScans;

/// Whether a dataset fails through its configuration or through its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeErrorKind {
    /// The config names something that does not exist (a dimension, a key, a variable) or
    /// cannot be read (a fix file): the whole config is refused.
    Config,
    /// The dataset's sources cannot be served as configured (no usable file, files that cannot
    /// be joined, an unreadable Zarr store or listing): the dataset is left out, the others are
    /// served.
    Data,
}

/// A dataset that cannot be assembled as configured.
#[derive(Debug, Clone, thiserror::Error)]
#[error("dataset {dataset}: {message}")]
pub struct TreeError {
    /// The dataset.
    pub dataset: String,
    /// A config error or a data failure.
    pub kind: TreeErrorKind,
    /// What is wrong, naming the key and the valid choices, or the files involved.
    pub message: String,
}

impl TreeError {
    /// A config error of `dataset`.
    pub(crate) fn config(dataset: &str, message: String) -> TreeError {
        TreeError {
            dataset: dataset.to_owned(),
            kind: TreeErrorKind::Config,
            message,
        }
    }

    /// A data failure of `dataset`: it is left out.
    pub(crate) fn data(dataset: &str, message: String) -> TreeError {
        TreeError {
            dataset: dataset.to_owned(),
            kind: TreeErrorKind::Data,
            message,
        }
    }
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

impl ArrayNode {
    /// A new array numbered `next_id` (which is advanced).
    pub(crate) fn numbered(
        next_id: &mut usize,
        path: String,
        dims: Vec<String>,
        geometry: Geometry,
        attrs: Vec<Attr>,
        recipe: Recipe,
    ) -> Arc<ArrayNode> {
        let id = *next_id;
        *next_id += 1;
        Arc::new(ArrayNode {
            id,
            path,
            dims,
            geometry,
            attrs,
            recipe,
        })
    }
}

/// The whole served tree.
#[derive(Debug, Default)]
pub struct Tree {
    /// The mount root; its children are the datasets.
    pub root: GroupNode,
    /// What building it found worth reporting: fixes that matched files, missing cells.
    pub notes: Vec<String>,
    /// Datasets left out because their data cannot be served, each with its reason.
    pub left_out: Vec<TreeError>,
    /// Arrays views read that are not served (a pyramid's counts of valid values).
    pub hidden: Vec<Arc<ArrayNode>>,
}

impl Tree {
    /// Builds the snapshot for `config` from an up-to-date catalog. A dataset whose data
    /// cannot be served (no usable file, a join that fails, an unreadable Zarr store) is left
    /// out and recorded in [`Tree::left_out`]; every other dataset is built.
    ///
    /// # Errors
    /// [`TreeError`] of kind [`TreeErrorKind::Config`] when the config names something that does
    /// not exist (naming the dataset, the key and the valid choices).
    pub fn build(config: &MountConfig, catalog: &Catalog) -> Result<Tree, TreeError> {
        Tree::build_with(config, catalog, &RangeScans::in_memory())
    }

    /// [`Tree::build`], scanning the data ranges of pack views with `scans`.
    ///
    /// # Errors
    /// As [`Tree::build`]; also a view whose `from` names nothing in the tree or whose
    /// operation does not apply to what it reads.
    pub fn build_with(
        config: &MountConfig,
        catalog: &Catalog,
        scans: &RangeScans,
    ) -> Result<Tree, TreeError> {
        let mut next_id = 0;
        let mut tree = Tree::default();
        for dataset in &config.datasets {
            let mut notes = Vec::new();
            match build::dataset(dataset, catalog, &mut next_id, &mut notes) {
                Ok(group) => {
                    tree.root
                        .children
                        .insert(dataset.name.clone(), Node::Group(group));
                    tree.notes.extend(notes);
                }
                Err(e) if e.kind == TreeErrorKind::Data => {
                    tracing::debug!("left out {}: {}", e.dataset, e.message);
                    tree.left_out.push(e);
                }
                Err(e) => return Err(e),
            }
        }
        crate::views::build(config, &mut tree, &mut next_id, scans)?;
        crate::samples::build(config, &mut tree, &mut next_id, scans)?;
        Ok(tree)
    }

    /// Whether every dataset of the config was left out, so there is nothing to serve.
    pub fn nothing_usable(&self) -> bool {
        self.root.children.is_empty() && !self.left_out.is_empty()
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
