//! Builds one dataset's group from its indexed files: a single file maps group for group and
//! variable for variable; several files are joined along `concat_dim` (see [`super::concat`]).

use std::sync::Arc;

use super::{chunking, concat, ArrayNode, GroupNode, Node, TreeError};
use crate::config::DatasetConfig;
use crate::operators::{Geometry, Part, Recipe};
use crate::sources::model::{DType, FileMeta, GroupMeta, VarMeta};

/// Builds the group of `config` from its indexed `files`.
pub fn dataset(
    config: &DatasetConfig,
    files: &[Arc<FileMeta>],
    next_id: &mut usize,
) -> Result<GroupNode, TreeError> {
    let fail = |message: String| TreeError {
        dataset: config.name.clone(),
        message,
    };
    if files.is_empty() {
        return Err(fail(format!("no usable file matches {}", config.files)));
    }
    let mut builder = Builder { config, next_id };
    match &config.concat_dim {
        None if files.len() > 1 => Err(fail(format!(
            "{} files match {} (e.g. {} and {}) but no concat_dim is set",
            files.len(),
            config.files,
            files[0].path,
            files[1].path
        ))),
        None => {
            let groups = [(&files[0], &files[0].root)];
            builder.group(&groups, None, &config.name).map_err(fail)
        }
        Some(dim) => {
            let ordered = concat::order(files, dim).map_err(fail)?;
            let groups: Vec<(&Arc<FileMeta>, &GroupMeta)> =
                ordered.iter().map(|f| (f, &f.root)).collect();
            builder
                .group(&groups, Some(dim), &config.name)
                .map_err(fail)
        }
    }
}

struct Builder<'a> {
    config: &'a DatasetConfig,
    next_id: &'a mut usize,
}

impl Builder<'_> {
    /// Builds the group that `groups` (the same group in each file, in join order) form.
    fn group(
        &mut self,
        groups: &[(&Arc<FileMeta>, &GroupMeta)],
        dim: Option<&str>,
        path: &str,
    ) -> Result<GroupNode, String> {
        let (first_file, first) = groups[0];
        let mut node = GroupNode {
            attrs: first.attrs.clone(),
            ..GroupNode::default()
        };
        for var in &first.vars {
            let axis = dim.and_then(|d| var.dims.iter().position(|n| n == d));
            let (shape, dtype, parts) = match (axis, dim) {
                (Some(axis), Some(dim)) if groups.len() > 1 => {
                    let joined = concat::join(groups, &var.name, axis, dim)?;
                    (joined.shape, joined.dtype, joined.parts)
                }
                _ => (
                    var.shape.clone(),
                    var.dtype,
                    vec![single_part(first_file, var)],
                ),
            };
            let array = self.array(
                var,
                shape,
                dtype,
                parts,
                axis,
                &format!("{path}/{}", var.name),
            );
            node.children
                .insert(var.name.clone(), Node::Array(Arc::new(array)));
        }
        for child in &first.groups {
            let matching: Result<Vec<(&Arc<FileMeta>, &GroupMeta)>, String> = groups
                .iter()
                .map(|(file, group)| {
                    group
                        .groups
                        .iter()
                        .find(|g| g.name == child.name)
                        .map(|g| (*file, g))
                        .ok_or_else(|| {
                            format!(
                                "group {} is in {} but not in {}",
                                child.name, first_file.path, file.path
                            )
                        })
                })
                .collect();
            let sub = self.group(&matching?, dim, &format!("{path}/{}", child.name))?;
            node.children.insert(child.name.clone(), Node::Group(sub));
        }
        Ok(node)
    }

    fn array(
        &mut self,
        first: &VarMeta,
        shape: Vec<u64>,
        dtype: DType,
        parts: Vec<Part>,
        axis: Option<usize>,
        path: &str,
    ) -> ArrayNode {
        let chunks = chunking::choose(first, &first.dims, &shape, dtype, axis, &self.config.chunks);
        let fill = if dtype == first.dtype {
            first.fill.clone()
        } else {
            dtype.default_fill()
        };
        let id = *self.next_id;
        *self.next_id += 1;
        ArrayNode {
            id,
            path: path.to_owned(),
            dims: first.dims.clone(),
            geometry: Geometry {
                shape,
                chunks,
                dtype,
                fill,
            },
            attrs: first.attrs.clone(),
            recipe: Recipe {
                concat_axis: if parts.len() > 1 { axis } else { None },
                parts,
            },
        }
    }
}

fn single_part(file: &Arc<FileMeta>, var: &VarMeta) -> Part {
    Part {
        path: file.path.as_str().into(),
        version: file.version,
        var: Arc::new(var.clone()),
        offset: 0,
    }
}
