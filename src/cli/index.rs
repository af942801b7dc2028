//! `atlasfs index CONFIG`: incremental scan with a progress bar, then a report of files that
//! could not be used.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use atlasfs::config::MountConfig;
use atlasfs::sources::catalog::{Catalog, IndexEvent, IndexReport};
use atlasfs::sources::router::Sources;
use atlasfs::tree::{Tree, TreeError};
use indicatif::{ProgressBar, ProgressStyle};

/// Runs the index and prints its report.
pub fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = MountConfig::load(config_path)?;
    let started = std::time::Instant::now();
    let sources = Sources::for_config(&config)?;
    let (catalog, report) = index_with_progress(&config, &sources)?;
    print_report(&report);
    // Building the tree checks the config against the files, fixes and joins, and finds
    // missing cells to report.
    let tree = Tree::build(&config, &catalog)?;
    report_left_out(&tree)?;
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

/// The line reporting a dataset left out of the tree, with its reason.
pub fn left_out_line(error: &TreeError) -> String {
    format!("left out {}: {}", error.dataset, error.message)
}

/// Prints the datasets the tree left out as warnings on stderr.
///
/// # Errors
/// As [`ensure_usable`].
pub fn report_left_out(tree: &Tree) -> anyhow::Result<()> {
    for error in &tree.left_out {
        eprintln!("atlasfs: warning: {}", left_out_line(error));
    }
    ensure_usable(tree)
}

/// Fails when every dataset was left out, so there is nothing to serve.
///
/// # Errors
/// A message naming each dataset left out and why.
pub fn ensure_usable(tree: &Tree) -> anyhow::Result<()> {
    if tree.nothing_usable() {
        let each: Vec<String> = tree.left_out.iter().map(left_out_line).collect();
        bail!("no dataset can be served: {}", each.join("; "));
    }
    Ok(())
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
