//! Open keys: a file resolved once when a front end opens it, so the reads that follow (a
//! kernel reads a 4 MiB chunk in dozens of requests) neither re-resolve the path, re-hash the
//! recipe nor re-check the sources: the chunk is fetched (cache or computation, sources
//! checked) on the first read and each later read is a slice of the same bytes.

use std::sync::Arc;

use parking_lot::Mutex;

use super::{KeyError, KeySpace, Resolved, Slice};
use crate::tree::ArrayNode;

/// A key opened for reading.
pub struct OpenKey {
    target: Target,
    /// Whether every source was unchanged at open (front ends keep kernel caches only then).
    current: bool,
}

enum Target {
    Document(Arc<Vec<u8>>),
    Chunk {
        array: Arc<ArrayNode>,
        index: Vec<u64>,
        bytes: Mutex<Option<Arc<Vec<u8>>>>,
    },
}

impl OpenKey {
    /// Whether the content matched its sources when opened: always for metadata; for a chunk,
    /// whether every source it reads was unchanged.
    pub fn is_current(&self) -> bool {
        self.current
    }
}

impl KeySpace {
    /// The disk-cache file of an open chunk whose sources were unchanged at open, checked and
    /// opened read-only, for a front end to hand to the kernel (FUSE passthrough): the file holds
    /// exactly the chunk's bytes. `None` for documents, changed sources, chunks not on disk and
    /// damaged entries (which are dropped); the caller then reads through [`KeySpace::read_open`].
    /// Call [`KeySpace::count_passthrough`] once the kernel took the file.
    pub fn passthrough_file(&self, open: &OpenKey) -> Option<std::fs::File> {
        let Target::Chunk { array, index, .. } = &open.target else {
            return None;
        };
        if !open.current {
            return None;
        }
        let disk = self.cache.disk()?;
        disk.open_verified(self.chunk_key(array, index), self.chunk_len(array, index))
    }

    /// Reads up to `size` bytes at `offset` of an open chunk straight from its disk-cache entry
    /// (one [`KeySpace::passthrough_file`] would hand out) into `buf`: no chunk-sized buffer is
    /// filled, hashed and kept per read. A read from the start counts as a disk hit (a chunk
    /// read in several requests counts once). `None` when there is no such entry; the caller
    /// then reads through [`KeySpace::read_open`].
    pub fn read_cached_entry(
        &self,
        open: &OpenKey,
        offset: u64,
        size: usize,
        buf: &mut Vec<u8>,
    ) -> Option<std::io::Result<usize>> {
        use std::os::unix::fs::FileExt;
        let file = self.passthrough_file(open)?;
        if let (0, Some(disk)) = (offset, self.cache.disk()) {
            disk.count_hit();
        }
        buf.resize(size, 0);
        let mut filled = 0;
        while filled < size {
            match file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(filled))
    }

    /// Counts a chunk handed to the kernel (a disk hit served by passthrough).
    pub fn count_passthrough(&self) {
        if let Some(disk) = self.cache.disk() {
            disk.count_passthrough();
        }
    }

    /// Whether this key space has a disk cache (whose entries passthrough could hand out).
    pub fn has_disk_cache(&self) -> bool {
        self.cache.disk().is_some()
    }
}

impl KeySpace {
    /// Opens file `key` for reading; `None` when it is not a file of the key space.
    pub fn open(&self, key: &str) -> Option<OpenKey> {
        Some(match self.resolve(key)? {
            Resolved::Dir => return None,
            Resolved::Document(_) => OpenKey {
                target: Target::Document(self.document(key)?),
                current: true,
            },
            Resolved::Chunk(array, index) => OpenKey {
                current: self.chunks().check(array, &index).is_ok(),
                target: Target::Chunk {
                    array: array.clone(),
                    index,
                    bytes: Mutex::new(None),
                },
            },
        })
    }

    /// Up to `size` bytes of an open key from `offset`.
    ///
    /// # Errors
    /// [`KeyError::Chunk`] when the chunk cannot be computed or its sources changed (naming the
    /// array, chunk key and source file).
    pub fn read_open(&self, open: &OpenKey, offset: u64, size: usize) -> Result<Slice, KeyError> {
        let bytes = match &open.target {
            Target::Document(doc) => doc.clone(),
            Target::Chunk {
                array,
                index,
                bytes,
            } => {
                let held = bytes.lock().clone();
                match held {
                    Some(held) => held,
                    None => {
                        let fetched = self.chunk(array, index)?.0;
                        *bytes.lock() = Some(fetched.clone());
                        self.read_ahead(array, index);
                        fetched
                    }
                }
            }
        };
        Ok(Slice::new(bytes, offset, size))
    }
}
