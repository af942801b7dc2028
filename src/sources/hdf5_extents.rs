//! What indexing learns of where an HDF5 file's metadata lies: the superblock (behind any user
//! block), and every byte range the indexer read while walking groups, object headers and chunk
//! indexes ([`MetadataRecorder`] wraps the storage `hdf5-reader` parses). [`FileExtents`] then
//! says why a range claimed to hold data cannot: inside the superblock, past the end of the
//! file, or over metadata. It knows nothing of variables or chunk grids.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hdf5_reader::storage::{DynStorage, Storage, StorageBuffer};
use hdf5_reader::superblock::Superblock;
use parking_lot::Mutex;

/// A storage that records the ranges read through it once [`MetadataRecorder::start`] is
/// called. Only metadata is read through it: chunk data is never read at index time.
pub(crate) struct MetadataRecorder {
    inner: DynStorage,
    recording: AtomicBool,
    reads: Mutex<Vec<Range<u64>>>,
}

impl MetadataRecorder {
    /// Wraps `inner`; nothing is recorded until [`MetadataRecorder::start`].
    pub(crate) fn new(inner: DynStorage) -> Arc<Self> {
        Arc::new(MetadataRecorder {
            inner,
            recording: AtomicBool::new(false),
            reads: Mutex::new(Vec::new()),
        })
    }

    /// Starts recording (after the superblock search, whose probes and read-ahead are not
    /// metadata: the superblock's exact extent is added by [`FileExtents::new`]).
    pub(crate) fn start(&self) {
        self.recording.store(true, Ordering::Relaxed);
    }

    /// The ranges read so far.
    fn reads(&self) -> Vec<Range<u64>> {
        self.reads.lock().clone()
    }
}

impl Storage for MetadataRecorder {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_range(&self, offset: u64, len: usize) -> hdf5_reader::error::Result<StorageBuffer> {
        let bytes = self.inner.read_range(offset, len)?;
        if self.recording.load(Ordering::Relaxed) && len > 0 {
            self.reads
                .lock()
                .push(offset..offset.saturating_add(len as u64));
        }
        Ok(bytes)
    }
}

/// Where data cannot lie in one HDF5 file (absolute byte positions).
#[derive(Debug, Clone)]
pub(crate) struct FileExtents {
    file_size: u64,
    superblock: Range<u64>,
    /// Sorted, disjoint.
    metadata: Vec<Range<u64>>,
}

impl FileExtents {
    /// The extents of a file of `file_size` bytes with superblock `sb`, after indexing read
    /// the metadata `recorder` saw.
    pub(crate) fn new(file_size: u64, sb: &Superblock, recorder: &MetadataRecorder) -> Self {
        let base = sb.base_address;
        let superblock = base..base.saturating_add(superblock_len(sb));
        FileExtents {
            file_size,
            superblock,
            metadata: merge(recorder.reads()),
        }
    }

    #[cfg(test)]
    fn from_parts(file_size: u64, superblock: Range<u64>, metadata: Vec<Range<u64>>) -> Self {
        FileExtents {
            file_size,
            superblock,
            metadata: merge(metadata),
        }
    }

    /// Why `len` bytes at absolute `offset` cannot be data of this file, or `None` if they
    /// can.
    pub(crate) fn check_data(&self, offset: u64, len: u64) -> Option<String> {
        if len == 0 {
            return Some(format!("zero-length data at byte {offset}"));
        }
        let Some(end) = offset.checked_add(len) else {
            return Some(format!(
                "{len} bytes at byte {offset} overflow a file offset"
            ));
        };
        if offset < self.superblock.end {
            return Some(format!(
                "address {} lies in the superblock (bytes {}..{})",
                offset.wrapping_sub(self.superblock.start),
                self.superblock.start,
                self.superblock.end
            ));
        }
        if end > self.file_size {
            return Some(format!(
                "{len} bytes at byte {offset} run past the end of the file ({} bytes)",
                self.file_size
            ));
        }
        // The first metadata range ending after `offset` is the only candidate to overlap.
        let i = self.metadata.partition_point(|m| m.end <= offset);
        match self.metadata.get(i) {
            Some(m) if m.start < end => Some(format!(
                "bytes {offset}..{end} overlap HDF5 metadata at bytes {}..{}",
                m.start, m.end
            )),
            _ => None,
        }
    }
}

/// Why a file of `file_size` bytes is a truncated copy, as libhdf5 judges it: shorter than
/// the end of file its superblock records. `None` when it is not (or records no end).
///
/// The recorded end counts from the base address the superblock records, which a user block
/// written by libhdf5 includes and one prepended later does not; libhdf5 (and this) takes the
/// base from where the superblock is found and moves the end by the difference.
pub(crate) fn truncation(storage: &dyn Storage, sb: &Superblock, file_size: u64) -> Option<String> {
    let size = usize::from(sb.offset_size).min(8);
    let undefined = u64::MAX.checked_shr(64 - 8 * size as u32).unwrap_or(0);
    if sb.eof_address == undefined {
        return None;
    }
    let field = match sb.version {
        0 => 24,
        1 => 28,
        _ => 12,
    };
    let bytes = storage
        .read_range(sb.base_address.checked_add(field)?, size)
        .ok()?;
    let recorded_base = bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let end = sb
        .eof_address
        .checked_sub(recorded_base)?
        .checked_add(sb.base_address)?;
    (end > file_size).then(|| {
        format!("truncated: the superblock says the file ends at byte {end} but it has {file_size}")
    })
}

/// Bytes of a superblock (the driver-info block and extension are objects of their own).
fn superblock_len(sb: &Superblock) -> u64 {
    let os = u64::from(sb.offset_size);
    match sb.version {
        // Signature and versions (16), K values and flags (8), four addresses, and the root
        // group's symbol table entry (two addresses, cache type, reserved, 16-byte scratch).
        0 => 24 + 4 * os + (2 * os + 24),
        // As version 0 with the indexed-storage K and its reserved bytes.
        1 => 28 + 4 * os + (2 * os + 24),
        // Signature, version, sizes, flags (12), four addresses, checksum.
        _ => 12 + 4 * os + 4,
    }
}

/// Sorts ranges and merges those that touch or overlap.
fn merge(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extents() -> FileExtents {
        // A 512-byte user block, a 96-byte superblock, metadata at 700..900 and 1000..1100.
        FileExtents::from_parts(
            10_000,
            512..608,
            vec![1000..1050, 700..800, 790..900, 1040..1100],
        )
    }

    #[test]
    fn data_between_metadata_is_accepted() {
        let e = extents();
        assert_eq!(e.check_data(608, 92), None, "right after the superblock");
        assert_eq!(
            e.check_data(900, 100),
            None,
            "exactly between two metadata ranges"
        );
        assert_eq!(e.check_data(1100, 8900), None, "up to the last byte");
    }

    #[test]
    fn impossible_addresses_are_named() {
        let e = extents();
        let why = |o, l| e.check_data(o, l).unwrap_or_default();
        assert!(why(512, 8).contains("address 0 lies in the superblock"));
        assert!(why(600, 100).contains("superblock"));
        assert!(why(9_999, 2).contains("past the end of the file (10000 bytes)"));
        assert!(why(u64::MAX - 1, 8).contains("overflow"));
        assert!(why(2000, 0).contains("zero-length"));
        assert!(why(850, 100).contains("overlap HDF5 metadata at bytes 700..900"));
        assert!(
            why(650, 60).contains("700..900"),
            "a range reaching into metadata"
        );
        assert!(why(1099, 1).contains("1000..1100"), "merged ranges");
        assert!(why(600, 5000).contains("superblock"));
    }

    #[test]
    fn superblock_sizes_follow_the_format() {
        let mut sb = Superblock {
            version: 0,
            offset_size: 8,
            length_size: 8,
            group_leaf_node_k: 4,
            group_internal_node_k: 16,
            indexed_storage_k: 0,
            consistency_flags: 0,
            base_address: 0,
            free_space_address: u64::MAX,
            eof_address: 0,
            driver_info_address: u64::MAX,
            root_symbol_table_entry: None,
            root_object_header_address: None,
            extension_address: None,
        };
        assert_eq!(superblock_len(&sb), 96);
        sb.version = 1;
        assert_eq!(superblock_len(&sb), 100);
        sb.version = 2;
        assert_eq!(superblock_len(&sb), 48);
        sb.version = 3;
        sb.offset_size = 4;
        assert_eq!(superblock_len(&sb), 32);
    }
}
