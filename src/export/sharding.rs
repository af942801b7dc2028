//! Zarr v3 sharding of an export: `--shard-shape DIM=N,…` groups an array's chunks into
//! shards of N elements along the named dimensions (rounded up to whole chunks), each shard
//! one key holding its chunks' served bytes verbatim followed by the `sharding_indexed`
//! index (offset and length of every chunk, little-endian `u64`, then its CRC32C), and the
//! array's metadata rewritten to the shard grid with the served codecs inside the shard.
//!
//! The shard is assembled here rather than through zarrs' sharding codec because zarrs
//! encodes from decoded values: the chunks are already encoded as served, so decoding and
//! encoding them again would only cost time.

use std::collections::HashMap;
use std::str::FromStr;

use serde_json::{json, Value};

use crate::tree::ArrayNode;

/// The index entry of a chunk that is not stored (outside the array, at an edge shard).
const ABSENT: u64 = u64::MAX;

/// `--shard-shape`: shard extents in elements along named dimensions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShardShape(Vec<(String, u64)>);

impl FromStr for ShardShape {
    type Err = String;

    fn from_str(text: &str) -> Result<ShardShape, String> {
        let mut extents = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad =
                || format!("shard shape {part:?} must be DIM=N with N >= 1, e.g. time=365,lat=720");
            let (dim, n) = part.split_once('=').ok_or_else(bad)?;
            let n: u64 = n.trim().parse().map_err(|_| bad())?;
            if n == 0 || dim.trim().is_empty() {
                return Err(bad());
            }
            extents.push((dim.trim().to_owned(), n));
        }
        if extents.is_empty() {
            return Err("a shard shape names at least one dimension, e.g. time=365".to_owned());
        }
        Ok(ShardShape(extents))
    }
}

impl ShardShape {
    /// The dimensions it names.
    pub fn dims(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(dim, _)| dim.as_str())
    }

    /// How `array`'s chunks group into shards, `None` when a shard would be one chunk (the
    /// array names none of the dimensions, or its chunks already span them).
    pub(crate) fn grid_of(&self, array: &ArrayNode) -> Option<ShardGrid> {
        let geometry = &array.geometry;
        let chunks = geometry.grid();
        let per_shard: Vec<u64> = array
            .dims
            .iter()
            .zip(&geometry.chunks)
            .zip(&chunks)
            .map(|((dim, &chunk), &count)| {
                let wanted = self.0.iter().find(|(d, _)| d == dim).map(|(_, n)| *n);
                match wanted {
                    Some(n) if chunk > 0 => n.div_ceil(chunk).clamp(1, count.max(1)),
                    _ => 1,
                }
            })
            .collect();
        if per_shard.iter().all(|&n| n == 1) {
            return None;
        }
        Some(ShardGrid {
            inner: geometry.chunks.clone(),
            per_shard,
            chunks,
        })
    }
}

/// An array's shards: how many chunks each holds along every dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardGrid {
    /// The chunk shape (elements).
    inner: Vec<u64>,
    /// Chunks per shard along every dimension.
    per_shard: Vec<u64>,
    /// Chunks along every dimension of the array.
    chunks: Vec<u64>,
}

impl ShardGrid {
    /// Shards along every dimension.
    pub(crate) fn shards(&self) -> Vec<u64> {
        self.chunks
            .iter()
            .zip(&self.per_shard)
            .map(|(&c, &p)| c.div_ceil(p))
            .collect()
    }

    /// The shard shape in elements.
    pub(crate) fn shard_shape(&self) -> Vec<u64> {
        self.inner
            .iter()
            .zip(&self.per_shard)
            .map(|(&c, &p)| c * p)
            .collect()
    }

    /// The chunks of shard `shard`, in the index's (C) order; `None` for a position past the
    /// array's last chunk.
    pub(crate) fn chunks_of(&self, shard: &[u64]) -> Vec<Option<Vec<u64>>> {
        let positions: u64 = self.per_shard.iter().product();
        (0..positions)
            .map(|mut linear| {
                let mut index = vec![0; self.per_shard.len()];
                for d in (0..index.len()).rev() {
                    index[d] = shard[d] * self.per_shard[d] + linear % self.per_shard[d];
                    linear /= self.per_shard[d];
                }
                index
                    .iter()
                    .zip(&self.chunks)
                    .all(|(i, n)| i < n)
                    .then_some(index)
            })
            .collect()
    }

    /// The array's `zarr.json` with the shard grid: the regular grid of shards, and the
    /// served codecs inside `sharding_indexed` with the index at the end.
    pub(crate) fn rewrite_metadata(&self, document: &mut Value) {
        let inner_codecs = document.get("codecs").cloned().unwrap_or_else(|| json!([]));
        document["chunk_grid"] = json!({
            "name": "regular",
            "configuration": {"chunk_shape": self.shard_shape()},
        });
        document["codecs"] = json!([{
            "name": "sharding_indexed",
            "configuration": {
                "chunk_shape": self.inner,
                "codecs": inner_codecs,
                "index_codecs": [
                    {"name": "bytes", "configuration": {"endian": "little"}},
                    {"name": "crc32c"},
                ],
                "index_location": "end",
            },
        }]);
    }
}

/// A served `zarr.json` (at the full key `key`) rewritten for the sharded arrays in `grids`
/// (by array path): an array's own document, or the entries of a group's consolidated
/// metadata. `None` when nothing in it is sharded.
pub(crate) fn rewrite_document(
    key: &str,
    document: &[u8],
    grids: &HashMap<&str, &ShardGrid>,
) -> Result<Option<Vec<u8>>, serde_json::Error> {
    if grids.is_empty() {
        return Ok(None);
    }
    let Some(node) = key
        .strip_suffix("zarr.json")
        .map(|p| p.trim_end_matches('/'))
    else {
        return Ok(None);
    };
    let mut doc: Value = serde_json::from_slice(document)?;
    let mut changed = false;
    if let Some(grid) = grids.get(node) {
        grid.rewrite_metadata(&mut doc);
        changed = true;
    }
    if let Some(Value::Object(entries)) = doc.pointer_mut("/consolidated_metadata/metadata") {
        for (relative, entry) in entries.iter_mut() {
            let path = if node.is_empty() {
                relative.clone()
            } else {
                format!("{node}/{relative}")
            };
            if let Some(grid) = grids.get(path.as_str()) {
                grid.rewrite_metadata(entry);
                changed = true;
            }
        }
    }
    changed.then(|| serde_json::to_vec_pretty(&doc)).transpose()
}

/// A shard's bytes: the chunks (`None`: not stored) in order, then the index and its CRC32C.
pub(crate) fn assemble(chunks: Vec<Option<Vec<u8>>>) -> Vec<u8> {
    let data: usize = chunks.iter().flatten().map(Vec::len).sum();
    let mut out = Vec::with_capacity(data + index_len(chunks.len()));
    let mut index = Vec::with_capacity(chunks.len() * 16);
    for chunk in chunks {
        let (offset, len) = match chunk {
            Some(bytes) => {
                let at = out.len() as u64;
                out.extend_from_slice(&bytes);
                (at, bytes.len() as u64)
            }
            None => (ABSENT, ABSENT),
        };
        index.extend_from_slice(&offset.to_le_bytes());
        index.extend_from_slice(&len.to_le_bytes());
    }
    let crc = crc32c::crc32c(&index);
    out.extend_from_slice(&index);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The size of the index of a shard of `positions` chunks, its CRC32C included.
pub(crate) fn index_len(positions: usize) -> usize {
    positions * 16 + 4
}

/// Whether `tail` (the last [`index_len`] bytes of a stored shard of `size` bytes) is an
/// intact index whose stored chunks are exactly `present` (`true` where a chunk is expected)
/// and end where the index begins: a shard written whole, as [`assemble`] writes it.
pub(crate) fn verify_index(tail: &[u8], size: u64, present: &[bool]) -> bool {
    if tail.len() != index_len(present.len()) {
        return false;
    }
    let (index, crc) = tail.split_at(tail.len() - 4);
    if crc32c::crc32c(index).to_le_bytes() != crc {
        return false;
    }
    let data_end = size.saturating_sub(tail.len() as u64);
    let mut stored = 0u64;
    for (entry, &expected) in index.chunks_exact(16).zip(present) {
        let word = |at: usize| {
            entry
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(ABSENT, u64::from_le_bytes)
        };
        let (offset, len) = (word(0), word(8));
        if (offset == ABSENT) == expected {
            return false;
        }
        if expected {
            if offset.checked_add(len).is_none_or(|end| end > data_end) {
                return false;
            }
            stored += len;
        }
    }
    stored == data_end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_parse_and_reject_nonsense() {
        let shape: ShardShape = "time=365, lat=720".parse().unwrap();
        assert_eq!(shape.dims().collect::<Vec<_>>(), ["time", "lat"]);
        for bad in ["", "time", "time=0", "=4", "time=x"] {
            assert!(bad.parse::<ShardShape>().is_err(), "{bad:?}");
        }
    }

    fn grid() -> ShardGrid {
        // 5 x 3 chunks of 2 x 4 elements, shards of 2 x 2 chunks.
        ShardGrid {
            inner: vec![2, 4],
            per_shard: vec![2, 2],
            chunks: vec![5, 3],
        }
    }

    #[test]
    fn edge_shards_mark_the_chunks_past_the_array_absent() {
        let g = grid();
        assert_eq!(g.shards(), [3, 2]);
        assert_eq!(g.shard_shape(), [4, 8]);
        assert_eq!(
            g.chunks_of(&[0, 0]),
            [
                Some(vec![0, 0]),
                Some(vec![0, 1]),
                Some(vec![1, 0]),
                Some(vec![1, 1])
            ]
        );
        assert_eq!(g.chunks_of(&[2, 1]), [Some(vec![4, 2]), None, None, None]);
    }

    #[test]
    fn an_assembled_shard_has_the_documented_index_and_verifies() {
        let shard = assemble(vec![Some(vec![1, 2, 3]), None, Some(vec![4])]);
        assert_eq!(shard.len(), 4 + index_len(3));
        let index = &shard[4..4 + 48];
        let word = |i: usize| u64::from_le_bytes(index[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(
            (0..6).map(word).collect::<Vec<_>>(),
            [0, 3, u64::MAX, u64::MAX, 3, 1]
        );
        let tail = &shard[4..];
        let size = shard.len() as u64;
        assert!(verify_index(tail, size, &[true, false, true]));
        assert!(!verify_index(tail, size, &[true, true, true]));
        assert!(!verify_index(tail, size + 1, &[true, false, true]));
        let mut damaged = tail.to_vec();
        damaged[9] ^= 1;
        assert!(!verify_index(&damaged, size, &[true, false, true]));
    }

    #[test]
    fn metadata_moves_the_served_codecs_inside_the_shard() {
        let mut doc = json!({
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2, 4]}},
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "zstd"}],
        });
        grid().rewrite_metadata(&mut doc);
        assert_eq!(
            doc["chunk_grid"]["configuration"]["chunk_shape"],
            json!([4, 8])
        );
        let sharding = &doc["codecs"][0];
        assert_eq!(sharding["name"], "sharding_indexed");
        assert_eq!(sharding["configuration"]["chunk_shape"], json!([2, 4]));
        assert_eq!(sharding["configuration"]["codecs"][1]["name"], "zstd");
    }
}
