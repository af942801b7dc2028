//! An entry's seal: proof that its file was checked in full (or written by us) and has not been
//! changed since, so that later opens, in this process or the next, hand it to the kernel
//! without hashing it again.
//!
//! Sealing sets the file's mtime to an exact time of our choosing and records that time, with
//! the key, the length and a hash of the header, in the attribute [`SEAL_XATTR`]. Any later write
//! or truncate moves the mtime to the kernel's own clock, and any change of the header changes
//! its hash, so either breaks the seal and the next open checks the file again (git's index
//! trusts unchanged stat data the same way). A filesystem that stores times coarser than
//! nanoseconds never keeps a seal, since the recorded time would not match. What a seal cannot
//! see is a change that puts the mtime back exactly, or the disk silently rotting a block:
//! `atlasfs cache verify` hashes every entry.

use std::ffi::CStr;
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use xxhash_rust::xxh3::xxh3_64;

use super::entry_file::{get_header, get_xattr, set_xattr};
use super::key::ChunkKey;

/// The extended attribute holding an entry's seal.
pub(super) const SEAL_XATTR: &CStr = c"user.atlasfs.checked";
/// key (16) + length (8) + mtime in ns (8) + xxh3-64 of the header (8).
const SEAL_LEN: usize = 40;

fn encode(key: ChunkKey, len: u64, mtime_ns: i64, header: &[u8]) -> [u8; SEAL_LEN] {
    let mut seal = [0u8; SEAL_LEN];
    seal[0..16].copy_from_slice(&key.0.to_le_bytes());
    seal[16..24].copy_from_slice(&len.to_le_bytes());
    seal[24..32].copy_from_slice(&mtime_ns.to_le_bytes());
    seal[32..40].copy_from_slice(&xxh3_64(header).to_le_bytes());
    seal
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

fn unix_ns(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .unwrap_or(0)
}

/// The header of `file` (whose metadata is `meta`) when the file carries an intact seal as the
/// entry of `key`; `None` when it must be checked.
pub(super) fn sealed_header(
    file: &std::fs::File,
    meta: &std::fs::Metadata,
    key: ChunkKey,
) -> Option<Vec<u8>> {
    let seal = get_xattr::<SEAL_LEN>(file, SEAL_XATTR).ok()??;
    let header = get_header(file).ok()??;
    (seal == encode(key, meta.len(), mtime_ns(meta), &header)).then_some(header)
}

/// Seals `file`, `len` bytes long and just checked (or written) as the entry of `key` with
/// `header`: its mtime becomes now (which also marks it recently used). Best effort: a seal
/// that could not be set or kept only means the next open checks the file again.
pub(super) fn seal(file: &std::fs::File, key: ChunkKey, len: u64, header: &[u8]) {
    let now = SystemTime::now();
    // The attribute first: interrupted between the two, the seal names a time the file does
    // not have, and does not hold.
    let _ = set_xattr(file, SEAL_XATTR, &encode(key, len, unix_ns(now), header))
        .and_then(|()| file.set_modified(now));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sealed_file(dir: &std::path::Path, key: ChunkKey) -> (std::path::PathBuf, Vec<u8>) {
        let path = dir.join("entry");
        let data = b"chunk bytes".to_vec();
        let header = crate::cache::entry::header(key, &data);
        let file = std::fs::File::create(&path).unwrap();
        (&file).write_all(&data).unwrap();
        super::super::entry_file::set_header(&file, &header).unwrap();
        seal(&file, key, data.len() as u64, &header);
        (path, header.to_vec())
    }

    fn check(path: &std::path::Path, key: ChunkKey) -> Option<Vec<u8>> {
        let file = std::fs::File::open(path).unwrap();
        let meta = file.metadata().unwrap();
        sealed_header(&file, &meta, key)
    }

    #[test]
    fn a_sealed_file_holds_its_seal_for_its_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = ChunkKey(7);
        let (path, header) = sealed_file(dir.path(), key);
        assert_eq!(check(&path, key), Some(header));
        assert_eq!(check(&path, ChunkKey(8)), None);
    }

    #[test]
    fn a_write_breaks_the_seal() {
        let dir = tempfile::tempdir().unwrap();
        let key = ChunkKey(7);
        let (path, _) = sealed_file(dir.path(), key);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all(b"C")
            .unwrap();
        assert_eq!(check(&path, key), None);
    }

    #[test]
    fn a_changed_header_breaks_the_seal() {
        let dir = tempfile::tempdir().unwrap();
        let key = ChunkKey(7);
        let (path, mut header) = sealed_file(dir.path(), key);
        header[44] ^= 1;
        let file = std::fs::File::open(&path).unwrap();
        super::super::entry_file::set_header(&file, &header).unwrap();
        assert_eq!(check(&path, key), None);
    }

    #[test]
    fn a_moved_mtime_breaks_the_seal() {
        let dir = tempfile::tempdir().unwrap();
        let key = ChunkKey(7);
        let (path, _) = sealed_file(dir.path(), key);
        let file = std::fs::File::open(&path).unwrap();
        file.set_modified(SystemTime::now()).unwrap();
        assert_eq!(check(&path, key), None);
    }
}
