//! `atlasfs check CONFIG`: validates the config and the environment — FUSE present, cache
//! directory writable and not in use by a mount — then indexes (reusing the persisted catalog,
//! writing nothing) and builds the whole tree, so it fails exactly when `mount` would: on a config
//! error, or when no dataset can be served. Datasets left out and files skipped are listed as
//! `skip` lines.

use std::path::Path;
use std::process::ExitCode;

use atlasfs::cache::{CacheLock, LockError, LockMode};
use atlasfs::config::{DatasetConfig, MountConfig};
use atlasfs::service::{sources_for, ServiceError, ServiceOptions, Startup};
use atlasfs::sources::catalog::Catalog;
use atlasfs::sources::router::Sources;

/// The outcome of one check line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Fail,
    Skip,
}

impl Status {
    /// The line's first column, all the same width.
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok  ",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// Runs every check, printing one line each; fails if any failed.
pub(super) fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = MountConfig::load(config_path)?;
    println!(
        "{}  config {} parses",
        Status::Ok.label(),
        config_path.display()
    );
    let mut failures = 0;
    let mut line = |status: Status, message: String| {
        println!("{}  {message}", status.label());
        if status == Status::Fail {
            failures += 1;
        }
    };
    let mut report = |ok: bool, message: String| {
        line(if ok { Status::Ok } else { Status::Fail }, message);
    };
    let fuse = Path::new("/dev/fuse").exists();
    report(fuse, "FUSE device /dev/fuse present".into());
    let fusermount = ["fusermount3", "fusermount"].iter().any(|tool| {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).exists()))
            .unwrap_or(false)
    });
    report(
        fusermount,
        "fusermount3 found on PATH (needed for unprivileged unmount)".into(),
    );
    let writable = cache_writable(&config.cache.dir);
    report(
        writable.is_ok(),
        match &writable {
            Ok(()) => format!("cache dir {} writable", config.cache.dir.display()),
            Err(e) => format!("cache dir {} not writable: {e}", config.cache.dir.display()),
        },
    );
    if writable.is_ok() && config.cache.max_size > 0 {
        let lock = CacheLock::acquire(&config.cache.dir, LockMode::Shared);
        report(
            !matches!(lock, Err(LockError::Busy { .. })),
            match lock {
                Err(e @ LockError::Busy { .. }) => e.to_string(),
                _ => format!(
                    "cache dir {} not in use by a mount",
                    config.cache.dir.display()
                ),
            },
        );
    }
    // Validating needs no data: pack views' ranges are not scanned.
    let options = ServiceOptions::check().without_range_scans();
    let sources = match sources_for(&config) {
        Ok(sources) => sources,
        Err(e) => {
            report(false, e.to_string());
            Sources::default()
        }
    };
    match Startup::with_sources(config.clone(), options, sources)?.index(&|_| {}) {
        Ok(indexed) => {
            for dataset in &config.datasets {
                dataset_lines(dataset, indexed.catalog(), &mut line);
            }
            match indexed.build() {
                Ok(service) => {
                    let tree = service.tree();
                    for left_out in service.left_out() {
                        line(Status::Skip, left_out);
                    }
                    // Descriptor lines a sample set left out.
                    for note in tree.notes.iter().filter(|n| n.starts_with("samples ")) {
                        line(Status::Skip, note.clone());
                    }
                    let served = tree.root.children.len();
                    let usable = service.ensure_usable();
                    line(
                        if usable.is_ok() {
                            Status::Ok
                        } else {
                            Status::Fail
                        },
                        format!(
                            "tree: {served} dataset(s) served, {} left out, {} array(s)",
                            tree.left_out.len(),
                            tree.arrays().len()
                        ),
                    );
                }
                Err(e) => line(Status::Fail, e.to_string()),
            }
        }
        // The catalog's own message: `check` words its lines without the index's context.
        Err(ServiceError::Index(e)) => line(Status::Fail, e.to_string()),
        Err(e) => line(Status::Fail, e.to_string()),
    }
    if failures > 0 {
        eprintln!("atlasfs: {failures} check(s) failed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The lines of one dataset: what its source holds, and each file that is skipped.
fn dataset_lines(
    dataset: &DatasetConfig,
    catalog: &Catalog,
    line: &mut impl FnMut(Status, String),
) {
    let name = &dataset.name;
    if let Some(location) = &dataset.zarr {
        match catalog.zarr_store(name) {
            Ok(store) => line(
                Status::Ok,
                format!(
                    "dataset {name}: Zarr store {location}: {:?}, {} metadata document(s)",
                    store.format,
                    store.documents.len()
                ),
            ),
            Err(reason) => line(
                Status::Skip,
                format!("dataset {name}: Zarr store {location}: {reason}"),
            ),
        }
        return;
    }
    let source = match &dataset.catalog {
        Some(catalog) => format!("catalog {}", catalog.display()),
        None => dataset.files.clone(),
    };
    if let Some(reason) = catalog.unavailable(name) {
        line(Status::Skip, format!("dataset {name}: {source}: {reason}"));
        return;
    }
    let (files, membership) = catalog.dataset(name);
    let unusable = catalog.unusable(name);
    let unmatched = membership.map_or(0, |m| m.unmatched.len());
    line(
        if files.is_empty() {
            Status::Skip
        } else {
            Status::Ok
        },
        format!(
            "dataset {name}: {} file(s) from {source} ({} usable, {} skipped{})",
            files.len() + unusable.len(),
            files.len(),
            unusable.len(),
            if unmatched > 0 {
                format!(", {unmatched} not matching the pattern")
            } else {
                String::new()
            },
        ),
    );
    for (path, reason) in unusable {
        line(
            Status::Skip,
            format!("dataset {name}: file {path}: {reason}"),
        );
    }
}

fn cache_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".atlasfs-check-{}", std::process::id()));
    std::fs::write(&probe, b"probe")?;
    std::fs::remove_file(&probe)
}
