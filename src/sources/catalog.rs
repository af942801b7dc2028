//! The catalog: every source file a config names, indexed once and persisted under the cache
//! directory (compact binary, see the `persist` module). Re-indexing is incremental: a file whose
//! size and mtime are unchanged is not read again. Files that cannot be used are reported, never fatal.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bytes::local_version;
use super::membership::{self, Member, Membership, MembershipError};
use super::model::{FileMeta, FileVersion};
use super::persist;
use super::scan::scan_file;
use crate::config::MountConfig;

/// Errors that stop indexing as a whole (single bad files never do).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A dataset's members cannot be determined (bad glob, pattern or catalog).
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// The catalog could not be written.
    #[error("cannot write catalog {path}: {source}")]
    Write {
        /// The catalog file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What the catalog knows of one path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Entry {
    /// Indexed, with warnings about variables left out.
    Indexed {
        /// The file's model.
        meta: Arc<FileMeta>,
        /// Variables left out and why.
        warnings: Vec<String>,
    },
    /// Could not be used.
    Skipped {
        /// Version when tried.
        version: FileVersion,
        /// Why.
        reason: String,
    },
}

impl Entry {
    fn version(&self) -> FileVersion {
        match self {
            Entry::Indexed { meta, .. } => meta.version,
            Entry::Skipped { version, .. } => *version,
        }
    }
}

/// Progress events while indexing.
#[derive(Debug, Clone, Copy)]
pub enum IndexEvent {
    /// This many files will be looked at.
    Started {
        /// Number of files.
        total: usize,
    },
    /// One more file was looked at.
    FileDone,
}

/// What an index run did.
#[derive(Debug, Default)]
pub struct IndexReport {
    /// Files read and indexed in this run.
    pub scanned: usize,
    /// Files reused from the persisted catalog.
    pub unchanged: usize,
    /// Files that could not be used: path and reason.
    pub skipped: Vec<(String, String)>,
    /// Variables left out: path and message.
    pub warnings: Vec<(String, String)>,
    /// Entries dropped because their file is gone.
    pub removed: usize,
    /// Files a glob matched but the dataset's pattern did not: path and reason.
    pub unmatched: Vec<(String, String)>,
}

/// Indexed source files and, per dataset, its members.
#[derive(Debug, Default)]
pub struct Catalog {
    entries: HashMap<String, Entry>,
    datasets: BTreeMap<String, Membership>,
}

impl Catalog {
    /// Indexes every dataset of `config` incrementally and persists the result.
    ///
    /// # Errors
    /// [`CatalogError`] for an invalid glob or an unwritable catalog; unusable files are only
    /// reported.
    pub fn index(
        config: &MountConfig,
        progress: &(dyn Fn(IndexEvent) + Sync),
    ) -> Result<(Catalog, IndexReport), CatalogError> {
        let catalog_path = config.catalog_file();
        let loaded = persist::load(&catalog_path);
        let persisted = loaded.is_some();
        let mut entries = loaded.unwrap_or_default();
        let mut report = IndexReport::default();
        let mut datasets = BTreeMap::new();
        let mut wanted: Vec<(String, std::fs::Metadata)> = Vec::new();
        for dataset in &config.datasets {
            let mut found = membership::resolve(dataset)?;
            found
                .members
                .retain(|member| match std::fs::metadata(&member.path) {
                    Ok(meta) if meta.is_file() => {
                        wanted.push((member.path.clone(), meta));
                        true
                    }
                    _ => {
                        report.skipped.push((
                            member.path.clone(),
                            "listed but not a readable file".to_owned(),
                        ));
                        false
                    }
                });
            report.unmatched.extend(found.unmatched.iter().cloned());
            datasets.insert(dataset.name.clone(), found);
        }
        wanted.sort_by(|a, b| a.0.cmp(&b.0));
        wanted.dedup_by(|a, b| a.0 == b.0);

        let todo: Vec<(String, FileVersion)> = wanted
            .iter()
            .map(|(name, meta)| (name.clone(), local_version(meta)))
            .filter(|(name, version)| entries.get(name).map(Entry::version) != Some(*version))
            .collect();
        report.unchanged = wanted.len() - todo.len();
        progress(IndexEvent::Started { total: todo.len() });
        let scanned: Vec<(String, Entry)> = todo
            .into_par_iter()
            .map(|(name, version)| {
                let mut warnings = Vec::new();
                let entry = match scan_file(Path::new(&name), version, &mut warnings) {
                    Ok(meta) => Entry::Indexed {
                        meta: Arc::new(meta),
                        warnings,
                    },
                    Err(e) => Entry::Skipped {
                        version,
                        reason: e.reason,
                    },
                };
                progress(IndexEvent::FileDone);
                (name, entry)
            })
            .collect();
        report.scanned = scanned.len();
        entries.extend(scanned);
        let before = entries.len();
        entries.retain(|name, _| Path::new(name).exists());
        report.removed = before - entries.len();

        for (name, _) in &wanted {
            match entries.get(name) {
                Some(Entry::Skipped { reason, .. }) => {
                    report.skipped.push((name.clone(), reason.clone()))
                }
                Some(Entry::Indexed { warnings, .. }) => report
                    .warnings
                    .extend(warnings.iter().map(|w| (name.clone(), w.clone()))),
                None => {}
            }
        }
        // An unchanged catalog is not rewritten (so a read-only or full cache dir still mounts).
        if !persisted || report.scanned > 0 || report.removed > 0 {
            std::fs::create_dir_all(&config.cache.dir).map_err(|source| CatalogError::Write {
                path: catalog_path.clone(),
                source,
            })?;
            persist::save(&catalog_path, &entries).map_err(|source| CatalogError::Write {
                path: catalog_path.clone(),
                source,
            })?;
        }
        Ok((Catalog { entries, datasets }, report))
    }

    /// The indexed files of a dataset with their keys, in path order; skipped files are left
    /// out. Also the dataset's layout.
    pub fn dataset(&self, dataset: &str) -> (Vec<(Arc<FileMeta>, &Member)>, Option<&Membership>) {
        let Some(membership) = self.datasets.get(dataset) else {
            return (Vec::new(), None);
        };
        let files = membership
            .members
            .iter()
            .filter_map(|member| match self.entries.get(&member.path) {
                Some(Entry::Indexed { meta, .. }) => Some((meta.clone(), member)),
                _ => None,
            })
            .collect();
        (files, Some(membership))
    }
}
