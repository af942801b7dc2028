//! Keeps `<cache dir>/stats.json` current while a mount runs (see `atlasfs::cache::stats`):
//! rewritten at most once a second, only when a counter changed, and once more at unmount.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use atlasfs::cache::stats::{self, StatsReport};
use atlasfs::keyspace::KeySpace;

const EVERY: Duration = Duration::from_secs(1);

/// The daemon's stats file writer.
pub(super) struct StatsWriter {
    dir: PathBuf,
    report: StatsReport,
    written: Option<Instant>,
    failed: bool,
}

impl StatsWriter {
    /// A writer for the mount of `mountpoint` with its cache in `dir`.
    pub(super) fn new(dir: &Path, mountpoint: &Path) -> Self {
        let shown = std::path::absolute(mountpoint)
            .unwrap_or_else(|_| mountpoint.to_owned())
            .to_string_lossy()
            .into_owned();
        StatsWriter::serving_at(dir, shown)
    }

    /// A writer for a front end (a mount or `serve`) shown as `at` (a mountpoint, a URL).
    pub(super) fn serving_at(dir: &Path, at: String) -> Self {
        let now = stats::now_unix();
        StatsWriter {
            dir: dir.to_owned(),
            report: StatsReport {
                pid: std::process::id(),
                mountpoint: at,
                started_unix: now,
                updated_unix: now,
                finished: false,
                cache: Default::default(),
                readahead: Default::default(),
            },
            written: None,
            failed: false,
        }
    }

    /// Rewrites the file if a second has passed and a counter changed (or nothing was written
    /// yet).
    pub(super) fn tick(&mut self, keys: &KeySpace) {
        if self.written.is_some_and(|at| at.elapsed() < EVERY) {
            return;
        }
        let (cache, readahead) = (keys.cache_stats(), keys.readahead_stats());
        if self.written.is_some()
            && cache == self.report.cache
            && readahead == self.report.readahead
        {
            return;
        }
        self.report.cache = cache;
        self.report.readahead = readahead;
        self.write();
    }

    /// Writes the final counters, marked finished.
    pub(super) fn finish(&mut self, keys: &KeySpace) {
        self.report.cache = keys.cache_stats();
        self.report.readahead = keys.readahead_stats();
        self.report.finished = true;
        self.write();
    }

    fn write(&mut self) {
        self.report.updated_unix = stats::now_unix();
        self.written = Some(Instant::now());
        match stats::write(&self.dir, &self.report) {
            Ok(()) => self.failed = false,
            Err(e) if !self.failed => {
                self.failed = true;
                tracing::warn!(
                    "cannot write {}: {e}; `atlasfs cache stats` will not show this mount's counters",
                    stats::path(&self.dir).display()
                );
            }
            Err(_) => {}
        }
    }
}
