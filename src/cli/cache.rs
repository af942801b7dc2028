//! `atlasfs cache stats|clear|verify CONFIG`: inspects the chunk cache of a config's cache dir.
//! `stats` lists the entries and shows the counters of the running (or last) mount from
//! `stats.json`; `clear` deletes every entry (refused while a mount or warm uses the dir);
//! `verify` checks every entry's checksums and deletes the damaged ones when no one else uses
//! the dir.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use atlasfs::cache::layout;
use atlasfs::cache::stats::{self, StatsReport};
use atlasfs::cache::{read_entry, CacheLock, LockError, LockMode, ReadError};
use atlasfs::config::MountConfig;
use atlasfs::views::WeightsUsage;
use clap::Subcommand;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use serde_json::json;

/// `atlasfs cache` verbs.
#[derive(Subcommand)]
pub(super) enum CacheCommand {
    /// Entries, bytes, and hit/miss counters since the running (or last) mount.
    Stats {
        /// Mount configuration (TOML).
        config: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete every cached chunk (refused while a mount or warm uses the cache dir).
    Clear {
        /// Mount configuration (TOML).
        config: PathBuf,
    },
    /// Check every entry's checksums; damaged entries are deleted when the dir is not in use.
    Verify {
        /// Mount configuration (TOML).
        config: PathBuf,
    },
}

/// Runs an `atlasfs cache` verb.
pub(super) fn run(command: CacheCommand) -> anyhow::Result<ExitCode> {
    match command {
        CacheCommand::Stats { config, json } => show_stats(&config, json),
        CacheCommand::Clear { config } => clear(&config),
        CacheCommand::Verify { config } => verify(&config),
    }
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn show_stats(config_path: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let config = MountConfig::load(config_path)?;
    let dir = &config.cache.dir;
    let listing = layout::list(dir).with_context(|| format!("listing {}", dir.display()))?;
    let bytes: u64 = listing.entries.iter().map(|e| e.size).sum();
    let weights = WeightsUsage::of(dir, config.cache.max_size);
    let mount = stats::read(dir);
    let running = mount
        .as_ref()
        .is_some_and(|m| !m.finished && process_alive(m.pid));
    if as_json {
        let out = json!({
            "dir": dir,
            "entries": listing.entries.len(),
            "bytes": bytes,
            "max_size": config.cache.max_size,
            "unfinished_writes": listing.temps.len(),
            "regrid_weights": weights,
            "mount": mount,
            "mount_running": running,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("cache dir {}", dir.display());
    let share = if config.cache.max_size > 0 {
        format!(
            " ({:.1}%)",
            100.0 * bytes as f64 / config.cache.max_size as f64
        )
    } else {
        String::new()
    };
    println!(
        "  disk: {} entries, {} of {} max{share}",
        listing.entries.len(),
        HumanBytes(bytes),
        HumanBytes(config.cache.max_size)
    );
    println!(
        "  regrid weights: {} files, {} of {} budget (1/{} of max_size)",
        weights.files,
        HumanBytes(weights.bytes),
        HumanBytes(weights.budget),
        WeightsUsage::SHARE
    );
    match &mount {
        None => println!("  no mount has used this cache dir yet"),
        Some(m) => print_mount(m, running),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_mount(m: &StatsReport, running: bool) {
    let ago = stats::now_unix().saturating_sub(m.updated_unix);
    let state = if running {
        format!("running; counters from {ago} s ago")
    } else {
        format!("not running; last counters, written {ago} s ago")
    };
    println!(
        "  mount: pid {} at {} ({state}); since it mounted:",
        m.pid, m.mountpoint
    );
    let c = &m.cache;
    println!(
        "    memory: {} hits, {} misses; {} entries, {} of {}",
        c.memory.hits,
        c.memory.misses,
        c.memory.entries,
        HumanBytes(c.memory.bytes),
        HumanBytes(c.memory.capacity)
    );
    println!(
        "    decoded inputs in memory: {} entries, {} of {}",
        c.decoded_memory.entries,
        HumanBytes(c.decoded_memory.bytes),
        HumanBytes(c.decoded_memory.capacity)
    );
    match &c.disk {
        Some(d) => {
            println!(
                "    disk:   {} hits ({} passed through to the kernel, {} of them checked in full first), {} misses; {} written, {} evicted, {} damaged and dropped, {} failed writes",
                d.hits, d.passthrough, d.checks, d.misses, d.writes, d.evictions, d.corrupt, d.write_errors
            );
            if let Some(why) = &d.write_failing {
                println!("    disk writes are failing: {why}");
            }
        }
        None => println!("    disk:   off (see the mount's log)"),
    }
    if let Some(t) = &c.shared_tier {
        println!(
            "    shared: {} hits, {} misses, {} damaged and recomputed; {} uploaded, {} already there, {} dropped; {} failures",
            t.hits, t.misses, t.damaged, t.uploads, t.already_there, t.dropped, t.failures
        );
    }
    println!(
        "    chunks computed {}, waited for a concurrent computation {}, failed {}",
        c.computed, c.shared, c.failed
    );
    let r = &m.readahead;
    println!(
        "    read-ahead: {} queued, {} computed, {} dropped (budget)",
        r.queued, r.computed, r.dropped
    );
}

fn clear(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = MountConfig::load(config_path)?;
    let dir = &config.cache.dir;
    let _lock = CacheLock::acquire(dir, LockMode::Exclusive)?;
    let (count, bytes) =
        layout::clear(dir).with_context(|| format!("clearing {}", dir.display()))?;
    let _ = std::fs::remove_file(stats::path(dir));
    println!(
        "removed {count} entries ({}) from {}",
        HumanBytes(bytes),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = MountConfig::load(config_path)?;
    let dir = &config.cache.dir;
    // Alone, verify repairs; beside a mount or warm it only reports.
    let lock = match CacheLock::acquire(dir, LockMode::Exclusive) {
        Ok(lock) => Some(lock),
        Err(e @ LockError::Busy { .. }) => {
            println!("read-only pass: {e}");
            None
        }
        Err(LockError::Io { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let listing = layout::list(dir).with_context(|| format!("listing {}", dir.display()))?;
    let total: u64 = listing.entries.iter().map(|e| e.size).sum();
    let bar = ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("verifying {bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("valid template"),
    );
    let (mut intact, mut damaged, mut removed) = (0u64, Vec::new(), 0u64);
    for entry in &listing.entries {
        match read_entry(&entry.path, entry.key) {
            Ok(_) => intact += 1,
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                if lock.is_some() && std::fs::remove_file(&entry.path).is_ok() {
                    removed += 1;
                }
                damaged.push(format!("{}: {e}", entry.path.display()));
            }
        }
        bar.inc(entry.size);
    }
    bar.finish_and_clear();
    if lock.is_some() {
        for temp in &listing.temps {
            let _ = std::fs::remove_file(temp);
        }
    }
    println!(
        "verified {} entries ({}) in {}: {intact} intact, {} damaged{}",
        intact + damaged.len() as u64,
        HumanBytes(total),
        dir.display(),
        damaged.len(),
        if removed > 0 {
            format!(" ({removed} removed; they are recomputed when read)")
        } else {
            String::new()
        }
    );
    if lock.is_some() && !listing.temps.is_empty() {
        println!(
            "removed {} unfinished write(s) left by an interrupted process",
            listing.temps.len()
        );
    }
    for line in &damaged {
        println!("damaged: {line}");
    }
    if total > config.cache.max_size && config.cache.max_size > 0 {
        println!(
            "note: {} exceeds max_size {}; the next mount evicts down to it",
            HumanBytes(total),
            HumanBytes(config.cache.max_size)
        );
    }
    Ok(if damaged.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
