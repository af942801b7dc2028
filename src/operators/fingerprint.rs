//! Cache keys of chunks. A chunk's bytes depend only on its recipe, the versions of the sources
//! it reads and its index, so its key hashes exactly those: xxh3-128 over the key scheme, what
//! the [`Operator`](super::Operator) writes into its fingerprint (its name, version and
//! parameters; for a view, its inputs' fingerprints), the array's [`Encoding`](super::Encoding),
//! the [`Geometry`] (every field but the shape, which only matters through the chunk's region),
//! the chunk's region and index, and what the operator adds per chunk: the native read the
//! pieces of the parts the chunk overlaps — each [`Part`](super::Part) serialised whole — so
//! appending a file keeps the keys of chunks that do not touch it; a Zarr read the version of
//! the one object the chunk is read from, so a rewritten chunk object changes that chunk's key
//! only.

use xxhash_rust::xxh3::Xxh3;

use super::operator::{hash, ArrayFingerprints, FingerprintWriter};
use super::{Geometry, Recipe};

/// Bump when the bytes a recipe computes change for the same inputs (a decoding fix, a new
/// encoding), so entries computed by older code are never served.
const KEY_SCHEME: u32 = 3;

/// The hashed identity of an array's recipe and geometry, computed once per array; gives the
/// cache key of any of its chunks with [`RecipeFingerprint::chunk_key`]. Equal fingerprints
/// (and geometries) mean every chunk has the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeFingerprint {
    base: u128,
    pieces: Vec<u128>,
    /// What enters chunk keys only per chunk (the versions of a Zarr read's chunk objects):
    /// part of comparing two fingerprints, not of every chunk key.
    compare: u128,
}

impl RecipeFingerprint {
    /// Fingerprints `recipe` as served with `geometry`; `inputs` gives the fingerprints of the
    /// arrays its operator reads.
    pub fn new(recipe: &Recipe, geometry: &Geometry, inputs: &dyn ArrayFingerprints) -> Self {
        let mut writer = FingerprintWriter::new(inputs);
        recipe.operator.fingerprint(&mut writer);
        let geometry = Geometry {
            shape: Vec::new(),
            ..geometry.clone()
        };
        RecipeFingerprint {
            base: hash(&(
                KEY_SCHEME,
                writer.base.digest128(),
                recipe.encoding,
                geometry,
            )),
            pieces: writer.pieces,
            compare: writer.compare,
        }
    }

    /// One number for the whole fingerprint: equal digests mean every chunk has the same key.
    pub fn digest(&self) -> u128 {
        hash(&(self.base, &self.pieces, self.compare))
    }

    /// The cache key of chunk `index`.
    pub fn chunk_key(&self, recipe: &Recipe, geometry: &Geometry, index: &[u64]) -> u128 {
        let region = geometry.chunk_region(index);
        let mut hasher = Xxh3::new();
        hasher.update(&self.base.to_le_bytes());
        if recipe.operator.positional() {
            for values in [region.start.as_slice(), region.count.as_slice(), index] {
                hasher.update(&(values.len() as u64).to_le_bytes());
                for v in values {
                    hasher.update(&v.to_le_bytes());
                }
            }
        }
        recipe
            .operator
            .chunk_identity(&self.pieces, &region, index, &mut hasher);
        hasher.digest128()
    }
}

/// For operators that read no other array: no input has a fingerprint.
#[cfg(test)]
pub(crate) struct NoInputs;

#[cfg(test)]
impl ArrayFingerprints for NoInputs {
    fn digest(&self, _: &crate::tree::ArrayNode) -> u128 {
        0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::operators::{Encoding, Part};
    use crate::sources::model::{DType, FileVersion, InlineData, Storage, VarMeta};

    fn part(path: &str, offset: u64, values: &[u8]) -> Part {
        Part {
            path: path.into(),
            version: FileVersion {
                size: 100,
                mtime_ns: 1,
                etag: 0,
            },
            var: Arc::new(VarMeta {
                name: "v".into(),
                dims: vec!["time".into()],
                shape: vec![values.len() as u64],
                dtype: DType::U8,
                attrs: Vec::new(),
                fill: vec![0],
                storage: Storage::Inline(InlineData::Bytes(values.to_vec())),
            }),
            origin: vec![offset],
            transform: None,
        }
    }

    fn array(parts: Vec<Part>) -> (Vec<Part>, Geometry) {
        let len = parts.iter().map(|p| p.var.shape[0]).sum();
        (
            parts,
            Geometry {
                shape: vec![len],
                chunks: vec![2],
                dtype: DType::U8,
                fill: vec![0],
            },
        )
    }

    fn keys(parts: &[Part], geometry: &Geometry) -> Vec<u128> {
        let recipe = Recipe::native(parts.to_vec());
        let fp = RecipeFingerprint::new(&recipe, geometry, &NoInputs);
        (0..geometry.grid()[0])
            .map(|i| fp.chunk_key(&recipe, geometry, &[i]))
            .collect()
    }

    #[test]
    fn keys_differ_by_chunk_and_are_stable() {
        let (recipe, geometry) = array(vec![part("a.nc", 0, &[1, 2]), part("b.nc", 2, &[3, 4])]);
        let k = keys(&recipe, &geometry);
        assert_ne!(k[0], k[1]);
        assert_eq!(k, keys(&recipe.clone(), &geometry.clone()));
    }

    #[test]
    fn a_changed_source_changes_only_the_chunks_that_read_it() {
        let (recipe, geometry) = array(vec![part("a.nc", 0, &[1, 2]), part("b.nc", 2, &[3, 4])]);
        let before = keys(&recipe, &geometry);
        let mut changed = recipe.clone();
        let mut b = changed[1].clone();
        b.version.mtime_ns += 1;
        changed[1] = b;
        let after = keys(&changed, &geometry);
        assert_eq!(before[0], after[0]);
        assert_ne!(before[1], after[1]);
    }

    #[test]
    fn appending_a_file_keeps_the_keys_of_untouched_chunks() {
        let (two, g2) = array(vec![part("a.nc", 0, &[1, 2]), part("b.nc", 2, &[3, 4])]);
        let (three, g3) = array(vec![
            part("a.nc", 0, &[1, 2]),
            part("b.nc", 2, &[3, 4]),
            part("c.nc", 4, &[5]),
        ]);
        assert_eq!(keys(&two, &g2)[..2], keys(&three, &g3)[..2]);
    }

    #[test]
    fn layout_fill_type_and_chunking_are_part_of_the_key() {
        let (recipe, geometry) = array(vec![part("a.nc", 0, &[1, 2, 3, 4])]);
        let base = keys(&recipe, &geometry)[0];
        let mut other = recipe.clone();
        other[0] = part("a.nc", 0, &[9, 2, 3, 4]);
        assert_ne!(keys(&other, &geometry)[0], base, "storage");
        let fill = Geometry {
            fill: vec![7],
            ..geometry.clone()
        };
        assert_ne!(keys(&recipe, &fill)[0], base, "fill");
        let dtype = Geometry {
            dtype: DType::I8,
            ..geometry.clone()
        };
        assert_ne!(keys(&recipe, &dtype)[0], base, "dtype");
        let chunks = Geometry {
            chunks: vec![3],
            ..geometry.clone()
        };
        assert_ne!(keys(&recipe, &chunks)[0], base, "chunks");
        let mut moved = recipe.clone();
        moved[0].origin = vec![1];
        assert_ne!(keys(&moved, &geometry)[0], base, "origin");
        let mut transformed = recipe.clone();
        transformed[0].transform = Some(Arc::new(crate::operators::Transform::identity(DType::I8)));
        assert_ne!(keys(&transformed, &geometry)[0], base, "transform");
    }

    #[test]
    fn the_encoding_is_part_of_the_key() {
        let (parts, geometry) = array(vec![part("a.nc", 0, &[1, 2, 3, 4])]);
        let key = |encoding| {
            let recipe = Recipe {
                encoding,
                ..Recipe::native(parts.clone())
            };
            RecipeFingerprint::new(&recipe, &geometry, &NoInputs).chunk_key(
                &recipe,
                &geometry,
                &[0],
            )
        };
        assert_ne!(key(Encoding::Bytes), key(Encoding::Zstd { level: 3 }));
        assert_ne!(
            key(Encoding::Zstd { level: 1 }),
            key(Encoding::Zstd { level: 3 })
        );
    }
}
