//! Open file handles: the [`OpenKey`] behind each FUSE file handle, from open to release, with
//! the key space it was opened on, so a file opened before a snapshot swap keeps reading the
//! snapshot it was opened on; likewise the key space of each open directory, so a listing read
//! in several requests lists one snapshot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::keyspace::{KeySpace, OpenKey};

/// An open file: its key and the key space it belongs to.
pub struct OpenFile {
    /// The key space the file was opened on.
    pub keys: Arc<KeySpace>,
    /// The opened key.
    pub key: OpenKey,
}

/// File handle number -> open file or directory.
#[derive(Default)]
pub struct Handles {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Arc<KeySpace>>>,
}

impl Handles {
    /// Registers `open` and returns its handle number.
    pub fn insert(&self, open: OpenFile) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.open.lock().insert(fh, Arc::new(open));
        fh
    }

    /// Registers a directory opened on `keys` and returns its handle number.
    pub fn insert_dir(&self, keys: Arc<KeySpace>) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.dirs.lock().insert(fh, keys);
        fh
    }

    /// The key space an open directory lists.
    pub fn dir(&self, fh: u64) -> Option<Arc<KeySpace>> {
        self.dirs.lock().get(&fh).cloned()
    }

    /// Forgets a directory handle.
    pub fn remove_dir(&self, fh: u64) {
        self.dirs.lock().remove(&fh);
    }

    /// The open file of a handle.
    pub fn get(&self, fh: u64) -> Option<Arc<OpenFile>> {
        self.open.lock().get(&fh).cloned()
    }

    /// Forgets a handle (the file was closed).
    pub fn remove(&self, fh: u64) {
        self.open.lock().remove(&fh);
    }
}
