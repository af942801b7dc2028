//! Walks a version-1 chunk B-tree (the chunk index of datasets written by libhdf5 1.8-style
//! layouts) into its leaf entries, checking the ordering libhdf5's lookups rely on: the keys of
//! a node strictly increase (element offsets compared in C order; the last key, which closes the
//! node, may equal the one before), and every chunk under child `i` of a node lies from key `i`
//! up to key `i + 1` of every node above it (two entries on one chunk are refused elsewhere).
//! A key that breaks this (a moved key) means libhdf5 would find other chunks than the entries
//! say, so the walk fails instead of returning entries that cannot all be right.

use std::cmp::Ordering;
use std::collections::HashSet;

use hdf5_reader::btree_v1::{BTreeV1Key, BTreeV1Node};
use hdf5_reader::chunk_index::ChunkEntry;
use hdf5_reader::io::Cursor;
use hdf5_reader::storage::Storage;

/// Deeper trees than this are corrupt (a real chunk B-tree of 2^64 chunks is far shallower).
const MAX_DEPTH: usize = 64;

/// What a walk needs besides the node address.
struct Walk<'a> {
    storage: &'a dyn Storage,
    offset_size: u8,
    length_size: u8,
    ndim: usize,
    visited: HashSet<u64>,
    entries: Vec<ChunkEntry>,
}

/// The leaf entries of the chunk B-tree rooted at `address`, for a dataset of rank `ndim`.
///
/// # Errors
/// A message naming the node when a node cannot be read, the tree loops or is too deep, or its
/// keys are out of order.
pub(crate) fn collect_chunk_entries(
    storage: &dyn Storage,
    address: u64,
    offset_size: u8,
    length_size: u8,
    ndim: usize,
) -> Result<Vec<ChunkEntry>, String> {
    let mut walk = Walk {
        storage,
        offset_size,
        length_size,
        ndim,
        visited: HashSet::new(),
        entries: Vec::new(),
    };
    walk.node(address, None, None, MAX_DEPTH)?;
    Ok(walk.entries)
}

impl Walk<'_> {
    /// Walks the node at `address`, whose chunks must lie in `low..=high` (each bound absent at
    /// the tree's edge).
    fn node(
        &mut self,
        address: u64,
        low: Option<&[u64]>,
        high: Option<&[u64]>,
        depth: usize,
    ) -> Result<(), String> {
        if Cursor::is_undefined_offset(address, self.offset_size) {
            return Ok(());
        }
        if depth == 0 {
            return Err(format!(
                "B-tree node at address {address} is nested too deep"
            ));
        }
        if !self.visited.insert(address) {
            return Err(format!("B-tree node at address {address} is reached twice"));
        }
        let node = self.read(address)?;
        if node.node_type != 1 {
            return Err(format!(
                "B-tree node at address {address} has type {}, not a chunk node",
                node.node_type
            ));
        }
        let keys = node
            .keys
            .iter()
            .map(|k| match k {
                BTreeV1Key::RawData { offsets, .. } if offsets.len() > self.ndim => {
                    Ok(&offsets[..self.ndim])
                }
                _ => Err(format!(
                    "unexpected key in B-tree node at address {address}"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The last key closes the node: libhdf5 may leave it equal to the last chunk's.
        let last = keys.len().saturating_sub(2);
        for (i, pair) in keys.windows(2).enumerate() {
            if let [a, b] = pair {
                let order = compare(a, b);
                if order == Ordering::Greater || (order == Ordering::Equal && i < last) {
                    return Err(format!(
                        "B-tree node at address {address}: key {} {b:?} does not follow key {i} \
                         {a:?}",
                        i + 1
                    ));
                }
            }
        }
        for (i, &child) in node.children.iter().enumerate() {
            let (Some(&key), Some(&next)) = (keys.get(i), keys.get(i + 1)) else {
                return Err(format!("B-tree node at address {address} lacks keys"));
            };
            let outside = low.is_some_and(|l| compare(key, l) == Ordering::Less)
                || high.is_some_and(|h| compare(key, h) == Ordering::Greater);
            if outside {
                return Err(format!(
                    "B-tree node at address {address}: key {i} {key:?} lies outside the range \
                     {low:?}..{high:?} its parent gives it"
                ));
            }
            if node.level == 0 {
                if let Some(BTreeV1Key::RawData {
                    chunk_size,
                    filter_mask,
                    offsets,
                }) = node.keys.get(i)
                {
                    self.entries.push(ChunkEntry {
                        address: child,
                        size: u64::from(*chunk_size),
                        filter_mask: *filter_mask,
                        offsets: offsets.clone(),
                    });
                }
            } else {
                let high = match high {
                    Some(h) if compare(h, next) == Ordering::Less => h,
                    _ => next,
                };
                let (key, high) = (key.to_vec(), high.to_vec());
                self.node(child, Some(&key), Some(&high), depth - 1)?;
            }
        }
        Ok(())
    }

    /// Reads and parses the node at `address`.
    fn read(&self, address: u64) -> Result<BTreeV1Node, String> {
        let what = |e: hdf5_reader::error::Error| format!("B-tree node at address {address}: {e}");
        let header_len = 8 + 2 * usize::from(self.offset_size);
        let header = self.storage.read_range(address, header_len).map_err(what)?;
        let entries = match header.as_ref().get(6..8) {
            Some(&[a, b]) => usize::from(u16::from_le_bytes([a, b])),
            _ => return Err(format!("B-tree node at address {address} is truncated")),
        };
        let key_len = 8 + (self.ndim + 1) * 8;
        let len = header_len + (entries + 1) * key_len + entries * usize::from(self.offset_size);
        let bytes = self.storage.read_range(address, len).map_err(what)?;
        let rank = u32::try_from(self.ndim).map_err(|_| "rank too large".to_owned())?;
        BTreeV1Node::parse(
            &mut Cursor::new(bytes.as_ref()),
            self.offset_size,
            self.length_size,
            Some(rank),
        )
        .map_err(what)
    }
}

/// Orders element offsets as libhdf5 orders chunk keys: in C order, first dimension first.
fn compare(a: &[u64], b: &[u64]) -> Ordering {
    a.cmp(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdf5_reader::storage::BytesStorage;

    /// A rank-1 chunk node at `level` with keys `keys` and children `children`.
    fn node(level: u8, keys: &[u64], children: &[u64]) -> Vec<u8> {
        let mut b = b"TREE".to_vec();
        b.extend([1, level]);
        b.extend((children.len() as u16).to_le_bytes());
        b.extend(u64::MAX.to_le_bytes());
        b.extend(u64::MAX.to_le_bytes());
        for (i, k) in keys.iter().enumerate() {
            b.extend(16u32.to_le_bytes());
            b.extend(0u32.to_le_bytes());
            b.extend(k.to_le_bytes());
            b.extend(0u64.to_le_bytes());
            if let Some(c) = children.get(i) {
                b.extend(c.to_le_bytes());
            }
        }
        b
    }

    /// A two-level tree: a root at 0 over leaves at 512 and 1024.
    fn tree(left: &[u64], right: &[u64], root: &[u64]) -> BytesStorage {
        let mut file = vec![0u8; 2048];
        for (at, bytes) in [
            (0, node(1, root, &[512, 1024])),
            (512, node(0, left, &[4000, 4100])),
            (1024, node(0, right, &[4200, 4300])),
        ] {
            file[at..at + bytes.len()].copy_from_slice(&bytes);
        }
        BytesStorage::new(file)
    }

    fn offsets(storage: &BytesStorage) -> Result<Vec<u64>, String> {
        let entries = collect_chunk_entries(storage, 0, 8, 8, 1)?;
        Ok(entries.iter().map(|e| e.offsets[0]).collect())
    }

    #[test]
    fn ordered_trees_give_their_leaves() {
        let t = tree(&[0, 4, 8], &[8, 12, 16], &[0, 8, 16]);
        assert_eq!(offsets(&t).unwrap(), vec![0, 4, 8, 12]);
    }

    #[test]
    fn a_closing_key_may_equal_the_last_chunk() {
        let t = tree(&[0, 4, 8], &[8, 12, 12], &[0, 8, 12]);
        assert_eq!(offsets(&t).unwrap(), vec![0, 4, 8, 12]);
        let t = tree(&[0, 0, 8], &[8, 12, 16], &[0, 8, 16]);
        assert!(offsets(&t).unwrap_err().contains("does not follow"));
    }

    #[test]
    fn a_key_out_of_order_in_a_leaf_fails() {
        let t = tree(&[4, 0, 8], &[8, 12, 16], &[0, 8, 16]);
        let e = offsets(&t).unwrap_err();
        assert!(e.contains("does not follow"), "{e}");
    }

    #[test]
    fn a_leaf_entry_outside_its_parents_keys_fails() {
        // The right leaf holds chunk 4, which the root says lies left of 8.
        let t = tree(&[0, 4, 8], &[4, 12, 16], &[0, 8, 16]);
        let e = offsets(&t).unwrap_err();
        assert!(e.contains("outside the range"), "{e}");
    }

    #[test]
    fn a_loop_fails() {
        let mut file = vec![0u8; 1024];
        let root = node(1, &[0, 8], &[0]);
        file[..root.len()].copy_from_slice(&root);
        let e = offsets(&BytesStorage::new(file)).unwrap_err();
        assert!(e.contains("reached twice"), "{e}");
    }
}
