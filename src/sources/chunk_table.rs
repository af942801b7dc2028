//! A compact, columnar table of HDF5 chunk references: for each stored chunk its grid index,
//! byte offset, stored length and filter mask — a few integers per chunk, never JSON.

use serde::{Deserialize, Serialize};

/// A stored chunk's location in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    /// Byte offset in the file.
    pub offset: u64,
    /// Stored (filtered) length in bytes.
    pub len: u64,
    /// HDF5 filter mask: bit `i` set means filter `i` was skipped for this chunk.
    pub filter_mask: u32,
}

/// Chunk references of one chunked variable, sorted by linear (C-order) grid index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkTable {
    grid: Vec<u64>,
    linear: Vec<u64>,
    offsets: Vec<u64>,
    lens: Vec<u64>,
    /// Empty when every mask is zero (the usual case).
    masks: Vec<u32>,
}

impl ChunkTable {
    /// Builds a table for a chunk grid of `grid` chunks per dimension from
    /// `(grid index, ChunkRef)` pairs in any order. Entries outside the grid are dropped.
    pub fn new(grid: Vec<u64>, entries: impl IntoIterator<Item = (Vec<u64>, ChunkRef)>) -> Self {
        let rows = grid_rows(&grid, entries);
        let any_mask = rows.iter().any(|(_, r)| r.filter_mask != 0);
        ChunkTable {
            linear: rows.iter().map(|(l, _)| *l).collect(),
            offsets: rows.iter().map(|(_, r)| r.offset).collect(),
            lens: rows.iter().map(|(_, r)| r.len).collect(),
            masks: if any_mask {
                rows.iter().map(|(_, r)| r.filter_mask).collect()
            } else {
                Vec::new()
            },
            grid,
        }
    }

    /// Chunks per dimension.
    pub fn grid(&self) -> &[u64] {
        &self.grid
    }

    /// Number of stored chunks.
    pub fn len(&self) -> usize {
        self.linear.len()
    }

    /// Whether no chunk is stored.
    pub fn is_empty(&self) -> bool {
        self.linear.is_empty()
    }

    /// The end of the furthest stored chunk (0 when none is stored).
    pub fn max_end(&self) -> u64 {
        self.offsets
            .iter()
            .zip(&self.lens)
            .map(|(o, l)| o + l)
            .max()
            .unwrap_or(0)
    }

    /// The stored chunk at a grid index, or `None` when it was never written.
    pub fn get(&self, index: &[u64]) -> Option<ChunkRef> {
        let l = linear_index(&self.grid, index)?;
        let i = self.linear.binary_search(&l).ok()?;
        Some(ChunkRef {
            offset: self.offsets[i],
            len: self.lens[i],
            filter_mask: self.masks.get(i).copied().unwrap_or(0),
        })
    }
}

/// The entries inside a grid of `grid` chunks per dimension, by C-order position, sorted; of
/// duplicates the first is kept.
pub(crate) fn grid_rows<T>(
    grid: &[u64],
    entries: impl IntoIterator<Item = (Vec<u64>, T)>,
) -> Vec<(u64, T)> {
    let mut rows: Vec<(u64, T)> = entries
        .into_iter()
        .filter_map(|(index, value)| linear_index(grid, &index).map(|l| (l, value)))
        .collect();
    rows.sort_by_key(|(l, _)| *l);
    rows.dedup_by_key(|(l, _)| *l);
    rows
}

/// The C-order position of `index` in a grid of `grid` chunks per dimension; `None` outside it.
pub(crate) fn linear_index(grid: &[u64], index: &[u64]) -> Option<u64> {
    if grid.len() != index.len() {
        return None;
    }
    let mut l = 0u64;
    for (&g, &i) in grid.iter().zip(index) {
        if i >= g {
            return None;
        }
        l = l.checked_mul(g)?.checked_add(i)?;
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(offset: u64) -> ChunkRef {
        ChunkRef {
            offset,
            len: 10,
            filter_mask: 0,
        }
    }

    #[test]
    fn lookups_find_stored_chunks_and_miss_absent_ones() {
        let table = ChunkTable::new(
            vec![2, 3],
            vec![
                (vec![1, 2], r(500)),
                (vec![0, 0], r(100)),
                (vec![0, 1], r(200)),
            ],
        );
        assert_eq!(table.len(), 3);
        assert_eq!(table.get(&[0, 0]).unwrap().offset, 100);
        assert_eq!(table.get(&[1, 2]).unwrap().offset, 500);
        assert_eq!(table.get(&[1, 1]), None);
        assert_eq!(table.get(&[2, 0]), None, "outside the grid");
        assert!(table.masks.is_empty(), "all-zero masks are not stored");
    }

    #[test]
    fn nonzero_masks_are_kept() {
        let mut skipped = r(7);
        skipped.filter_mask = 1;
        let table = ChunkTable::new(vec![2], vec![(vec![1], skipped), (vec![0], r(3))]);
        assert_eq!(table.get(&[1]).unwrap().filter_mask, 1);
        assert_eq!(table.get(&[0]).unwrap().filter_mask, 0);
    }
}
