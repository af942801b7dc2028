//! Computed chunks kept near the reader. Today: a byte-bounded memory LRU with single flight
//! (concurrent readers of one uncomputed chunk wait for one computation). Knows nothing of
//! what a chunk is; callers supply the key and the computation.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

/// Hit and miss counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct CacheStats {
    /// Reads served from memory.
    pub hits: u64,
    /// Reads that computed the chunk.
    pub misses: u64,
    /// Entries held.
    pub entries: usize,
    /// Bytes held.
    pub bytes: u64,
}

struct Inner<K: Hash + Eq> {
    lru: LruCache<K, Arc<Vec<u8>>>,
    bytes: u64,
    hits: u64,
    misses: u64,
}

/// A memory LRU of chunk bytes, bounded in bytes.
pub struct MemoryCache<K: Hash + Eq + Clone> {
    inner: Mutex<Inner<K>>,
    in_flight: Mutex<HashMap<K, Arc<Mutex<()>>>>,
    capacity: u64,
}

impl<K: Hash + Eq + Clone> MemoryCache<K> {
    /// A cache holding at most `capacity` bytes (0 disables it).
    pub fn new(capacity: u64) -> Self {
        MemoryCache {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
                hits: 0,
                misses: 0,
            }),
            in_flight: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn lookup(&self, key: &K) -> Option<Arc<Vec<u8>>> {
        let mut inner = self.inner.lock();
        let hit = inner.lru.get(key).cloned();
        if hit.is_some() {
            inner.hits += 1;
        }
        hit
    }

    /// The cached bytes of `key`, or computes them with `compute` — once, however many callers
    /// ask at the same time. Errors are not cached.
    ///
    /// # Errors
    /// Whatever `compute` returns.
    pub fn get_or_compute<E>(
        &self,
        key: &K,
        compute: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Arc<Vec<u8>>, E> {
        if let Some(hit) = self.lookup(key) {
            return Ok(hit);
        }
        let gate = self
            .in_flight
            .lock()
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Mutex::new(())))
            .clone();
        let _turn = gate.lock();
        if let Some(hit) = self.lookup(key) {
            return Ok(hit);
        }
        let result = compute();
        self.in_flight.lock().remove(key);
        let bytes = Arc::new(result?);
        let mut inner = self.inner.lock();
        inner.misses += 1;
        let size = bytes.len() as u64;
        if size <= self.capacity {
            inner.bytes += size;
            if let Some(old) = inner.lru.put(key.clone(), bytes.clone()) {
                inner.bytes -= old.len() as u64;
            }
            while inner.bytes > self.capacity {
                match inner.lru.pop_lru() {
                    Some((_, evicted)) => inner.bytes -= evicted.len() as u64,
                    None => break,
                }
            }
        }
        Ok(bytes)
    }

    /// Current counters.
    pub fn stats(&self) -> CacheStats {
        let inner = self.inner.lock();
        CacheStats {
            hits: inner.hits,
            misses: inner.misses,
            entries: inner.lru.len(),
            bytes: inner.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn evicts_least_recently_used_beyond_capacity() {
        let cache = MemoryCache::new(10);
        let ok = |n: usize| move || Ok::<_, ()>(vec![0u8; n]);
        cache.get_or_compute(&1, ok(4)).unwrap();
        cache.get_or_compute(&2, ok(4)).unwrap();
        cache.get_or_compute(&1, ok(4)).unwrap(); // 1 is now most recent
        cache.get_or_compute(&3, ok(4)).unwrap(); // evicts 2
        let stats = cache.stats();
        assert_eq!(
            (stats.entries, stats.bytes, stats.hits, stats.misses),
            (2, 8, 1, 3)
        );
        let computed = AtomicUsize::new(0);
        cache
            .get_or_compute(&2, || {
                computed.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(vec![0u8; 4])
            })
            .unwrap();
        assert_eq!(
            computed.load(Ordering::SeqCst),
            1,
            "2 was evicted and recomputed"
        );
    }

    #[test]
    fn concurrent_readers_share_one_computation() {
        let cache = Arc::new(MemoryCache::new(1 << 20));
        let computed = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, computed) = (cache.clone(), computed.clone());
                std::thread::spawn(move || {
                    cache
                        .get_or_compute(&7, || {
                            computed.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok::<_, ()>(vec![1u8; 16])
                        })
                        .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(*t.join().unwrap(), vec![1u8; 16]);
        }
        assert_eq!(computed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn errors_are_not_cached() {
        let cache: MemoryCache<u8> = MemoryCache::new(100);
        assert!(cache
            .get_or_compute(&1, || Err::<Vec<u8>, _>("boom"))
            .is_err());
        assert_eq!(
            *cache.get_or_compute(&1, || Ok::<_, &str>(vec![5])).unwrap(),
            vec![5]
        );
    }
}
