//! The one way bytes are read from sources: ranged reads of a path checked against the version
//! the catalog recorded, so a changed or vanished file fails loudly instead of serving stale data.
//! Object-store sources implement the same [`ByteSource`] trait.

use std::fs::File;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use super::model::FileVersion;

/// Errors reading source bytes. Each names the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The source no longer exists.
    #[error("source {path} is gone")]
    NotFound {
        /// The source.
        path: String,
    },
    /// The source changed since it was indexed.
    #[error("source {path} changed since it was indexed ({change}); reload the mount (SIGHUP) or remount to serve the new version")]
    Changed {
        /// The source.
        path: String,
        /// What changed.
        change: VersionChange,
    },
    /// The object store refused access.
    #[error("access to {path} denied: {reason}")]
    Denied {
        /// The source.
        path: String,
        /// What the store said.
        reason: String,
    },
    /// An object store kept failing.
    #[error("reading {path}: {reason}")]
    Remote {
        /// The source.
        path: String,
        /// The last failure.
        reason: String,
    },
    /// Any other I/O failure.
    #[error("reading {path}: {source}")]
    Io {
        /// The source.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The version a source was indexed at against the version found; displayed as what differs:
/// `size 1024 → 2048 bytes`, `mtime 2026-01-02 03:04:05.000000000 UTC → …`, `ETag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionChange {
    /// The version the catalog recorded.
    pub indexed: FileVersion,
    /// The version found now, when the source said.
    pub found: Option<FileVersion>,
}

impl std::fmt::Display for VersionChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(found) = self.found else {
            return f.write_str("its version no longer matches the catalog");
        };
        let (was, now) = (self.indexed, found);
        let mut parts = Vec::new();
        if was.size != now.size {
            parts.push(format!("size {} → {} bytes", was.size, now.size));
        }
        if was.mtime_ns != now.mtime_ns {
            parts.push(format!(
                "mtime {} → {}",
                utc(was.mtime_ns),
                utc(now.mtime_ns)
            ));
        }
        if was.etag != now.etag {
            parts.push("ETag".to_owned());
        }
        if parts.is_empty() {
            parts.push("its version no longer matches the catalog".to_owned());
        }
        f.write_str(&parts.join(", "))
    }
}

/// Nanoseconds since the Unix epoch as a UTC date and time.
fn utc(ns: i64) -> String {
    let (secs, nanos) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    // SAFETY: `tm` is plain data; gmtime_r writes into it (or fails) and keeps no pointer.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let time: libc::time_t = secs;
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::gmtime_r(&time, &mut tm) }.is_null() {
        return format!("{secs}.{nanos:09} s after the epoch");
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{nanos:09} UTC",
        i64::from(tm.tm_year) + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// Ranged reads from versioned sources.
pub trait ByteSource: Send + Sync {
    /// Reads each range of `path`, failing if the source is not at `version` any more.
    ///
    /// # Errors
    /// [`SourceError`] naming the source.
    fn read_ranges(
        &self,
        path: &str,
        version: FileVersion,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Vec<u8>>, SourceError>;

    /// Reads all of `path` (`version.size` bytes), failing if it is not at `version` any more.
    ///
    /// # Errors
    /// As [`ByteSource::read_ranges`].
    fn read_all(&self, path: &str, version: FileVersion) -> Result<Vec<u8>, SourceError> {
        let whole = 0..version.size;
        let mut read = self.read_ranges(path, version, std::slice::from_ref(&whole))?;
        Ok(read.pop().unwrap_or_default())
    }

    /// Whether reads of `path` wait on a network, so that many should be in flight at once
    /// (see [`ByteSource::read_batch`]).
    fn is_remote(&self, _path: &str) -> bool {
        false
    }

    /// Reads one range of each of `reads`, possibly of different sources; remote sources
    /// issue them concurrently. The results are in the order of `reads`.
    fn read_batch(&self, reads: &[RangeRead<'_>]) -> Vec<Result<Vec<u8>, SourceError>> {
        reads
            .iter()
            .map(|read| {
                self.read_ranges(read.path, read.version, std::slice::from_ref(&read.range))
                    .map(|mut bytes| bytes.pop().unwrap_or_default())
            })
            .collect()
    }

    /// Checks that `path` is still at `version`, without reading it.
    ///
    /// # Errors
    /// [`SourceError::Changed`] or [`SourceError::NotFound`] naming the source.
    fn check_version(&self, path: &str, version: FileVersion) -> Result<(), SourceError>;

    /// Says that `reads` are about to be made, so a source that can start them early does
    /// (local files: the kernel starts reading the ranges into its page cache, and the disk
    /// serves them together instead of one wait per read). Best effort; by default nothing.
    fn will_read(&self, _reads: &[RangeRead<'_>]) {}
}

/// One read of a [`ByteSource::read_batch`].
#[derive(Debug, Clone)]
pub struct RangeRead<'a> {
    /// The source.
    pub path: &'a str,
    /// Its version in the catalog.
    pub version: FileVersion,
    /// The bytes wanted.
    pub range: Range<u64>,
}

/// Version of a local file as the catalog records it.
///
/// # Errors
/// The I/O error of `stat`.
pub fn local_version(meta: &std::fs::Metadata) -> FileVersion {
    FileVersion {
        size: meta.len(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        etag: 0,
    }
}

/// An open source file with the device and inode it was opened as.
struct OpenFile {
    file: File,
    dev: u64,
    ino: u64,
}

/// Local files, read with `pread` through a small cache of open descriptors.
pub struct LocalFiles {
    open: Mutex<LruCache<String, Arc<OpenFile>>>,
}

impl Default for LocalFiles {
    fn default() -> Self {
        LocalFiles {
            open: Mutex::new(LruCache::new(NonZeroUsize::new(256).expect("nonzero"))),
        }
    }
}

impl LocalFiles {
    /// Stats `path` and fails unless it is at `version`.
    fn current(path: &str, version: FileVersion) -> Result<std::fs::Metadata, SourceError> {
        let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
        let found = local_version(&meta);
        if found != version {
            return Err(SourceError::Changed {
                path: path.to_owned(),
                change: VersionChange {
                    indexed: version,
                    found: Some(found),
                },
            });
        }
        Ok(meta)
    }

    fn file(&self, path: &str, version: FileVersion) -> Result<Arc<OpenFile>, SourceError> {
        let meta = Self::current(path, version)?;
        if let Some(entry) = self.open.lock().get(path) {
            if entry.dev == meta.dev() && entry.ino == meta.ino() {
                return Ok(entry.clone());
            }
        }
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        let entry = Arc::new(OpenFile {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
        });
        self.open.lock().put(path.to_owned(), entry.clone());
        Ok(entry)
    }
}

fn io_error(path: &str, source: std::io::Error) -> SourceError {
    if source.kind() == std::io::ErrorKind::NotFound {
        SourceError::NotFound {
            path: path.to_owned(),
        }
    } else {
        SourceError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

impl ByteSource for LocalFiles {
    fn check_version(&self, path: &str, version: FileVersion) -> Result<(), SourceError> {
        Self::current(path, version).map(|_| ())
    }

    fn will_read(&self, reads: &[RangeRead<'_>]) {
        for read in reads {
            // A hint needs no version check: an already open descriptor saves the `stat`
            // that the read itself makes anyway.
            let cached = self.open.lock().get(read.path).cloned();
            let Some(entry) = cached.or_else(|| self.file(read.path, read.version).ok()) else {
                continue;
            };
            let (Ok(start), Ok(len)) = (
                i64::try_from(read.range.start),
                i64::try_from(read.range.end.saturating_sub(read.range.start)),
            ) else {
                continue;
            };
            // SAFETY: the descriptor is open for the call's duration; the call reads no memory.
            unsafe {
                libc::posix_fadvise(
                    entry.file.as_raw_fd(),
                    start,
                    len,
                    libc::POSIX_FADV_WILLNEED,
                );
            }
        }
    }

    fn read_ranges(
        &self,
        path: &str,
        version: FileVersion,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Vec<u8>>, SourceError> {
        let entry = self.file(path, version)?;
        ranges
            .iter()
            .map(|range| {
                let mut buf = vec![0u8; (range.end - range.start) as usize];
                entry
                    .file
                    .read_exact_at(&mut buf, range.start)
                    .map_err(|source| SourceError::Io {
                        path: path.to_owned(),
                        source,
                    })?;
                Ok(buf)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(size: u64, mtime_ns: i64) -> FileVersion {
        FileVersion {
            size,
            mtime_ns,
            etag: 0,
        }
    }

    #[test]
    fn a_change_names_what_changed() {
        let size = VersionChange {
            indexed: version(100, 5),
            found: Some(version(140, 5)),
        };
        assert_eq!(size.to_string(), "size 100 → 140 bytes");
        let mtime = VersionChange {
            indexed: version(100, 1_000_000_000),
            found: Some(version(100, 86_400_000_000_123)),
        };
        assert_eq!(
            mtime.to_string(),
            "mtime 1970-01-01 00:00:01.000000000 UTC → 1970-01-02 00:00:00.000000123 UTC"
        );
        let unknown = VersionChange {
            indexed: version(1, 1),
            found: None,
        };
        assert!(unknown.to_string().contains("no longer matches"));
    }

    #[test]
    fn a_touched_local_file_is_reported_with_both_mtimes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.nc");
        std::fs::write(&path, b"abcd").unwrap();
        let path = path.to_str().unwrap();
        let indexed = local_version(&std::fs::metadata(path).unwrap());
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let error = LocalFiles::default().read_all(path, indexed).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("changed since it was indexed (mtime "),
            "{message}"
        );
        assert!(!message.contains("size"), "{message}");
    }
}
