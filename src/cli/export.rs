//! `atlasfs export CONFIG PATH DEST [--shard K/N] [--finalize] [--resume] [--zarr-format N]
//! [--shard-shape DIM=N,…] [--codec C]`: writes the subtree at PATH as a Zarr store at DEST (a
//! directory or an object-store URL), every key as served (or re-encoded with `--codec`,
//! grouped into v3 shards with `--shard-shape`). Workers write disjoint chunks or whole
//! shards; the metadata is written last, by `--finalize` or by the worker that finds every
//! chunk present.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use atlasfs::config::{MountConfig, StorageSection, ZarrFormat};
use atlasfs::export::{
    self, Destination, ExportCodec, ExportPlan, Provenance, ShardShape, Written,
};
use atlasfs::keyspace::warm::Shard;
use clap::Args;
use indicatif::HumanBytes;

use super::batch::Failures;

/// Arguments of `atlasfs export`.
#[derive(Args)]
pub(super) struct ExportArgs {
    /// Mount configuration (TOML).
    config: PathBuf,
    /// Tree path to export: a dataset, group, view or array (`/` is the whole tree).
    path: String,
    /// Destination: a directory, or an object-store URL (`s3://bucket/prefix`, `gs://…`, `az://…`).
    dest: String,
    /// Write only shard K of N of the chunks (0-based, e.g. `--shard $SLURM_ARRAY_TASK_ID/N`).
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Write no chunks: check that every chunk is present, then write the metadata.
    #[arg(long)]
    finalize: bool,
    /// Skip chunks already present at DEST with the served size.
    #[arg(long)]
    resume: bool,
    /// Zarr format written (2 or 3) [default: the config's `[mount] zarr_format`].
    #[arg(long, value_name = "N", value_parser = super::serve::parse_format)]
    zarr_format: Option<ZarrFormat>,
    /// Endpoint of an S3-compatible destination (`http://` allows plain HTTP) [default: the
    /// `[dataset.storage]` of a dataset in the same bucket, else the standard environment].
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Group chunks into Zarr v3 shards of N elements along the named dimensions (rounded up
    /// to whole chunks), e.g. `time=365` (needs `--zarr-format 3` or a v3 config).
    #[arg(long, value_name = "DIM=N,…")]
    shard_shape: Option<ShardShape>,
    /// Compress the exported arrays with `none`, `zstd[:LEVEL]`, `gzip[:LEVEL]` or
    /// `blosc[:LEVEL]` instead of their served codecs [default: as served, e.g. a pack view's
    /// zstd].
    #[arg(long, value_name = "CODEC")]
    codec: Option<ExportCodec>,
    /// Chunks written at once [default: cores].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
}

#[derive(Default)]
struct Tally {
    written: AtomicU64,
    bytes: AtomicU64,
    skipped: AtomicU64,
    failures: Failures,
}

/// Exports the path and prints a summary; fails if a chunk failed or the store refused a write.
pub(super) fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let config_bytes = std::fs::read(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let mut config = MountConfig::load(&args.config)?;
    if let Some(format) = args.zarr_format {
        config.mount.zarr_format = format;
    }
    let storage = destination_storage(&config, &args.dest, args.endpoint.as_deref());
    let service = super::batch::start_service(config)?;
    let mut keys = service.keys();
    if let Some(codec) = args.codec {
        let tree = export::recoded(keys.tree(), &args.path, codec);
        keys = std::sync::Arc::new(keys.successor(std::sync::Arc::new(tree), keys.format()));
    }
    let plan = ExportPlan::new(&keys, &args.path, args.shard_shape.as_ref())?;
    let dest = Destination::open(&args.dest, &storage)?;
    let provenance = Provenance::new(&keys, &plan, &config_bytes);
    let shard = args.shard.unwrap_or(Shard::ALL);
    let started = std::time::Instant::now();

    let tally = Tally::default();
    let todo = if args.finalize {
        0
    } else {
        plan.shard_len(shard)
    };
    if todo > 0 {
        let pool = super::batch::pool(args.jobs)?;
        let units = if plan.sharded_arrays() > 0 {
            "chunks and shards"
        } else {
            "chunks"
        };
        let bar = super::batch::progress("exporting", todo, units);
        super::batch::for_each(&pool, &bar, todo, |i| {
            let Some(unit) = plan.unit(shard, i) else {
                return true;
            };
            match export::write_unit(&keys, &plan, &dest, &unit, args.resume) {
                Ok(Written::Wrote(len)) => {
                    tally.written.fetch_add(1, Ordering::Relaxed);
                    let total = tally.bytes.fetch_add(len, Ordering::Relaxed) + len;
                    bar.set_message(format!("{} written", HumanBytes(total)));
                    true
                }
                Ok(Written::Skipped) => {
                    tally.skipped.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(e) => {
                    tally.failures.record(&e);
                    // A store that refuses a write refuses the rest: stop.
                    !matches!(e, export::ExportError::Store { .. })
                }
            }
        });
    }

    let (written, skipped, failed) = (
        tally.written.load(Ordering::Relaxed),
        tally.skipped.load(Ordering::Relaxed),
        tally.failures.count(),
    );
    let shard_note = if shard == Shard::ALL || args.finalize {
        String::new()
    } else {
        format!(
            " (shard {}/{} of {})",
            shard.index,
            shard.count,
            plan.total()
        )
    };
    let metadata = if failed > 0 {
        "metadata not written".to_owned()
    } else if args.finalize {
        let documents = export::finalize(&keys, &plan, &dest, &provenance)?;
        format!("metadata written ({documents} documents)")
    } else {
        match export::missing_chunks(&keys, &plan, &dest)? {
            (0, _) => {
                let documents = export::finalize(&keys, &plan, &dest, &provenance)?;
                format!("every chunk present: metadata written ({documents} documents)")
            }
            (missing, _) => format!(
                "{missing} chunk(s) of other shards missing: metadata not written yet \
                 (the last worker or `--finalize` writes it)"
            ),
        }
    };
    let units = match plan.sharded_arrays() {
        0 => "chunks".to_owned(),
        n => format!("keys ({n} array(s) in shards)"),
    };
    println!(
        "exported {} array(s) under /{} to {dest}: {todo} {units}{shard_note}: {written} written \
         ({}), {skipped} already present, {failed} failed; {metadata}; in {:.2} s",
        plan.arrays(),
        plan.root(),
        HumanBytes(tally.bytes.load(Ordering::Relaxed)),
        started.elapsed().as_secs_f64()
    );
    tally.failures.print();
    keys.flush();
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// How to reach the destination: `--endpoint` (region from the environment), else the storage
/// table of a dataset whose data lives in the same store, else the defaults.
fn destination_storage(config: &MountConfig, dest: &str, endpoint: Option<&str>) -> StorageSection {
    if let Some(endpoint) = endpoint {
        return StorageSection {
            endpoint: Some(endpoint.to_owned()),
            ..StorageSection::default()
        };
    }
    let store = |url: &str| -> Option<String> {
        let (scheme, rest) = url.split_once("://")?;
        Some(format!(
            "{scheme}://{}",
            rest.split('/').next().unwrap_or("")
        ))
    };
    let Some(wanted) = store(dest) else {
        return StorageSection::default();
    };
    config
        .datasets
        .iter()
        .find(|ds| {
            store(&ds.files).as_ref() == Some(&wanted)
                || ds.zarr.as_deref().and_then(store).as_ref() == Some(&wanted)
        })
        .map(|ds| ds.storage.clone())
        .unwrap_or_default()
}
