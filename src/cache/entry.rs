//! The on-disk format of one cached chunk. The entry file holds the chunk's bytes alone,
//! exactly as served (byte `i` of the file is byte `i` of the chunk), so a verified entry can be
//! handed to the kernel as the backing file of a FUSE passthrough open. A fixed 64-byte header
//! travels with the file as its extended attribute [`XATTR_NAME`] (set before the file is
//! renamed into place, so an entry is never visible without it):
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
//! | 56..64 | xxh3-64 of header bytes 0..56                     |
//!
//! Version 1 appended the same 64 bytes to the data instead; such files have no header
//! attribute and are dropped as damaged. Owns encoding and checking only; no I/O.

use xxhash_rust::xxh3::xxh3_64;

use super::key::ChunkKey;

/// Bump whenever the layout changes; entries of another version are dropped on read.
pub const FORMAT_VERSION: u32 = 2;
/// Length of the header.
pub const HEADER_LEN: usize = 64;
/// The extended attribute holding an entry's header.
pub const XATTR_NAME: &std::ffi::CStr = c"user.atlasfs.entry";
const MAGIC: &[u8; 8] = b"ATLASCHK";

/// Why an entry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The file has no header attribute (written by an older version, or not an entry).
    #[error("no {} header (an older entry format, or not an entry)", XATTR_NAME.to_string_lossy())]
    NoHeader,
    /// The header is not 64 bytes long.
    #[error("header of {len} bytes, expected {HEADER_LEN}")]
    HeaderLength {
        /// Header length found.
        len: usize,
    },
    /// Not an atlasfs cache entry.
    #[error("bad magic")]
    BadMagic,
    /// The header's own checksum does not match.
    #[error("header checksum mismatch")]
    HeaderChecksum,
    /// Written by another format version.
    #[error("format version {found}, expected {FORMAT_VERSION}")]
    Version {
        /// Version found.
        found: u32,
    },
    /// The header names another key than the file name.
    #[error("holds key {found}, expected {expected}")]
    KeyMismatch {
        /// Key in the header.
        found: ChunkKey,
        /// Key the file is named after.
        expected: ChunkKey,
    },
    /// The data length does not match the header.
    #[error("data length {found}, header says {expected} (truncated or extended)")]
    Length {
        /// Length in the header.
        expected: u64,
        /// Length found.
        found: u64,
    },
    /// The data checksum does not match.
    #[error("data checksum mismatch")]
    DataChecksum,
}

/// The header of the entry of `key` holding `data`.
pub fn header(key: ChunkKey, data: &[u8]) -> [u8; HEADER_LEN] {
    let mut t = [0u8; HEADER_LEN];
    t[0..8].copy_from_slice(MAGIC);
    t[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    t[16..32].copy_from_slice(&key.0.to_le_bytes());
    t[32..40].copy_from_slice(&(data.len() as u64).to_le_bytes());
    t[40..48].copy_from_slice(&xxh3_64(data).to_le_bytes());
    let sum = xxh3_64(&t[0..56]);
    t[56..64].copy_from_slice(&sum.to_le_bytes());
    t
}

/// What an intact header says of its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Data length in bytes.
    pub len: u64,
    /// xxh3-64 of the data.
    pub hash: u64,
}

impl Expected {
    /// Checks data of `len` bytes whose xxh3-64 is `hash`.
    ///
    /// # Errors
    /// [`EntryError::Length`] or [`EntryError::DataChecksum`].
    pub fn check_data(&self, len: u64, hash: u64) -> Result<(), EntryError> {
        self.check_len(len)?;
        if hash != self.hash {
            return Err(EntryError::DataChecksum);
        }
        Ok(())
    }

    /// Checks only the data length (before reading the data).
    ///
    /// # Errors
    /// [`EntryError::Length`].
    pub fn check_len(&self, len: u64) -> Result<(), EntryError> {
        if len != self.len {
            return Err(EntryError::Length {
                expected: self.len,
                found: len,
            });
        }
        Ok(())
    }
}

/// Checks an entry's `data` (the whole file) and `header` (its attribute; `None` when absent)
/// against `expected`.
///
/// # Errors
/// [`EntryError`] saying what is wrong; a corrupt or truncated entry is never accepted.
pub fn check(data: &[u8], header: Option<&[u8]>, expected: ChunkKey) -> Result<(), EntryError> {
    check_header(header, expected)?.check_data(data.len() as u64, xxh3_64(data))
}

/// Checks an entry's `header` (its attribute; `None` when absent) against `expected`; returns
/// what it says of the data, to be checked with [`Expected::check_data`].
///
/// # Errors
/// [`EntryError`] saying what is wrong with the header.
pub fn check_header(header: Option<&[u8]>, expected: ChunkKey) -> Result<Expected, EntryError> {
    let t = header.ok_or(EntryError::NoHeader)?;
    if t.len() != HEADER_LEN {
        return Err(EntryError::HeaderLength { len: t.len() });
    }
    if &t[0..8] != MAGIC {
        return Err(EntryError::BadMagic);
    }
    if xxh3_64(&t[0..56]) != u64_at(t, 56) {
        return Err(EntryError::HeaderChecksum);
    }
    let version = u32_at(t, 8);
    if version != FORMAT_VERSION {
        return Err(EntryError::Version { found: version });
    }
    let found = ChunkKey(u64_at(t, 16) as u128 | (u64_at(t, 24) as u128) << 64);
    if found != expected {
        return Err(EntryError::KeyMismatch { found, expected });
    }
    Ok(Expected {
        len: u64_at(t, 32),
        hash: u64_at(t, 40),
    })
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the exact bytes: changing the layout must bump FORMAT_VERSION and this test.
    #[test]
    fn header_bytes_are_pinned() {
        let t = header(ChunkKey(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10), b"abc");
        let hex: String = t.iter().map(|b| format!("{b:02x}")).collect();
        let expected = concat!(
            "41544c415343484b",                 // magic
            "02000000",                         // format version
            "00000000",                         // reserved
            "100f0e0d0c0b0a090807060504030201", // key
            "0300000000000000",                 // data length
            "50392f89945faf78",                 // xxh3-64 of "abc"
            "0000000000000000",                 // reserved
            "b24193e3f39e88ae",                 // header checksum
        );
        assert_eq!(hex, expected);
        assert_eq!(FORMAT_VERSION, 2);
        assert_eq!(XATTR_NAME.to_str(), Ok("user.atlasfs.entry"));
    }

    #[test]
    fn a_good_entry_checks() {
        let key = ChunkKey(42);
        let data = b"chunk bytes";
        assert_eq!(check(data, Some(&header(key, data)), key), Ok(()));
        // Streamed hashing gives the one-shot hash.
        let mut streamed = xxhash_rust::xxh3::Xxh3::new();
        streamed.update(b"chunk ");
        streamed.update(b"bytes");
        let expected = check_header(Some(&header(key, data)), key).unwrap();
        assert_eq!(expected.check_data(11, streamed.digest()), Ok(()));
        assert_eq!(check(b"", Some(&header(key, b"")), key), Ok(()));
    }

    #[test]
    fn every_kind_of_damage_is_caught() {
        let key = ChunkKey(7);
        let data = [5u8; 100];
        let good = header(key, &data);
        let mut flipped = data;
        flipped[10] ^= 0x40;
        assert_eq!(
            check(&flipped, Some(&good), key),
            Err(EntryError::DataChecksum)
        );
        let mut header_flip = good;
        header_flip[33] ^= 1;
        assert_eq!(
            check(&data, Some(&header_flip), key),
            Err(EntryError::HeaderChecksum)
        );
        let mut magic_flip = good;
        magic_flip[0] ^= 1;
        assert_eq!(
            check(&data, Some(&magic_flip), key),
            Err(EntryError::BadMagic)
        );
        assert_eq!(check(&data, None, key), Err(EntryError::NoHeader));
        assert_eq!(
            check(&data, Some(&good[..10]), key),
            Err(EntryError::HeaderLength { len: 10 })
        );
        assert_eq!(
            check(&data[..40], Some(&good), key),
            Err(EntryError::Length {
                expected: 100,
                found: 40
            })
        );
        assert!(matches!(
            check(&data, Some(&good), ChunkKey(8)),
            Err(EntryError::KeyMismatch { .. })
        ));
    }
}
