//! Builds one dataset's group from its Zarr store or its indexed files: the config checked
//! against the files, fixes applied per file, then the layout —
//! DataTree levels from keys, cells along new dimensions, files merged by a key, files joined
//! along `concat_dim` — and finally the chunk grids (see [`super::plan`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::concat::{self, Source};
use super::fixes::{self, FixSet, Fixed};
use super::plan::{finish, GroupPlan, VarPlan};
use super::{checks, new_dims, zarr};
use super::{GroupNode, TreeError};
use crate::config::{is_url, DatasetConfig};
use crate::operators::Transform;
use crate::sources::catalog::Catalog;
use crate::sources::membership::Layout;
use crate::sources::model::{FileMeta, GroupMeta};
use crate::sources::pattern::glob_base;

/// A file after its fixes, with its keys.
#[derive(Clone)]
pub(super) struct Item {
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

/// Builds the group of `config` from the catalog: its Zarr store, or its indexed files and
/// layout; `notes` collects what `atlasfs tree`/`index` report (fixes matched, missing cells).
///
/// # Errors
/// A [`TreeError`] of kind config when the config names a dimension, key or variable that no
/// file has, or its fix file cannot be read; of kind data when the dataset has no usable file,
/// its files cannot be joined or its store cannot be read.
pub(super) fn dataset(
    config: &DatasetConfig,
    catalog: &Catalog,
    next_id: &mut usize,
    notes: &mut Vec<String>,
) -> Result<GroupNode, TreeError> {
    let name = config.name.as_str();
    if config.zarr.is_some() {
        let store = catalog
            .zarr_store(name)
            .map_err(|m| TreeError::data(name, m))?;
        return Ok(zarr::dataset(store, name, next_id));
    }
    if let Some(reason) = catalog.unavailable(name) {
        return Err(TreeError::data(name, reason.to_owned()));
    }
    let fixes = config
        .fixes
        .as_deref()
        .map(FixSet::load)
        .transpose()
        .map_err(|e| TreeError::config(name, e.to_string()))?;
    let (files, membership) = catalog.dataset(name);
    if files.is_empty() {
        return Err(TreeError::data(name, no_usable_file(config, catalog)));
    }
    let layout = membership.map(|m| m.layout.clone()).unwrap_or_default();
    if let (Some(fixes), Some(path)) = (&fixes, &config.fixes) {
        checks::fix_names(fixes, path, &files, &layout).map_err(|m| TreeError::config(name, m))?;
    }
    let fail = |message: String| TreeError::data(name, message);
    let mut items = Vec::with_capacity(files.len());
    for (meta, member) in &files {
        let fixed = match &fixes {
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
    let metas: Vec<&FileMeta> = items.iter().map(Item::file).collect();
    let key = if config.catalog.is_some() {
        "the catalog's join_existing dim"
    } else {
        "concat_dim"
    };
    checks::concat_dim(&layout, &metas, key).map_err(|m| TreeError::config(name, m))?;
    checks::chunks(&config.chunks, &layout, &metas).map_err(|m| TreeError::config(name, m))?;
    let structured =
        !layout.groups.is_empty() || layout.merge.is_some() || !layout.new_dims.is_empty();
    let plan = if structured {
        tree_of_leaves(&items, &layout, name, notes).map_err(fail)?
    } else {
        join_items(&items, layout.concat_dim.as_deref(), true).map_err(fail)?
    };
    Ok(finish(plan, &config.chunks, name, next_id))
}

/// Why a dataset has no file to serve: the scan errors of its files, or that nothing matched.
fn no_usable_file(config: &DatasetConfig, catalog: &Catalog) -> String {
    /// At most this many files' reasons are quoted.
    const QUOTED: usize = 3;
    let source = if config.files.is_empty() {
        "the catalog".to_owned()
    } else {
        config.files.clone()
    };
    let unusable = catalog.unusable(&config.name);
    if unusable.is_empty() {
        let (_, membership) = catalog.dataset(&config.name);
        let unmatched = membership.map_or(0, |m| m.unmatched.len());
        return match (&config.pattern, unmatched) {
            (Some(pattern), 1..) => {
                format!("none of the {unmatched} file(s) of {source} matches pattern {pattern}")
            }
            _ if config.files.is_empty() => "the catalog lists no file".to_owned(),
            _ if !is_url(&config.files) && !glob_base(&config.files).exists() => format!(
                "no file matches {source}: {} does not exist",
                glob_base(&config.files).display()
            ),
            _ => format!("no file matches {source}"),
        };
    }
    if let [(path, reason)] = unusable.as_slice() {
        if *path == source {
            // A dataset of one named file: its path is the source, say it once.
            return format!("{path} is not usable: {reason}");
        }
    }
    let mut reasons: Vec<String> = unusable
        .iter()
        .take(QUOTED)
        .map(|(path, reason)| format!("{path}: {reason}"))
        .collect();
    if unusable.len() > QUOTED {
        reasons.push(format!("and {} more", unusable.len() - QUOTED));
    }
    format!("no usable file in {source}: {}", reasons.join("; "))
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
