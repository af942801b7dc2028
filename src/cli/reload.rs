//! Reloading a running mount: on SIGHUP, and every `[mount] refresh` when set, the daemon re-reads
//! its config, re-indexes incrementally (unchanged files are not read again), builds a new tree
//! and swaps it in (`atlasfs::frontend::fuse::Swapper`): files already open keep reading the
//! snapshot they were opened on. A dataset that no longer builds (no usable file, a join that
//! fails) is left out of the new snapshot and logged while the others keep serving; a reload that
//! fails (an invalid config, an unwritable catalog, no dataset left to serve) leaves the previous
//! snapshot serving and logs why. Reloads run
//! one at a time on their own thread; requests that arrive during one are folded into one more.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use atlasfs::config::{CacheSection, MountConfig};
use atlasfs::frontend::fuse::Swapper;
use atlasfs::sources::catalog::{Catalog, IndexReport};
use atlasfs::sources::router::Sources;
use atlasfs::tree::Tree;

/// What the daemon knows of the snapshot it serves, to report what a reload changed.
pub struct Served {
    config: PathBuf,
    /// The cache as mounted; `[cache]` changes wait for the next mount.
    cache: CacheSection,
    /// The usable source files of the tree served.
    files: BTreeSet<String>,
    /// Lines logged about the last index and tree (each is logged again only after a run
    /// without it).
    logged: HashSet<String>,
    /// Local files and object stores, shared with the key spaces served.
    sources: Arc<Sources>,
    /// `left out <dataset>: <reason>` for each dataset the tree served leaves out.
    left_out: Vec<String>,
}

impl Served {
    /// Nothing served yet from `config`, read through `sources`.
    pub fn new(config: &MountConfig, sources: Arc<Sources>) -> Self {
        Served {
            config: config.path.clone(),
            cache: config.cache.clone(),
            files: BTreeSet::new(),
            logged: HashSet::new(),
            sources,
            left_out: Vec::new(),
        }
    }

    /// `left out <dataset>: <reason>` for each dataset the tree served leaves out.
    pub fn left_out(&self) -> &[String] {
        &self.left_out
    }

    /// Logs what an index could not use and what building the tree noted, leaving out lines
    /// the previous run logged too; returns the number of files skipped.
    pub fn log_build(&mut self, report: &IndexReport, tree: &Tree) -> usize {
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
        self.left_out = tree
            .left_out
            .iter()
            .map(super::index::left_out_line)
            .collect();
        for line in &self.left_out {
            lines.push((tracing::Level::WARN, line.clone()));
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
    pub fn serve_files(&mut self, config: &MountConfig, catalog: &Catalog) -> (usize, usize) {
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

    /// Re-reads the config, re-indexes, builds the tree and swaps it in; returns the config
    /// read, whose `refresh` applies from now on.
    fn reload(&mut self, swapper: &Swapper) -> anyhow::Result<MountConfig> {
        let mut config = MountConfig::load(&self.config)?;
        let cache = &config.cache;
        if (&cache.dir, cache.memory, cache.max_size)
            != (&self.cache.dir, self.cache.memory, self.cache.max_size)
        {
            tracing::warn!(
                "[cache] changed in {}: it takes effect at the next mount",
                self.config.display()
            );
            config.cache = self.cache.clone();
        }
        self.sources.add_config(&config)?;
        let (catalog, report) =
            Catalog::index(&config, &self.sources, &|_| {}).context("indexing failed")?;
        let tree = Tree::build(&config, &catalog)?;
        super::index::ensure_usable(&tree)?;
        let skipped = self.log_build(&report, &tree);
        let arrays = tree.arrays().len();
        let next = swapper
            .current()
            .successor(Arc::new(tree), config.mount.zarr_format);
        let forgotten = swapper.swap(Arc::new(next));
        let (new, removed) = self.serve_files(&config, &catalog);
        tracing::info!(
            "reloaded: {} files ({new} new, {removed} removed, {skipped} skipped), {arrays} arrays, {} dataset(s) left out",
            self.files.len(),
            self.left_out.len()
        );
        tracing::debug!("reload: the kernel forgot {forgotten} entries");
        Ok(config)
    }

    /// Reloads, logging the outcome; returns the refresh interval that applies from now on
    /// (`refresh` unless the config read changed it).
    pub fn reload_logged(
        &mut self,
        swapper: &Swapper,
        refresh: Option<Duration>,
    ) -> Option<Duration> {
        match self.reload(swapper) {
            Ok(config) if config.mount.refresh != refresh => {
                match config.mount.refresh {
                    Some(every) => tracing::info!("refreshing every {every:?}"),
                    None => tracing::info!("periodic refresh off"),
                }
                config.mount.refresh
            }
            Ok(_) => refresh,
            Err(e) => {
                tracing::error!(
                    "reload failed, still serving the previous tree: {}",
                    super::error_text(&e)
                );
                refresh
            }
        }
    }
}

/// The thread that reloads a mount on request and every `refresh`.
pub struct Reloader {
    requests: SyncSender<()>,
    stopped: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Reloader {
    /// Starts a thread that calls `reload` on request and every `refresh` when set; `reload`
    /// gets the interval in force and returns the one to use from then on.
    ///
    /// # Errors
    /// The I/O error when the thread cannot be started.
    pub fn start(
        refresh: Option<Duration>,
        mut reload: impl FnMut(Option<Duration>) -> Option<Duration> + Send + 'static,
    ) -> std::io::Result<Self> {
        // One slot: a request during a reload queues exactly one more run.
        let (requests, received) = mpsc::sync_channel::<()>(1);
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = stopped.clone();
        let thread = std::thread::Builder::new()
            .name("atlasfs-reload".into())
            .spawn(move || {
                let mut refresh = refresh;
                let mut due = refresh.map(|every| Instant::now() + every);
                loop {
                    let woken = match due {
                        Some(due) => {
                            received.recv_timeout(due.saturating_duration_since(Instant::now()))
                        }
                        None => received.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    if woken == Err(RecvTimeoutError::Disconnected) || stop.load(Ordering::Relaxed)
                    {
                        return;
                    }
                    refresh = reload(refresh);
                    due = refresh.map(|every| Instant::now() + every);
                }
            })?;
        Ok(Reloader {
            requests,
            stopped,
            thread,
        })
    }

    /// Asks for a reload; one already waiting absorbs this one.
    pub fn request(&self) {
        match self.requests.try_send(()) {
            Ok(()) => tracing::info!("reload requested"),
            Err(TrySendError::Full(())) => {
                tracing::info!("reload requested: one is already queued")
            }
            Err(TrySendError::Disconnected(())) => {}
        }
    }

    /// Stops reloading, after the reload in progress if any (a queued one is dropped).
    pub fn stop(self) {
        self.stopped.store(true, Ordering::Relaxed);
        drop(self.requests);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc::channel;

    use super::*;

    const LONG: Duration = Duration::from_secs(10);

    #[test]
    fn requests_during_a_reload_queue_exactly_one_more() {
        let (started, starts) = channel();
        let (finish, finishes) = channel::<()>();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let reloader = Reloader::start(None, move |refresh| {
            counted.fetch_add(1, Ordering::SeqCst);
            started.send(()).unwrap();
            finishes.recv_timeout(LONG).unwrap();
            refresh
        })
        .unwrap();
        reloader.request();
        starts.recv_timeout(LONG).unwrap();
        for _ in 0..5 {
            reloader.request();
        }
        finish.send(()).unwrap();
        starts.recv_timeout(LONG).unwrap();
        finish.send(()).unwrap();
        assert!(starts.recv_timeout(Duration::from_millis(300)).is_err());
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        reloader.stop();
    }

    #[test]
    fn refresh_reloads_without_requests_until_turned_off() {
        let (started, starts) = channel();
        let reloader = Reloader::start(Some(Duration::from_millis(20)), move |refresh| {
            started.send(()).unwrap();
            refresh.filter(|_| false)
        })
        .unwrap();
        starts.recv_timeout(LONG).unwrap();
        assert!(starts.recv_timeout(Duration::from_millis(300)).is_err());
        reloader.request();
        starts.recv_timeout(LONG).unwrap();
        reloader.stop();
    }
}
