//! Cache keys of chunks. A chunk's bytes depend only on its recipe, the versions of the sources
//! it reads and its index, so its key hashes exactly those: xxh3-128 over canonical postcard
//! serialisations of the whole [`Recipe`] (every field but the parts), the [`Geometry`] (every
//! field but the shape, which only matters through the chunk's region), the chunk's region and
//! index, and every part the chunk overlaps — each [`Part`] serialised whole, so its path,
//! version, storage layout, offset and any field added later are covered without listing them.
//! Parts a chunk does not read are left out, so appending a file to an archive keeps the keys of
//! chunks that do not touch it. A Zarr read ([`super::ZarrRead`]) hashes its codec metadata with
//! the recipe and, per chunk, the version of the one object the chunk is read from, so a
//! rewritten chunk object changes that chunk's key only.

use serde::Serialize;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use super::{Geometry, Part, Recipe};

/// Bump when the bytes a recipe computes change for the same inputs (a decoding fix, a new
/// encoding), so entries computed by older code are never served.
const KEY_SCHEME: u32 = 1;

/// The hashed identity of an array's recipe and geometry, computed once per array; gives the
/// cache key of any of its chunks with [`RecipeFingerprint::chunk_key`]. Equal fingerprints
/// (and geometries) mean every chunk has the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeFingerprint {
    base: u128,
    parts: Vec<u128>,
    /// The versions of every chunk object a Zarr read reads (0 for other recipes): not part of
    /// chunk keys (each has its own object's version), but of comparing two fingerprints.
    chunk_objects: u128,
}

fn hash<T: Serialize>(value: &T) -> u128 {
    // Serialising plain data into memory cannot fail; a failure would only weaken the key to
    // "unknown", which is hashed as such rather than panicking.
    match postcard::to_stdvec(value) {
        Ok(bytes) => xxh3_128(&bytes),
        Err(_) => u128::MAX,
    }
}

impl RecipeFingerprint {
    /// Fingerprints `recipe` as served with `geometry`.
    pub fn new(recipe: &Recipe, geometry: &Geometry) -> Self {
        // Every field but the parts (hashed one by one below), including fields added later.
        #[allow(clippy::needless_update)]
        let shell = Recipe {
            parts: Vec::new(),
            ..recipe.clone()
        };
        let geometry = Geometry {
            shape: Vec::new(),
            ..geometry.clone()
        };
        RecipeFingerprint {
            base: hash(&(KEY_SCHEME, shell, geometry)),
            parts: recipe.parts.iter().map(hash::<Part>).collect(),
            chunk_objects: recipe
                .zarr
                .as_ref()
                .map_or(0, |zarr| zarr.array.stored.digest()),
        }
    }

    /// The cache key of chunk `index`.
    pub fn chunk_key(&self, recipe: &Recipe, geometry: &Geometry, index: &[u64]) -> u128 {
        let region = geometry.chunk_region(index);
        let mut hasher = Xxh3::new();
        hasher.update(&self.base.to_le_bytes());
        for values in [region.start.as_slice(), region.count.as_slice(), index] {
            hasher.update(&(values.len() as u64).to_le_bytes());
            for v in values {
                hasher.update(&v.to_le_bytes());
            }
        }
        for (i, part) in recipe.parts.iter().enumerate() {
            if part.touches(&region) {
                hasher.update(&self.parts[i].to_le_bytes());
            }
        }
        if let Some(zarr) = &recipe.zarr {
            hasher.update(&zarr.chunk_identity(index));
        }
        hasher.digest128()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
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

    fn array(parts: Vec<Part>) -> (Recipe, Geometry) {
        let len = parts.iter().map(|p| p.var.shape[0]).sum();
        (
            Recipe::native(parts),
            Geometry {
                shape: vec![len],
                chunks: vec![2],
                dtype: DType::U8,
                fill: vec![0],
            },
        )
    }

    fn keys(recipe: &Recipe, geometry: &Geometry) -> Vec<u128> {
        let fp = RecipeFingerprint::new(recipe, geometry);
        (0..geometry.grid()[0])
            .map(|i| fp.chunk_key(recipe, geometry, &[i]))
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
        let mut b = changed.parts[1].clone();
        b.version.mtime_ns += 1;
        changed.parts[1] = b;
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
        other.parts[0] = part("a.nc", 0, &[9, 2, 3, 4]);
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
        moved.parts[0].origin = vec![1];
        assert_ne!(keys(&moved, &geometry)[0], base, "origin");
        let mut transformed = recipe.clone();
        transformed.parts[0].transform =
            Some(Arc::new(crate::operators::Transform::identity(DType::I8)));
        assert_ne!(keys(&transformed, &geometry)[0], base, "transform");
    }
}
