//! Operators: the per-chunk recipes of the tree and the code that runs them. A recipe is an
//! [`Operator`] and an [`Encoding`]; it is pure — a chunk's bytes depend only on the operator's
//! parameters, the versions of the sources it reads (or its inputs' fingerprints) and the chunk
//! index. Today's operators are the native read ([`NativeRead`], with concatenation along one
//! axis), strings ([`StringRead`]) and the chunk-for-chunk read of an existing Zarr array
//! ([`ZarrRead`]); regrid, pack and pyramid views are further operators over the same trait,
//! reading regions of other arrays through [`OperatorContext::regions`].

mod boxes;
mod decode;
mod encoding;
mod error;
mod fingerprint;
pub mod kernels;
mod native;
mod native_read;
mod operator;
mod parts;
mod region_bytes;
mod strings;
mod transform;
mod zarr_chunk;
mod zstd_frame;

use std::sync::Arc;

use serde::Serialize;

pub(crate) use boxes::strides;
pub use boxes::{advance, copy_box, Region};
pub use encoding::Encoding;
pub use error::{ChunkError, ChunkErrorKind, InputChunk};
pub use fingerprint::RecipeFingerprint;
pub use native_read::NativeRead;
pub(crate) use operator::hash as fingerprint_hash;
pub use operator::{ArrayFingerprints, FingerprintWriter, Operator, OperatorContext, RegionReader};
pub use region_bytes::RegionBytes;
pub use strings::StringRead;
pub use transform::{push_value as push_element, to_f64 as element_f64, Transform};
pub use zarr_chunk::ZarrRead;

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

    /// The bytes of one chunk's values when fixed by the type (not for strings).
    pub fn exact_chunk_len(&self) -> Option<u64> {
        let elements = self
            .chunks
            .iter()
            .try_fold(1u64, |n, &c| n.checked_mul(c))?;
        elements.checked_mul(self.dtype.size()? as u64)
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

/// How to compute and serve any chunk of an array: its operator and its encoding. Both enter
/// the cache key of every chunk (see [`RecipeFingerprint`]).
#[derive(Debug, Clone)]
pub struct Recipe {
    /// Computes chunks as typed values.
    pub operator: Arc<dyn Operator>,
    /// Encodes them as served.
    pub encoding: Encoding,
}

impl Recipe {
    /// A recipe computing chunks with `operator` and serving them encoded with `encoding`.
    pub fn new(operator: Arc<dyn Operator>, encoding: Encoding) -> Self {
        Recipe { operator, encoding }
    }

    /// A recipe assembling chunks of an array of type `dtype` from `parts`, uncompressed.
    pub fn from_parts(parts: Vec<Part>, dtype: DType) -> Self {
        let operator: Arc<dyn Operator> = if dtype == DType::String {
            Arc::new(StringRead { parts })
        } else {
            Arc::new(NativeRead { parts })
        };
        Recipe::new(operator, Encoding::Bytes)
    }

    /// A recipe assembling chunks from `parts`, typed as the first part's variable.
    pub fn native(parts: Vec<Part>) -> Self {
        let dtype = parts.first().map_or(DType::U8, |p| p.var.dtype);
        Recipe::from_parts(parts, dtype)
    }

    /// Computes the bytes of chunk `index` as served: the operator's values, encoded.
    ///
    /// # Errors
    /// [`ChunkError`] naming the source file (and input chunk) when a source is gone, changed
    /// or corrupt, or the values cannot be encoded.
    pub fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<Vec<u8>, ChunkError> {
        let values = self.operator.compute(geometry, index, context)?;
        self.encoding.encode(values)
    }

    /// Checks that every source a chunk reads is still at the version the recipe was built
    /// from, so cached bytes of a changed source are never served.
    ///
    /// # Errors
    /// [`ChunkError`] naming the changed or vanished source.
    pub fn check_sources(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<(), ChunkError> {
        self.operator.check(geometry, index, context)
    }

    /// The exact size in bytes of chunk `index` as served, without reading any source; `None`
    /// for a compressed array (or variable-length values), whose size is known once computed.
    pub fn exact_len(&self, geometry: &Geometry, index: &[u64]) -> Option<u64> {
        if !self.encoding.is_exact() {
            return None;
        }
        self.operator.chunk_len(geometry, index)
    }

    /// The values' length of chunk `index` before encoding, when fixed by the geometry.
    pub fn values_len(&self, geometry: &Geometry, index: &[u64]) -> Option<u64> {
        self.operator.chunk_len(geometry, index)
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
                let expected = region.intersect(&parts::part_box(p)).is_some();
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
