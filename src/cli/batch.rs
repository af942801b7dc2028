//! What the batch verbs (`warm`, `export`) share: their thread pool, progress bar and the
//! failures they count and list at the end.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use atlasfs::config::MountConfig;
use atlasfs::service::{Service, ServiceOptions, Startup};
use indicatif::{ProgressBar, ProgressStyle};
use parking_lot::Mutex;

/// Failures listed at the end; the rest are counted.
const SHOW_FAILURES: usize = 10;

/// Indexes with a progress bar and starts the service of a batch run (the disk cache shared
/// with other batch processes), reporting what was indexed and what is left out.
pub(super) fn start_service(config: MountConfig) -> anyhow::Result<Service> {
    let indexed =
        super::index::index_with_progress(Startup::open(config, ServiceOptions::warm())?)?;
    super::index::print_report(indexed.report());
    let service = indexed.build()?;
    super::index::report_left_out(&service)?;
    Ok(service)
}

/// A pool of `jobs` threads [default: cores].
pub(super) fn pool(jobs: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("starting the worker threads")
}

/// A progress bar on stderr over `todo` units (`chunks`, `keys`), led by `verb` (`warming`,
/// `exporting`).
pub(super) fn progress(verb: &str, todo: u64, units: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(todo), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{verb} {{bar:40}} {{pos}}/{{len}} {units} {{msg}} eta {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Chunks that failed: all counted, the first few kept to be listed.
#[derive(Default)]
pub(super) struct Failures {
    count: AtomicU64,
    shown: Mutex<Vec<String>>,
}

impl Failures {
    /// Counts, logs and (among the first few) keeps `error`.
    pub(super) fn record(&self, error: &dyn std::fmt::Display) {
        self.count.fetch_add(1, Ordering::Relaxed);
        tracing::error!("{error}");
        let mut shown = self.shown.lock();
        if shown.len() < SHOW_FAILURES {
            shown.push(error.to_string());
        }
    }

    /// How many failed.
    pub(super) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Prints the failures kept, one a line.
    pub(super) fn print(&self) {
        for failure in self.shown.lock().iter() {
            println!("failed: {failure}");
        }
    }
}

/// Runs `work(i)` for every `i < todo` on `pool`, advancing `bar`, and clears the bar; once
/// some `work` returns `false` (stop: e.g. the store refuses writes), the rest are skipped.
pub(super) fn for_each(
    pool: &rayon::ThreadPool,
    bar: &ProgressBar,
    todo: u64,
    work: impl Fn(u64) -> bool + Sync,
) {
    use rayon::prelude::*;
    let stop = std::sync::atomic::AtomicBool::new(false);
    pool.install(|| {
        (0..todo).into_par_iter().for_each(|i| {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if !work(i) {
                stop.store(true, Ordering::Relaxed);
            }
            bar.inc(1);
        });
    });
    bar.finish_and_clear();
}
