//! `atlasfs warm CONFIG PATH… [--shard K/N] [--jobs N]`: computes every chunk under the paths
//! into the disk cache, with a progress bar. Shards split the chunks so independent processes
//! (Slurm array tasks, Dask workers) can each take a part; several warm processes may share one
//! cache dir, but not with a running mount.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::bail;
use atlasfs::config::MountConfig;
use atlasfs::keyspace::warm::{Shard, Warmed};
use atlasfs::keyspace::KeySpace;
use clap::Args;
use indicatif::HumanBytes;

use super::batch::Failures;

/// Arguments of `atlasfs warm`.
#[derive(Args)]
pub(super) struct WarmArgs {
    /// Mount configuration (TOML).
    config: PathBuf,
    /// Tree paths to warm: a dataset, group or array (`sst`, `sst/analysed_sst`); `/` is all.
    #[arg(required = true)]
    paths: Vec<String>,
    /// Take only shard K of N (0-based, e.g. `--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`).
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Chunks computed at once [default: cores].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
}

#[derive(Default)]
struct Tally {
    computed: AtomicU64,
    computed_bytes: AtomicU64,
    cached: AtomicU64,
    failures: Failures,
}

/// Warms the paths and prints a summary; fails if a chunk failed or the cache could not be
/// written.
pub(super) fn run(args: WarmArgs) -> anyhow::Result<ExitCode> {
    let config = MountConfig::load(&args.config)?;
    let cache_dir = config.cache.dir.clone();
    let service = super::batch::start_service(config)?;
    let keys = service.keys();
    let plan = keys.warm_plan(&args.paths)?;
    let shard = args.shard.unwrap_or(Shard::ALL);
    let todo = plan.shard_len(shard);
    let pool = super::batch::pool(args.jobs)?;
    let bar = super::batch::progress("warming", todo, "chunks");
    let started = std::time::Instant::now();
    let tally = Tally::default();
    super::batch::for_each(&pool, &bar, todo, |i| {
        let Some((array, index)) = plan.chunk(shard, i) else {
            return true;
        };
        match keys.warm_chunk(&array, &index) {
            Ok(Warmed::AlreadyCached) => {
                tally.cached.fetch_add(1, Ordering::Relaxed);
                true
            }
            Ok(Warmed::Computed(bytes)) => {
                tally.computed.fetch_add(1, Ordering::Relaxed);
                let total = tally.computed_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
                bar.set_message(format!("{} computed", HumanBytes(total)));
                disk_failing(&keys).is_none()
            }
            Err(e) => {
                tally.failures.record(&e);
                true
            }
        }
    });

    keys.flush(); // disk writes and shared-tier uploads, before the counters are shown
    let (computed, cached, failed) = (
        tally.computed.load(Ordering::Relaxed),
        tally.cached.load(Ordering::Relaxed),
        tally.failures.count(),
    );
    let shard_note = if shard == Shard::ALL {
        String::new()
    } else {
        format!(
            " (shard {}/{} of {} chunks)",
            shard.index,
            shard.count,
            plan.total()
        )
    };
    println!(
        "warmed {} array(s) under {}: {todo} chunks{shard_note}: {computed} computed ({}), \
         {cached} already cached, {failed} failed, in {:.2} s",
        plan.arrays(),
        args.paths.join(" "),
        HumanBytes(tally.computed_bytes.load(Ordering::Relaxed)),
        started.elapsed().as_secs_f64()
    );
    if let Some(disk) = keys.cache_stats().disk {
        println!(
            "disk cache {}: {} entries, {} of {} max ({} evicted)",
            cache_dir.display(),
            disk.entries,
            HumanBytes(disk.bytes),
            HumanBytes(disk.max_size),
            disk.evictions
        );
    }
    if let Some(t) = keys.cache_stats().shared_tier {
        println!(
            "shared cache: {} hits, {} uploaded, {} already there, {} dropped, {} failures",
            t.hits, t.uploads, t.already_there, t.dropped, t.failures
        );
    }
    tally.failures.print();
    if let Some(why) = disk_failing(&keys) {
        bail!("cannot write to the disk cache: {why}");
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn disk_failing(keys: &KeySpace) -> Option<String> {
    keys.cache_stats().disk.and_then(|d| d.write_failing)
}
