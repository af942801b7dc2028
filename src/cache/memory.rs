//! The memory tier: hot chunk bytes in a byte-bounded LRU. No I/O, no single flight (the
//! two-tier [`super::ChunkCache`] coordinates computations).

use std::hash::Hash;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

/// Counters of the memory tier.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryStats {
    /// Lookups answered from memory.
    pub hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
    /// Entries held.
    pub entries: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Upper bound in bytes.
    pub capacity: u64,
}

struct Inner<K: Hash + Eq> {
    lru: LruCache<K, Arc<Vec<u8>>>,
    bytes: u64,
    hits: u64,
    misses: u64,
}

/// A memory LRU of chunk bytes, bounded in bytes.
pub struct MemoryCache<K: Hash + Eq> {
    inner: Mutex<Inner<K>>,
    capacity: u64,
}

impl<K: Hash + Eq> MemoryCache<K> {
    /// A cache holding at most `capacity` bytes (0 disables it).
    pub fn new(capacity: u64) -> Self {
        MemoryCache {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
                hits: 0,
                misses: 0,
            }),
            capacity,
        }
    }

    /// The bound in bytes (0: off).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The bytes of `key`, marking it most recently used.
    pub fn get(&self, key: &K) -> Option<Arc<Vec<u8>>> {
        let mut inner = self.inner.lock();
        let hit = inner.lru.get(key).cloned();
        if hit.is_some() {
            inner.hits += 1;
        } else {
            inner.misses += 1;
        }
        hit
    }

    /// The length of `key`'s bytes when held, without counting a lookup or changing the order.
    pub fn len_of(&self, key: &K) -> Option<u64> {
        self.inner.lock().lru.peek(key).map(|b| b.len() as u64)
    }

    /// Whether `key` is held, without counting a lookup or changing the order.
    pub fn contains(&self, key: &K) -> bool {
        self.inner.lock().lru.contains(key)
    }

    /// Keeps `bytes` under `key`, evicting the least recently used entries beyond capacity;
    /// returns whether it was kept (values larger than the capacity are not) and the keys
    /// evicted.
    pub fn put(&self, key: K, bytes: Arc<Vec<u8>>) -> (bool, Vec<K>) {
        let size = bytes.len() as u64;
        if size > self.capacity {
            return (false, Vec::new());
        }
        let mut inner = self.inner.lock();
        inner.bytes += size;
        if let Some(old) = inner.lru.put(key, bytes) {
            inner.bytes -= old.len() as u64;
        }
        let mut evicted = Vec::new();
        while inner.bytes > self.capacity {
            match inner.lru.pop_lru() {
                Some((key, bytes)) => {
                    inner.bytes -= bytes.len() as u64;
                    evicted.push(key);
                }
                None => break,
            }
        }
        (true, evicted)
    }

    /// Current counters.
    pub fn stats(&self) -> MemoryStats {
        let inner = self.inner.lock();
        MemoryStats {
            hits: inner.hits,
            misses: inner.misses,
            entries: inner.lru.len() as u64,
            bytes: inner.bytes,
            capacity: self.capacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_beyond_capacity() {
        let cache = MemoryCache::new(10);
        let bytes = |n: usize| Arc::new(vec![0u8; n]);
        cache.put(1, bytes(4));
        cache.put(2, bytes(4));
        assert!(cache.get(&1).is_some()); // 1 is now most recent
        assert_eq!(cache.put(3, bytes(4)), (true, vec![2]));
        assert!(cache.get(&2).is_none());
        let stats = cache.stats();
        assert_eq!(
            (stats.entries, stats.bytes, stats.hits, stats.misses),
            (2, 8, 1, 1)
        );
    }

    #[test]
    fn values_beyond_capacity_and_a_zero_capacity_keep_nothing() {
        let cache = MemoryCache::new(3);
        assert_eq!(cache.put(1, Arc::new(vec![0u8; 4])), (false, vec![]));
        assert!(!cache.contains(&1));
        let off = MemoryCache::new(0);
        off.put(1, Arc::new(vec![0u8; 1]));
        assert_eq!(off.stats().entries, 0);
    }

    #[test]
    fn replacing_a_key_keeps_the_byte_count_right() {
        let cache = MemoryCache::new(100);
        cache.put(1, Arc::new(vec![0u8; 10]));
        cache.put(1, Arc::new(vec![0u8; 30]));
        assert_eq!(cache.stats().bytes, 30);
    }
}
