//! Computed chunks kept near the reader, in two tiers: a byte-bounded memory LRU of hot chunks
//! over a bounded, checksummed, persistent disk LRU. Concurrent readers of one uncomputed chunk
//! wait for a single computation. Views read their inputs' chunks decoded: a third, memory-only
//! LRU keeps decoded copies of compressed input chunks, so a source chunk many samples or view
//! chunks read is decoded once while it stays hot. Knows nothing of what a chunk is: callers supply the key (a
//! hash of everything the bytes depend on) and the computation.
//!
//! | file | owns |
//! |---|---|
//! | `key.rs` | [`ChunkKey`] |
//! | `memory.rs` | the memory tier |
//! | `flight.rs` | single flight |
//! | `entry.rs` | the on-disk entry format (header attribute with key and checksums) |
//! | `layout.rs` | paths under the cache directory, listing and clearing entries |
//! | `entry_file.rs` | an entry file: the chunk's bytes with its header attribute; reading and checking it |
//! | `seal.rs` | an entry's seal: checked and unchanged since, so not hashed again |
//! | `disk.rs` | the disk tier: index, LRU bound, atomic writes, damaged-entry handling |
//! | `classes.rs` | the disk tier's use order: ordinary chunks and retained ones (samples) |
//! | `writeback.rs` | deferred disk writes on an idle-priority thread, flushed at unmount |
//! | `health.rs` | pausing and warning when the disk cannot be written |
//! | `shared.rs` | the shared tier on object storage: lookups before computing, background uploads |
//! | `lock.rs` | who may use a cache directory (flock) |
//! | `stats.rs` | the counters file a running mount keeps for `atlasfs cache stats` |

mod classes;
mod disk;
pub mod entry;
mod entry_file;
mod flight;
mod health;
pub mod key;
pub mod layout;
pub mod lock;
mod memory;
mod seal;
pub mod shared;
pub mod stats;
mod writeback;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use disk::{DiskCache, DiskError, DiskStats};
pub use entry_file::{read_entry, CheckedEntry, ReadError};
pub use key::ChunkKey;
pub use lock::{CacheLock, Holder, LockError, LockMode};
pub use memory::{MemoryCache, MemoryStats};
pub use shared::{SharedStats, SharedTier};

use flight::{Flights, Joined};
use shared::Lookup;
use writeback::WriteBack;

/// The memory the decoded tier of input chunks gets with no memory tier (`warm`): a view's
/// chunks read their inputs' chunks many times over.
const DECODED_WITHOUT_TIER: u64 = 256 << 20;

/// The least memory the decoded tier gets out of a memory budget.
const DECODED_MIN: u64 = 64 << 20;

/// The most of a memory budget set aside for freed chunk-sized buffers the daemon's allocator
/// keeps for reuse.
pub const REUSED_BUFFERS_MAX: u64 = 64 << 20;

/// The share of a memory budget of `memory` bytes the daemon's allocator may keep in freed
/// chunk-sized buffers for reuse: an eighth, at most [`REUSED_BUFFERS_MAX`] (none with no
/// memory tier). [`ChunkCache::new`] leaves it out of the two memory tiers.
pub fn reused_buffer_share(memory: u64) -> u64 {
    (memory / 8).min(REUSED_BUFFERS_MAX)
}

/// How a memory budget of `memory` bytes is shared: (the memory tier, the decoded tier). The
/// decoded tier takes a quarter (at least [`DECODED_MIN`]) and the memory tier what the
/// [`reused_buffer_share`] leaves of the rest, so all three together hold no more than
/// `memory` once it is 256 MiB or more — the daemon's chunk bytes are what was configured.
fn memory_shares(memory: u64) -> (u64, u64) {
    if memory == 0 {
        return (0, DECODED_WITHOUT_TIER);
    }
    let decoded = memory / 4;
    (
        memory - decoded - reused_buffer_share(memory),
        decoded.max(DECODED_MIN),
    )
}

/// Where a chunk's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The memory tier.
    Memory,
    /// The disk tier.
    Disk,
    /// Computed by this caller.
    Computed,
    /// Computed by a concurrent caller this one waited for.
    Shared,
    /// The shared tier (computed by another node or process).
    SharedTier,
}

/// Counters of both tiers and of computations.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheStats {
    /// The memory tier.
    pub memory: MemoryStats,
    /// The disk tier, when there is one.
    pub disk: Option<DiskStats>,
    /// Chunks computed (misses of both tiers).
    pub computed: u64,
    /// Reads that waited for a computation already in progress instead of starting another.
    pub shared: u64,
    /// Computations that failed.
    pub failed: u64,
    /// Computed chunks waiting to be written to the disk tier.
    #[serde(default)]
    pub pending_writes: u64,
    /// Input chunks decoded for views' region reads: computed from their sources, or decoded
    /// from a compressed cached copy (a hit of a tier decodes nothing).
    #[serde(default)]
    pub decoded: u64,
    /// The shared tier, when there is one.
    #[serde(default)]
    pub shared_tier: Option<SharedStats>,
    /// The memory held by decoded input chunks (its share of `[cache] memory`).
    #[serde(default)]
    pub decoded_memory: MemoryStats,
}

/// The two-tier chunk cache.
pub struct ChunkCache {
    memory: MemoryCache<ChunkKey>,
    disk: Option<Arc<DiskCache>>,
    /// Deferred writes to `disk` (none without a memory tier: chunks are then written at once).
    writeback: Option<Arc<WriteBack>>,
    flights: Flights<ChunkKey>,
    /// Decoded copies of compressed input chunks, with their own single flight.
    decoded: MemoryCache<ChunkKey>,
    decodes: Flights<ChunkKey>,
    decoded_count: AtomicU64,
    computed: AtomicU64,
    shared: AtomicU64,
    failed: AtomicU64,
    /// Chunks computed by any node, on object storage.
    shared_tier: Option<SharedTier>,
}

impl ChunkCache {
    /// A cache of `memory` bytes in memory over `disk` (none: memory only): three quarters hold
    /// chunks, a quarter (at least 64 MiB) decoded input chunks; with `memory` 0 there is no
    /// memory tier and decoded input chunks get 256 MiB.
    pub fn new(memory: u64, disk: Option<DiskCache>) -> Self {
        let (memory, decoded) = memory_shares(memory);
        let disk = disk.map(Arc::new);
        let writeback = match &disk {
            Some(disk) if memory > 0 => Some(WriteBack::start(disk.clone())),
            _ => None,
        };
        ChunkCache {
            memory: MemoryCache::new(memory),
            disk,
            writeback,
            flights: Flights::default(),
            decoded: MemoryCache::new(decoded),
            decodes: Flights::default(),
            decoded_count: AtomicU64::new(0),
            computed: AtomicU64::new(0),
            shared: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            shared_tier: None,
        }
    }

    /// This cache over the shared tier `tier`: chunks worth keeping on disk are looked up
    /// there before they are computed, and uploaded once computed here.
    #[must_use]
    pub fn with_shared_tier(mut self, tier: SharedTier) -> Self {
        self.shared_tier = Some(tier);
        self
    }

    /// The cache of a cache directory: `memory` bytes in memory over a disk tier of `max_size`
    /// bytes in `dir`, used in `mode`. A disk tier that cannot be opened (read-only or
    /// unwritable directory) is left out with a warning: chunks are then served uncached.
    /// `max_size` 0 turns the disk tier off.
    ///
    /// # Errors
    /// [`LockError::Busy`] when another process uses `dir` in a conflicting mode.
    pub fn open_dir(
        dir: &std::path::Path,
        memory: u64,
        max_size: u64,
        mode: LockMode,
    ) -> Result<ChunkCache, LockError> {
        if max_size == 0 {
            return Ok(ChunkCache::new(memory, None));
        }
        let disk = match CacheLock::acquire(dir, mode) {
            Ok(lock) => match DiskCache::open(dir, max_size, lock) {
                Ok(disk) => Some(disk),
                Err(e) => {
                    tracing::warn!("{e}; serving chunks without a disk cache");
                    None
                }
            },
            Err(busy @ LockError::Busy { .. }) => return Err(busy),
            Err(e) => {
                tracing::warn!("{e}; serving chunks without a disk cache");
                None
            }
        };
        Ok(ChunkCache::new(memory, disk))
    }

    /// The bytes of `key`: from memory, else from disk (promoted to memory), else computed with
    /// `compute` — once, however many callers ask at the same time — and stored in both tiers.
    /// Errors are not cached.
    ///
    /// # Errors
    /// Whatever `compute` returns.
    pub fn get_or_compute<E>(
        &self,
        key: ChunkKey,
        compute: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<(Arc<Vec<u8>>, Served), E> {
        self.get_or_compute_kept(key, true, compute)
    }

    /// [`ChunkCache::get_or_compute`], keeping a computed chunk in memory only unless
    /// `on_disk` (chunks as cheap to recompute as to read back).
    ///
    /// # Errors
    /// Whatever `compute` returns.
    pub fn get_or_compute_kept<E>(
        &self,
        key: ChunkKey,
        on_disk: bool,
        compute: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<(Arc<Vec<u8>>, Served), E> {
        if let Some(hit) = self.memory.get(&key) {
            return Ok((hit, Served::Memory));
        }
        let mut compute = Some(compute);
        loop {
            let leader = match self.flights.join(&key) {
                Joined::Leader(leader) => leader,
                Joined::Follower(flight) => match flight.wait() {
                    Some(bytes) => {
                        self.shared.fetch_add(1, Ordering::Relaxed);
                        return Ok((bytes, Served::Shared));
                    }
                    None => continue, // the leader failed: try ourselves
                },
            };
            // A computation may have finished between the memory lookup and joining.
            if self.memory.contains(&key) {
                if let Some(hit) = self.memory.get(&key) {
                    leader.finish(Some(hit.clone()));
                    return Ok((hit, Served::Memory));
                }
            }
            if let Some(bytes) = self.disk.as_ref().and_then(|d| d.get(key)) {
                let bytes = Arc::new(bytes);
                self.keep(key, bytes.clone(), false);
                leader.finish(Some(bytes.clone()));
                return Ok((bytes, Served::Disk));
            }
            let shared_tier = self.shared_tier.as_ref().filter(|_| on_disk);
            let mut damaged = false;
            if let Some(tier) = shared_tier {
                match tier.get(key) {
                    Lookup::Hit(bytes) => {
                        let bytes = Arc::new(bytes);
                        self.keep(key, bytes.clone(), true);
                        leader.finish(Some(bytes.clone()));
                        return Ok((bytes, Served::SharedTier));
                    }
                    Lookup::Damaged => damaged = true,
                    Lookup::Miss => {}
                }
            }
            let compute = compute.take().expect("a caller computes at most once");
            return match compute() {
                Ok(bytes) => {
                    self.computed.fetch_add(1, Ordering::Relaxed);
                    let bytes = Arc::new(bytes);
                    self.keep(key, bytes.clone(), on_disk);
                    if let Some(tier) = shared_tier {
                        tier.offer(key, bytes.clone(), damaged);
                    }
                    leader.finish(Some(bytes.clone()));
                    Ok((bytes, Served::Computed))
                }
                Err(e) => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    leader.finish(None);
                    Err(e)
                }
            };
        }
    }

    /// Keeps `bytes` in memory and, when `computed`, on disk: deferred while the memory tier
    /// holds it, at once otherwise. Queued chunks the memory tier evicts are written now.
    fn keep(&self, key: ChunkKey, bytes: Arc<Vec<u8>>, computed: bool) {
        let (kept, evicted) = self.memory.put(key, bytes.clone());
        if let Some(writeback) = &self.writeback {
            for old in evicted {
                writeback.write_now(old);
            }
        }
        if !computed {
            return;
        }
        match (&self.writeback, &self.disk) {
            (Some(writeback), _) if kept => writeback.defer(key, bytes),
            (_, Some(disk)) => {
                disk.put(key, &bytes);
            }
            _ => {}
        }
    }

    /// Keeps `bytes` as chunk `key`, computed on the way by another chunk's computation, unless
    /// the memory tier holds it already; counted as computed. Stored as a computed chunk is: in
    /// memory, and on disk when `on_disk`. Not with a shared tier: there every chunk is looked
    /// up in the tier first (a damaged entry is replaced, an intact one is not computed here),
    /// so the chunk's own operator computes it when asked.
    pub fn offer(&self, key: ChunkKey, bytes: Vec<u8>, on_disk: bool) {
        if !self.takes_offer(key) {
            return;
        }
        self.computed.fetch_add(1, Ordering::Relaxed);
        self.keep(key, Arc::new(bytes), on_disk);
    }

    /// Whether [`ChunkCache::offer`] would keep chunk `key`.
    pub fn takes_offer(&self, key: ChunkKey) -> bool {
        self.shared_tier.is_none() && !self.memory.contains(&key)
    }

    /// The decoded values of the input chunk `key`: kept from an earlier call, else `decode`d
    /// once however many callers ask at the same time. Errors are not kept.
    ///
    /// # Errors
    /// Whatever `decode` returns.
    pub fn decoded_or<E>(
        &self,
        key: ChunkKey,
        decode: impl FnOnce() -> Result<Arc<Vec<u8>>, E>,
    ) -> Result<Arc<Vec<u8>>, E> {
        if let Some(hit) = self.decoded.get(&key) {
            return Ok(hit);
        }
        let mut decode = Some(decode);
        loop {
            let leader = match self.decodes.join(&key) {
                Joined::Leader(leader) => leader,
                Joined::Follower(flight) => match flight.wait() {
                    Some(values) => return Ok(values),
                    None => continue,
                },
            };
            if let Some(hit) = self.decoded.get(&key) {
                leader.finish(Some(hit.clone()));
                return Ok(hit);
            }
            let decode = decode.take().expect("a caller decodes at most once");
            return match decode() {
                Ok(values) => {
                    self.decoded.put(key, values.clone());
                    leader.finish(Some(values.clone()));
                    Ok(values)
                }
                Err(e) => {
                    leader.finish(None);
                    Err(e)
                }
            };
        }
    }

    /// Counts an input chunk computed for a view's region read (its values were read and
    /// decoded from the source).
    pub fn count_decoded(&self) {
        self.decoded_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes every computed chunk still waiting for the disk tier, and waits for the uploads
    /// to the shared tier (call before exiting).
    pub fn flush(&self) {
        if let Some(writeback) = &self.writeback {
            writeback.flush();
        }
        if let Some(tier) = &self.shared_tier {
            tier.flush();
        }
    }

    /// Whether `key` is held in memory or listed on disk (nothing is read or checked).
    pub fn contains(&self, key: ChunkKey) -> bool {
        self.memory.contains(&key) || self.disk.as_ref().is_some_and(|d| d.contains(key))
    }

    /// The length of `key`'s bytes when held in memory or listed on disk, without reading them.
    pub fn cached_len(&self, key: ChunkKey) -> Option<u64> {
        self.memory
            .len_of(&key)
            .or_else(|| self.disk.as_ref().and_then(|d| d.len_of(key)))
    }

    /// Chunks being computed (or read from disk) right now.
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }

    /// Whether `key` is held in memory.
    pub fn in_memory(&self, key: ChunkKey) -> bool {
        self.memory.contains(&key)
    }

    /// Whether there is a memory tier of chunks.
    pub fn has_memory_tier(&self) -> bool {
        self.memory.capacity() > 0
    }

    /// Whether decoded values of `key` are held in memory.
    pub fn decoded_in_memory(&self, key: ChunkKey) -> bool {
        self.decoded.contains(&key)
    }

    /// The disk tier, if any.
    pub fn disk(&self) -> Option<&DiskCache> {
        self.disk.as_deref()
    }

    /// Current counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            memory: self.memory.stats(),
            disk: self.disk.as_deref().map(DiskCache::stats),
            computed: self.computed.load(Ordering::Relaxed),
            shared: self.shared.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            pending_writes: self.writeback.as_ref().map_or(0, |w| w.pending().0),
            decoded: self.decoded_count.load(Ordering::Relaxed),
            shared_tier: self.shared_tier.as_ref().map(SharedTier::stats),
            decoded_memory: self.decoded.stats(),
        }
    }
}

impl Drop for ChunkCache {
    fn drop(&mut self) {
        if let Some(writeback) = &self.writeback {
            writeback.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn disk(dir: &std::path::Path) -> DiskCache {
        let lock = CacheLock::acquire(dir, LockMode::Exclusive).unwrap();
        DiskCache::open(dir, 1 << 20, lock).unwrap()
    }

    #[test]
    fn the_memory_budget_holds_both_memory_tiers_and_the_reused_buffers() {
        const MIB: u64 = 1 << 20;
        for memory in [256 * MIB, 512 * MIB, 10 << 30] {
            let cache = ChunkCache::new(memory, None);
            let (tier, decoded) = (cache.memory.capacity(), cache.decoded.capacity());
            let reused = reused_buffer_share(memory);
            assert_eq!(tier + decoded + reused, memory, "{memory}");
            assert_eq!(decoded, memory / 4);
            assert_eq!(reused, (memory / 8).min(64 * MIB));
        }
        let small = ChunkCache::new(8 * MIB, None);
        assert_eq!(
            (small.memory.capacity(), small.decoded.capacity()),
            (8 * MIB - 2 * MIB - MIB, 64 * MIB)
        );
        let off = ChunkCache::new(0, None);
        assert!(!off.has_memory_tier());
        assert_eq!(off.decoded.capacity(), 256 * MIB);
        assert_eq!(reused_buffer_share(0), 0);
    }

    #[test]
    fn concurrent_readers_share_one_computation() {
        let cache = Arc::new(ChunkCache::new(1 << 20, None));
        let computed = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, computed) = (cache.clone(), computed.clone());
                std::thread::spawn(move || {
                    cache
                        .get_or_compute(ChunkKey(7), || {
                            computed.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok::<_, ()>(vec![1u8; 16])
                        })
                        .unwrap()
                        .0
                })
            })
            .collect();
        for t in threads {
            assert_eq!(*t.join().unwrap(), vec![1u8; 16]);
        }
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        let stats = cache.stats();
        assert_eq!(stats.computed, 1);
    }

    #[test]
    fn single_flight_holds_without_a_memory_tier() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ChunkCache::new(0, Some(disk(dir.path()))));
        let computed = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (cache, computed) = (cache.clone(), computed.clone());
                std::thread::spawn(move || {
                    cache
                        .get_or_compute(ChunkKey(3), || {
                            computed.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(30));
                            Ok::<_, ()>(vec![3u8; 64])
                        })
                        .unwrap()
                        .0
                })
            })
            .collect();
        for t in threads {
            assert_eq!(*t.join().unwrap(), vec![3u8; 64]);
        }
        // Later readers find it on disk.
        let (bytes, served) = cache
            .get_or_compute(ChunkKey(3), || Err::<Vec<u8>, _>("must not compute"))
            .unwrap();
        assert_eq!((bytes.len(), served), (64, Served::Disk));
        assert_eq!(computed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn tiers_are_consulted_in_order_and_errors_are_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::new(1 << 20, Some(disk(dir.path())));
        assert!(cache
            .get_or_compute(ChunkKey(1), || Err::<Vec<u8>, _>("boom"))
            .is_err());
        let (_, served) = cache
            .get_or_compute(ChunkKey(1), || Ok::<_, ()>(vec![5]))
            .unwrap();
        assert_eq!(served, Served::Computed);
        let (_, served) = cache
            .get_or_compute(ChunkKey(1), || Ok::<_, ()>(vec![6]))
            .unwrap();
        assert_eq!(served, Served::Memory);
        drop(cache);
        let cache = ChunkCache::new(1 << 20, Some(disk(dir.path())));
        let (bytes, served) = cache
            .get_or_compute(ChunkKey(1), || Ok::<_, ()>(vec![6]))
            .unwrap();
        assert_eq!((bytes.as_slice(), served), (&[5u8][..], Served::Disk));
        let stats = cache.stats();
        assert_eq!(stats.disk.unwrap().hits, 1);
        assert_eq!(stats.computed, 0);
    }
}
