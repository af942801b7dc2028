//! Logging setup: `ATLASFS_LOG` (a tracing filter, default `info`) to stderr or to a file.
//! Colours only on a terminal: a log written to a pipe or a file is plain text.

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    EnvFilter::try_from_env("ATLASFS_LOG").unwrap_or_else(|_| EnvFilter::new("info,fuser=error"))
}

/// Logs to stderr, in colour when it is a terminal.
pub(super) fn init_stderr() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Logs to `path` (appending).
///
/// # Errors
/// The I/O error of opening the file.
pub(super) fn init_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .try_init();
    Ok(())
}
