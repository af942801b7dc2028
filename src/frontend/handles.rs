//! Open file handles: the [`OpenKey`] behind each FUSE file handle, from open to release.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::keyspace::OpenKey;

/// File handle number -> open key.
#[derive(Default)]
pub struct Handles {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<OpenKey>>>,
}

impl Handles {
    /// Registers `open` and returns its handle number.
    pub fn insert(&self, open: OpenKey) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.open.lock().insert(fh, Arc::new(open));
        fh
    }

    /// The open key of a handle.
    pub fn get(&self, fh: u64) -> Option<Arc<OpenKey>> {
        self.open.lock().get(&fh).cloned()
    }

    /// Forgets a handle (the file was closed).
    pub fn remove(&self, fh: u64) {
        self.open.lock().remove(&fh);
    }
}
