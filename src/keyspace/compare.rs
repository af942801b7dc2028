//! Two snapshots' key spaces compared key by key: which of the keys a front end has handed out
//! serve something different in the next snapshot (other bytes, another size or kind, or
//! nothing), so the front end can make the kernel forget exactly those and keep its caches of
//! everything else. Documents compare by content; chunks by their cache keys, which hash exactly
//! what their bytes depend on, and a whole array at once when its recipe and geometry are equal.

use std::collections::HashMap;

use super::{KeySpace, Resolved};
use crate::tree::ArrayNode;

impl KeySpace {
    /// The keys among `keys` that `next` serves differently from this key space: gone, another
    /// kind (directory or file), or other bytes. Computes nothing but hashes.
    pub fn changed_keys<'k>(
        &self,
        next: &KeySpace,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Vec<&'k str> {
        let mut arrays = HashMap::new();
        keys.into_iter()
            .filter(|key| !self.same_key(next, key, &mut arrays))
            .collect()
    }

    /// Whether `key` serves the same thing here and in `next`; `arrays` memoises, per pair of
    /// array ids, whether the two arrays serve identical chunks.
    fn same_key(
        &self,
        next: &KeySpace,
        key: &str,
        arrays: &mut HashMap<(usize, usize), bool>,
    ) -> bool {
        match (self.resolve(key), next.resolve(key)) {
            (Some(Resolved::Dir), Some(Resolved::Dir)) => true,
            (Some(Resolved::Document(old)), Some(Resolved::Document(new))) => {
                old == new && self.document(key) == next.document(key)
            }
            (Some(Resolved::Chunk(old, index)), Some(Resolved::Chunk(new, next_index))) => {
                index == next_index
                    && (*arrays
                        .entry((old.id, new.id))
                        .or_insert_with(|| self.same_array(old, next, new))
                        || self.chunk_key(old, &index) == next.chunk_key(new, &index))
            }
            _ => false,
        }
    }

    /// Whether every chunk of `old` (of this key space) equals the same chunk of `new` (of
    /// `next`): equal geometry and recipe fingerprints give equal cache keys for every index.
    fn same_array(&self, old: &ArrayNode, next: &KeySpace, new: &ArrayNode) -> bool {
        old.geometry == new.geometry && *self.fingerprint(old) == *next.fingerprint(new)
    }
}
