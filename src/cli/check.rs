//! `atlasfs check CONFIG`: validates the config and the environment — FUSE present, cache
//! directory writable and not in use by a mount, every dataset's glob matching readable NetCDF
//! files.

use std::path::Path;
use std::process::ExitCode;

use atlasfs::cache::{CacheLock, LockError, LockMode};
use atlasfs::config::MountConfig;

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
    for dataset in &config.datasets {
        let matches: Vec<_> = glob::glob(&dataset.files)
            .map(|paths| {
                paths
                    .filter_map(Result::ok)
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        let readable = matches
            .iter()
            .filter(|p| std::fs::File::open(p).is_ok())
            .count();
        report(
            !matches.is_empty() && readable == matches.len(),
            format!(
                "dataset {}: {} file(s) match {} ({} readable)",
                dataset.name,
                matches.len(),
                dataset.files,
                readable
            ),
        );
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
