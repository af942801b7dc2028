//! Open file handles: the [`OpenKey`] behind each FUSE file handle, from open to release, with
//! the key space it was opened on, so a file opened before a snapshot swap keeps reading the
//! snapshot it was opened on; likewise the key space of each open directory, so a listing read
//! in several requests lists one snapshot.
//!
//! Also how the kernel reads each inode's open files ([`Io`]): the kernel refuses to mix files
//! read through the daemon and files passed through to a backing file on one inode, and wants
//! one backing file per inode, so the first open of an inode decides for every open that
//! overlaps it, and the backing file lives until the inode's last handle is released.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fuser::BackingId;
use parking_lot::Mutex;

use crate::keyspace::{KeySpace, OpenKey};

/// An open file: its key and the key space it belongs to.
pub(super) struct OpenFile {
    /// The key space the file was opened on.
    pub keys: Arc<KeySpace>,
    /// The opened key.
    pub key: OpenKey,
    /// The inode it was opened through.
    pub ino: u64,
}

/// How the kernel reads the open files of one inode.
#[derive(Clone)]
pub(super) enum Io {
    /// Through the daemon's `read` replies.
    Daemon,
    /// Directly from a disk-cache file (FUSE passthrough).
    Passthrough(Arc<BackingId>),
}

/// The open files of one inode.
struct InodeIo {
    open: usize,
    io: Io,
}

/// An inode's files are passed through, and this open may not be (its sources changed).
#[derive(Debug, thiserror::Error)]
#[error("the inode's open files read a cache entry whose sources have changed since")]
pub(super) struct Conflict;

/// File handle number -> open file or directory.
#[derive(Default)]
pub(super) struct Handles {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Arc<KeySpace>>>,
    inodes: Mutex<HashMap<u64, InodeIo>>,
}

impl Handles {
    /// Decides how the kernel reads one more open file of `ino`: as its files already open do,
    /// else as `first` (called without holding any lock) says. Every `Ok` is to be followed by
    /// [`Handles::insert`] of a file of `ino`, whose release ends it.
    ///
    /// # Errors
    /// [`Conflict`] when files of `ino` are passed through and `may_pass_through` is false.
    pub(super) fn io_for_open(
        &self,
        ino: u64,
        may_pass_through: bool,
        first: impl FnOnce() -> Io,
    ) -> Result<Io, Conflict> {
        let join = |inodes: &mut HashMap<u64, InodeIo>| {
            inodes.get_mut(&ino).map(|state| {
                if matches!(state.io, Io::Passthrough(_)) && !may_pass_through {
                    return Err(Conflict);
                }
                state.open += 1;
                Ok(state.io.clone())
            })
        };
        if let Some(joined) = join(&mut self.inodes.lock()) {
            return joined;
        }
        let io = first();
        let mut inodes = self.inodes.lock();
        // Another open of the inode may have decided meanwhile; ours is dropped then.
        if let Some(joined) = join(&mut inodes) {
            return joined;
        }
        inodes.insert(
            ino,
            InodeIo {
                open: 1,
                io: io.clone(),
            },
        );
        Ok(io)
    }

    /// Registers `open` and returns its handle number.
    pub(super) fn insert(&self, open: OpenFile) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.open.lock().insert(fh, Arc::new(open));
        fh
    }

    /// Registers a directory opened on `keys` and returns its handle number.
    pub(super) fn insert_dir(&self, keys: Arc<KeySpace>) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.dirs.lock().insert(fh, keys);
        fh
    }

    /// The key space an open directory lists.
    pub(super) fn dir(&self, fh: u64) -> Option<Arc<KeySpace>> {
        self.dirs.lock().get(&fh).cloned()
    }

    /// Forgets a directory handle.
    pub(super) fn remove_dir(&self, fh: u64) {
        self.dirs.lock().remove(&fh);
    }

    /// The open file of a handle.
    pub(super) fn get(&self, fh: u64) -> Option<Arc<OpenFile>> {
        self.open.lock().get(&fh).cloned()
    }

    /// Forgets a handle (the file was closed); the last handle of an inode releases its backing
    /// file, if any.
    pub(super) fn remove(&self, fh: u64) {
        let Some(open) = self.open.lock().remove(&fh) else {
            return;
        };
        let mut inodes = self.inodes.lock();
        if let Some(state) = inodes.get_mut(&open.ino) {
            state.open = state.open.saturating_sub(1);
            if state.open == 0 {
                inodes.remove(&open.ino);
            }
        }
    }
}
