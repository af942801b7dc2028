//! `atlasfs index CONFIG`: incremental scan with a progress bar, then a report of files that
//! could not be used.

use std::path::Path;
use std::process::ExitCode;

use atlasfs::config::MountConfig;
use atlasfs::service::{Indexed, Service, ServiceOptions, Startup};
use atlasfs::sources::catalog::{IndexEvent, IndexReport};
use indicatif::{ProgressBar, ProgressStyle};

/// Runs the index and prints its report.
pub(super) fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = MountConfig::load(config_path)?;
    let started = std::time::Instant::now();
    let indexed = index_with_progress(Startup::open(config, ServiceOptions::inspect())?)?;
    print_report(indexed.report());
    // Building the tree checks the config against the files, fixes and joins, and finds
    // missing cells to report.
    let service = indexed.build()?;
    report_left_out(&service)?;
    for note in service
        .tree()
        .notes
        .iter()
        .filter(|n| n.starts_with("missing "))
    {
        println!("{note}");
    }
    let snapshot = service.snapshot();
    let report = snapshot.report();
    let total = report.scanned + report.unchanged;
    let files = snapshot.config().datasets.iter().any(|d| d.zarr.is_none());
    if files {
        let skipped = report.skipped.len().min(total);
        println!(
            "{total} files: {} usable, {skipped} skipped ({} read now, {} unchanged since the last index) in {:.2} s",
            total - skipped,
            report.scanned,
            report.unchanged,
            started.elapsed().as_secs_f64()
        );
    } else {
        println!("indexed in {:.2} s", started.elapsed().as_secs_f64());
    }
    // The process ends next and indexing keeps no disk cache (nothing to flush): leave the
    // tree's memory to the OS instead of freeing its allocations one by one.
    std::mem::forget(service);
    Ok(ExitCode::SUCCESS)
}

/// Prints the datasets the service's tree left out as warnings on stderr.
///
/// # Errors
/// When every dataset was left out, naming each and why.
pub(super) fn report_left_out(service: &Service) -> anyhow::Result<()> {
    for line in service.left_out() {
        eprintln!("atlasfs: warning: {line}");
    }
    Ok(service.ensure_usable()?)
}

/// Indexes the sources of `startup`, drawing a progress bar on a terminal.
pub(super) fn index_with_progress(startup: Startup) -> anyhow::Result<Indexed> {
    let bar = ProgressBar::hidden();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("indexing {bar:40} {pos}/{len} files {per_sec} eta {eta}")
            .expect("valid template"),
    );
    let progress = |event: IndexEvent| match event {
        IndexEvent::Started { total } => bar.set_length(total as u64),
        IndexEvent::FileDone => bar.inc(1),
    };
    let result = startup.index(&progress);
    bar.finish_and_clear();
    Ok(result?)
}

/// Prints files that could not be used and variables left out.
pub(super) fn print_report(report: &IndexReport) {
    for (path, reason) in &report.skipped {
        println!("skipped {path}: {reason}");
    }
    for (path, reason) in &report.unmatched {
        println!("unmatched {path}: {reason}");
    }
    for (path, warning) in &report.warnings {
        println!("warning {path}: {warning}");
    }
    for (location, summary) in &report.zarr_stores {
        println!("{location}: {summary}");
    }
    let remote = report.remote;
    if remote.granules > 0 {
        println!(
            "remote: {} granules indexed, {} requests, {} bytes ({:.2} requests and {} bytes per granule)",
            remote.granules,
            remote.requests,
            remote.bytes,
            remote.requests as f64 / remote.granules as f64,
            remote.bytes / remote.granules
        );
    }
}
