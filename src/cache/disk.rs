//! The disk tier: one checksummed file per chunk (see [`super::entry`], [`super::entry_file`],
//! [`super::layout`]), bounded by `max_size` with least-recently-used eviction.
//!
//! - **Index.** Entry sizes and use order live in memory, rebuilt at start by listing the
//!   directory; the order persists as file mtimes (a hit refreshes an entry's mtime when it is
//!   more than an hour old, resealing it: rarely, since that costs two metadata writes), so a
//!   restart keeps the LRU order to within an hour.
//! - **Bound.** Space is reserved before a write, evicting least recently used entries first,
//!   so the files never add up to more than `max_size`.
//! - **Crash safety.** Entries are written to `tmp/`, given their header attribute and renamed
//!   into place; an entry that fails its check on read is deleted and reported as a miss, never
//!   served.
//! - **Passthrough.** [`DiskCache::open_verified`] opens an entry's file for the kernel to read
//!   directly. A sealed entry (see [`super::seal`]) is handed out as is; any other is checked in
//!   full and sealed first. Entries are sealed when written.
//! - **Failures.** A write that fails (disk full, read-only) is logged and the chunk is served
//!   uncached; see [`super::health`].

use std::collections::HashMap;
use std::io::{Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use super::classes::Classes;
use super::entry;
use super::entry_file::{check_streamed, probe_xattrs, read_entry, set_header, ReadError};
use super::health::Health;
use super::key::ChunkKey;
use super::layout;
use super::lock::{CacheLock, LockMode};
use super::seal;

/// A hit refreshes the entry's mtime (its persisted LRU position) when older than this.
const TOUCH_AFTER: Duration = Duration::from_secs(3600);
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
    /// Retained chunks (samples) not written because retained chunks fill the cache.
    #[serde(default)]
    pub retained_full: u64,
    /// Opens handed to the kernel as FUSE passthrough of an entry's file (also counted as hits).
    #[serde(default)]
    pub passthrough: u64,
    /// Entry files hashed in full before being passed through (a sealed entry is not).
    #[serde(default)]
    pub checks: u64,
    /// Entries held.
    pub entries: u64,
    /// Bytes held (entry files; their 64-byte header attributes are not counted).
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
    retained_full: AtomicU64,
    passthrough: AtomicU64,
    checks: AtomicU64,
}

struct Index {
    lru: Classes,
    /// Bytes of the entries in `lru`.
    bytes: u64,
    /// Bytes reserved by writes in progress.
    reserved: u64,
    /// Entries this process checked for passthrough that could not be sealed (a read-only
    /// directory, or a filesystem without nanosecond times): trusted while the file is the same.
    verified: HashMap<ChunkKey, Stamp>,
}

/// What identifies an unchanged file without reading it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
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
        probe_xattrs(&tmp).map_err(|source| DiskError {
            path: tmp.clone(),
            source,
        })?;
        let cache = DiskCache {
            dir: dir.to_owned(),
            max_size,
            index: Mutex::new(Index {
                lru: Classes::new(),
                bytes: 0,
                reserved: 0,
                verified: HashMap::new(),
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
        index.verified.clear();
        index.bytes = 0;
        for found in listing.entries {
            index.bytes += found.size;
            index.lru.put(found.key, found.size);
        }
        let victims = self.evict(&mut index, 0, ChunkKey::of(0, false));
        drop(index);
        self.remove(&victims);
        Ok(listing.temps)
    }

    /// Pops least recently used entries until `extra` more bytes fit for `key` (a retained
    /// key evicts ordinary entries only, see [`Classes`]); returns them.
    fn evict(&self, index: &mut Index, extra: u64, key: ChunkKey) -> Vec<ChunkKey> {
        let mut victims = Vec::new();
        while index.bytes + index.reserved + extra > self.max_size {
            let Some((key, size)) = index.lru.pop_victim(key) else {
                break;
            };
            index.bytes -= size;
            index.verified.remove(&key);
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

    /// The length of the listed entry of `key` (the chunk's bytes), without reading or checking
    /// it: a damaged entry is found when it is read, and its chunk recomputed to the same bytes.
    pub fn len_of(&self, key: ChunkKey) -> Option<u64> {
        self.index.lock().lru.peek(&key)
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
            Ok(entry) => {
                bump(&self.counters.hits);
                if is_stale(&entry.meta) {
                    seal::seal(&entry.file, key, entry.meta.len(), &entry.header);
                }
                Some(entry.data)
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
                self.drop_damaged(key, &path, &e);
                bump(&self.counters.misses);
                None
            }
        }
    }

    fn forget(&self, key: ChunkKey) {
        let mut index = self.index.lock();
        index.verified.remove(&key);
        if let Some(size) = index.lru.pop(&key) {
            index.bytes -= size;
        }
    }

    /// Drops a damaged entry: logged, deleted, forgotten and counted.
    fn drop_damaged(&self, key: ChunkKey, path: &Path, e: &entry::EntryError) {
        tracing::warn!(
            "disk cache: entry {} is damaged ({e}); dropping it and recomputing the chunk",
            path.display()
        );
        let _ = std::fs::remove_file(path);
        self.forget(key);
        bump(&self.counters.corrupt);
    }

    /// The data file of the entry of `key`, opened read-only for the kernel to read directly
    /// (FUSE passthrough): the file holds exactly the chunk's bytes. A sealed entry is handed
    /// out as is; any other is checked in full (data and header checksums) and sealed, and a
    /// damaged one is dropped and `None` returned, as for an absent one. A hit marks the entry
    /// used. Nothing is counted as a hit until [`DiskCache::count_passthrough`]. The kernel reads
    /// a backing file to its end, so one that is not `len` bytes long is not handed out.
    pub fn open_verified(&self, key: ChunkKey, len: u64) -> Option<std::fs::File> {
        // Marks the entry used in the index.
        self.index.lock().lru.get(&key)?;
        let path = layout::entry_path(&self.dir, key);
        let opened = std::fs::File::open(&path).and_then(|file| {
            let meta = file.metadata()?;
            Ok((file, meta))
        });
        let (mut file, meta) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("disk cache: cannot open {}: {e}", path.display());
                }
                self.forget(key);
                return None;
            }
        };
        if let Some(header) = seal::sealed_header(&file, &meta, key) {
            if is_stale(&meta) {
                seal::seal(&file, key, meta.len(), &header);
            }
            return (meta.len() == len).then_some(file);
        }
        if self.index.lock().verified.get(&key) == Some(&Stamp::of(&meta)) {
            return (meta.len() == len).then_some(file);
        }
        bump(&self.counters.checks);
        let header = match check_streamed(&mut file, meta.len(), key)
            .and_then(|header| file.rewind().map(|()| header).map_err(ReadError::Io))
        {
            Ok(header) => header,
            Err(ReadError::Io(e)) => {
                tracing::warn!("disk cache: cannot read {}: {e}", path.display());
                return None;
            }
            Err(ReadError::Damaged(e)) => {
                self.drop_damaged(key, &path, &e);
                return None;
            }
        };
        seal::seal(&file, key, meta.len(), &header);
        if let Ok(sealed) = file.metadata() {
            let mut index = self.index.lock();
            // Still listed: not evicted while it was being checked.
            if index.lru.contains(&key) {
                index.verified.insert(key, Stamp::of(&sealed));
            }
        }
        (meta.len() == len).then_some(file)
    }

    /// Counts a hit served from an entry [`DiskCache::open_verified`] opened.
    pub fn count_hit(&self) {
        bump(&self.counters.hits);
    }

    /// Counts an entry handed to the kernel (a disk hit served by passthrough).
    pub fn count_passthrough(&self) {
        bump(&self.counters.hits);
        bump(&self.counters.passthrough);
    }

    /// Stores `data` as the entry of `key`, evicting least recently used entries to stay
    /// within the bound. Returns whether the entry is now on disk. Failures are logged (see
    /// `health.rs`) and counted, never fatal.
    pub fn put(&self, key: ChunkKey, data: &[u8]) -> bool {
        let size = data.len() as u64;
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
            if key.is_retained()
                && index.lru.retained_bytes() + index.reserved + size > self.max_size
            {
                // Full of retained chunks: they are kept, this one is served uncached.
                bump(&self.counters.retained_full);
                return false;
            }
            let victims = self.evict(&mut index, size, key);
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
            let header = entry::header(key, data);
            file.write_all(data)
                .and_then(|()| set_header(&file, &header))
                .map_err(|e| (temp.clone(), e))?;
            seal::seal(&file, key, data.len() as u64, &header);
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
            retained_full: c.retained_full.load(Ordering::Relaxed),
            passthrough: c.passthrough.load(Ordering::Relaxed),
            checks: c.checks.load(Ordering::Relaxed),
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

/// Whether an entry's mtime (its persisted LRU position) is old enough for a hit to refresh.
fn is_stale(meta: &std::fs::Metadata) -> bool {
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    SystemTime::now()
        .duration_since(modified)
        .is_ok_and(|age| age > TOUCH_AFTER)
}

#[cfg(test)]
mod tests;
