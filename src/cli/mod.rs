//! Command-line interface: one module per verb, each a thin driver over the library.

mod cache;
mod check;
mod index;
mod logging;
mod mount;
mod reload;
mod stats_writer;
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
    /// Compute and cache every chunk under the paths (optionally one shard of them).
    Warm(warm::WarmArgs),
    /// Inspect the chunk cache: stats, clear, verify.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
}

/// Parses the command line and runs the verb; errors are printed with their causes.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mount(args) => mount::run(args),
        Command::Unmount { mountpoint } => mount::unmount(&mountpoint),
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
        Command::Warm(args) => {
            logging::init_stderr();
            warm::run(args)
        }
        Command::Cache(command) => {
            logging::init_stderr();
            cache::run(command)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("atlasfs: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
