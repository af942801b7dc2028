//! Command-line interface: one module per verb, each a thin driver over the library.

mod batch;
mod cache;
mod cache_dir;
mod check;
mod export;
mod index;
mod logging;
mod mount;
mod mountpoint;
mod serve;
mod stats_writer;
mod summary;
mod tree;
mod warm;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// atlasfs: NetCDF archives as one lazily computed Zarr tree.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mount CONFIG read-only at MOUNTPOINT; returns once the mount is ready.
    Mount(mount::MountArgs),
    /// Unmount MOUNTPOINT and wait for its daemon to exit.
    Unmount {
        /// Where atlasfs is mounted.
        mountpoint: PathBuf,
        /// Detach the mount now even if files under it are open; the daemon exits once the
        /// last of them is closed.
        #[arg(long)]
        lazy: bool,
    },
    /// Scan the sources and (re)build the persisted catalog incrementally.
    Index {
        /// Mount configuration (TOML).
        config: PathBuf,
    },
    /// Print the virtual tree (groups, arrays, shapes, dtypes, chunking) without mounting.
    Tree {
        /// Mount configuration (TOML).
        config: PathBuf,
        /// Only the subtree at this path.
        path: Option<String>,
    },
    /// Validate the configuration and the environment.
    Check {
        /// Mount configuration (TOML).
        config: PathBuf,
    },
    /// Serve CONFIG's tree over HTTP (loopback by default) until interrupted.
    Serve(serve::ServeArgs),
    /// Compute and cache every chunk under the paths (optionally one shard of them).
    Warm(warm::WarmArgs),
    /// Write the subtree at PATH as a Zarr store at DEST (optionally one shard of its chunks).
    Export(export::ExportArgs),
    /// Inspect the chunk cache: stats, clear, verify.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
}

/// Parses the command line and runs the verb; errors are printed with their causes.
pub(crate) fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mount(args) => mount::run(args),
        Command::Unmount { mountpoint, lazy } => mount::unmount(&mountpoint, lazy),
        Command::Index { config } => {
            logging::init_stderr();
            index::run(&config)
        }
        Command::Tree { config, path } => {
            logging::init_stderr();
            tree::run(&config, path.as_deref())
        }
        Command::Check { config } => {
            logging::init_stderr();
            check::run(&config)
        }
        Command::Serve(args) => {
            logging::init_stderr();
            serve::run(args)
        }
        Command::Warm(args) => {
            logging::init_stderr();
            warm::run(args)
        }
        Command::Export(args) => {
            logging::init_stderr();
            export::run(args)
        }
        Command::Cache(command) => {
            logging::init_stderr();
            cache::run(command)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("atlasfs: error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: a cause whose text the previous link already
/// contains is left out. A FUSE mount whose daemon died (`ENOTCONN`) is named, with the
/// command that clears it.
pub(crate) fn error_text(error: &anyhow::Error) -> String {
    let mut text = atlasfs::service::causes(error.as_ref());
    let disconnected = error.chain().any(|link| {
        link.downcast_ref::<std::io::Error>()
            .is_some_and(|e| mountpoint::is_disconnected(e.raw_os_error()))
    }) || [libc::ENOTCONN, libc::ECONNABORTED]
        .iter()
        .any(|errno| text.contains(&format!("(os error {errno})")));
    if disconnected {
        let dead = mountpoint::dead_fuse_mounts();
        if dead.is_empty() {
            text.push_str(
                "\n(a FUSE mount whose daemon has died is in the way; \
                 `atlasfs unmount MOUNTPOINT` clears it)",
            );
        }
        for path in dead {
            text.push_str(&format!(
                "\n{} is a FUSE mount whose daemon has died; `atlasfs unmount {}` clears it",
                path.display(),
                path.display()
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read config c.toml: {source}")]
    struct Repeats {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_its_parent_is_said_once() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let error = anyhow::Error::new(Repeats { source: io }).context("loading the config");
        let text = error_text(&error);
        assert_eq!(
            text.matches("No such file or directory").count(),
            1,
            "{text}"
        );
        assert!(text.starts_with("loading the config: cannot read config c.toml: "));
    }

    #[test]
    fn distinct_causes_are_all_said() {
        let io = std::io::Error::from_raw_os_error(libc::EACCES);
        let error = anyhow::Error::new(io).context("opening log l");
        assert_eq!(
            error_text(&error),
            "opening log l: Permission denied (os error 13)"
        );
    }

    #[test]
    fn a_dead_fuse_mount_is_named_with_its_cure() {
        let io = std::io::Error::from_raw_os_error(libc::ENOTCONN);
        let text = error_text(&anyhow::Error::new(io).context("mountpoint m"));
        assert!(text.contains("atlasfs unmount"), "{text}");
    }
}
