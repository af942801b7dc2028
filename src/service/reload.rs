//! Reloading a running service: the config is read again, the sources re-indexed incrementally
//! (unchanged files are not read again), a new tree built and its key space swapped in, in the
//! service and in every attached front end; readers in flight keep the snapshot they started
//! on. A dataset that no longer builds (no usable file, a join that fails) is left out of the
//! new snapshot and logged while the others keep serving; a reload that fails (an invalid
//! config, an unwritable catalog, no dataset left to serve) leaves the previous snapshot serving.
//! `[cache]` changes wait for the next start. Reloads run one at a time.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::report::{causes, ensure_usable, left_out_line};
use super::startup::index;
use super::{Service, ServiceError, Snapshot};
use crate::config::{CacheSection, MountConfig};
use crate::sources::catalog::{Catalog, IndexReport};
use crate::tree::Tree;

/// What the service knows of the snapshot it serves, to report what a reload changed.
pub(crate) struct Served {
    /// The cache as started; `[cache]` changes wait for the next start.
    cache: CacheSection,
    /// The usable source files of the tree served.
    files: BTreeSet<String>,
    /// Lines logged about the last index and tree (each is logged again only after a run
    /// without it).
    logged: HashSet<String>,
}

impl Served {
    /// Nothing served yet from `config`.
    pub(crate) fn new(config: &MountConfig) -> Self {
        Served {
            cache: config.cache.clone(),
            files: BTreeSet::new(),
            logged: HashSet::new(),
        }
    }

    /// The number of usable source files served.
    pub(crate) fn files(&self) -> usize {
        self.files.len()
    }

    /// Logs what an index could not use and what building the tree noted, leaving out lines
    /// the previous run logged too; returns the number of files skipped.
    pub(crate) fn log_build(&mut self, report: &IndexReport, tree: &Tree) -> usize {
        let mut lines = Vec::new();
        for (path, reason) in &report.skipped {
            lines.push((tracing::Level::WARN, format!("skipped {path}: {reason}")));
        }
        for (path, warning) in &report.warnings {
            lines.push((tracing::Level::WARN, format!("{path}: {warning}")));
        }
        for (path, reason) in &report.unmatched {
            lines.push((tracing::Level::WARN, format!("unmatched {path}: {reason}")));
        }
        for note in &tree.notes {
            lines.push((tracing::Level::INFO, note.clone()));
        }
        for error in &tree.left_out {
            lines.push((tracing::Level::WARN, left_out_line(error)));
        }
        for (level, line) in &lines {
            if self.logged.contains(line) {
                continue;
            }
            if *level == tracing::Level::WARN {
                tracing::warn!("{line}");
            } else {
                tracing::info!("{line}");
            }
        }
        self.logged = lines.into_iter().map(|(_, line)| line).collect();
        report.skipped.len()
    }

    /// Records the files of the tree now served; returns how many are new and how many left.
    pub(crate) fn serve_files(
        &mut self,
        config: &MountConfig,
        catalog: &Catalog,
    ) -> (usize, usize) {
        let files: BTreeSet<String> = config
            .datasets
            .iter()
            .flat_map(|dataset| {
                let (files, _) = catalog.dataset(&dataset.name);
                files
                    .into_iter()
                    .map(|(_, member)| member.path.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        let new = files.difference(&self.files).count();
        let removed = self.files.difference(&files).count();
        self.files = files;
        (new, removed)
    }
}

impl Service {
    /// Re-reads the config, re-indexes, builds the tree and serves it from now on, here and
    /// in every attached front end; returns the new snapshot, whose config's `refresh` applies
    /// from now on. On an error the previous snapshot keeps serving.
    ///
    /// Blocking (it indexes and may read object stores): call it from a thread of its own or
    /// through `tokio::task::spawn_blocking`, never from an async runtime's thread.
    ///
    /// # Errors
    /// [`ServiceError::Config`] for a config that cannot be read or is invalid,
    /// [`ServiceError::Sources`], [`ServiceError::Index`], [`ServiceError::Tree`] as at start,
    /// and [`ServiceError::NothingToServe`] when every dataset would be left out.
    pub fn reload(&self) -> Result<Arc<Snapshot>, ServiceError> {
        let mut served = self.reloads.lock();
        let previous = self.snapshot();
        let path = &previous.config.path;
        let mut config = MountConfig::load(path)?;
        let cache = &config.cache;
        if (&cache.dir, cache.memory, cache.max_size)
            != (
                &served.cache.dir,
                served.cache.memory,
                served.cache.max_size,
            )
        {
            tracing::warn!(
                "[cache] changed in {}: it takes effect at the next mount",
                path.display()
            );
            config.cache = served.cache.clone();
        }
        self.sources.add_config(&config)?;
        let (catalog, report) = index(&config, &self.sources, self.options.catalog, &|_| {})?;
        let scans = super::startup::range_scans(&config, &self.cache, &self.sources);
        let tree = Tree::build_with(&config, &catalog, &scans)?;
        ensure_usable(&tree)?;
        let skipped = served.log_build(&report, &tree);
        let (arrays, left_out) = (tree.arrays().len(), tree.left_out.len());
        let keys = Arc::new(
            previous
                .keys
                .successor(Arc::new(tree), config.mount.zarr_format),
        );
        let (new, removed) = served.serve_files(&config, &catalog);
        super::startup::free_in_background(catalog);
        let next = Arc::new(Snapshot {
            config,
            report,
            keys: keys.clone(),
        });
        self.current.store(next.clone());
        let forgotten: usize = self
            .front_ends
            .read()
            .iter()
            .map(|front| front.swap(keys.clone()))
            .sum();
        tracing::info!(
            "reloaded: {} files ({new} new, {removed} removed, {skipped} skipped), {arrays} arrays, {left_out} dataset(s) left out",
            served.files(),
        );
        tracing::debug!("reload: the kernel forgot {forgotten} entries");
        Ok(next)
    }

    /// Reloads, logging the outcome; returns the refresh interval that applies from now on
    /// (`refresh` unless the config read changed it). Blocking, as [`Service::reload`].
    pub fn reload_logged(&self, refresh: Option<Duration>) -> Option<Duration> {
        match self.reload() {
            Ok(next) if next.config.mount.refresh != refresh => {
                match next.config.mount.refresh {
                    Some(every) => tracing::info!("refreshing every {every:?}"),
                    None => tracing::info!("periodic refresh off"),
                }
                next.config.mount.refresh
            }
            Ok(_) => refresh,
            Err(e) => {
                tracing::error!(
                    "reload failed, still serving the previous tree: {}",
                    causes(&e)
                );
                refresh
            }
        }
    }
}
