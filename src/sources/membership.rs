//! Which files belong to a dataset and with which keys: a glob (optionally matched against a
//! path pattern) or an intake-esm catalog, plus the layout that says how keys structure the
//! dataset (DataTree levels, merged variables, joins, new dimensions).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::esm_catalog;
use super::model::FileVersion;
use super::pattern::{glob_base, FieldKind, Pattern};
use super::remote::listing::is_granule_list;
use super::remote::location::{glob_prefix, has_wildcards, join, ObjectUrl};
use super::remote::RemoteError;
use super::router::Sources;
use crate::config::{is_url, DatasetConfig};

/// A file of a dataset and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Absolute path.
    pub path: String,
    /// Key values from the path pattern or the catalog's columns.
    pub keys: BTreeMap<String, String>,
    /// The version a listing reported (objects); local files are looked at when indexing.
    pub version: Option<FileVersion>,
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
    /// Files the glob matched but the pattern did not: path relative to the glob's base (as the
    /// pattern saw it) and reason.
    pub unmatched: Vec<(String, String)>,
    /// Files listed but not readable (no version could be looked up): path and reason.
    pub unreadable: Vec<(String, String)>,
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
    /// The object store cannot be listed.
    #[error("dataset {dataset}: {error}")]
    Remote {
        /// The dataset.
        dataset: String,
        /// Why (boxed: remote errors are large).
        error: Box<RemoteError>,
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

impl MembershipError {
    /// What is wrong, without the dataset's name.
    pub fn reason(&self) -> String {
        match self {
            MembershipError::Invalid { reason, .. } => reason.clone(),
            MembershipError::Remote { error, .. } => error.to_string(),
            MembershipError::Catalog { source, .. } => source.to_string(),
        }
    }
}

/// Finds the members of `dataset`, listing object stores through `sources`.
///
/// # Errors
/// [`MembershipError`] for an invalid glob or pattern, an unreadable catalog, or a failed
/// listing.
pub fn resolve(dataset: &DatasetConfig, sources: &Sources) -> Result<Membership, MembershipError> {
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
            ..Membership::default()
        });
    }
    let pattern = dataset
        .pattern
        .as_deref()
        .map(Pattern::new)
        .transpose()
        .map_err(|e| invalid(e.to_string()))?;
    let remote = is_url(&dataset.files) || is_granule_list(&dataset.files);
    let base = if remote {
        PathBuf::from(remote_base(&dataset.files))
    } else {
        glob_base(&dataset.files)
    };
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
    let listed: Vec<(String, Option<FileVersion>)> = if remote {
        sources
            .list(&dataset.files, &dataset.storage)
            .map_err(|error| MembershipError::Remote {
                dataset: dataset.name.clone(),
                error: Box::new(error),
            })?
            .into_iter()
            .map(|(url, version)| (url, Some(version)))
            .collect()
    } else {
        let paths = glob::glob(&dataset.files)
            .map_err(|e| invalid(format!("invalid glob {:?}: {e}", dataset.files)))?;
        let mut paths: Vec<PathBuf> = paths
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|p| (p.to_string_lossy().into_owned(), None))
            .collect()
    };
    let mut membership = Membership {
        layout,
        ..Membership::default()
    };
    let base_text = base.to_string_lossy().into_owned();
    for (text, version) in listed {
        let keys = match &pattern {
            None => BTreeMap::new(),
            Some(pattern) => {
                let relative = if remote {
                    relative_key(&text, &base_text)
                } else {
                    Path::new(&text)
                        .strip_prefix(&base)
                        .unwrap_or(Path::new(&text))
                        .to_string_lossy()
                        .into_owned()
                };
                match pattern.match_path(&relative) {
                    Some(keys) => keys,
                    None => {
                        // Reported as the pattern saw it: relative to the glob's base.
                        membership.unmatched.push((
                            relative,
                            format!(
                                "does not match pattern {} (matched against paths under {base_text})",
                                pattern.text()
                            ),
                        ));
                        continue;
                    }
                }
            }
        };
        membership.members.push(Member {
            path: text,
            keys,
            version,
        });
    }
    Ok(membership)
}

/// The URL paths under a remote glob are relative to: its literal directory prefix (empty for a
/// granule list, whose patterns match each object's key).
fn remote_base(files: &str) -> String {
    if is_granule_list(files) {
        return String::new();
    }
    match ObjectUrl::parse(files) {
        Ok(url) if has_wildcards(&url.key) => join(&url.store, glob_prefix(&url.key)),
        Ok(url) => join(
            &url.store,
            url.key.rsplit_once('/').map_or("", |(dir, _)| dir),
        ),
        Err(_) => String::new(),
    }
}

/// A listed URL relative to `base`, or its key when it is not under it.
fn relative_key(url: &str, base: &str) -> String {
    match url.strip_prefix(base) {
        Some(rest) if !base.is_empty() => rest.trim_start_matches('/').to_owned(),
        _ => ObjectUrl::parse(url)
            .map(|u| u.key)
            .unwrap_or_else(|_| url.to_owned()),
    }
}
