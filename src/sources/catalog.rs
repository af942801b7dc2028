//! The catalog: every source file a config names, indexed once and persisted under the cache
//! directory (compact binary, see the `persist` module), and every Zarr store a dataset
//! re-exposes (see [`super::zarr_store`]). Re-indexing is incremental: a file whose size and
//! mtime are unchanged is not read again. Files that cannot be used are reported, never fatal.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bytes::local_version;
use super::membership::{self, Member, Membership, MembershipError};
use super::model::{FileMeta, FileVersion};
use super::persist;
use super::remote::index_storage::RangedObject;
use super::router::Sources;
use super::scan::{scan, scan_file, ScanSource};
use super::zarr_store::{self, ZarrStoreMeta};
use crate::config::{is_url, MountConfig};

/// A source path with its version.
type Versioned = (String, FileVersion);

/// Remote granules are indexed this many at a time (their reads wait on the network).
const REMOTE_SCANS_IN_FLIGHT: usize = 16;

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
    /// What reading remote granules cost.
    pub remote: RemoteTraffic,
    /// Zarr stores indexed: location and what was found.
    pub zarr_stores: Vec<(String, String)>,
}

/// What an index spent on object storage.
#[derive(Debug, Default, Clone, Copy)]
pub struct RemoteTraffic {
    /// Granules read.
    pub granules: u64,
    /// Requests sent: listings, lookups and ranged GETs, retries included.
    pub requests: u64,
    /// Body bytes received.
    pub bytes: u64,
}

/// Indexed source files and, per dataset, its members.
#[derive(Debug, Default)]
pub struct Catalog {
    entries: HashMap<String, Entry>,
    datasets: BTreeMap<String, Membership>,
    /// Datasets whose members could not be found (a failed listing, an unreadable intake-esm
    /// catalog), with the reason.
    unavailable: BTreeMap<String, String>,
    zarr: BTreeMap<String, Result<Arc<ZarrStoreMeta>, String>>,
}

impl Catalog {
    /// Indexes every dataset of `config` incrementally and persists the result, reading
    /// object stores through `sources`. A dataset whose members cannot be found (a failed
    /// listing, an unreadable intake-esm catalog) is recorded as unavailable (see
    /// [`Catalog::unavailable`]); unusable files are only reported.
    ///
    /// # Errors
    /// [`CatalogError`] for an invalid glob or pattern, or an unwritable catalog.
    pub fn index(
        config: &MountConfig,
        sources: &Sources,
        progress: &(dyn Fn(IndexEvent) + Sync),
    ) -> Result<(Catalog, IndexReport), CatalogError> {
        Self::index_to(config, sources, progress, true)
    }

    /// Indexes like [`Catalog::index`], reusing the persisted catalog but writing nothing.
    ///
    /// # Errors
    /// [`CatalogError`] for an invalid glob or pattern.
    pub fn index_in_memory(
        config: &MountConfig,
        sources: &Sources,
        progress: &(dyn Fn(IndexEvent) + Sync),
    ) -> Result<(Catalog, IndexReport), CatalogError> {
        Self::index_to(config, sources, progress, false)
    }

    fn index_to(
        config: &MountConfig,
        sources: &Sources,
        progress: &(dyn Fn(IndexEvent) + Sync),
        persist: bool,
    ) -> Result<(Catalog, IndexReport), CatalogError> {
        let catalog_path = config.catalog_file();
        let traffic_before = sources.traffic();
        let loaded = persist::load(&catalog_path);
        let persisted = loaded.is_some();
        let (mut entries, stores) = loaded.unwrap_or_default();
        let mut report = IndexReport::default();
        let mut datasets = BTreeMap::new();
        let mut unavailable = BTreeMap::new();
        let mut wanted: Vec<(String, FileVersion)> = Vec::new();
        for dataset in config.datasets.iter().filter(|d| d.zarr.is_none()) {
            let mut found = match membership::resolve(dataset, sources) {
                Ok(found) => found,
                Err(e @ MembershipError::Invalid { .. }) => return Err(e.into()),
                Err(e) => {
                    unavailable.insert(dataset.name.clone(), e.reason());
                    continue;
                }
            };
            let mut unreadable = Vec::new();
            let looked_up = sources.versions(
                found
                    .members
                    .iter()
                    .filter(|m| m.version.is_none() && is_url(&m.path))
                    .map(|m| m.path.as_str()),
                &dataset.storage,
            );
            found.members.retain_mut(|member| {
                let version = match member.version {
                    Some(version) => Ok(version),
                    None if is_url(&member.path) => looked_up[&member.path].clone(),
                    None => match std::fs::metadata(&member.path) {
                        Ok(meta) if meta.is_file() => Ok(local_version(&meta)),
                        _ => Err("listed but not a readable file".to_owned()),
                    },
                };
                match version {
                    Ok(version) => {
                        member.version = Some(version);
                        wanted.push((member.path.clone(), version));
                        true
                    }
                    Err(reason) => {
                        report.skipped.push((member.path.clone(), reason.clone()));
                        unreadable.push((member.path.clone(), reason));
                        false
                    }
                }
            });
            found.unreadable = unreadable;
            report.unmatched.extend(found.unmatched.iter().cloned());
            datasets.insert(dataset.name.clone(), found);
        }
        wanted.sort_by(|a, b| a.0.cmp(&b.0));
        wanted.dedup_by(|a, b| a.0 == b.0);

        let (remote, local): (Vec<Versioned>, Vec<Versioned>) = wanted
            .iter()
            .filter(|(name, version)| entries.get(name).map(Entry::version) != Some(*version))
            .cloned()
            .partition(|(name, _)| is_url(name));
        report.unchanged = wanted.len() - local.len() - remote.len();
        progress(IndexEvent::Started {
            total: local.len() + remote.len(),
        });
        let mut scanned: Vec<(String, Entry)> = local
            .into_par_iter()
            .map(|(name, version)| {
                let mut warnings = Vec::new();
                let result = scan_file(Path::new(&name), version, &mut warnings);
                progress(IndexEvent::FileDone);
                (name, entry(result, version, warnings))
            })
            .collect();
        let granules = scan_remote(remote, sources, progress);
        report.remote = RemoteTraffic {
            granules: granules.len() as u64,
            requests: sources.traffic().0 - traffic_before.0,
            bytes: sources.traffic().1 - traffic_before.1,
        };
        scanned.extend(granules);
        report.scanned = scanned.len();
        entries.extend(scanned);
        let before = entries.len();
        let listed: std::collections::HashSet<&str> =
            wanted.iter().map(|(name, _)| name.as_str()).collect();
        entries.retain(|name, _| {
            if is_url(name) {
                listed.contains(name.as_str())
            } else {
                Path::new(name).exists()
            }
        });
        report.removed = before - entries.len();

        let zarr = zarr_store::index_all(config, sources, &stores);
        for (dataset, result) in &zarr.datasets {
            match (result, config.datasets.iter().find(|d| &d.name == dataset)) {
                (Ok(store), _) => report.warnings.extend(
                    store
                        .warnings()
                        .map(|w| (store.location.clone(), w.clone())),
                ),
                (Err(reason), Some(d)) => report
                    .skipped
                    .push((d.zarr.clone().unwrap_or_default(), reason.clone())),
                (Err(_), None) => {}
            }
        }
        report.zarr_stores = zarr.summaries;

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
        if persist && (!persisted || report.scanned > 0 || report.removed > 0 || zarr.changed) {
            std::fs::create_dir_all(&config.cache.dir).map_err(|source| CatalogError::Write {
                path: catalog_path.clone(),
                source,
            })?;
            persist::save(&catalog_path, &entries, &zarr.persisted).map_err(|source| {
                CatalogError::Write {
                    path: catalog_path.clone(),
                    source,
                }
            })?;
        }
        let catalog = Catalog {
            entries,
            datasets,
            unavailable,
            zarr: zarr.datasets,
        };
        Ok((catalog, report))
    }

    /// The indexed Zarr store of a dataset with `zarr` set, or why it could not be indexed.
    pub fn zarr_store(&self, dataset: &str) -> Result<&Arc<ZarrStoreMeta>, String> {
        match self.zarr.get(dataset) {
            Some(Ok(store)) => Ok(store),
            Some(Err(reason)) => Err(reason.clone()),
            None => Err("its Zarr store was not indexed".to_owned()),
        }
    }

    /// Why the members of a dataset could not be found (a failed listing, an unreadable
    /// intake-esm catalog), if they could not.
    pub fn unavailable(&self, dataset: &str) -> Option<&str> {
        self.unavailable.get(dataset).map(String::as_str)
    }

    /// The files of a dataset that could not be used, with the reason (unreadable, or the scan
    /// error), in path order.
    pub fn unusable(&self, dataset: &str) -> Vec<(&str, &str)> {
        let Some(membership) = self.datasets.get(dataset) else {
            return Vec::new();
        };
        let mut unusable: Vec<(&str, &str)> = membership
            .members
            .iter()
            .filter_map(|member| match self.entries.get(&member.path) {
                Some(Entry::Skipped { reason, .. }) => {
                    Some((member.path.as_str(), reason.as_str()))
                }
                _ => None,
            })
            .chain(
                membership
                    .unreadable
                    .iter()
                    .map(|(path, reason)| (path.as_str(), reason.as_str())),
            )
            .collect();
        unusable.sort();
        unusable
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

/// The catalog entry of one scan.
fn entry(
    result: Result<FileMeta, super::scan::ScanError>,
    version: FileVersion,
    warnings: Vec<String>,
) -> Entry {
    match result {
        Ok(meta) => Entry::Indexed {
            meta: Arc::new(meta),
            warnings,
        },
        Err(e) => Entry::Skipped {
            version,
            reason: e.reason,
        },
    }
}

/// Indexes remote granules through ranged reads, [`REMOTE_SCANS_IN_FLIGHT`] at a time.
fn scan_remote(
    todo: Vec<(String, FileVersion)>,
    sources: &Sources,
    progress: &(dyn Fn(IndexEvent) + Sync),
) -> Vec<(String, Entry)> {
    if todo.is_empty() {
        return Vec::new();
    }
    let scan_one = |(name, version): (String, FileVersion)| {
        let mut warnings = Vec::new();
        let result = sources
            .object(&name)
            .map_err(|e| super::scan::ScanError {
                reason: e.to_string(),
            })
            .and_then(|(store, key)| {
                let storage = Arc::new(RangedObject::new(store, &key, version));
                let source = ScanSource::Storage {
                    name: &name,
                    storage,
                };
                scan(source, version, &mut warnings)
            });
        progress(IndexEvent::FileDone);
        (name.clone(), entry(result, version, warnings))
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(REMOTE_SCANS_IN_FLIGHT)
        .thread_name(|i| format!("atlasfs-index-{i}"))
        .build();
    match pool {
        Ok(pool) => pool.install(|| todo.into_par_iter().map(scan_one).collect()),
        Err(_) => todo.into_iter().map(scan_one).collect(),
    }
}
