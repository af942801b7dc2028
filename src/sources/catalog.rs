//! The catalog: every source file a config names, indexed once and persisted under the cache
//! directory (compact binary, see [`super::persist`]). Re-indexing is incremental: a file whose
//! size and mtime are unchanged is not read again. Files that cannot be used are reported, never fatal.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bytes::local_version;
use super::model::{FileMeta, FileVersion};
use super::persist;
use super::scan::scan_file;
use crate::config::MountConfig;

/// Errors that stop indexing as a whole (single bad files never do).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A dataset's `files` is not a valid glob.
    #[error("dataset {dataset}: invalid glob {pattern:?}: {message}")]
    BadGlob {
        /// The dataset.
        dataset: String,
        /// The glob.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
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
}

/// Indexed source files and, per dataset, the files its glob matched.
#[derive(Debug, Default)]
pub struct Catalog {
    entries: HashMap<String, Entry>,
    datasets: BTreeMap<String, Vec<String>>,
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
            let paths = expand_glob(&dataset.name, &dataset.files)?;
            let mut names = Vec::new();
            for path in paths {
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                let name = path.to_string_lossy().into_owned();
                names.push(name.clone());
                wanted.push((name, meta));
            }
            datasets.insert(dataset.name.clone(), names);
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

    /// The indexed files of a dataset, in path order; skipped files are left out.
    pub fn dataset_files(&self, dataset: &str) -> Vec<Arc<FileMeta>> {
        self.datasets
            .get(dataset)
            .into_iter()
            .flatten()
            .filter_map(|name| match self.entries.get(name) {
                Some(Entry::Indexed { meta, .. }) => Some(meta.clone()),
                _ => None,
            })
            .collect()
    }
}

fn expand_glob(dataset: &str, pattern: &str) -> Result<Vec<PathBuf>, CatalogError> {
    let paths = glob::glob(pattern).map_err(|e| CatalogError::BadGlob {
        dataset: dataset.to_owned(),
        pattern: pattern.to_owned(),
        message: e.to_string(),
    })?;
    let mut out: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
    out.sort();
    Ok(out)
}
