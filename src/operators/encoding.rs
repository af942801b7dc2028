//! The encoding of an array as served: its Zarr codec chain after the little-endian `bytes`
//! codec, built with zarrs' codec types. An operator computes typed values (little-endian, C
//! order; vlen-utf8 for strings); the key space encodes them with the array's encoding before
//! caching and serving, and decodes cached chunks of an input array a view reads. Uncompressed
//! arrays have exact chunk sizes from their shape; a compressed chunk's size is its length once
//! computed (the key space computes it, through the cache, when asked).

use std::borrow::Cow;

use serde::Serialize;
use zarrs::array::codec::api::{BytesRepresentation, BytesToBytesCodecTraits, CodecOptions};
use zarrs::array::codec::{
    BloscCodec, BloscCompressionLevel, BloscCompressor, BloscShuffleMode, GzipCodec, ZstdCodec,
};

use super::error::{ChunkError, ChunkErrorKind};

/// An array's codecs after the little-endian `bytes` codec. Part of every chunk's cache key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Encoding {
    /// Values as computed: `bytes` (little-endian) only, or vlen-utf8 for strings.
    #[default]
    Bytes,
    /// `bytes` then `zstd` at `level`, without checksum.
    Zstd {
        /// The zstd compression level.
        level: i32,
    },
    /// `bytes` then `gzip` at `level` (0–9): what map viewers reading Zarr v2 decode.
    Gzip {
        /// The gzip compression level.
        level: u32,
    },
    /// `bytes` then `blosc` with zstd inside, byte shuffle over `typesize`-byte elements.
    BloscZstd {
        /// The blosc compression level (0–9).
        level: u8,
        /// Bytes per element, for the shuffle.
        typesize: u8,
    },
}

impl Encoding {
    /// Whether a chunk's served size follows from the array's shape and type alone.
    pub fn is_exact(self) -> bool {
        matches!(self, Encoding::Bytes)
    }

    fn codec(self) -> Result<Option<Box<dyn BytesToBytesCodecTraits>>, ChunkError> {
        let invalid = |e: String| ChunkError::new(ChunkErrorKind::Encoding, None, e);
        Ok(match self {
            Encoding::Bytes => None,
            Encoding::Zstd { level } => Some(Box::new(ZstdCodec::new(level, false))),
            Encoding::Gzip { level } => Some(Box::new(
                GzipCodec::new(level).map_err(|e| invalid(e.to_string()))?,
            )),
            Encoding::BloscZstd { level, typesize } => {
                let level = BloscCompressionLevel::try_from(level)
                    .map_err(|l| invalid(format!("blosc level {l} is not within 0-9")))?;
                Some(Box::new(
                    BloscCodec::new(
                        BloscCompressor::Zstd,
                        level,
                        None,
                        BloscShuffleMode::Shuffle,
                        Some(usize::from(typesize)),
                    )
                    .map_err(|e| invalid(e.to_string()))?,
                ))
            }
        })
    }

    /// Encodes a chunk's values as served.
    ///
    /// # Errors
    /// [`ChunkErrorKind::Encoding`] when the codec fails.
    pub fn encode(self, values: Vec<u8>) -> Result<Vec<u8>, ChunkError> {
        let failed =
            |e: String| ChunkError::new(ChunkErrorKind::Encoding, None, format!("encoding: {e}"));
        let mut encoded = match self {
            // Without zstd's block pre-splitter (see `zstd_frame`); decoded by zarrs' codec.
            Encoding::Zstd { level } => {
                super::zstd_frame::compress(&values, level).map_err(failed)?
            }
            _ => match self.codec()? {
                None => return Ok(values),
                Some(codec) => codec
                    .encode(Cow::Owned(values), &CodecOptions::default())
                    .map(Cow::into_owned)
                    .map_err(|e| failed(e.to_string()))?,
            },
        };
        // Compressors allocate their worst-case bound; the caches count (and keep) the length.
        encoded.shrink_to_fit();
        Ok(encoded)
    }

    /// Decodes a served chunk back to its values (`len` bytes of them, when known).
    ///
    /// # Errors
    /// [`ChunkErrorKind::Encoding`] when the bytes do not decode (to `len` bytes).
    pub fn decode<'a>(
        self,
        encoded: &'a [u8],
        len: Option<u64>,
    ) -> Result<Cow<'a, [u8]>, ChunkError> {
        let Some(codec) = self.codec()? else {
            return Ok(Cow::Borrowed(encoded));
        };
        let representation = len.map_or(
            BytesRepresentation::UnboundedSize,
            BytesRepresentation::FixedSize,
        );
        let decoded = codec
            .decode(
                Cow::Borrowed(encoded),
                &representation,
                &CodecOptions::default(),
            )
            .map_err(|e| {
                ChunkError::new(ChunkErrorKind::Encoding, None, format!("decoding: {e}"))
            })?;
        match len {
            Some(len) if decoded.len() as u64 != len => Err(ChunkError::new(
                ChunkErrorKind::Encoding,
                None,
                format!("decoded {} bytes, not the chunk's {len}", decoded.len()),
            )),
            _ => Ok(decoded),
        }
    }

    /// The codecs after `bytes` in a Zarr v3 `zarr.json`.
    pub fn v3_codecs(self) -> Vec<serde_json::Value> {
        match self {
            Encoding::Bytes => Vec::new(),
            Encoding::Zstd { level } => vec![serde_json::json!({
                "name": "zstd", "configuration": {"level": level, "checksum": false}
            })],
            Encoding::Gzip { level } => vec![serde_json::json!({
                "name": "gzip", "configuration": {"level": level}
            })],
            Encoding::BloscZstd { level, typesize } => vec![serde_json::json!({
                "name": "blosc", "configuration": {
                    "cname": "zstd", "clevel": level, "shuffle": "shuffle",
                    "typesize": typesize, "blocksize": 0
                }
            })],
        }
    }

    /// The compressor of a Zarr v2 `.zarray` (`null` for none).
    pub fn v2_compressor(self) -> serde_json::Value {
        match self {
            Encoding::Bytes => serde_json::Value::Null,
            Encoding::Zstd { level } => serde_json::json!({"id": "zstd", "level": level}),
            Encoding::Gzip { level } => serde_json::json!({"id": "gzip", "level": level}),
            Encoding::BloscZstd { level, .. } => serde_json::json!({
                "id": "blosc", "cname": "zstd", "clevel": level, "shuffle": 1, "blocksize": 0
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_round_trips_and_bytes_is_identity() {
        let values: Vec<u8> = (0..4096u32).flat_map(|i| (i % 7).to_le_bytes()).collect();
        let zstd = Encoding::Zstd { level: 3 };
        let encoded = zstd.encode(values.clone()).unwrap();
        assert!(encoded.len() < values.len());
        assert_eq!(
            zstd.decode(&encoded, Some(values.len() as u64)).unwrap(),
            values
        );
        assert!(zstd.decode(b"not zstd", None).is_err());
        assert_eq!(Encoding::Bytes.encode(values.clone()).unwrap(), values);
        assert!(Encoding::Bytes.is_exact() && !zstd.is_exact());
    }

    #[test]
    fn gzip_and_blosc_zstd_round_trip() {
        let values: Vec<u8> = (0..4096u32).flat_map(|i| (i % 7).to_le_bytes()).collect();
        for encoding in [
            Encoding::Gzip { level: 5 },
            Encoding::BloscZstd {
                level: 5,
                typesize: 4,
            },
        ] {
            let encoded = encoding.encode(values.clone()).unwrap();
            assert!(encoded.len() < values.len(), "{encoding:?}");
            let decoded = encoding.decode(&encoded, Some(values.len() as u64));
            assert_eq!(decoded.unwrap(), values, "{encoding:?}");
        }
        let bad = Encoding::BloscZstd {
            level: 12,
            typesize: 4,
        };
        assert!(bad.encode(values).is_err());
    }
}
