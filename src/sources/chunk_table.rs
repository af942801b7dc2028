//! A compact, columnar table of HDF5 chunk references: for each stored chunk its grid index,
//! byte offset, stored length and filter mask — a few integers per chunk, never JSON — and the
//! stored chunks whose index entry was found corrupt, each with the reason reads of it fail.

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

/// What the table holds for one grid index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkSlot<'a> {
    /// Never written: reads as the fill value.
    Absent,
    /// Stored at this location.
    Stored(ChunkRef),
    /// Stored, but its index entry is corrupt: reading it must fail with this reason.
    Faulty(&'a str),
}

/// A stored chunk that must not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Fault {
    linear: u64,
    reason: String,
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
    /// Corrupt entries, sorted by linear index; none of them is in the columns above.
    faults: Vec<Fault>,
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
            faults: Vec::new(),
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

    /// Every stored chunk with its grid index, in C order.
    pub fn entries(&self) -> impl Iterator<Item = (Vec<u64>, ChunkRef)> + '_ {
        (0..self.linear.len()).map(|i| (unravel(&self.grid, self.linear[i]), self.row(i)))
    }

    /// Number of stored chunks whose entry is corrupt.
    pub fn faults(&self) -> usize {
        self.faults.len()
    }

    /// What is stored at a grid index (outside the grid: [`ChunkSlot::Absent`]).
    pub fn lookup(&self, index: &[u64]) -> ChunkSlot<'_> {
        let Some(l) = linear_index(&self.grid, index) else {
            return ChunkSlot::Absent;
        };
        if let Ok(i) = self.linear.binary_search(&l) {
            return ChunkSlot::Stored(self.row(i));
        }
        match self.faults.binary_search_by_key(&l, |f| f.linear) {
            Ok(i) => ChunkSlot::Faulty(&self.faults[i].reason),
            Err(_) => ChunkSlot::Absent,
        }
    }

    /// Moves every stored chunk for which `check` (given its grid index) names a reason into
    /// the faulty entries, so reading it fails with that reason.
    pub fn retain_valid(&mut self, mut check: impl FnMut(&[u64], ChunkRef) -> Option<String>) {
        let mut keep = Vec::with_capacity(self.linear.len());
        let mut found = Vec::new();
        for i in 0..self.linear.len() {
            let index = unravel(&self.grid, self.linear[i]);
            match check(&index, self.row(i)) {
                None => keep.push(i),
                Some(reason) => found.push(Fault {
                    linear: self.linear[i],
                    reason,
                }),
            }
        }
        if found.is_empty() {
            return;
        }
        let pick = |column: &[u64]| keep.iter().map(|&i| column[i]).collect::<Vec<_>>();
        let (linear, offsets, lens) = (pick(&self.linear), pick(&self.offsets), pick(&self.lens));
        if !self.masks.is_empty() {
            self.masks = keep.iter().map(|&i| self.masks[i]).collect();
        }
        (self.linear, self.offsets, self.lens) = (linear, offsets, lens);
        self.faults.extend(found);
        self.faults.sort_by_key(|f| f.linear);
    }

    /// Makes each chunk of `marks` (grid index, reason) faulty, stored or not: its index entry
    /// is known to be corrupt, so it may have been lost as well as moved.
    pub fn mark_faulty(&mut self, marks: Vec<(Vec<u64>, String)>) {
        if marks.is_empty() {
            return;
        }
        let mut reasons: std::collections::HashMap<Vec<u64>, String> = marks.into_iter().collect();
        self.retain_valid(|index, _| reasons.remove(index));
        for (index, reason) in reasons {
            let Some(linear) = linear_index(&self.grid, &index) else {
                continue;
            };
            if let Err(at) = self.faults.binary_search_by_key(&linear, |f| f.linear) {
                self.faults.insert(at, Fault { linear, reason });
            }
        }
    }

    fn row(&self, i: usize) -> ChunkRef {
        ChunkRef {
            offset: self.offsets[i],
            len: self.lens[i],
            filter_mask: self.masks.get(i).copied().unwrap_or(0),
        }
    }
}

/// The grid index at C-order position `linear` of a grid of `grid` chunks per dimension.
fn unravel(grid: &[u64], mut linear: u64) -> Vec<u64> {
    let mut index = vec![0u64; grid.len()];
    for (i, &g) in index.iter_mut().zip(grid).rev() {
        if g > 0 {
            *i = linear % g;
            linear /= g;
        }
    }
    index
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
        assert_eq!(table.lookup(&[0, 0]), ChunkSlot::Stored(r(100)));
        assert_eq!(table.lookup(&[1, 2]), ChunkSlot::Stored(r(500)));
        assert_eq!(table.lookup(&[1, 1]), ChunkSlot::Absent);
        assert_eq!(table.lookup(&[2, 0]), ChunkSlot::Absent, "outside the grid");
        assert!(table.masks.is_empty(), "all-zero masks are not stored");
    }

    #[test]
    fn faulty_chunks_fail_with_their_reason_and_leave_the_others() {
        let mut skipped = r(900);
        skipped.filter_mask = 2;
        let mut table = ChunkTable::new(
            vec![2, 3],
            vec![
                (vec![0, 0], r(0)),
                (vec![0, 2], skipped),
                (vec![1, 1], r(1 << 40)),
                (vec![1, 2], r(500)),
            ],
        );
        let mut seen = Vec::new();
        table.retain_valid(|index, c| {
            seen.push(index.to_vec());
            (c.offset == 0 || c.offset > 1000).then(|| format!("bad {}", c.offset))
        });
        assert_eq!(seen, [vec![0, 0], vec![0, 2], vec![1, 1], vec![1, 2]]);
        assert_eq!((table.len(), table.faults()), (2, 2));
        assert_eq!(table.lookup(&[0, 0]), ChunkSlot::Faulty("bad 0"));
        assert_eq!(
            table.lookup(&[1, 1]),
            ChunkSlot::Faulty("bad 1099511627776")
        );
        assert_eq!(table.lookup(&[0, 2]), ChunkSlot::Stored(skipped));
        assert_eq!(table.lookup(&[1, 2]), ChunkSlot::Stored(r(500)));
        assert_eq!(table.lookup(&[0, 1]), ChunkSlot::Absent);
        assert_eq!(table.max_end(), 910, "faulty chunks do not count");
        table.mark_faulty(vec![
            (vec![1, 0], "lost".to_owned()),
            (vec![1, 2], "moved".to_owned()),
        ]);
        assert_eq!(table.lookup(&[1, 0]), ChunkSlot::Faulty("lost"));
        assert_eq!(table.lookup(&[1, 2]), ChunkSlot::Faulty("moved"));
        assert_eq!(table.lookup(&[0, 0]), ChunkSlot::Faulty("bad 0"));
        table.mark_faulty(vec![(vec![1, 2], "again".to_owned())]);
        assert_eq!(
            table.lookup(&[1, 2]),
            ChunkSlot::Faulty("moved"),
            "the first reason stays"
        );
        assert_eq!(table.faults(), 4);
        let left: Vec<_> = table.entries().collect();
        assert_eq!(left, [(vec![0, 2], skipped)]);
    }

    #[test]
    fn nonzero_masks_are_kept() {
        let mut skipped = r(7);
        skipped.filter_mask = 1;
        let table = ChunkTable::new(vec![2], vec![(vec![1], skipped), (vec![0], r(3))]);
        assert_eq!(table.lookup(&[1]), ChunkSlot::Stored(skipped));
        assert_eq!(table.lookup(&[0]), ChunkSlot::Stored(r(3)));
    }
}
