//! The storage the indexer parses a remote granule through: a first request for the head of the
//! object (the whole object when it is small), then block-aligned ranged reads for whatever
//! else the metadata needs, each block fetched once.

use std::sync::Arc;

use bytes::Bytes;
use hdf5_reader::{Storage, StorageBuffer};
use parking_lot::Mutex;

use super::object::RemoteStore;
use super::runtime;
use crate::sources::model::FileVersion;

/// Objects up to this size are fetched whole by the first request.
pub const WHOLE_OBJECT_BYTES: u64 = 64 << 10;
/// Size of the first request of a larger object.
pub const HEAD_BYTES: u64 = 64 << 10;
/// Later misses are rounded out to this alignment.
pub const BLOCK_BYTES: u64 = 64 << 10;

/// A remote granule seen through block-aligned ranged reads.
pub struct RangedObject {
    store: Arc<RemoteStore>,
    key: String,
    version: FileVersion,
    spans: Mutex<Vec<(u64, Bytes)>>,
}

impl RangedObject {
    /// `key` of `store`, at `version`.
    pub fn new(store: Arc<RemoteStore>, key: &str, version: FileVersion) -> Self {
        RangedObject {
            store,
            key: key.to_owned(),
            version,
            spans: Mutex::new(Vec::new()),
        }
    }

    fn cached(&self, offset: u64, len: usize) -> Option<StorageBuffer> {
        let end = offset + len as u64;
        self.spans
            .lock()
            .iter()
            .find(|(start, bytes)| *start <= offset && end <= start + bytes.len() as u64)
            .map(|(start, bytes)| {
                let from = (offset - start) as usize;
                StorageBuffer::from_shared_owner(Arc::new(bytes.clone()), from, len)
                    .expect("range inside the span")
            })
    }

    /// The range to fetch for a miss at `offset..offset+len`.
    fn fetch_range(&self, offset: u64, len: usize) -> std::ops::Range<u64> {
        let size = self.version.size;
        let first = self.spans.lock().is_empty();
        if first && size <= WHOLE_OBJECT_BYTES {
            return 0..size;
        }
        let start = offset / BLOCK_BYTES * BLOCK_BYTES;
        let mut end = (offset + len as u64).div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
        if first && start == 0 {
            end = end.max(HEAD_BYTES);
        }
        start..end.min(size)
    }
}

impl Storage for RangedObject {
    fn len(&self) -> u64 {
        self.version.size
    }

    fn read_range(&self, offset: u64, len: usize) -> hdf5_reader::error::Result<StorageBuffer> {
        let end = offset.saturating_add(len as u64);
        if end > self.version.size {
            return Err(hdf5_reader::error::Error::UnexpectedEof {
                offset,
                needed: len as u64,
                available: self.version.size.saturating_sub(offset),
            });
        }
        if let Some(hit) = self.cached(offset, len) {
            return Ok(hit);
        }
        let range = self.fetch_range(offset, len);
        let bytes = runtime()
            .block_on(
                self.store
                    .read_range(&self.key, self.version, range.clone()),
            )
            .map_err(|e| hdf5_reader::error::Error::Io(std::io::Error::other(e.to_string())))?;
        self.spans.lock().push((range.start, bytes));
        Ok(self.cached(offset, len).expect("just fetched"))
    }
}
