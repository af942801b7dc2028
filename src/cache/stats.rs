//! The counters a running mount exposes to `atlasfs cache stats`: a small JSON file,
//! `<cache dir>/stats.json`, which the daemon rewrites (temp file + rename) about once a second
//! while counters change, and once more when it unmounts. A file is simpler than a socket,
//! needs no protocol, and still says something after the daemon is gone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CacheStats;

/// Counters of the read-ahead of sequential readers.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadAheadStats {
    /// Chunks queued ahead of a sequential reader.
    pub queued: u64,
    /// Queued chunks that were computed (the rest were already cached).
    pub computed: u64,
    /// Chunks not queued because the read-ahead budget was used up.
    pub dropped: u64,
}

/// What `stats.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReport {
    /// The daemon's process id.
    pub pid: u32,
    /// Where it is mounted.
    pub mountpoint: String,
    /// When it mounted (seconds since the Unix epoch).
    pub started_unix: u64,
    /// When this report was written (seconds since the Unix epoch).
    pub updated_unix: u64,
    /// Whether the daemon has unmounted (this is its last report).
    pub finished: bool,
    /// Cache counters since the mount.
    pub cache: CacheStats,
    /// Read-ahead counters since the mount.
    pub readahead: ReadAheadStats,
}

/// The stats file of a cache directory.
pub fn path(cache_dir: &Path) -> PathBuf {
    cache_dir.join("stats.json")
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes the report atomically.
///
/// # Errors
/// The I/O error of writing or renaming.
pub fn write(cache_dir: &Path, report: &StatsReport) -> std::io::Result<()> {
    let target = path(cache_dir);
    let temp = cache_dir.join(format!(".stats.json.{}", std::process::id()));
    let text = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    let result = std::fs::write(&temp, text).and_then(|()| std::fs::rename(&temp, &target));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Reads the report; `None` when there is none (no mount has run) or it is unreadable.
pub fn read(cache_dir: &Path) -> Option<StatsReport> {
    let bytes = std::fs::read(path(cache_dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).is_none());
        let report = StatsReport {
            pid: 12,
            mountpoint: "/atlas".into(),
            started_unix: 1,
            updated_unix: 2,
            finished: false,
            cache: CacheStats::default(),
            readahead: ReadAheadStats::default(),
        };
        write(dir.path(), &report).unwrap();
        assert_eq!(read(dir.path()), Some(report));
    }
}
