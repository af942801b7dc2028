//! The disk tier's use order, kept per class of entry: ordinary chunks, cycled least recently
//! used first, and retained chunks (samples of sample sets, see [`ChunkKey::is_retained`]),
//! which a retained chunk never evicts. An epoch over a sample set larger than the cache then
//! hits the samples cached first instead of evicting each one before it is read again (plain
//! LRU gives ~0 hits for a sequential epoch); ordinary chunks still evict retained ones once
//! no ordinary chunk is left, so views keep working next to a full set.

use lru::LruCache;

use super::key::ChunkKey;

/// Entry sizes in use order, per class.
pub(super) struct Classes {
    ordinary: LruCache<ChunkKey, u64>,
    retained: LruCache<ChunkKey, u64>,
    /// Bytes of the entries in `retained`.
    retained_bytes: u64,
}

impl Classes {
    pub(super) fn new() -> Self {
        Classes {
            ordinary: LruCache::unbounded(),
            retained: LruCache::unbounded(),
            retained_bytes: 0,
        }
    }

    /// Bytes of the retained entries.
    pub(super) fn retained_bytes(&self) -> u64 {
        self.retained_bytes
    }

    fn of(&mut self, key: ChunkKey) -> &mut LruCache<ChunkKey, u64> {
        if key.is_retained() {
            &mut self.retained
        } else {
            &mut self.ordinary
        }
    }

    /// The size of `key`'s entry, marking it used.
    pub(super) fn get(&mut self, key: &ChunkKey) -> Option<u64> {
        self.of(*key).get(key).copied()
    }

    /// The size of `key`'s entry, without marking it used.
    pub(super) fn peek(&self, key: &ChunkKey) -> Option<u64> {
        let class = if key.is_retained() {
            &self.retained
        } else {
            &self.ordinary
        };
        class.peek(key).copied()
    }

    pub(super) fn contains(&self, key: &ChunkKey) -> bool {
        self.peek(key).is_some()
    }

    /// Lists `key` as most recently used; returns the size it replaced.
    pub(super) fn put(&mut self, key: ChunkKey, size: u64) -> Option<u64> {
        let old = self.of(key).put(key, size);
        if key.is_retained() {
            self.retained_bytes = self.retained_bytes + size - old.unwrap_or(0);
        }
        old
    }

    /// Unlists `key`; returns its size.
    pub(super) fn pop(&mut self, key: &ChunkKey) -> Option<u64> {
        let size = self.of(*key).pop(key);
        if key.is_retained() {
            self.retained_bytes -= size.unwrap_or(0);
        }
        size
    }

    /// The next entry to evict to make room for `key`: the least recently used ordinary entry,
    /// else — for an ordinary `key` only — the least recently used retained one.
    pub(super) fn pop_victim(&mut self, key: ChunkKey) -> Option<(ChunkKey, u64)> {
        self.ordinary.pop_lru().or_else(|| {
            let victim = (!key.is_retained())
                .then(|| self.retained.pop_lru())
                .flatten();
            if let Some((_, size)) = victim {
                self.retained_bytes -= size;
            }
            victim
        })
    }

    pub(super) fn clear(&mut self) {
        self.ordinary.clear();
        self.retained.clear();
        self.retained_bytes = 0;
    }

    pub(super) fn len(&self) -> usize {
        self.ordinary.len() + self.retained.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retained_entries_evict_only_ordinary_ones() {
        let mut classes = Classes::new();
        let (a, b) = (ChunkKey::of(2, false), ChunkKey::of(4, false));
        let (r1, r2) = (ChunkKey::of(6, true), ChunkKey::of(8, true));
        for key in [r1, a, r2, b] {
            classes.put(key, 1);
        }
        classes.get(&a);
        // For a retained newcomer: ordinary entries in LRU order, then nothing.
        let next = ChunkKey::of(10, true);
        assert_eq!(classes.pop_victim(next), Some((b, 1)));
        assert_eq!(classes.pop_victim(next), Some((a, 1)));
        assert_eq!(classes.pop_victim(next), None);
        // An ordinary newcomer may evict retained entries, oldest first.
        assert_eq!(classes.pop_victim(a), Some((r1, 1)));
        assert_eq!((classes.len(), classes.retained_bytes()), (1, 1));
        assert!(classes.contains(&r2) && !classes.contains(&r1));
    }
}
