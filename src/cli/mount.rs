//! `atlasfs mount` and `atlasfs unmount`: the daemon's life. Without `--foreground`, the command
//! re-executes itself as a detached daemon and returns once that daemon reports the mount ready
//! (or its error) over a pipe. SIGINT/SIGTERM unmount cleanly; SIGHUP (and `[mount] refresh`)
//! reloads the config and the index into a new snapshot (see `atlasfs::service`).

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use atlasfs::config::{MountConfig, OpenBy};
use atlasfs::frontend::fuse::{self, FuseOptions, Swapper};
use atlasfs::keyspace::ReadAheadConfig;
use atlasfs::service::{Reloader, Service, ServiceOptions, Startup};
use clap::Args;

fn parse_size(text: &str) -> Result<u64, String> {
    atlasfs::config::parse_size(text)
}

use super::mountpoint::{self, Prepare, UnmountError};
use super::stats_writer::StatsWriter;
use super::summary::MountSummary;

/// The first line a daemon sends its parent once the mount is ready; the summary follows.
const READY: &str = "ok\n";

/// Arguments of `atlasfs mount`.
#[derive(Args)]
pub(super) struct MountArgs {
    /// Mount configuration (TOML).
    config: PathBuf,
    /// Empty directory to mount on.
    mountpoint: PathBuf,
    /// Create the mountpoint if it does not exist.
    #[arg(long)]
    mkdir: bool,
    /// Mount on a directory that is not empty (its contents are hidden while mounted).
    #[arg(long)]
    allow_non_empty: bool,
    /// Stay in the foreground (logs to stderr) instead of daemonizing.
    #[arg(long)]
    foreground: bool,
    /// Log file of the background daemon [default: CACHE_DIR/atlasfs.log].
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// Let other users read the mount (needs user_allow_other in /etc/fuse.conf unless root).
    #[arg(long)]
    allow_other: bool,
    /// FUSE worker threads [default: 2 × cores].
    #[arg(long)]
    threads: Option<usize>,
    /// The kernel's read-ahead window for this mount, e.g. `4MiB`; 0 keeps the kernel's
    /// 128 KiB (setting it needs root) [default: 4MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    kernel_read_ahead: Option<u64>,
    /// Chunks computed ahead of a sequential reader; 0 turns read-ahead off [default: 4].
    #[arg(long, value_name = "N")]
    read_ahead_chunks: Option<usize>,
    /// Internal: file descriptor on which a daemon reports readiness.
    #[arg(long, hide = true)]
    ready_fd: Option<RawFd>,
}

/// Mounts, in the foreground or as a daemon.
pub(super) fn run(args: MountArgs) -> anyhow::Result<ExitCode> {
    let config = MountConfig::load(&args.config)?;
    // The daemon mounts where its parent already checked.
    if args.ready_fd.is_none() {
        let options = Prepare {
            allow_non_empty: args.allow_non_empty,
            mkdir: args.mkdir,
        };
        for done in mountpoint::prepare(&args.mountpoint, &options)? {
            eprintln!("atlasfs: {done}");
        }
    }
    // Refuse a busy cache dir before starting a daemon (which would log into the other
    // mount's log); the daemon takes the lock for real.
    if args.ready_fd.is_none() && config.cache.max_size > 0 {
        super::cache_dir::ensure_free(&config.cache.dir)?;
    }
    if args.foreground {
        match &args.log_file {
            Some(path) => super::logging::init_file(path)?,
            None => super::logging::init_stderr(),
        }
        return serve(&args, &config);
    }
    daemonize(&args, &config)
}

/// Opens the daemon's log for appending, creating its directory.
fn open_log(log: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
}

fn daemonize(args: &MountArgs, config: &MountConfig) -> anyhow::Result<ExitCode> {
    let mut log = std::path::absolute(args.log_file.clone().unwrap_or_else(|| config.log_file()))?;
    let stderr = match open_log(&log) {
        Ok(file) => file,
        // A read-only cache dir still mounts (uncached); its log goes elsewhere.
        Err(e) if args.log_file.is_none() => {
            let fallback = std::env::temp_dir().join(format!(
                "atlasfs-{:016x}.log",
                xxhash_rust::xxh3::xxh3_64(log.as_os_str().as_encoded_bytes())
            ));
            eprintln!(
                "atlasfs: warning: cannot open log {} ({e}); logging to {}",
                log.display(),
                fallback.display()
            );
            log = fallback;
            open_log(&log).with_context(|| format!("opening log {}", log.display()))?
        }
        Err(e) => {
            return Err(e).with_context(|| format!("opening log {}", log.display()));
        }
    };
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array we own; CLOEXEC keeps them out of the daemon
    // except as the fd 3 it gets by dup2.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("creating a pipe");
    }
    // SAFETY: both fds were just created and are owned here.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let write_fd = fds[1];
    let exe = std::env::current_exe().context("locating the atlasfs executable")?;
    let mut command = Command::new(exe);
    command
        .arg("mount")
        .arg(std::path::absolute(&args.config)?)
        .arg(std::path::absolute(&args.mountpoint)?)
        .arg("--foreground")
        .arg("--log-file")
        .arg(&log)
        .arg("--ready-fd")
        .arg("3")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    if args.allow_other {
        command.arg("--allow-other");
    }
    if let Some(threads) = args.threads {
        command.arg("--threads").arg(threads.to_string());
    }
    if let Some(bytes) = args.kernel_read_ahead {
        command.arg("--kernel-read-ahead").arg(bytes.to_string());
    }
    if let Some(chunks) = args.read_ahead_chunks {
        command.arg("--read-ahead-chunks").arg(chunks.to_string());
    }
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 || libc::dup2(write_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().with_context(|| {
        format!(
            "starting the daemon {}",
            command.get_program().to_string_lossy()
        )
    })?;
    drop(writer);
    let mut message = String::new();
    std::fs::File::from(reader).read_to_string(&mut message)?;
    if let Some(summary) = message.strip_prefix(READY) {
        let mut lines = summary.trim().lines();
        println!("{}", lines.next().unwrap_or_default());
        for left_out in lines {
            eprintln!("atlasfs: warning: {left_out}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let status = child.wait()?;
    let message = message.trim();
    if message.is_empty() {
        bail!(
            "the daemon exited ({status}) before the mount was ready; see {}",
            log.display()
        );
    }
    bail!("{message}");
}

/// Keeps the daemon's resident memory near what its caches count. glibc raises its mmap
/// threshold each time a large block is freed, after which chunk-sized buffers come from
/// per-thread arenas that keep freed memory; a fixed threshold keeps every chunk-sized buffer
/// in its own mapping, returned to the system when freed unless the process allocator keeps it
/// for reuse within its share of the memory budget `memory`. Smaller blocks stay in the two
/// arenas, each of which keeps up to [`ARENA_KEPT_FREE`] of freed memory at its top instead of
/// giving every freed page back: at glibc's default of 128 KiB, buffers of a few hundred KiB
/// (a tile, a row of weights) were faulted in and zeroed again on every chunk.
pub(super) fn bound_allocator_retention(memory: u64) {
    crate::ALLOCATOR.limit(atlasfs::cache::reused_buffer_share(memory));
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters; called before the worker threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, ARENA_KEPT_FREE);
    }
}

/// Free memory an allocator arena keeps at its top before returning it to the system.
#[cfg(target_env = "gnu")]
const ARENA_KEPT_FREE: i32 = 16 << 20;

/// Indexes, builds the tree, mounts, reports readiness and serves until unmounted or signalled.
fn serve(args: &MountArgs, config: &MountConfig) -> anyhow::Result<ExitCode> {
    bound_allocator_retention(config.cache.memory);
    let ready = args.ready_fd.map(|fd| {
        // SAFETY: the parent passed this fd to us for exactly this purpose.
        std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) })
    });
    // Taken over first, so a SIGHUP while indexing queues a reload instead of ending the daemon.
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    let result = start(args, config);
    let (session, swapper, service) = match result {
        Ok((session, swapper, service, summary)) => {
            let line = summary.line(&args.mountpoint, &config.path, args.log_file.as_deref());
            tracing::info!("{line}");
            if let Some(mut ready) = ready {
                // Datasets left out follow the summary, one line each.
                let left_out: String = service
                    .left_out()
                    .iter()
                    .map(|l| format!("\n{l}"))
                    .collect();
                let _ = writeln!(ready, "{READY}{line}{left_out}");
            }
            (session, swapper, service)
        }
        Err(e) => {
            if let Some(mut ready) = ready {
                let _ = write!(ready, "{}", super::error_text(&e));
            }
            return Err(e);
        }
    };
    let pid_file = pid_file(&args.mountpoint);
    if let Some(pid_file) = &pid_file {
        let _ = std::fs::write(pid_file, std::process::id().to_string());
    }
    signals.add_signal(signal_hook::consts::SIGINT)?;
    signals.add_signal(signal_hook::consts::SIGTERM)?;
    let reloader = Reloader::for_service(service.clone())?;
    let mut stats = StatsWriter::new(&config.cache.dir, &args.mountpoint);
    let stopped_by_signal = 'serving: loop {
        for signal in signals.pending() {
            if signal == signal_hook::consts::SIGHUP {
                reloader.request();
            } else {
                tracing::info!("signal {signal}: unmounting");
                break 'serving true;
            }
        }
        if session.guard.is_finished() {
            break false;
        }
        stats.tick(&swapper.current());
        std::thread::sleep(Duration::from_millis(100));
    };
    reloader.stop();
    let keys = swapper.current();
    let ended = if stopped_by_signal {
        session.umount_and_join()
    } else {
        session.join()
    };
    let pending = keys.cache_stats().pending_writes;
    if pending > 0 {
        tracing::info!("writing {pending} computed chunk(s) to the disk cache");
    }
    keys.flush();
    stats.finish(&keys);
    ended?;
    if let Some(pid_file) = pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    tracing::info!("unmounted {}", args.mountpoint.display());
    Ok(ExitCode::SUCCESS)
}

fn start(
    args: &MountArgs,
    config: &MountConfig,
) -> anyhow::Result<(
    fuser::BackgroundSession,
    Swapper,
    Arc<Service>,
    MountSummary,
)> {
    let read_ahead = ReadAheadConfig {
        depth: args
            .read_ahead_chunks
            .unwrap_or(ReadAheadConfig::default().depth),
        ..ReadAheadConfig::default()
    };
    // Takes the cache dir's lock first, so a second mount of the same dir fails before indexing.
    let startup = Startup::open(
        config.clone(),
        ServiceOptions::mount().with_read_ahead(Some(read_ahead)),
    )?;
    match startup.cache().stats().disk {
        Some(disk) => tracing::info!(
            "cache: {} in memory over {} on disk ({} entries, {} bytes held) in {}",
            config.cache.memory,
            disk.max_size,
            disk.entries,
            disk.bytes,
            config.cache.dir.display()
        ),
        None => tracing::info!(
            "cache: {} bytes in memory, no disk tier",
            config.cache.memory
        ),
    }
    let service = super::index::index_with_progress(startup)?.build()?;
    super::index::report_left_out(&service)?;
    service.log_build();
    let summary = MountSummary::new(
        &service.tree(),
        service.snapshot().report(),
        service.files_served(),
    );
    let mut options = FuseOptions {
        allow_other: args.allow_other,
        kernel_opens: config.mount.open == OpenBy::Kernel,
        ..FuseOptions::default()
    };
    if let Some(threads) = args.threads {
        options.threads = threads;
    }
    if let Some(bytes) = args.kernel_read_ahead {
        options.read_ahead = bytes;
    }
    let (session, swapper) = fuse::mount(service.keys(), &args.mountpoint, &options)
        .with_context(|| format!("mounting at {}", args.mountpoint.display()))?;
    service.attach(Arc::new(swapper.clone()));
    let keys = service.keys().clone();
    let prerender = std::thread::Builder::new()
        .name("prerender".into())
        .spawn(move || {
            let n = keys.prerender_dataset_documents();
            tracing::debug!("rendered {n} consolidated metadata document(s) ahead of their reads");
        });
    if let Err(e) = prerender {
        tracing::warn!("cannot render metadata documents ahead of their reads: {e}");
    }
    Ok((session, swapper, Arc::new(service), summary))
}

/// Where the daemon serving `mountpoint` records its pid.
fn pid_file(mountpoint: &Path) -> Option<PathBuf> {
    let canonical = mountpoint::resolve(mountpoint).ok()?;
    let hash = xxhash_rust::xxh3::xxh3_64(canonical.as_os_str().as_encoded_bytes());
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("atlasfs");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join(format!("{hash:016x}.pid")))
}

/// Unmounts and waits (up to 30 s) for the daemon to exit; `lazy` detaches a busy mount at
/// once and does not wait.
pub(super) fn unmount(mountpoint: &Path, lazy: bool) -> anyhow::Result<ExitCode> {
    if !mountpoint::mounted_at(mountpoint).is_some_and(|m| m.is_atlasfs()) {
        bail!("{} is not an atlasfs mount", mountpoint.display());
    }
    let pid = pid_file(mountpoint)
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|s| s.trim().parse::<i32>().ok());
    match mountpoint::unmount(mountpoint, lazy) {
        Ok(()) => {}
        Err(UnmountError::Busy) => {
            let holders = mountpoint::holders(mountpoint);
            let held_by = if holders.is_empty() {
                "no process this user can see holds it".to_owned()
            } else {
                holders
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            bail!(
                "cannot unmount {}: it is busy ({held_by}); end those processes or leave the \
                 mount, or pass --lazy to detach it now (its daemon exits once they are done)",
                mountpoint.display()
            );
        }
        Err(e) => bail!("cannot unmount {}: {e}", mountpoint.display()),
    }
    if lazy {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(pid) = pid {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(ExitCode::SUCCESS)
}
