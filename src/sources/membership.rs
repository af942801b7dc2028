//! Which files belong to a dataset and with which keys: a glob (optionally matched against a
//! path pattern) or an intake-esm catalog, plus the layout that says how keys structure the
//! dataset (DataTree levels, merged variables, joins, new dimensions).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::esm_catalog;
use super::pattern::{glob_base, FieldKind, Pattern};
use crate::config::DatasetConfig;

/// A file of a dataset and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Absolute path.
    pub path: String,
    /// Key values from the path pattern or the catalog's columns.
    pub keys: BTreeMap<String, String>,
}

/// How keys structure a dataset.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Keys that are DataTree levels, outermost first.
    pub groups: Vec<String>,
    /// Key whose files are merged (union of variables).
    pub merge: Option<String>,
    /// Existing dimension files are joined along.
    pub concat_dim: Option<String>,
    /// Keys that become new leading dimensions.
    pub new_dims: Vec<String>,
    /// Keys that only tell joined files apart (catalog `join_existing` columns).
    pub joined_keys: Vec<String>,
    /// How each key's text becomes a coordinate value.
    pub kinds: BTreeMap<String, FieldKind>,
    /// The directory paths are relative to (for `match_path` in fixes).
    pub base: PathBuf,
}

/// A dataset's members, layout, and the files left out.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    /// Files with their keys, in path order.
    pub members: Vec<Member>,
    /// How the keys structure the dataset.
    pub layout: Layout,
    /// Files the glob matched but the pattern did not: path and reason.
    pub unmatched: Vec<(String, String)>,
}

/// A dataset whose members cannot be determined.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// The glob or pattern is invalid.
    #[error("dataset {dataset}: {reason}")]
    Invalid {
        /// The dataset.
        dataset: String,
        /// What is wrong.
        reason: String,
    },
    /// The intake-esm catalog cannot be read.
    #[error("dataset {dataset}: {source}")]
    Catalog {
        /// The dataset.
        dataset: String,
        /// Why.
        source: esm_catalog::EsmCatalogError,
    },
}

/// Finds the members of `dataset`.
///
/// # Errors
/// [`MembershipError`] for an invalid glob or pattern, or an unreadable catalog.
pub fn resolve(dataset: &DatasetConfig) -> Result<Membership, MembershipError> {
    let invalid = |reason: String| MembershipError::Invalid {
        dataset: dataset.name.clone(),
        reason,
    };
    if let Some(catalog) = &dataset.catalog {
        let (members, mut layout) =
            esm_catalog::read(catalog).map_err(|source| MembershipError::Catalog {
                dataset: dataset.name.clone(),
                source,
            })?;
        layout.base = catalog.parent().map(Path::to_path_buf).unwrap_or_default();
        return Ok(Membership {
            members,
            layout,
            unmatched: Vec::new(),
        });
    }
    let pattern = dataset
        .pattern
        .as_deref()
        .map(Pattern::new)
        .transpose()
        .map_err(|e| invalid(e.to_string()))?;
    let base = glob_base(&dataset.files);
    let layout = Layout {
        groups: dataset.groups.clone(),
        merge: dataset.merge.clone(),
        concat_dim: dataset.concat_dim.clone(),
        new_dims: dataset.new_dims.clone(),
        joined_keys: Vec::new(),
        kinds: pattern
            .as_ref()
            .map(|p| p.kinds().clone())
            .unwrap_or_default(),
        base: base.clone(),
    };
    for key in layout
        .groups
        .iter()
        .chain(&layout.new_dims)
        .chain(&layout.merge)
    {
        if pattern.is_none() || !layout.kinds.contains_key(key) {
            return Err(invalid(format!(
                "key {key:?} is not a field of the pattern"
            )));
        }
    }
    let paths = glob::glob(&dataset.files)
        .map_err(|e| invalid(format!("invalid glob {:?}: {e}", dataset.files)))?;
    let mut paths: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut membership = Membership {
        layout,
        ..Membership::default()
    };
    for path in paths {
        let text = path.to_string_lossy().into_owned();
        let keys = match &pattern {
            None => BTreeMap::new(),
            Some(pattern) => {
                let relative = path.strip_prefix(&base).unwrap_or(&path).to_string_lossy();
                match pattern.match_path(&relative) {
                    Some(keys) => keys,
                    None => {
                        membership
                            .unmatched
                            .push((text, format!("does not match pattern {}", pattern.text())));
                        continue;
                    }
                }
            }
        };
        membership.members.push(Member { path: text, keys });
    }
    Ok(membership)
}
