//! The Zarr chunk read: a served chunk is one chunk of an existing Zarr array, read whole from
//! its object (exactly the bytes the listing recorded, checked against that version) and
//! decoded with zarrs' codec chain into little-endian values. A chunk the listing did not find
//! is the fill value, read from nowhere. The recipe's cache key covers the store, the array's
//! codec metadata and, per chunk, the version of that chunk's object.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use serde::{Serialize, Serializer};
use zarrs::array::{ArrayToBytesCodecTraits, CodecOptions};

use xxhash_rust::xxh3::Xxh3;

use super::boxes::fill_with;
use super::operator::{FingerprintWriter, Operator, OperatorContext};
use super::{ChunkError, Geometry, Region};
use crate::sources::bytes::ByteSource;
use crate::sources::zarr_store::array::into_little_endian;
use crate::sources::zarr_store::listing::object_path;
use crate::sources::zarr_store::{open_array, Decoder, ZarrArrayMeta};

/// Bump when the bytes this operator serves change for the same inputs.
const OPERATOR_VERSION: u32 = 1;

/// How to read the chunks of an array of a Zarr store.
pub struct ZarrRead {
    /// The store: an absolute directory or an object-store URL.
    pub store: Arc<str>,
    /// The array as indexed: metadata and the versions of its stored chunk objects.
    pub array: Arc<ZarrArrayMeta>,
    /// The zarrs view of the array, built on first use.
    decoder: OnceLock<Result<Decoder, String>>,
}

impl ZarrRead {
    /// Reads `array` of the store at `store`.
    pub fn new(store: &str, array: Arc<ZarrArrayMeta>) -> Self {
        ZarrRead {
            store: store.into(),
            array,
            decoder: OnceLock::new(),
        }
    }

    fn decoder(&self) -> Result<&Decoder, String> {
        self.decoder
            .get_or_init(|| open_array(self.array.format, &self.array.path, &self.array.metadata))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The path or URL of the object holding chunk `index`.
    fn object(&self, index: &[u64]) -> Result<String, ChunkError> {
        let decoder = self.decoder().map_err(|reason| self.error(None, reason))?;
        Ok(object_path(&self.store, decoder.chunk_key(index).as_str()))
    }

    fn error(&self, object: Option<&str>, reason: impl Into<String>) -> ChunkError {
        let path = object
            .map(str::to_owned)
            .unwrap_or_else(|| object_path(&self.store, &self.array.path));
        ChunkError::corrupt(Some(&path), reason)
    }

    /// What of chunk `index` enters its cache key: its object's version, or that it has none.
    pub fn chunk_identity(&self, index: &[u64]) -> Vec<u8> {
        match self.array.stored.get(index) {
            None => vec![0],
            Some(v) => {
                let mut out = vec![1];
                out.extend_from_slice(&v.size.to_le_bytes());
                out.extend_from_slice(&v.mtime_ns.to_le_bytes());
                out.extend_from_slice(&v.etag.to_le_bytes());
                out
            }
        }
    }

    /// Computes chunk `index` as served: `geometry.chunks` elements, little-endian, C order.
    ///
    /// # Errors
    /// [`ChunkError`] naming the chunk's object when it is gone, changed, unreadable or does
    /// not decode to a whole chunk.
    pub fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        source: &dyn ByteSource,
    ) -> Result<Vec<u8>, ChunkError> {
        let elem = geometry.dtype.size().unwrap_or(1);
        let len = geometry.chunks.iter().product::<u64>() as usize * elem;
        let Some(version) = self.array.stored.get(index) else {
            let mut out = vec![0u8; len];
            fill_with(&mut out, &geometry.fill);
            return Ok(out);
        };
        let object = self.object(index)?;
        let encoded = source.read_all(&object, version)?;
        let decoded = self
            .decode(index, encoded)
            .map_err(|reason| self.error(Some(&object), reason))?;
        if decoded.len() != len {
            return Err(self.error(
                Some(&object),
                format!("decoded {} bytes, not the chunk's {len}", decoded.len()),
            ));
        }
        Ok(into_little_endian(decoded, geometry.dtype))
    }

    /// Decodes one chunk object's bytes with the array's codec chain; a panic inside a codec
    /// is caught and reported like any other decoding failure.
    fn decode(&self, index: &[u64], encoded: Vec<u8>) -> Result<Vec<u8>, String> {
        let decoder = self.decoder()?;
        let shape = decoder.chunk_shape(index).map_err(|e| e.to_string())?;
        let decode = || -> Result<Vec<u8>, String> {
            let bytes = decoder
                .codecs()
                .decode(
                    Cow::Owned(encoded),
                    &shape,
                    decoder.data_type(),
                    decoder.fill_value(),
                    &CodecOptions::default(),
                )
                .map_err(|e| format!("cannot decode: {e}"))?;
            let fixed = bytes
                .into_fixed()
                .map_err(|e| format!("cannot decode: {e}"))?;
            Ok(fixed.into_owned())
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode))
            .unwrap_or_else(|_| Err("cannot decode: the codec failed".to_owned()))
    }

    /// Checks that the object of chunk `index` is still at the version indexed.
    ///
    /// # Errors
    /// [`ChunkError`] naming the changed or vanished object.
    pub fn check(&self, index: &[u64], source: &dyn ByteSource) -> Result<(), ChunkError> {
        let Some(version) = self.array.stored.get(index) else {
            return Ok(());
        };
        let object = self.object(index)?;
        source
            .check_version(&object, version)
            .map_err(ChunkError::from)
    }
}

impl std::fmt::Debug for ZarrRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrRead")
            .field("store", &self.store)
            .field("array", &self.array.path)
            .field("stored_chunks", &self.array.stored.len())
            .finish()
    }
}

impl Operator for ZarrRead {
    fn worth_keeping_on_disk(&self) -> bool {
        crate::config::is_url(&self.store)
    }

    fn describe(&self, geometry: &Geometry) -> String {
        format!(
            "from Zarr {}/{} ({} of {} chunk(s) stored)",
            self.store,
            self.array.path,
            self.array.stored.len(),
            geometry.grid().iter().product::<u64>()
        )
    }

    /// The store, array and codecs enter every key; each chunk's object version its own
    /// chunk's key only (and comparisons of whole fingerprints).
    fn fingerprint(&self, out: &mut FingerprintWriter<'_>) {
        out.write(&("zarr", self));
        out.compare(self.array.stored.digest());
    }

    fn chunk_identity(&self, _: &[u128], _: &Region, index: &[u64], hasher: &mut Xxh3) {
        hasher.update(&self.chunk_identity(index));
    }

    fn check(
        &self,
        _: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<(), ChunkError> {
        ZarrRead::check(self, index, context.source)
    }

    fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<Vec<u8>, ChunkError> {
        ZarrRead::compute(self, geometry, index, context.source)
    }
}

/// Serialised for the recipe's fingerprint: the operator version, the store, the array's path,
/// format and codec metadata, its type and fill value — not the chunk versions, which enter
/// each chunk's key on their own ([`ZarrRead::chunk_identity`]).
impl Serialize for ZarrRead {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (
            OPERATOR_VERSION,
            &*self.store,
            &self.array.path,
            self.array.format,
            &self.array.metadata,
            self.array.dtype,
            &self.array.fill,
        )
            .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{json, Value};
    use zarrs::array::{ArrayBytes, ArrayToBytesCodecTraits};

    use super::*;
    use crate::config::StorageSection;
    use crate::sources::model::DType;
    use crate::sources::router::Sources;
    use crate::sources::zarr_store::{self, ZarrStoreMeta, ZarrVersion};

    /// Writes the root group and array `a` (metadata `doc`) of a store at `root`, and each
    /// chunk `(index, values)` encoded with the array's own codecs.
    fn write_store(root: &Path, format: ZarrVersion, doc: &Value, chunks: &[(Vec<u64>, Vec<f32>)]) {
        std::fs::create_dir_all(root.join("a")).unwrap();
        match format {
            ZarrVersion::V3 => {
                let group = json!({"zarr_format": 3, "node_type": "group", "attributes": {}});
                std::fs::write(root.join("zarr.json"), group.to_string()).unwrap();
                std::fs::write(root.join("a/zarr.json"), doc.to_string()).unwrap();
            }
            ZarrVersion::V2 => {
                std::fs::write(root.join(".zgroup"), r#"{"zarr_format": 2}"#).unwrap();
                std::fs::write(root.join("a/.zarray"), doc.to_string()).unwrap();
                let attrs = json!({"_ARRAY_DIMENSIONS": ["y", "x"]});
                std::fs::write(root.join("a/.zattrs"), attrs.to_string()).unwrap();
            }
        }
        let decoder = open_array(format, "a", &doc.to_string()).unwrap();
        for (index, values) in chunks {
            let shape = decoder.chunk_shape(index).unwrap();
            let raw: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
            let encoded = decoder
                .codecs()
                .encode(
                    ArrayBytes::new_flen(raw),
                    &shape,
                    decoder.data_type(),
                    decoder.fill_value(),
                    &CodecOptions::default(),
                )
                .unwrap();
            let path = root.join(decoder.chunk_key(index).as_str());
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, encoded).unwrap();
        }
    }

    fn index(root: &Path) -> ZarrStoreMeta {
        let location = root.to_str().unwrap();
        zarr_store::index(
            location,
            &StorageSection::default(),
            &Sources::default(),
            None,
        )
        .unwrap()
        .0
    }

    fn read_of(store: &ZarrStoreMeta) -> (ZarrRead, Geometry) {
        let array = store.root.arrays["a"].clone();
        let geometry = Geometry {
            shape: array.shape.clone(),
            chunks: array.chunks.clone(),
            dtype: array.dtype,
            fill: array.fill.clone(),
        };
        (ZarrRead::new(&store.location, array), geometry)
    }

    fn floats(bytes: &[u8]) -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    fn v3_doc(codecs: Value, chunk_shape: [u64; 2]) -> Value {
        json!({
            "zarr_format": 3, "node_type": "array", "shape": [4, 5], "data_type": "float32",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk_shape}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": -1.0, "codecs": codecs, "dimension_names": ["y", "x"],
        })
    }

    fn ramp(start: usize, n: usize) -> Vec<f32> {
        (start..start + n).map(|v| v as f32).collect()
    }

    #[test]
    fn chunks_decode_and_absent_chunks_are_the_fill_value() {
        let dir = tempfile::tempdir().unwrap();
        let codecs = json!([{"name": "bytes", "configuration": {"endian": "big"}}, {"name": "gzip", "configuration": {"level": 5}}]);
        let doc = v3_doc(codecs, [2, 3]);
        let written = [(vec![0, 0], ramp(0, 6)), (vec![1, 1], ramp(100, 6))];
        write_store(dir.path(), ZarrVersion::V3, &doc, &written);
        let store = index(dir.path());
        let (read, geometry) = read_of(&store);
        assert_eq!(geometry.dtype, DType::F32);
        assert_eq!(read.array.stored.len(), 2);
        let source = Sources::default();
        for (index, values) in &written {
            let bytes = read.compute(&geometry, index, &source).unwrap();
            assert_eq!(&floats(&bytes), values, "chunk {index:?}");
            read.check(index, &source).unwrap();
        }
        let absent = read.compute(&geometry, &[0, 1], &source).unwrap();
        assert_eq!(floats(&absent), vec![-1.0; 6]);
    }

    #[test]
    fn sharded_and_v2_blosc_arrays_decode() {
        let dir = tempfile::tempdir().unwrap();
        let sharding = json!([{"name": "sharding_indexed", "configuration": {
            "chunk_shape": [2, 2],
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "zstd", "configuration": {"level": 1, "checksum": true}}],
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
        }}]);
        let doc = v3_doc(sharding, [4, 4]);
        let values = ramp(7, 16);
        write_store(
            dir.path(),
            ZarrVersion::V3,
            &doc,
            &[(vec![0, 1], values.clone())],
        );
        let store = index(dir.path());
        let (read, geometry) = read_of(&store);
        assert_eq!(geometry.chunks, vec![4, 4], "a shard is one served chunk");
        let bytes = read
            .compute(&geometry, &[0, 1], &Sources::default())
            .unwrap();
        assert_eq!(floats(&bytes), values);

        let dir = tempfile::tempdir().unwrap();
        let zarray = json!({"zarr_format": 2, "shape": [4, 5], "chunks": [2, 3], "dtype": ">f4",
            "fill_value": "NaN", "order": "C", "filters": null, "dimension_separator": "/",
            "compressor": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0}});
        write_store(
            dir.path(),
            ZarrVersion::V2,
            &zarray,
            &[(vec![1, 0], ramp(3, 6))],
        );
        assert!(dir.path().join("a/1/0").exists());
        let store = index(dir.path());
        assert_eq!(store.format, ZarrVersion::V2);
        let (read, geometry) = read_of(&store);
        assert_eq!(read.array.dims, vec!["y", "x"]);
        let source = Sources::default();
        let bytes = read.compute(&geometry, &[1, 0], &source).unwrap();
        assert_eq!(floats(&bytes), ramp(3, 6));
        let absent = read.compute(&geometry, &[0, 0], &source).unwrap();
        assert!(floats(&absent).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn corrupt_and_rewritten_chunks_fail_naming_the_object_and_change_keys() {
        let dir = tempfile::tempdir().unwrap();
        let codecs = json!([{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "zstd", "configuration": {"level": 1, "checksum": false}}]);
        let doc = v3_doc(codecs, [2, 3]);
        let written = [(vec![0, 0], ramp(0, 6)), (vec![0, 1], ramp(10, 6))];
        write_store(dir.path(), ZarrVersion::V3, &doc, &written);
        let corrupt = dir.path().join("a/c/0/1");
        std::fs::write(&corrupt, b"definitely not zstd").unwrap();
        let store = index(dir.path());
        let (read, geometry) = read_of(&store);
        let source = Sources::default();
        let err = read.compute(&geometry, &[0, 1], &source).unwrap_err();
        assert_eq!(err.source_path.as_deref(), corrupt.to_str());
        assert!(err.reason.contains("decode"), "{err}");
        assert!(read.compute(&geometry, &[0, 0], &source).is_ok());

        // Rewritten after indexing: refused, never served from the old version.
        let before = read.chunk_identity(&[0, 0]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_store(
            dir.path(),
            ZarrVersion::V3,
            &doc,
            &[(vec![0, 0], ramp(50, 6))],
        );
        let err = read.compute(&geometry, &[0, 0], &source).unwrap_err();
        assert!(err.to_string().contains("a/c/0/0"), "{err}");
        assert!(read.check(&[0, 0], &source).is_err());
        let (again, _) = read_of(&index(dir.path()));
        assert_ne!(again.chunk_identity(&[0, 0]), before);
        assert_eq!(again.chunk_identity(&[1, 1]), read.chunk_identity(&[1, 1]));
        let bytes = again.compute(&geometry, &[0, 0], &source).unwrap();
        assert_eq!(floats(&bytes), ramp(50, 6));
    }
}
