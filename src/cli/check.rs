//! `atlasfs check CONFIG`: validates the config and the environment — FUSE present, cache
//! directory writable and not in use by a mount, every dataset's glob matching readable NetCDF
//! files, every Zarr store listable with metadata at its root.

use std::path::Path;
use std::process::ExitCode;

use atlasfs::cache::{CacheLock, LockError, LockMode};
use atlasfs::config::MountConfig;
use atlasfs::sources::membership;
use atlasfs::sources::router::Sources;
use atlasfs::sources::zarr_store::listing;
use atlasfs::tree::fixes::FixSet;

/// Runs every check, printing one line each; fails if any failed.
pub fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = MountConfig::load(config_path)?;
    println!("ok   config {} parses", config_path.display());
    let mut failures = 0;
    let mut report = |ok: bool, message: String| {
        println!("{}  {message}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            failures += 1;
        }
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
    let sources = match Sources::for_config(&config) {
        Ok(sources) => sources,
        Err(e) => {
            report(false, e.to_string());
            Sources::default()
        }
    };
    for dataset in config.datasets.iter().filter(|d| d.zarr.is_none()) {
        match membership::resolve(dataset, &sources) {
            Ok(found) => {
                // A listed object is reachable with the credentials found.
                let readable = found
                    .members
                    .iter()
                    .filter(|m| m.version.is_some() || std::fs::File::open(&m.path).is_ok())
                    .count();
                let source = match &dataset.catalog {
                    Some(catalog) => format!("catalog {}", catalog.display()),
                    None => dataset.files.clone(),
                };
                report(
                    !found.members.is_empty() && readable == found.members.len(),
                    format!(
                        "dataset {}: {} file(s) from {source} ({readable} readable, {} not matching the pattern)",
                        dataset.name,
                        found.members.len(),
                        found.unmatched.len()
                    ),
                );
            }
            Err(e) => report(false, e.to_string()),
        }
        if let Some(path) = &dataset.fixes {
            let loaded = FixSet::load(path);
            report(
                loaded.is_ok(),
                match loaded {
                    Ok(set) => format!(
                        "dataset {}: fix file {} has {} rule(s)",
                        dataset.name,
                        path.display(),
                        set.rules.len()
                    ),
                    Err(e) => e.to_string(),
                },
            );
        }
    }
    for dataset in &config.datasets {
        let Some(location) = dataset.zarr.as_deref() else {
            continue;
        };
        match listing::list(location, &dataset.storage, &sources) {
            Ok(found) => {
                let root = ["zarr.json", ".zmetadata", ".zgroup"]
                    .iter()
                    .any(|doc| found.objects.contains_key(*doc));
                report(
                    root,
                    format!(
                        "dataset {}: Zarr store {location}: {} object(s), {} metadata document(s){}",
                        dataset.name,
                        found.objects.len(),
                        found.documents().len(),
                        if root {
                            ""
                        } else {
                            ", no zarr.json, .zmetadata or .zgroup at its root"
                        }
                    ),
                );
            }
            Err(e) => report(false, e.to_string()),
        }
    }
    if failures > 0 {
        eprintln!("atlasfs: {failures} check(s) failed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn cache_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".atlasfs-check-{}", std::process::id()));
    std::fs::write(&probe, b"probe")?;
    std::fs::remove_file(&probe)
}
