//! The versions of a Zarr array's stored chunk objects: for each chunk a listing found, its grid
//! index and its object's size, modification time and ETag hash. Persisted columnar and
//! delta-encoded (postcard varints), so a chunk costs a few bytes in the catalog, never JSON.

use serde::{Deserialize, Serialize};

use crate::sources::chunk_table::{grid_rows, linear_index};
use crate::sources::model::FileVersion;

/// Stored chunk objects of one array, sorted by linear (C-order) grid index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Packed", into = "Packed")]
pub struct ChunkVersions {
    grid: Vec<u64>,
    linear: Vec<u64>,
    versions: Vec<FileVersion>,
}

impl ChunkVersions {
    /// A table for a grid of `grid` chunks per dimension from `(grid index, version)` pairs in
    /// any order; entries outside the grid are dropped, duplicates keep the first.
    pub fn new(grid: Vec<u64>, entries: impl IntoIterator<Item = (Vec<u64>, FileVersion)>) -> Self {
        let rows = grid_rows(&grid, entries);
        ChunkVersions {
            grid,
            linear: rows.iter().map(|(l, _)| *l).collect(),
            versions: rows.into_iter().map(|(_, v)| v).collect(),
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

    /// A hash of the whole table: equal for equal tables (compares snapshots of an array).
    pub fn digest(&self) -> u128 {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for values in [&self.grid, &self.linear] {
            hasher.update(&(values.len() as u64).to_le_bytes());
            for v in values {
                hasher.update(&v.to_le_bytes());
            }
        }
        for v in &self.versions {
            hasher.update(&v.size.to_le_bytes());
            hasher.update(&v.mtime_ns.to_le_bytes());
            hasher.update(&v.etag.to_le_bytes());
        }
        hasher.digest128()
    }

    /// The version of the chunk object at a grid index; `None` when the listing had none
    /// (the chunk reads as the fill value).
    pub fn get(&self, index: &[u64]) -> Option<FileVersion> {
        let l = linear_index(&self.grid, index)?;
        let i = self.linear.binary_search(&l).ok()?;
        Some(self.versions[i])
    }
}

/// The persisted form: linear indices and modification times as differences from the previous
/// chunk (small varints), sizes as they are, ETag hashes only when some object has one.
#[derive(Serialize, Deserialize)]
struct Packed {
    grid: Vec<u64>,
    linear_steps: Vec<u64>,
    sizes: Vec<u64>,
    mtime_steps: Vec<i64>,
    etags: Vec<u64>,
}

impl From<ChunkVersions> for Packed {
    fn from(table: ChunkVersions) -> Packed {
        let mut previous = (0u64, 0i64);
        let mut linear_steps = Vec::with_capacity(table.linear.len());
        let mut mtime_steps = Vec::with_capacity(table.linear.len());
        for (&l, v) in table.linear.iter().zip(&table.versions) {
            linear_steps.push(l - previous.0);
            mtime_steps.push(v.mtime_ns.wrapping_sub(previous.1));
            previous = (l, v.mtime_ns);
        }
        let etags = if table.versions.iter().any(|v| v.etag != 0) {
            table.versions.iter().map(|v| v.etag).collect()
        } else {
            Vec::new()
        };
        Packed {
            sizes: table.versions.iter().map(|v| v.size).collect(),
            grid: table.grid,
            linear_steps,
            mtime_steps,
            etags,
        }
    }
}

impl From<Packed> for ChunkVersions {
    /// Unpacks; a damaged table (columns of different lengths) keeps only the rows all columns
    /// have, which the catalog's next index rebuilds anyway.
    fn from(packed: Packed) -> ChunkVersions {
        let n = packed
            .linear_steps
            .len()
            .min(packed.sizes.len())
            .min(packed.mtime_steps.len());
        let mut linear = Vec::with_capacity(n);
        let mut versions = Vec::with_capacity(n);
        let (mut l, mut mtime) = (0u64, 0i64);
        for i in 0..n {
            l = l.wrapping_add(packed.linear_steps[i]);
            mtime = mtime.wrapping_add(packed.mtime_steps[i]);
            linear.push(l);
            versions.push(FileVersion {
                size: packed.sizes[i],
                mtime_ns: mtime,
                etag: packed.etags.get(i).copied().unwrap_or(0),
            });
        }
        ChunkVersions {
            grid: packed.grid,
            linear,
            versions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(size: u64, mtime_ns: i64, etag: u64) -> FileVersion {
        FileVersion {
            size,
            mtime_ns,
            etag,
        }
    }

    #[test]
    fn lookups_find_listed_chunks_only() {
        let table = ChunkVersions::new(
            vec![2, 3],
            vec![
                (vec![1, 2], v(10, 5, 0)),
                (vec![0, 0], v(11, 6, 0)),
                (vec![5, 0], v(12, 7, 0)),
            ],
        );
        assert_eq!(table.len(), 2, "outside the grid is dropped");
        assert_eq!(table.get(&[1, 2]), Some(v(10, 5, 0)));
        assert_eq!(table.get(&[0, 0]), Some(v(11, 6, 0)));
        assert_eq!(table.get(&[0, 1]), None);
        assert_eq!(table.get(&[0]), None, "wrong rank");
        let rewritten = ChunkVersions::new(
            vec![2, 3],
            vec![(vec![1, 2], v(10, 5, 0)), (vec![0, 0], v(11, 9, 0))],
        );
        assert_ne!(rewritten.digest(), table.digest());
        assert_eq!(table.clone().digest(), table.digest());
    }

    #[test]
    fn packing_round_trips_and_is_compact() {
        let n = 1000u64;
        let entries = (0..n).map(|i| {
            (
                vec![i / 10, i % 10],
                v(4000 + i % 7, 1_700_000_000_000_000_000 + i as i64 * 1000, 0),
            )
        });
        let table = ChunkVersions::new(vec![100, 10], entries);
        let bytes = postcard::to_stdvec(&table).unwrap();
        let back: ChunkVersions = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, table);
        assert!(
            bytes.len() < 6 * n as usize,
            "{} bytes for {n} chunks",
            bytes.len()
        );
        let with_etags = ChunkVersions::new(vec![2], vec![(vec![1], v(3, -4, 99))]);
        let back: ChunkVersions =
            postcard::from_bytes(&postcard::to_stdvec(&with_etags).unwrap()).unwrap();
        assert_eq!(back.get(&[1]), Some(v(3, -4, 99)));
    }
}
