//! Who may use a cache directory: an advisory `flock` on `<dir>/lock`, held for the life of the
//! process. A mount (and `cache clear`) holds it exclusively; `atlasfs warm` holds it shared, so
//! several warm processes (shards of one job) fill a directory together while no mount runs.
//! A refused caller is told which processes hold the lock (from `/proc/locks`).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How a process uses the cache directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Alone (a mount, `cache clear`): evicts, deletes leftovers, owns the size bound.
    Exclusive,
    /// Together with other shared holders (`atlasfs warm`).
    Shared,
}

/// A process holding the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Its command line, when readable.
    pub command: String,
    /// Whether it holds the lock exclusively.
    pub exclusive: bool,
}

/// The lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "cache dir {} is in use by {}; a cache dir serves one mount at a time \
         (several `atlasfs warm` may share one): unmount or stop it first, or give this config \
         another [cache] dir",
        dir.display(),
        describe(holders)
    )]
    Busy {
        /// The cache directory.
        dir: PathBuf,
        /// Who holds it (empty when `/proc/locks` says nothing).
        holders: Vec<Holder>,
    },
    /// The lock file could not be created or locked.
    #[error("cannot lock cache dir {}: {source}", dir.display())]
    Io {
        /// The cache directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn describe(holders: &[Holder]) -> String {
    if holders.is_empty() {
        return "another atlasfs process".to_owned();
    }
    holders
        .iter()
        .map(|h| {
            let how = if h.exclusive { "" } else { ", shared" };
            if h.command.is_empty() {
                format!("pid {}{how}", h.pid)
            } else {
                format!("pid {} ({}{how})", h.pid, h.command)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A held lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
    mode: LockMode,
}

impl CacheLock {
    /// Takes the lock of `dir` (creating the directory and lock file) without waiting.
    ///
    /// # Errors
    /// [`LockError::Busy`] naming the holders; [`LockError::Io`] when the lock file cannot be
    /// opened (e.g. a read-only directory without one).
    pub fn acquire(dir: &Path, mode: LockMode) -> Result<CacheLock, LockError> {
        let io = |source| LockError::Io {
            dir: dir.to_owned(),
            source,
        };
        let path = dir.join("lock");
        let file = match std::fs::create_dir_all(dir).and_then(|()| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        }) {
            Ok(file) => file,
            // A read-only directory can still be locked through an existing lock file.
            Err(_) => File::open(&path).map_err(io)?,
        };
        let operation = match mode {
            LockMode::Exclusive => libc::LOCK_EX,
            LockMode::Shared => libc::LOCK_SH,
        };
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), operation | libc::LOCK_NB) } != 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let holders = file.metadata().map(|m| holders(&m)).unwrap_or_default();
                return Err(LockError::Busy {
                    dir: dir.to_owned(),
                    holders,
                });
            }
            return Err(io(error));
        }
        Ok(CacheLock { _file: file, mode })
    }

    /// The mode held.
    pub fn mode(&self) -> LockMode {
        self.mode
    }
}

/// The processes `/proc/locks` lists as holding a flock on the file with this metadata.
fn holders(meta: &std::fs::Metadata) -> Vec<Holder> {
    let Ok(table) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    let me = std::process::id();
    let mut out: Vec<Holder> = Vec::new();
    for line in table.lines() {
        // "1: FLOCK  ADVISORY  WRITE 1234 00:2f:5678 0 EOF"; waiters have "->" after the id.
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || fields[1] != "FLOCK" {
            continue;
        }
        let (kind, pid, file) = (fields[3], fields[4], fields[5]);
        let mut parts = file.split(':');
        let matches = match (parts.next(), parts.next(), parts.next()) {
            (Some(ma), Some(mi), Some(ino)) => {
                u32::from_str_radix(ma, 16).ok() == Some(major)
                    && u32::from_str_radix(mi, 16).ok() == Some(minor)
                    && ino.parse::<u64>().ok() == Some(meta.ino())
            }
            _ => false,
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !matches || pid == me || out.iter().any(|h| h.pid == pid) {
            continue;
        }
        let command = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| {
                raw.split(|&b| b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        out.push(Holder {
            pid,
            command,
            exclusive: kind == "WRITE",
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_shared_shares() {
        let dir = tempfile::tempdir().unwrap();
        let a = CacheLock::acquire(dir.path(), LockMode::Shared).unwrap();
        let b = CacheLock::acquire(dir.path(), LockMode::Shared).unwrap();
        assert_eq!(b.mode(), LockMode::Shared);
        let err = CacheLock::acquire(dir.path(), LockMode::Exclusive).unwrap_err();
        assert!(matches!(err, LockError::Busy { .. }), "{err}");
        drop((a, b));
        let ex = CacheLock::acquire(dir.path(), LockMode::Exclusive).unwrap();
        let err = CacheLock::acquire(dir.path(), LockMode::Shared).unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
        drop(ex);
        CacheLock::acquire(dir.path(), LockMode::Exclusive).unwrap();
    }
}
