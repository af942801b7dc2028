//! Operators: the per-chunk recipes of the tree and the code that runs them. A recipe is pure —
//! a chunk's bytes depend only on the recipe, the versions of the sources it reads and the chunk
//! index. Today's operators are the native read (with concatenation along one axis) and the
//! chunk-for-chunk read of an existing Zarr array ([`ZarrRead`]); regrid, pack and pyramid views
//! are further recipes over the same interface.

mod boxes;
mod decode;
mod fingerprint;
pub mod kernels;
mod native;
mod strings;
mod transform;
mod zarr_chunk;

use std::sync::Arc;

use serde::Serialize;

pub use boxes::Region;
pub use fingerprint::RecipeFingerprint;
pub use transform::{push_value as push_element, to_f64 as element_f64, Transform};
pub use zarr_chunk::ZarrRead;

use crate::sources::bytes::ByteSource;
use crate::sources::model::{DType, FileVersion, VarMeta};

/// Shape, chunking, type and fill value of an array as served.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Geometry {
    /// Array shape.
    pub shape: Vec<u64>,
    /// Regular chunk shape.
    pub chunks: Vec<u64>,
    /// Element type.
    pub dtype: DType,
    /// Fill value for elements no source provides (little-endian bytes of one element).
    pub fill: Vec<u8>,
}

impl Geometry {
    /// Chunks per dimension.
    pub fn grid(&self) -> Vec<u64> {
        self.shape
            .iter()
            .zip(&self.chunks)
            .map(|(&s, &c)| s.div_ceil(c.max(1)))
            .collect()
    }

    /// The part of the array a chunk covers (clipped at the array's edge).
    pub fn chunk_region(&self, index: &[u64]) -> Region {
        let start: Vec<u64> = index.iter().zip(&self.chunks).map(|(i, c)| i * c).collect();
        let count = start
            .iter()
            .zip(&self.chunks)
            .zip(&self.shape)
            .map(|((&s, &c), &n)| c.min(n.saturating_sub(s)))
            .collect();
        Region { start, count }
    }

    /// Whether `index` names a chunk of this array.
    pub fn contains_chunk(&self, index: &[u64]) -> bool {
        index.len() == self.shape.len() && index.iter().zip(self.grid()).all(|(&i, g)| i < g)
    }
}

/// One source variable contributing to an array, placed at `origin`.
///
/// The array may have more dimensions than the variable (new dimensions joined in front):
/// the part then covers one index of each leading dimension. Every field is part of the cache
/// key of the chunks it contributes to (see [`RecipeFingerprint`]).
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    /// Source file path.
    pub path: Arc<str>,
    /// Source file version when indexed.
    pub version: FileVersion,
    /// The variable in that file (its storage says where the bytes are).
    pub var: Arc<VarMeta>,
    /// Position of the part's first element in the array, one index per array dimension.
    pub origin: Vec<u64>,
    /// Value transform applied after reading (fixes, per-file unpacking).
    pub transform: Option<Arc<Transform>>,
}

impl Part {
    /// Number of leading array dimensions the variable does not have.
    pub fn lead(&self) -> usize {
        self.origin.len().saturating_sub(self.var.shape.len())
    }

    /// Whether the part's box overlaps `region` (of the array's rank, or empty for a scalar);
    /// what `region.intersect(part box)` decides, without building either box. Every chunk open
    /// asks this of every part, so it allocates nothing.
    pub fn touches(&self, region: &Region) -> bool {
        if region.start.is_empty() {
            return true;
        }
        let lead = self.lead();
        (0..region.start.len()).all(|d| {
            let start = self.origin.get(d).copied().unwrap_or(0);
            let count = match d.checked_sub(lead) {
                Some(v) => self.var.shape.get(v).copied().unwrap_or(1),
                None => 1,
            };
            let lo = start.max(region.start[d]);
            let hi = (start + count).min(region.start[d] + region.count[d]);
            hi > lo
        })
    }
}

/// How to compute any chunk of an array: the parts it is made of, or the Zarr array whose
/// chunks it serves one for one. Every field is part of the cache key of its chunks (see
/// [`RecipeFingerprint`]).
#[derive(Debug, Clone, Serialize)]
pub struct Recipe {
    /// Contributing source variables.
    pub parts: Vec<Part>,
    /// When set, chunks are those of this Zarr array and `parts` is empty.
    pub zarr: Option<Arc<ZarrRead>>,
}

impl Recipe {
    /// A recipe assembling chunks from `parts`.
    pub fn native(parts: Vec<Part>) -> Self {
        Recipe { parts, zarr: None }
    }
}

/// A chunk that could not be computed.
#[derive(Debug, thiserror::Error)]
#[error("{}{reason}", source_path.as_deref().map(|p| format!("{p}: ")).unwrap_or_default())]
pub struct ChunkError {
    /// The source file involved, when one is.
    pub source_path: Option<String>,
    /// What went wrong.
    pub reason: String,
}

impl Recipe {
    /// Computes the encoded bytes of chunk `index` as served: little-endian C-order values,
    /// or vlen-utf8 for strings.
    ///
    /// # Errors
    /// [`ChunkError`] naming the source file when a source is gone, changed or corrupt.
    pub fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        source: &dyn ByteSource,
    ) -> Result<Vec<u8>, ChunkError> {
        if let Some(zarr) = &self.zarr {
            return zarr.compute(geometry, index, source);
        }
        if geometry.dtype == DType::String {
            return strings::compute(self, geometry, index);
        }
        native::compute(self, geometry, index, source)
    }

    /// Checks that every source a chunk reads is still at the version the recipe was built
    /// from (a cheap `stat` per file), so cached bytes of a changed source are never served.
    ///
    /// # Errors
    /// [`ChunkError`] naming the changed or vanished source.
    pub fn check_sources(
        &self,
        geometry: &Geometry,
        index: &[u64],
        source: &dyn ByteSource,
    ) -> Result<(), ChunkError> {
        if let Some(zarr) = &self.zarr {
            return zarr.check(index, source);
        }
        let region = geometry.chunk_region(index);
        for (part, _, _) in self.overlaps(&region) {
            if matches!(part.var.storage, crate::sources::model::Storage::Inline(_)) {
                continue;
            }
            source
                .check_version(&part.path, part.version)
                .map_err(|e| ChunkError {
                    source_path: None,
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Exact size in bytes of chunk `index` as served, without reading any source.
    pub fn chunk_len(&self, geometry: &Geometry, index: &[u64]) -> u64 {
        match geometry.dtype.size() {
            Some(size) => geometry.chunks.iter().product::<u64>() * size as u64,
            None => strings::compute(self, geometry, index)
                .map(|b| b.len() as u64)
                .unwrap_or(0),
        }
    }

    /// The box a part covers in array coordinates.
    fn part_box(&self, part: &Part) -> Region {
        let mut count = vec![1u64; part.lead()];
        count.extend_from_slice(&part.var.shape);
        Region {
            start: part.origin.clone(),
            count,
        }
    }

    /// The parts overlapping a chunk region, each with its overlap in the variable's own
    /// coordinates and the overlap's position in the chunk (one index per array dimension).
    fn overlaps<'a>(
        &'a self,
        region: &'a Region,
    ) -> impl Iterator<Item = (&'a Part, Region, Vec<u64>)> + 'a {
        self.parts
            .iter()
            .filter(|part| part.touches(region))
            .filter_map(move |part| {
                let lead = part.lead();
                let part_box = self.part_box(part);
                let overlap = if region.start.is_empty() {
                    part_box.clone()
                } else {
                    region.intersect(&part_box)?
                };
                let local = Region {
                    start: overlap.start[lead..]
                        .iter()
                        .zip(&part_box.start[lead..])
                        .map(|(a, b)| a - b)
                        .collect(),
                    count: overlap.count[lead..].to_vec(),
                };
                let in_chunk = overlap
                    .start
                    .iter()
                    .zip(&region.start)
                    .map(|(a, b)| a - b)
                    .collect();
                Some((part, local, in_chunk))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::model::{InlineData, Storage};

    fn part(origin: Vec<u64>, shape: Vec<u64>) -> Part {
        Part {
            path: "p.nc".into(),
            version: FileVersion {
                size: 1,
                mtime_ns: 1,
                etag: 0,
            },
            var: Arc::new(VarMeta {
                name: "v".into(),
                dims: shape.iter().map(|_| "d".into()).collect(),
                shape,
                dtype: DType::U8,
                attrs: Vec::new(),
                fill: vec![0],
                storage: Storage::Inline(InlineData::Bytes(Vec::new())),
            }),
            origin,
            transform: None,
        }
    }

    #[test]
    fn touches_agrees_with_intersecting_the_part_box() {
        let recipe = Recipe::native(Vec::new());
        // Parts with and without a leading (joined) dimension, against every small region.
        let parts = [
            part(vec![3, 2], vec![4, 5]),
            part(vec![3, 2, 1], vec![4, 5]),
            part(vec![0, 0, 0], vec![2, 2, 2]),
        ];
        for p in &parts {
            let rank = p.origin.len();
            let mut checked = 0;
            for code in 0..(6u64.pow(2 * rank as u32)) {
                let digit = |i: u32| (code / 6u64.pow(i)) % 6;
                let region = Region {
                    start: (0..rank as u32).map(|d| digit(d) * 2).collect(),
                    count: (0..rank as u32).map(|d| digit(rank as u32 + d)).collect(),
                };
                let expected = region.intersect(&recipe.part_box(p)).is_some();
                assert_eq!(p.touches(&region), expected, "{region:?} vs {p:?}");
                checked += usize::from(expected);
            }
            assert!(checked > 0);
        }
        assert!(parts[0].touches(&Region {
            start: Vec::new(),
            count: Vec::new()
        }));
    }
}
