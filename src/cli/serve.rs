//! `atlasfs serve CONFIG [--listen ADDR] [--zarr-format N]`: the tree over HTTP, in the
//! foreground. Loopback by default; any other address only when given, with a warning. An
//! optional bearer token comes from `ATLASFS_TOKEN`. SIGHUP (and `[mount] refresh`) reloads as
//! for `mount`; SIGINT/SIGTERM stop accepting and finish the requests in flight.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use atlasfs::config::{MountConfig, ZarrFormat};
use atlasfs::frontend::http::{self, HttpFront, HttpOptions};
use atlasfs::service::{Reloader, ServiceOptions, Startup};
use clap::Args;

use super::stats_writer::StatsWriter;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The environment variable holding the bearer token requests must present.
const TOKEN_VAR: &str = "ATLASFS_TOKEN";

/// How long requests in flight may take to finish after a stop signal.
const DRAIN: Duration = Duration::from_secs(30);

/// Arguments of `atlasfs serve`.
#[derive(Args)]
pub(super) struct ServeArgs {
    /// Mount configuration (TOML).
    config: PathBuf,
    /// Address to listen on; anything but loopback is reachable by others, without
    /// authentication unless ATLASFS_TOKEN is set.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8700")]
    listen: SocketAddr,
    /// Zarr format served (2 or 3) [default: the config's `[mount] zarr_format`].
    #[arg(long, value_name = "N", value_parser = parse_format)]
    zarr_format: Option<ZarrFormat>,
}

pub(super) fn parse_format(text: &str) -> Result<ZarrFormat, String> {
    match text {
        "2" => Ok(ZarrFormat::V2),
        "3" => Ok(ZarrFormat::V3),
        other => Err(format!("the Zarr format is 2 or 3, not {other}")),
    }
}

/// Indexes, serves until SIGINT/SIGTERM, then finishes the requests in flight.
pub(super) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = MountConfig::load(&args.config)?;
    if let Some(format) = args.zarr_format {
        config.mount.zarr_format = format;
    }
    let token = std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty());
    if !args.listen.ip().is_loopback() {
        let protection = if token.is_some() {
            format!("only the bearer token of {TOKEN_VAR}, sent in clear over plain HTTP")
        } else {
            format!("no authentication (set {TOKEN_VAR} to require a bearer token)")
        };
        eprintln!(
            "atlasfs: warning: serving on {}, reachable from other machines, with {protection}",
            args.listen
        );
    }
    super::mount::bound_allocator_retention(config.cache.memory);
    // Taken over first, so a SIGHUP while indexing queues a reload instead of ending the server.
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP])?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("atlasfs-http")
        .build()
        .context("starting the HTTP runtime")?;
    // Bound before indexing, so an address in use fails at once.
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(args.listen))
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    let cache_dir = config.cache.dir.clone();
    let startup = Startup::open(config, ServiceOptions::mount())?;
    let service = Arc::new(super::index::index_with_progress(startup)?.build()?);
    super::index::report_left_out(&service)?;
    service.log_build();
    let front = Arc::new(HttpFront::new(service.keys(), args.zarr_format));
    service.attach(front.clone());

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = HttpOptions {
        token,
        ..HttpOptions::default()
    };
    let server = runtime.spawn(async move {
        http::serve(listener, front, &options, async {
            let _ = stopped.await;
        })
        .await
    });
    signals.add_signal(SIGINT)?;
    signals.add_signal(SIGTERM)?;
    let datasets = service.tree().root.children.len();
    println!(
        "serving {} at http://{address}/ ({datasets} dataset{})",
        args.config.display(),
        if datasets == 1 { "" } else { "s" }
    );
    std::io::stdout().flush()?;
    tracing::info!("serving {} at http://{address}/", args.config.display());
    let reloader = Reloader::for_service(service.clone())?;
    let mut stats = StatsWriter::serving_at(&cache_dir, format!("http://{address}/"));
    'serving: loop {
        for signal in signals.pending() {
            if signal == SIGHUP {
                reloader.request();
            } else {
                tracing::info!("signal {signal}: stopping");
                break 'serving;
            }
        }
        if server.is_finished() {
            break;
        }
        stats.tick(&service.keys());
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = stop.send(());
    let ended = runtime.block_on(async { tokio::time::timeout(DRAIN, server).await });
    reloader.stop();
    let keys = service.keys();
    keys.flush();
    stats.finish(&keys);
    runtime.shutdown_timeout(Duration::from_secs(1));
    match ended {
        Ok(Ok(Ok(()))) => {
            tracing::info!("stopped serving {}", args.config.display());
            Ok(ExitCode::SUCCESS)
        }
        Ok(Ok(Err(e))) => Err(e).context("serving HTTP"),
        Ok(Err(e)) => Err(e).context("the HTTP server failed"),
        Err(_) => {
            tracing::warn!("requests still in flight after {DRAIN:?}: stopped anyway");
            Ok(ExitCode::SUCCESS)
        }
    }
}
