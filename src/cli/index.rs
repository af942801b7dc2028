//! `atlasfs index CONFIG`: incremental scan with a progress bar, then a report of files that
//! could not be used.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use atlasfs::config::MountConfig;
use atlasfs::sources::catalog::{Catalog, IndexEvent, IndexReport};
use atlasfs::sources::router::Sources;
use indicatif::{ProgressBar, ProgressStyle};

/// Runs the index and prints its report.
pub fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = MountConfig::load(config_path)?;
    let started = std::time::Instant::now();
    let sources = Sources::for_config(&config)?;
    let (catalog, report) = index_with_progress(&config, &sources)?;
    print_report(&report);
    // Building the tree checks fixes and joins, and finds missing cells to report.
    let tree = atlasfs::tree::Tree::build(&config, &catalog)?;
    for note in tree.notes.iter().filter(|n| n.starts_with("missing ")) {
        println!("{note}");
    }
    let total = report.scanned + report.unchanged;
    let files = config.datasets.iter().any(|d| d.zarr.is_none());
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
    Ok(ExitCode::SUCCESS)
}

/// Indexes `config`, drawing a progress bar on a terminal.
pub fn index_with_progress(
    config: &MountConfig,
    sources: &Sources,
) -> anyhow::Result<(Catalog, IndexReport)> {
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
    let result = Catalog::index(config, sources, &progress).context("indexing failed");
    bar.finish_and_clear();
    result
}

/// Prints files that could not be used and variables left out.
pub fn print_report(report: &IndexReport) {
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
