//! Views: directories of the tree computed per chunk from other nodes (`[[view]]` tables).
//! [`build`] adds every view of a config to a tree in dependency order: it finds the node
//! `from` names, mirrors its subtree and applies the view's operation to each group that holds
//! arrays (one module per operation: [`pack`], [`pyramid`], [`expr`]), and places the result at
//! the view's `name`. The operators read their inputs' regions through the chunk cache; their
//! values are CF-decoded first ([`decoded`]).

pub(crate) mod decoded;
mod expr;
mod pack;
mod pyramid;
mod regrid;
mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use regrid::weights_store::WeightsUsage;
pub use scan::{RangeScans, ScanError};

use crate::config::{
    producer, HealpixGrid, MountConfig, Producer, RegridParams, TargetGrid, ViewConfig,
    ViewOperation,
};
use crate::operators::{Encoding, Recipe};
use crate::sources::model::{Attr, AttrValue, DType};
use crate::tree::{ArrayNode, GroupNode, Node, NodeRef, Tree, TreeError};

/// What building one leaf group of a view needs.
pub(crate) struct Builder<'a> {
    /// The view.
    pub(crate) view: &'a ViewConfig,
    /// Arrays made so far (views' hidden arrays go to the tree's `hidden`).
    pub(crate) hidden: Vec<Arc<ArrayNode>>,
    next_id: &'a mut usize,
    /// Data ranges for `range = "data"`.
    pub(crate) scans: &'a RangeScans,
    /// The grid a regrid view's `like` names.
    pub(crate) like: Option<regrid::grid::SourceGrid>,
    /// The HEALPix cells a regrid view's `like` names, when it names a group of cells.
    pub(crate) like_cells: Option<HealpixGrid>,
}

impl Builder<'_> {
    /// A new array at `path`.
    pub(crate) fn array(
        &mut self,
        path: String,
        dims: Vec<String>,
        geometry: crate::operators::Geometry,
        attrs: Vec<Attr>,
        recipe: Recipe,
    ) -> Arc<ArrayNode> {
        ArrayNode::numbered(self.next_id, path, dims, geometry, attrs, recipe)
    }

    /// `array` served again at `path`: same recipe, so the same cached chunks.
    pub(crate) fn alias(&mut self, array: &ArrayNode, path: String) -> Arc<ArrayNode> {
        self.array(
            path,
            array.dims.clone(),
            array.geometry.clone(),
            array.attrs.clone(),
            array.recipe.clone(),
        )
    }

    /// A config error of this view.
    pub(crate) fn config_error(&self, message: String) -> TreeError {
        TreeError::config(&format!("view {}", self.view.name), message)
    }

    /// Whether data variable `name` is one the view's `variables` selects.
    pub(crate) fn selects(&self, name: &str) -> bool {
        self.view
            .variables
            .as_ref()
            .is_none_or(|v| v.iter().any(|n| n == name))
    }

    /// The numeric data variables of `group` with at least two dimensions that the view's
    /// `variables` selects: what a pyramid or a regrid applies to.
    pub(crate) fn gridded<'g>(
        &self,
        group: &'g GroupNode,
    ) -> Vec<(&'g String, &'g Arc<ArrayNode>)> {
        arrays_of(group)
            .into_iter()
            .filter(|(name, array)| {
                self.selects(name)
                    && !is_coordinate(group, name, array)
                    && array.dims.len() >= 2
                    && decoded::Decoding::of(array).is_some()
            })
            .collect()
    }

    /// Fails when the view's `chunks` names a dimension no array of `group` (the view's
    /// output for one group) has.
    pub(crate) fn check_chunk_dims(
        &self,
        chunks: &BTreeMap<String, u64>,
        group: &GroupNode,
        path: &str,
    ) -> Result<(), TreeError> {
        let dims: BTreeSet<&String> = descendant_arrays(group)
            .flat_map(|array| array.dims.iter())
            .collect();
        match chunks.keys().find(|d| !dims.contains(d)) {
            None => Ok(()),
            Some(unknown) => Err(self.config_error(format!(
                "{path}: chunks: {unknown:?} is not a dimension of the view (dimensions: {})",
                dims.iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Fails when `variables` names a variable `group` does not have.
    pub(crate) fn check_variables(
        &self,
        arrays: &[(&String, &Arc<ArrayNode>)],
    ) -> Result<(), TreeError> {
        for name in self.view.variables.iter().flatten() {
            if !arrays.iter().any(|(n, _)| *n == name) {
                let known: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
                return Err(self.config_error(format!(
                    "variables names {name:?}, which {} does not have (it has: {})",
                    self.view.from,
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Chunk lengths `chunks` (one per dimension of an array with `dims` and `shape`) with the
/// view's `chunks` overrides applied, each at most the dimension's length.
pub(crate) fn override_chunks(
    mut chunks: Vec<u64>,
    dims: &[String],
    shape: &[u64],
    overrides: &BTreeMap<String, u64>,
) -> Vec<u64> {
    for ((chunk, dim), &len) in chunks.iter_mut().zip(dims).zip(shape) {
        if let Some(&n) = overrides.get(dim) {
            *chunk = n.min(len).max(1);
        }
    }
    chunks
}

/// Every array of `group` and of its subgroups.
fn descendant_arrays(group: &GroupNode) -> Box<dyn Iterator<Item = &Arc<ArrayNode>> + '_> {
    Box::new(group.children.values().flat_map(|node| match node {
        Node::Array(a) => Box::new(std::iter::once(a)) as Box<dyn Iterator<Item = _>>,
        Node::Group(g) => descendant_arrays(g),
    }))
}

/// The arrays of `group` (name, array), in name order.
pub(crate) fn arrays_of(group: &GroupNode) -> Vec<(&String, &Arc<ArrayNode>)> {
    group
        .children
        .iter()
        .filter_map(|(name, node)| match node {
            Node::Array(a) => Some((name, a)),
            Node::Group(_) => None,
        })
        .collect()
}

/// Whether `name` is a coordinate of `group`'s arrays: a 1-d array named as its dimension, or
/// named by another array's `coordinates` or `bounds` attribute.
pub(crate) fn is_coordinate(group: &GroupNode, name: &str, array: &ArrayNode) -> bool {
    if array.dims.len() == 1 && array.dims[0] == name {
        return true;
    }
    arrays_of(group).iter().any(|(_, other)| {
        other.attrs.iter().any(|a| {
            (a.name == "coordinates" || a.name == "bounds")
                && a.value
                    .as_text()
                    .is_some_and(|t| t.split_whitespace().any(|w| w == name))
        })
    })
}

/// The encoding a view's `codec` and `level` ask for, for elements of `dtype`.
pub(crate) fn encoding(codec: crate::config::Codec, level: Option<i32>, dtype: DType) -> Encoding {
    use crate::config::Codec;
    match codec {
        Codec::None => Encoding::Bytes,
        Codec::Zstd => Encoding::Zstd {
            level: level.unwrap_or(3),
        },
        Codec::Gzip => Encoding::Gzip {
            level: level.unwrap_or(5).clamp(0, 9) as u32,
        },
        Codec::BloscZstd => Encoding::BloscZstd {
            level: level.unwrap_or(5).clamp(0, 9) as u8,
            typesize: dtype.size().unwrap_or(1).min(255) as u8,
        },
    }
}

/// The group attributes of a view's output: the source group's, with one more `history` line
/// saying how it was made.
pub(crate) fn provenance(source: &[Attr], view: &ViewConfig, what: &str) -> Vec<Attr> {
    let mut attrs: Vec<Attr> = source
        .iter()
        .filter(|a| a.name != "history" && a.name != "multiscales")
        .cloned()
        .collect();
    let line = format!(
        "atlasfs view {}: {} of {} ({what})",
        view.name,
        view.operation.kind(),
        view.from
    );
    let history = match source
        .iter()
        .find(|a| a.name == "history")
        .and_then(|a| a.value.as_text())
    {
        Some(before) if !before.is_empty() => format!("{before}\n{line}"),
        _ => line,
    };
    attrs.push(Attr {
        name: "history".into(),
        value: AttrValue::Text(history),
    });
    attrs
}

/// The group `from` names, for what reads it (`label`: `view NAME`, `samples NAME`).
///
/// # Errors
/// [`TreeError`] of kind config when `from` names an array or nothing.
pub(crate) fn group_at<'t>(
    tree: &'t Tree,
    from: &str,
    label: &str,
) -> Result<&'t GroupNode, TreeError> {
    match tree.node(from) {
        Some(NodeRef::Group(group)) => Ok(group),
        Some(NodeRef::Array(_)) => Err(TreeError::config(
            label,
            format!("`from` {from:?} is an array; name the group that holds it"),
        )),
        None => Err(TreeError::config(
            label,
            format!("`from` {from:?} does not exist in the tree"),
        )),
    }
}

/// Adds the views of `config` to `tree`, in dependency order. A view whose source was left out
/// is left out too.
///
/// # Errors
/// [`TreeError`] of kind config when a view's `from` names nothing in the tree, its name is
/// taken, or its operation does not apply to what it reads (naming the view and the cause).
pub(crate) fn build(
    config: &MountConfig,
    tree: &mut Tree,
    next_id: &mut usize,
    scans: &RangeScans,
) -> Result<(), TreeError> {
    let datasets: Vec<&str> = config.datasets.iter().map(|d| d.name.as_str()).collect();
    let names: Vec<&str> = config.views.iter().map(|v| v.name.as_str()).collect();
    let mut views_built: BTreeSet<String> = BTreeSet::new();
    let mut left_out: BTreeSet<String> = tree.left_out.iter().map(|e| e.dataset.clone()).collect();
    for view in config.ordered_views() {
        let source_name = match producer(&view.from, &datasets, &names) {
            Some(Producer::Dataset(i)) => datasets[i].to_owned(),
            Some(Producer::View(i)) => format!("view {}", names[i]),
            None => view.from.clone(),
        };
        let label = format!("view {}", view.name);
        if left_out.contains(&source_name) {
            tree.left_out.push(TreeError::data(
                &label,
                format!("it reads {}, which is left out", view.from),
            ));
            left_out.insert(label);
            continue;
        }
        let source = group_at(tree, &view.from, &label)?;
        let (like, like_cells) = match &view.operation {
            ViewOperation::Regrid(RegridParams {
                grid: TargetGrid::Like { like },
                ..
            }) => {
                let path = like.trim_matches('/');
                let unlike =
                    |e: String| TreeError::config(&label, format!("grid like {like:?}: {e}"));
                match tree.node(path) {
                    Some(NodeRef::Group(group)) => match regrid::healpix_grid_of(group) {
                        Some(cells) => (None, Some(cells.map_err(unlike)?)),
                        None => (Some(regrid::grid_of(group).map_err(unlike)?), None),
                    },
                    _ => {
                        return Err(TreeError::config(
                            &label,
                            format!("grid like {like:?} names no group of the tree"),
                        ))
                    }
                }
            }
            _ => (None, None),
        };
        let mut builder = Builder {
            view,
            hidden: Vec::new(),
            next_id,
            scans,
            like,
            like_cells,
        };
        let skip: Vec<String> = views_built
            .iter()
            .filter_map(|v| {
                v.strip_prefix(&format!("{}/", view.from))
                    .map(str::to_owned)
            })
            .collect();
        match mirror(&mut builder, source, &view.name, &skip) {
            Ok(group) => {
                let hidden = std::mem::take(&mut builder.hidden);
                place(tree, &view.name, group).map_err(|m| TreeError::config(&label, m))?;
                tree.hidden.extend(hidden);
                views_built.insert(view.name.clone());
            }
            Err(e) if e.kind == crate::tree::TreeErrorKind::Data => {
                tracing::debug!("left out {}: {}", e.dataset, e.message);
                tree.left_out.push(e);
                left_out.insert(label);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The view's output for `source` at `path`: its subgroups mirrored, and its arrays (if any)
/// through the operation. `skip`: children that are other views (relative paths).
fn mirror(
    builder: &mut Builder<'_>,
    source: &GroupNode,
    path: &str,
    skip: &[String],
) -> Result<GroupNode, TreeError> {
    let arrays = arrays_of(source);
    let mut out = if arrays.is_empty() {
        GroupNode {
            attrs: source.attrs.clone(),
            children: Default::default(),
        }
    } else {
        builder.check_variables(&arrays)?;
        match &builder.view.operation {
            ViewOperation::Pack(params) => pack::apply(builder, params, source, path)?,
            ViewOperation::Pyramid(params) => pyramid::apply(builder, params, source, path)?,
            ViewOperation::Expr(params) => expr::apply(builder, params, source, path)?,
            ViewOperation::Regrid(params) => regrid::apply(builder, params, source, path)?,
        }
    };
    for (name, child) in &source.children {
        let Node::Group(group) = child else { continue };
        if skip.iter().any(|s| s == name) {
            continue;
        }
        let inner: Vec<String> = skip
            .iter()
            .filter_map(|s| s.strip_prefix(&format!("{name}/")).map(str::to_owned))
            .collect();
        if out.children.contains_key(name) {
            continue;
        }
        let mirrored = mirror(builder, group, &format!("{path}/{name}"), &inner)?;
        out.children.insert(name.clone(), Node::Group(mirrored));
    }
    Ok(out)
}

/// Puts `group` at `path`, creating intermediate groups.
pub(crate) fn place(tree: &mut Tree, path: &str, group: GroupNode) -> Result<(), String> {
    let segments: Vec<&str> = path.split('/').collect();
    let Some((last, parents)) = segments.split_last() else {
        return Err("a view needs a name".into());
    };
    let mut at = &mut tree.root;
    for segment in parents {
        let next = at
            .children
            .entry((*segment).to_owned())
            .or_insert_with(|| Node::Group(GroupNode::default()));
        match next {
            Node::Group(g) => at = g,
            Node::Array(_) => return Err(format!("{segment} in its name is an array")),
        }
    }
    if at.children.contains_key(*last) {
        return Err(format!("its name {path:?} is already taken in the tree"));
    }
    at.children.insert((*last).to_owned(), Node::Group(group));
    Ok(())
}
