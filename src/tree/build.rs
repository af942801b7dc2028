//! Builds one dataset's group from its indexed files: fixes applied per file, then the layout —
//! DataTree levels from keys, cells along new dimensions, files merged by a key, files joined
//! along `concat_dim` — and finally the chunk grids (see [`super::plan`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::concat::{self, Source};
use super::fixes::{self, FixSet, Fixed};
use super::new_dims;
use super::plan::{finish, GroupPlan, VarPlan};
use super::{GroupNode, TreeError};
use crate::config::DatasetConfig;
use crate::operators::Transform;
use crate::sources::membership::{Layout, Member};
use crate::sources::model::{FileMeta, GroupMeta};

/// A file after its fixes, with its keys.
#[derive(Clone)]
pub struct Item {
    /// The fixed file.
    pub fixed: Arc<Fixed>,
    /// Its keys.
    pub keys: BTreeMap<String, String>,
}

impl Item {
    fn file(&self) -> &FileMeta {
        &self.fixed.meta
    }
}

/// Builds the group of `config` from its indexed files and layout; `notes` collects what
/// `atlasfs tree`/`index` report (fixes matched, missing cells).
pub fn dataset(
    config: &DatasetConfig,
    files: &[(Arc<FileMeta>, &Member)],
    layout: &Layout,
    fixes: Option<&FixSet>,
    next_id: &mut usize,
    notes: &mut Vec<String>,
) -> Result<GroupNode, TreeError> {
    let fail = |message: String| TreeError {
        dataset: config.name.clone(),
        message,
    };
    if files.is_empty() {
        let what = if config.files.is_empty() {
            "the catalog lists no usable file".to_owned()
        } else {
            format!("no usable file matches {}", config.files)
        };
        return Err(fail(what));
    }
    let mut items = Vec::with_capacity(files.len());
    for (meta, member) in files {
        let fixed = match fixes {
            Some(fixes) => {
                let relative = std::path::Path::new(&meta.path)
                    .strip_prefix(&layout.base)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| meta.path.clone());
                let fixed = fixes::apply(
                    fixes,
                    meta,
                    &member.keys,
                    &relative,
                    layout.concat_dim.as_deref(),
                )
                .map_err(fail)?;
                for rule in &fixed.matched {
                    notes.push(format!("fix {rule} ({}) matched {}", fixes.name, meta.path));
                }
                fixed
            }
            None => Fixed {
                meta: meta.clone(),
                transforms: HashMap::new(),
                matched: Vec::new(),
            },
        };
        items.push(Item {
            fixed: Arc::new(fixed),
            keys: member.keys.clone(),
        });
    }
    let structured =
        !layout.groups.is_empty() || layout.merge.is_some() || !layout.new_dims.is_empty();
    let plan = if structured {
        tree_of_leaves(&items, layout, &config.name, notes).map_err(fail)?
    } else {
        join_items(&items, layout.concat_dim.as_deref(), true).map_err(fail)?
    };
    Ok(finish(plan, &config.chunks, &config.name, next_id))
}

/// Groups items by the `groups` keys into DataTree levels and builds each leaf.
fn tree_of_leaves(
    items: &[Item],
    layout: &Layout,
    dataset: &str,
    notes: &mut Vec<String>,
) -> Result<GroupPlan, String> {
    let mut leaves: BTreeMap<Vec<String>, Vec<Item>> = BTreeMap::new();
    for item in items {
        let path: Vec<String> = layout
            .groups
            .iter()
            .map(|k| item.keys.get(k).cloned().unwrap_or_default())
            .collect();
        leaves.entry(path).or_default().push(item.clone());
    }
    let mut root = GroupPlan::default();
    for (path, items) in leaves {
        let where_ = std::iter::once(dataset.to_owned())
            .chain(path.iter().cloned())
            .collect::<Vec<_>>()
            .join("/");
        let leaf = leaf(&items, layout, &where_, notes)?;
        let mut group = &mut root;
        for name in &path {
            group = group.groups.entry(name.clone()).or_default();
        }
        group.attrs = leaf.attrs;
        group.vars = leaf.vars;
        group.groups.extend(leaf.groups);
    }
    Ok(root)
}

/// One leaf: cells along new dimensions, each the merge of its files joined along `concat_dim`.
fn leaf(
    items: &[Item],
    layout: &Layout,
    where_: &str,
    notes: &mut Vec<String>,
) -> Result<GroupPlan, String> {
    let mut cells: BTreeMap<Vec<String>, Vec<Item>> = BTreeMap::new();
    for item in items {
        let key: Vec<String> = layout
            .new_dims
            .iter()
            .map(|k| item.keys.get(k).cloned().unwrap_or_default())
            .collect();
        cells.entry(key).or_default().push(item.clone());
    }
    let mut plans = Vec::with_capacity(cells.len());
    for (key, items) in cells {
        plans.push((key, merged(&items, layout)?));
    }
    if layout.new_dims.is_empty() {
        return Ok(plans.pop().map(|(_, p)| p).unwrap_or_default());
    }
    new_dims::stack(plans, &layout.new_dims, &layout.kinds, where_, notes)
}

/// Merges the files of one cell: those differing in the `merge` key hold different variables.
fn merged(items: &[Item], layout: &Layout) -> Result<GroupPlan, String> {
    let mut buckets: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for item in items {
        let key = layout
            .merge
            .as_ref()
            .and_then(|k| item.keys.get(k))
            .cloned()
            .unwrap_or_default();
        buckets.entry(key).or_default().push(item.clone());
    }
    let mut out: Option<GroupPlan> = None;
    for (_, items) in buckets {
        // Only the root group of each file takes part in a merge.
        let plan = join_items(&items, layout.concat_dim.as_deref(), false)?;
        match &mut out {
            None => out = Some(plan),
            Some(out) => {
                for (name, var) in plan.vars {
                    out.vars.entry(name).or_insert(var);
                }
            }
        }
    }
    Ok(out.unwrap_or_default())
}

/// Joins items along `concat_dim` (or serves the single item), with NetCDF-4 subgroups when
/// `subgroups` is set.
fn join_items(
    items: &[Item],
    concat_dim: Option<&str>,
    subgroups: bool,
) -> Result<GroupPlan, String> {
    match concat_dim {
        None if items.len() > 1 => Err(format!(
            "{} files fall in one place (e.g. {} and {}) but nothing tells them apart: set concat_dim, or use their keys in groups, merge or new_dims",
            items.len(),
            items[0].file().path,
            items[1].file().path
        )),
        None => {
            let sources = [source(&items[0].fixed, &items[0].fixed.meta.root, true)];
            group(&sources, None, subgroups)
        }
        Some(dim) => {
            let ordered = concat::order(items, Item::file, dim)?;
            let sources: Vec<Source<'_>> = ordered.iter().map(|i| source(&i.fixed, &i.fixed.meta.root, true)).collect();
            group(&sources, Some(dim), subgroups)
        }
    }
}

static NO_TRANSFORMS: std::sync::LazyLock<HashMap<String, Transform>> =
    std::sync::LazyLock::new(HashMap::new);

fn source<'a>(fixed: &'a Fixed, group: &'a GroupMeta, root: bool) -> Source<'a> {
    Source {
        file: &fixed.meta,
        group,
        transforms: if root {
            &fixed.transforms
        } else {
            &NO_TRANSFORMS
        },
    }
}

/// The plan of the group that `sources` (the same group in each file, in join order) form.
fn group(sources: &[Source<'_>], dim: Option<&str>, subgroups: bool) -> Result<GroupPlan, String> {
    let first = sources[0];
    let mut plan = GroupPlan {
        attrs: first.group.attrs.clone(),
        ..GroupPlan::default()
    };
    for var in &first.group.vars {
        let axis = dim.and_then(|d| var.dims.iter().position(|n| n == d));
        let var_plan = match (axis, dim) {
            (Some(axis), Some(dim)) if sources.len() > 1 => {
                concat::join(sources, &var.name, axis, dim)?
            }
            _ => {
                let mut single = VarPlan::single(first.file, var, first.transforms.get(&var.name));
                single.concat_axis = axis;
                single
            }
        };
        plan.vars.insert(var.name.clone(), var_plan);
    }
    if subgroups {
        for child in &first.group.groups {
            let matching: Result<Vec<Source<'_>>, String> = sources
                .iter()
                .map(|s| {
                    s.group
                        .groups
                        .iter()
                        .find(|g| g.name == child.name)
                        .map(|g| Source {
                            group: g,
                            transforms: &NO_TRANSFORMS,
                            ..*s
                        })
                        .ok_or_else(|| {
                            format!(
                                "group {} is in {} but not in {}",
                                child.name, first.file.path, s.file.path
                            )
                        })
                })
                .collect();
            let sub = group(&matching?, dim, true)?;
            plan.groups.insert(child.name.clone(), sub);
        }
    }
    Ok(plan)
}
