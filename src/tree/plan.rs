//! The plan of a group before it becomes tree nodes: variables with their parts, shapes and
//! types, however they were assembled (single file, joined, merged, stacked along new
//! dimensions). [`finish`] chooses chunk grids and turns a plan into [`GroupNode`]s.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{chunking, ArrayNode, GroupNode, Node};
use crate::operators::{Geometry, Part, Recipe};
use crate::sources::model::{Attr, DType, FileMeta, VarMeta};

/// One array to be.
#[derive(Debug, Clone)]
pub(super) struct VarPlan {
    /// Dimension names.
    pub dims: Vec<String>,
    /// Shape.
    pub shape: Vec<u64>,
    /// Served type.
    pub dtype: DType,
    /// Fill value bytes of the served type.
    pub fill: Vec<u8>,
    /// Attributes.
    pub attrs: Vec<Attr>,
    /// Contributing parts.
    pub parts: Vec<Part>,
    /// The existing dimension files were joined along, if any.
    pub concat_axis: Option<usize>,
    /// Whether parts are unpacked into float64 because files encoded the variable differently.
    pub decoded: bool,
}

impl VarPlan {
    /// A plan serving `var` of `file` as it is (or through `transform`).
    pub(super) fn single(
        file: &FileMeta,
        var: &VarMeta,
        transform: Option<&crate::operators::Transform>,
    ) -> VarPlan {
        let dtype = transform.map_or(var.dtype, |t| t.output);
        VarPlan {
            dims: var.dims.clone(),
            shape: var.shape.clone(),
            dtype,
            fill: if dtype == var.dtype {
                var.fill.clone()
            } else {
                dtype.default_fill()
            },
            attrs: var.attrs.clone(),
            parts: vec![Part {
                path: file.path.as_str().into(),
                version: file.version,
                var: Arc::new(var.clone()),
                origin: vec![0; var.shape.len()],
                transform: transform.cloned().map(Arc::new),
            }],
            concat_axis: None,
            decoded: false,
        }
    }

    /// A plan serving values made up here (new coordinates, promoted attributes).
    pub(super) fn synthetic(var: VarMeta) -> VarPlan {
        let file = FileMeta {
            path: String::new(),
            version: crate::sources::model::FileVersion {
                size: 0,
                mtime_ns: 0,
                etag: 0,
            },
            format: crate::sources::model::FileFormat::Netcdf4,
            root: Default::default(),
        };
        VarPlan::single(&file, &var, None)
    }
}

/// One group to be.
#[derive(Debug, Clone, Default)]
pub(super) struct GroupPlan {
    /// Group attributes.
    pub attrs: Vec<Attr>,
    /// Variables by name.
    pub vars: BTreeMap<String, VarPlan>,
    /// Child groups by name.
    pub groups: BTreeMap<String, GroupPlan>,
}

/// Turns a plan into tree nodes, choosing each array's chunk grid.
pub(super) fn finish(
    plan: GroupPlan,
    overrides: &BTreeMap<String, u64>,
    path: &str,
    next_id: &mut usize,
) -> GroupNode {
    let mut node = GroupNode {
        attrs: plan.attrs,
        ..GroupNode::default()
    };
    for (name, var) in plan.vars {
        let array_path = format!("{path}/{name}");
        let chunks = choose_chunks(&var, overrides);
        let id = *next_id;
        *next_id += 1;
        let recipe = Recipe::from_parts(var.parts, var.dtype);
        let array = ArrayNode {
            id,
            path: array_path,
            dims: var.dims,
            geometry: Geometry {
                shape: var.shape,
                chunks,
                dtype: var.dtype,
                fill: var.fill,
            },
            attrs: var.attrs,
            recipe,
        };
        node.children.insert(name, Node::Array(Arc::new(array)));
    }
    for (name, group) in plan.groups {
        let child = finish(group, overrides, &format!("{path}/{name}"), next_id);
        node.children.insert(name, Node::Group(child));
    }
    node
}

/// The chunk grid: the first part's choice for its own dimensions, one along new leading
/// dimensions, then the config's per-dimension overrides.
fn choose_chunks(var: &VarPlan, overrides: &BTreeMap<String, u64>) -> Vec<u64> {
    let Some(first) = var.parts.first() else {
        return var.shape.iter().map(|&n| n.max(1)).collect();
    };
    let lead = first.lead().min(var.shape.len());
    let mut chunks = vec![1u64; lead];
    chunks.extend(chunking::choose(
        &first.var,
        &var.shape[lead..],
        var.dtype,
        var.concat_axis.and_then(|a| a.checked_sub(lead)),
    ));
    for (d, name) in var.dims.iter().enumerate() {
        if let Some(&n) = overrides.get(name) {
            chunks[d] = n.min(var.shape[d].max(1)).max(1);
        }
    }
    chunks
}
