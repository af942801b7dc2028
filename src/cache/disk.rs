//! The disk tier: one checksummed file per chunk (see [`super::entry`], [`super::layout`]),
//! bounded by `max_size` with least-recently-used eviction.
//!
//! - **Index.** Entry sizes and use order live in memory, rebuilt at start by listing the
//!   directory; the order persists as file mtimes (a hit refreshes an entry's mtime when it is
//!   more than a minute old), so a restart keeps roughly the same LRU order.
//! - **Bound.** Space is reserved before a write, evicting least recently used entries first,
//!   so the files never add up to more than `max_size`.
//! - **Crash safety.** Entries are written to `tmp/` and renamed into place; an entry that fails
//!   its check on read is deleted and reported as a miss, never served.
//! - **Failures.** A write that fails (disk full, read-only) is logged and the chunk is served
//!   uncached; see [`super::health`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use lru::LruCache;
use parking_lot::Mutex;

use super::entry::{self, TRAILER_LEN};
use super::health::Health;
use super::key::ChunkKey;
use super::layout;
use super::lock::{CacheLock, LockMode};

/// A hit refreshes the entry's mtime (its persisted LRU position) when older than this.
const TOUCH_AFTER: Duration = Duration::from_secs(60);
/// Shared holders rescan the directory every this many writes, to see the others' entries.
const SHARED_RESCAN_WRITES: u64 = 64;

/// The disk tier could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("disk cache {}: {source}", path.display())]
pub struct DiskError {
    /// The path involved.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

/// Counters of the disk tier.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiskStats {
    /// Lookups answered from disk (entry present and intact).
    pub hits: u64,
    /// Lookups that found no entry.
    pub misses: u64,
    /// Entries that failed their check and were dropped.
    pub corrupt: u64,
    /// Entries written.
    pub writes: u64,
    /// Writes that failed.
    pub write_errors: u64,
    /// Writes skipped while writing was failing.
    pub skipped_writes: u64,
    /// Entries evicted to stay within `max_size`.
    pub evictions: u64,
    /// Entries held.
    pub entries: u64,
    /// Bytes held (entry files, trailers included).
    pub bytes: u64,
    /// Upper bound in bytes.
    pub max_size: u64,
    /// Why writes are failing, while they are.
    pub write_failing: Option<String>,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    corrupt: AtomicU64,
    writes: AtomicU64,
    write_errors: AtomicU64,
    skipped_writes: AtomicU64,
    evictions: AtomicU64,
}

struct Index {
    lru: LruCache<ChunkKey, u64>,
    /// Bytes of the entries in `lru`.
    bytes: u64,
    /// Bytes reserved by writes in progress.
    reserved: u64,
}

/// The disk tier of one cache directory.
pub struct DiskCache {
    dir: PathBuf,
    max_size: u64,
    index: Mutex<Index>,
    counters: Counters,
    health: Health,
    temp_seq: AtomicU64,
    lock: CacheLock,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl DiskCache {
    /// Opens the disk tier of `dir` (which `lock` locks), bounded by `max_size` bytes: lists the
    /// entries, and as exclusive holder deletes unfinished writes and evicts down to the bound.
    ///
    /// # Errors
    /// [`DiskError`] when the entry directories cannot be created or listed.
    pub fn open(dir: &Path, max_size: u64, lock: CacheLock) -> Result<DiskCache, DiskError> {
        let started = std::time::Instant::now();
        let tmp = layout::tmp_dir(dir);
        std::fs::create_dir_all(&tmp).map_err(|source| DiskError {
            path: tmp.clone(),
            source,
        })?;
        let cache = DiskCache {
            dir: dir.to_owned(),
            max_size,
            index: Mutex::new(Index {
                lru: LruCache::unbounded(),
                bytes: 0,
                reserved: 0,
            }),
            counters: Counters::default(),
            health: Health::default(),
            temp_seq: AtomicU64::new(0),
            lock,
        };
        let temps = cache.rescan()?;
        if cache.lock.mode() == LockMode::Exclusive {
            for temp in temps {
                let _ = std::fs::remove_file(temp);
            }
        }
        let index = cache.index.lock();
        tracing::debug!(
            "disk cache {}: {} entries, {} bytes (max {}), listed in {} ms",
            dir.display(),
            index.lru.len(),
            index.bytes,
            max_size,
            started.elapsed().as_millis()
        );
        drop(index);
        Ok(cache)
    }

    /// Rebuilds the index from the directory and evicts down to the bound; returns the temp
    /// files found.
    fn rescan(&self) -> Result<Vec<PathBuf>, DiskError> {
        let listing = layout::list(&self.dir).map_err(|source| DiskError {
            path: layout::chunks_dir(&self.dir),
            source,
        })?;
        let mut index = self.index.lock();
        index.lru.clear();
        index.bytes = 0;
        for found in listing.entries {
            index.bytes += found.size;
            index.lru.put(found.key, found.size);
        }
        let victims = self.evict(&mut index, 0);
        drop(index);
        self.remove(&victims);
        Ok(listing.temps)
    }

    /// Pops least recently used entries until `extra` more bytes fit; returns them.
    fn evict(&self, index: &mut Index, extra: u64) -> Vec<ChunkKey> {
        let mut victims = Vec::new();
        while index.bytes + index.reserved + extra > self.max_size {
            let Some((key, size)) = index.lru.pop_lru() else {
                break;
            };
            index.bytes -= size;
            victims.push(key);
        }
        self.counters
            .evictions
            .fetch_add(victims.len() as u64, Ordering::Relaxed);
        victims
    }

    fn remove(&self, keys: &[ChunkKey]) {
        for &key in keys {
            let path = layout::entry_path(&self.dir, key);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("disk cache: cannot evict {}: {e}", path.display());
                }
            }
        }
    }

    /// Whether an entry for `key` is listed (without reading or checking it).
    pub fn contains(&self, key: ChunkKey) -> bool {
        self.index.lock().lru.contains(&key)
    }

    /// The chunk bytes of `key` when an intact entry exists. A damaged entry is deleted, logged
    /// and reported as absent.
    pub fn get(&self, key: ChunkKey) -> Option<Vec<u8>> {
        if self.index.lock().lru.get(&key).is_none() {
            bump(&self.counters.misses);
            return None;
        }
        let path = layout::entry_path(&self.dir, key);
        match read_entry(&path, key) {
            Ok((data, modified)) => {
                bump(&self.counters.hits);
                touch(&path, modified);
                Some(data)
            }
            Err(ReadError::Io(e)) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("disk cache: cannot read {}: {e}", path.display());
                }
                self.forget(key);
                bump(&self.counters.misses);
                None
            }
            Err(ReadError::Damaged(e)) => {
                tracing::warn!(
                    "disk cache: entry {} is damaged ({e}); dropping it and recomputing the chunk",
                    path.display()
                );
                let _ = std::fs::remove_file(&path);
                self.forget(key);
                bump(&self.counters.corrupt);
                bump(&self.counters.misses);
                None
            }
        }
    }

    fn forget(&self, key: ChunkKey) {
        let mut index = self.index.lock();
        if let Some(size) = index.lru.pop(&key) {
            index.bytes -= size;
        }
    }

    /// Stores `data` as the entry of `key`, evicting least recently used entries to stay
    /// within the bound. Returns whether the entry is now on disk. Failures are logged (see
    /// `health.rs`) and counted, never fatal.
    pub fn put(&self, key: ChunkKey, data: &[u8]) -> bool {
        let size = (data.len() + TRAILER_LEN) as u64;
        if size > self.max_size {
            return false;
        }
        if !self.health.may_write() {
            bump(&self.counters.skipped_writes);
            return false;
        }
        let victims = {
            let mut index = self.index.lock();
            if index.lru.contains(&key) {
                return true;
            }
            let victims = self.evict(&mut index, size);
            index.reserved += size;
            victims
        };
        self.remove(&victims);
        let result = self.write(key, data);
        let mut index = self.index.lock();
        index.reserved -= size;
        match result {
            Ok(()) => {
                if let Some(old) = index.lru.put(key, size) {
                    index.bytes -= old;
                }
                index.bytes += size;
                drop(index);
                self.health.succeeded(&self.dir);
                let writes = self.counters.writes.fetch_add(1, Ordering::Relaxed) + 1;
                if self.lock.mode() == LockMode::Shared && writes % SHARED_RESCAN_WRITES == 0 {
                    let _ = self.rescan();
                }
                true
            }
            Err((path, e)) => {
                drop(index);
                bump(&self.counters.write_errors);
                self.health.failed(&self.dir, &path, &e);
                false
            }
        }
    }

    /// Writes an entry to a temp file and renames it into place.
    fn write(&self, key: ChunkKey, data: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
        let target = layout::entry_path(&self.dir, key);
        let temp = layout::tmp_dir(&self.dir).join(format!(
            "{}.{}.{}",
            key.hex(),
            std::process::id(),
            self.temp_seq.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = std::fs::File::create(&temp).map_err(|e| (temp.clone(), e))?;
            file.write_all(data)
                .and_then(|()| file.write_all(&entry::trailer(key, data)))
                .map_err(|e| (temp.clone(), e))?;
            drop(file);
            let shard = target.parent().expect("entries live in a shard directory");
            std::fs::create_dir_all(shard).map_err(|e| (shard.to_owned(), e))?;
            std::fs::rename(&temp, &target).map_err(|e| (target.clone(), e))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }

    /// Current counters.
    pub fn stats(&self) -> DiskStats {
        let index = self.index.lock();
        let c = &self.counters;
        DiskStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            corrupt: c.corrupt.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
            skipped_writes: c.skipped_writes.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            entries: index.lru.len() as u64,
            bytes: index.bytes,
            max_size: self.max_size,
            write_failing: self.health.failing(),
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Why an entry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("{0}")]
    Io(std::io::Error),
    /// The file is not an intact entry of the key.
    #[error("{0}")]
    Damaged(entry::EntryError),
}

/// Reads and checks the entry file at `path` for `key`; returns the chunk bytes and the
/// file's mtime.
///
/// # Errors
/// [`ReadError`]: unreadable, or damaged in any way.
pub fn read_entry(path: &Path, key: ChunkKey) -> Result<(Vec<u8>, SystemTime), ReadError> {
    let mut file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(ReadError::Io)?;
    let len = entry::check(&bytes, key).map_err(ReadError::Damaged)?;
    bytes.truncate(len);
    Ok((bytes, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
}

/// Refreshes an entry's mtime (its persisted LRU position) when older than a minute; best
/// effort (a read-only directory keeps the old order).
fn touch(path: &Path, modified: SystemTime) {
    let now = SystemTime::now();
    if now
        .duration_since(modified)
        .is_ok_and(|age| age > TOUCH_AFTER)
    {
        if let Ok(file) = std::fs::File::open(path) {
            let _ = file.set_modified(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, max: u64) -> DiskCache {
        let lock = CacheLock::acquire(dir, LockMode::Exclusive).unwrap();
        DiskCache::open(dir, max, lock).unwrap()
    }

    fn entry_size(data_len: usize) -> u64 {
        (data_len + TRAILER_LEN) as u64
    }

    #[test]
    fn entries_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), 1 << 20);
        assert!(cache.put(ChunkKey(1), b"hello"));
        assert_eq!(cache.get(ChunkKey(1)).as_deref(), Some(&b"hello"[..]));
        assert_eq!(cache.get(ChunkKey(2)), None);
        drop(cache);
        let cache = open(dir.path(), 1 << 20);
        assert_eq!(cache.get(ChunkKey(1)).as_deref(), Some(&b"hello"[..]));
        let stats = cache.stats();
        assert_eq!(
            (stats.entries, stats.bytes, stats.hits),
            (1, entry_size(5), 1)
        );
    }

    #[test]
    fn the_bound_holds_and_the_least_recently_used_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let max = 3 * entry_size(100);
        let cache = open(dir.path(), max);
        for k in 0..3 {
            assert!(cache.put(ChunkKey(k), &[k as u8; 100]));
        }
        assert!(cache.get(ChunkKey(0)).is_some()); // 1 is now the least recently used
        assert!(cache.put(ChunkKey(3), &[3; 100]));
        assert!(!cache.contains(ChunkKey(1)));
        assert!(cache.contains(ChunkKey(0)) && cache.contains(ChunkKey(3)));
        let on_disk: u64 = layout::list(dir.path())
            .unwrap()
            .entries
            .iter()
            .map(|e| e.size)
            .sum();
        assert!(on_disk <= max, "{on_disk} > {max}");
        assert_eq!(cache.stats().evictions, 1);
        // Too big for the bound: not stored, nothing evicted.
        assert!(!cache.put(ChunkKey(9), &vec![0; max as usize]));
        assert_eq!(cache.stats().entries, 3);
    }

    #[test]
    fn reopening_with_a_smaller_bound_evicts() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), 1 << 20);
        for k in 0..10 {
            cache.put(ChunkKey(k), &[0; 100]);
        }
        drop(cache);
        let cache = open(dir.path(), 4 * entry_size(100));
        assert_eq!(cache.stats().entries, 4);
        assert_eq!(layout::list(dir.path()).unwrap().entries.len(), 4);
    }

    #[test]
    fn damaged_entries_are_dropped_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), 1 << 20);
        cache.put(ChunkKey(1), &[7; 1000]);
        cache.put(ChunkKey(2), &[8; 1000]);
        let flip = layout::entry_path(dir.path(), ChunkKey(1));
        let mut bytes = std::fs::read(&flip).unwrap();
        bytes[500] ^= 1;
        std::fs::write(&flip, bytes).unwrap();
        let cut = layout::entry_path(dir.path(), ChunkKey(2));
        let file = std::fs::OpenOptions::new().write(true).open(&cut).unwrap();
        file.set_len(600).unwrap();
        assert_eq!(cache.get(ChunkKey(1)), None);
        assert_eq!(cache.get(ChunkKey(2)), None);
        assert!(!flip.exists() && !cut.exists());
        let stats = cache.stats();
        assert_eq!((stats.corrupt, stats.entries), (2, 0));
        assert!(cache.put(ChunkKey(1), &[7; 1000]));
        assert_eq!(cache.get(ChunkKey(1)), Some(vec![7; 1000]));
    }

    #[test]
    fn unfinished_writes_are_cleaned_up_by_the_exclusive_holder() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), 1 << 20));
        let temp = layout::tmp_dir(dir.path()).join("abc.1.0");
        std::fs::write(&temp, b"half an entry").unwrap();
        let shared = CacheLock::acquire(dir.path(), LockMode::Shared).unwrap();
        drop(DiskCache::open(dir.path(), 1 << 20, shared).unwrap());
        assert!(temp.exists(), "a shared holder leaves others' writes alone");
        drop(open(dir.path(), 1 << 20));
        assert!(!temp.exists());
    }

    #[test]
    fn failed_writes_are_counted_and_served_uncached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), 1 << 20);
        // Make the temp directory unusable: a file where the directory should be.
        std::fs::remove_dir_all(layout::tmp_dir(dir.path())).unwrap();
        std::fs::write(layout::tmp_dir(dir.path()), b"not a dir").unwrap();
        assert!(!cache.put(ChunkKey(1), b"x"));
        assert!(
            !cache.put(ChunkKey(2), b"y"),
            "writes pause after a failure"
        );
        let stats = cache.stats();
        assert_eq!((stats.write_errors, stats.skipped_writes), (1, 1));
        assert!(stats.write_failing.is_some());
        assert_eq!(stats.bytes, 0);
    }
}
