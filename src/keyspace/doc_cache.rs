//! Rendered metadata documents kept for the next read, least recently used first out, bounded
//! by their total bytes. A document larger than the bound is rendered for each read and never
//! kept. Rendering happens outside the lock, so readers of other documents never wait for it.

use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

/// A bounded LRU of rendered documents by key.
pub(super) struct RenderedDocs {
    capacity: usize,
    inner: Mutex<Held>,
}

struct Held {
    docs: LruCache<Box<str>, Arc<Vec<u8>>>,
    bytes: usize,
}

impl RenderedDocs {
    /// An empty cache holding at most `capacity` bytes of documents.
    pub(super) fn new(capacity: usize) -> RenderedDocs {
        RenderedDocs {
            capacity,
            inner: Mutex::new(Held {
                docs: LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    /// Document `key` from the cache, or rendered by `render` (and kept when it fits).
    pub(super) fn get_or_render(
        &self,
        key: &str,
        render: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<Arc<Vec<u8>>> {
        if let Some(doc) = self.inner.lock().docs.get(key) {
            return Some(doc.clone());
        }
        let doc = Arc::new(render()?);
        if doc.len() <= self.capacity {
            let mut held = self.inner.lock();
            if let Some(old) = held.docs.put(key.into(), doc.clone()) {
                held.bytes -= old.len();
            }
            held.bytes += doc.len();
            while held.bytes > self.capacity {
                match held.docs.pop_lru() {
                    Some((_, old)) => held.bytes -= old.len(),
                    None => break,
                }
            }
        }
        Some(doc)
    }

    /// Bytes of documents held now.
    pub(super) fn held_bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_recent_documents_within_the_bound() {
        let cache = RenderedDocs::new(10);
        let renders = std::cell::Cell::new(0);
        let doc = |n: usize| {
            renders.set(renders.get() + 1);
            Some(vec![b'x'; n])
        };
        cache.get_or_render("a", || doc(4));
        cache.get_or_render("b", || doc(4));
        assert_eq!(cache.held_bytes(), 8);
        cache.get_or_render("a", || doc(4)); // a is now the most recent
        assert_eq!(renders.get(), 2);
        cache.get_or_render("c", || doc(4)); // evicts b
        assert_eq!(cache.held_bytes(), 8);
        cache.get_or_render("a", || doc(4));
        assert_eq!(renders.get(), 3);
        cache.get_or_render("b", || doc(4));
        assert_eq!(renders.get(), 4);
        // Larger than the bound: served, never kept.
        let big = cache.get_or_render("big", || doc(11)).unwrap();
        assert_eq!(big.len(), 11);
        assert!(cache.held_bytes() <= 10);
        cache.get_or_render("big", || doc(11));
        assert_eq!(renders.get(), 6);
        assert!(cache.get_or_render("none", || None).is_none());
    }
}
