//! The Zarr chunk read: a served chunk is one chunk of an existing Zarr array, read whole from
//! its object (exactly the bytes the listing recorded, checked against that version) and
//! decoded with zarrs' codec chain into little-endian values. A chunk the listing did not find
//! is the fill value, read from nowhere. The recipe's cache key covers the store, the array's
//! codec metadata and, per chunk, the version of that chunk's object.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use serde::{Serialize, Serializer};
use zarrs::array::{ArrayToBytesCodecTraits, CodecOptions};

use super::boxes::fill_with;
use super::{ChunkError, Geometry};
use crate::sources::bytes::ByteSource;
use crate::sources::zarr_store::listing::object_path;
use crate::sources::zarr_store::metadata::little_endian;
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
        ChunkError {
            source_path: Some(
                object
                    .map(str::to_owned)
                    .unwrap_or_else(|| object_path(&self.store, &self.array.path)),
            ),
            reason: reason.into(),
        }
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
        let encoded = source
            .read_all(&object, version)
            .map_err(|e| self.error(Some(&object), e.to_string()))?;
        let decoded = self
            .decode(index, encoded)
            .map_err(|reason| self.error(Some(&object), reason))?;
        if decoded.len() != len {
            return Err(self.error(
                Some(&object),
                format!("decoded {} bytes, not the chunk's {len}", decoded.len()),
            ));
        }
        Ok(little_endian(&decoded, geometry.dtype))
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
            .map_err(|e| ChunkError {
                source_path: None,
                reason: e.to_string(),
            })
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
