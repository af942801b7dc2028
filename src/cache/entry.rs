//! The on-disk format of one cached chunk: the chunk's bytes exactly as served (so byte `i` of
//! the entry file is byte `i` of the chunk), then a fixed 64-byte trailer:
//!
//! | bytes  | field                                             |
//! |--------|---------------------------------------------------|
//! | 0..8   | magic `ATLASCHK`                                  |
//! | 8..12  | format version (u32 LE)                           |
//! | 12..16 | reserved, zero                                    |
//! | 16..32 | the chunk key (u128 LE)                           |
//! | 32..40 | data length (u64 LE)                              |
//! | 40..48 | xxh3-64 of the data                               |
//! | 48..56 | reserved, zero                                    |
//! | 56..64 | xxh3-64 of trailer bytes 0..56                    |
//!
//! Data first keeps served offsets equal to file offsets (a later change can read a range of a
//! verified entry in place). Owns encoding and checking only; no I/O.

use xxhash_rust::xxh3::xxh3_64;

use super::key::ChunkKey;

/// Bump whenever the layout changes; entries of another version are dropped on read.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the trailer that follows the data.
pub const TRAILER_LEN: usize = 64;
const MAGIC: &[u8; 8] = b"ATLASCHK";

/// Why an entry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Shorter than a trailer.
    #[error("truncated: {len} bytes, shorter than the {TRAILER_LEN}-byte trailer")]
    TooShort {
        /// File length.
        len: u64,
    },
    /// Not an atlasfs cache entry.
    #[error("bad magic")]
    BadMagic,
    /// The trailer's own checksum does not match.
    #[error("trailer checksum mismatch")]
    TrailerChecksum,
    /// Written by another format version.
    #[error("format version {found}, expected {FORMAT_VERSION}")]
    Version {
        /// Version found.
        found: u32,
    },
    /// The trailer names another key than the file name.
    #[error("holds key {found}, expected {expected}")]
    KeyMismatch {
        /// Key in the trailer.
        found: ChunkKey,
        /// Key the file is named after.
        expected: ChunkKey,
    },
    /// The data length does not match the trailer.
    #[error("data length {found}, trailer says {expected} (truncated or extended)")]
    Length {
        /// Length in the trailer.
        expected: u64,
        /// Length found.
        found: u64,
    },
    /// The data checksum does not match.
    #[error("data checksum mismatch")]
    DataChecksum,
}

/// The trailer written after `data`.
pub fn trailer(key: ChunkKey, data: &[u8]) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[0..8].copy_from_slice(MAGIC);
    t[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    t[16..32].copy_from_slice(&key.0.to_le_bytes());
    t[32..40].copy_from_slice(&(data.len() as u64).to_le_bytes());
    t[40..48].copy_from_slice(&xxh3_64(data).to_le_bytes());
    let sum = xxh3_64(&t[0..56]);
    t[56..64].copy_from_slice(&sum.to_le_bytes());
    t
}

/// Checks a whole entry file's bytes against `expected` and returns the data length.
///
/// # Errors
/// [`EntryError`] saying what is wrong; a corrupt or truncated entry is never accepted.
pub fn check(file: &[u8], expected: ChunkKey) -> Result<usize, EntryError> {
    let len = file.len();
    if len < TRAILER_LEN {
        return Err(EntryError::TooShort { len: len as u64 });
    }
    let (data, t) = file.split_at(len - TRAILER_LEN);
    if &t[0..8] != MAGIC {
        return Err(EntryError::BadMagic);
    }
    if xxh3_64(&t[0..56]) != u64_at(t, 56) {
        return Err(EntryError::TrailerChecksum);
    }
    let version = u32::from_le_bytes(t[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(EntryError::Version { found: version });
    }
    let found = ChunkKey(u128::from_le_bytes(t[16..32].try_into().expect("16 bytes")));
    if found != expected {
        return Err(EntryError::KeyMismatch { found, expected });
    }
    let data_len = u64_at(t, 32);
    if data_len != data.len() as u64 {
        return Err(EntryError::Length {
            expected: data_len,
            found: data.len() as u64,
        });
    }
    if xxh3_64(data) != u64_at(t, 40) {
        return Err(EntryError::DataChecksum);
    }
    Ok(data.len())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: ChunkKey, data: &[u8]) -> Vec<u8> {
        let mut file = data.to_vec();
        file.extend_from_slice(&trailer(key, data));
        file
    }

    /// Pins the exact bytes: changing the layout must bump FORMAT_VERSION and this test.
    #[test]
    fn trailer_bytes_are_pinned() {
        let t = trailer(ChunkKey(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10), b"abc");
        let hex: String = t.iter().map(|b| format!("{b:02x}")).collect();
        let expected = concat!(
            "41544c415343484b",                 // magic
            "01000000",                         // format version
            "00000000",                         // reserved
            "100f0e0d0c0b0a090807060504030201", // key
            "0300000000000000",                 // data length
            "50392f89945faf78",                 // xxh3-64 of "abc"
            "0000000000000000",                 // reserved
            "a4688b1262c8d981",                 // trailer checksum
        );
        assert_eq!(hex, expected);
        assert_eq!(FORMAT_VERSION, 1);
    }

    #[test]
    fn a_good_entry_checks() {
        let key = ChunkKey(42);
        let file = entry(key, b"chunk bytes");
        assert_eq!(check(&file, key), Ok(11));
        assert_eq!(check(&entry(key, b""), key), Ok(0));
    }

    #[test]
    fn every_kind_of_damage_is_caught() {
        let key = ChunkKey(7);
        let good = entry(key, &[5u8; 100]);
        let mut flipped = good.clone();
        flipped[10] ^= 0x40;
        assert_eq!(check(&flipped, key), Err(EntryError::DataChecksum));
        let mut trailer_flip = good.clone();
        trailer_flip[100 + 33] ^= 1;
        assert_eq!(check(&trailer_flip, key), Err(EntryError::TrailerChecksum));
        assert_eq!(check(&good[..80], key), Err(EntryError::BadMagic));
        assert_eq!(
            check(&good[..10], key),
            Err(EntryError::TooShort { len: 10 })
        );
        let mut cut = good[..40].to_vec();
        cut.extend_from_slice(&good[100..]);
        assert_eq!(
            check(&cut, key),
            Err(EntryError::Length {
                expected: 100,
                found: 40
            })
        );
        assert!(matches!(
            check(&good, ChunkKey(8)),
            Err(EntryError::KeyMismatch { .. })
        ));
    }
}
