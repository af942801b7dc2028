//! Where disk entries live under a cache directory, and how to list them:
//!
//! ```text
//! <cache dir>/lock                 flock: who uses the directory (see `lock.rs`)
//! <cache dir>/stats.json           counters of the running (or last) mount
//! <cache dir>/chunks/<2 hex>/<32 hex>   one entry per chunk, named by its key
//! <cache dir>/chunks/tmp/          entries being written (renamed into place when complete)
//! ```
//!
//! Owns paths and directory walks; knows nothing of entry contents.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::key::ChunkKey;

/// The directory of entries under a cache directory.
pub fn chunks_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("chunks")
}

/// The directory of entries being written.
pub fn tmp_dir(cache_dir: &Path) -> PathBuf {
    chunks_dir(cache_dir).join("tmp")
}

/// The file of an entry.
pub fn entry_path(cache_dir: &Path, key: ChunkKey) -> PathBuf {
    chunks_dir(cache_dir).join(key.shard()).join(key.hex())
}

/// One entry found on disk.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its key (from the file name).
    pub key: ChunkKey,
    /// Its file.
    pub path: PathBuf,
    /// File length in bytes.
    pub size: u64,
    /// Last modification: the last write or use.
    pub modified: SystemTime,
}

/// What a walk of the entry directories found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Entries, least recently used first.
    pub entries: Vec<Found>,
    /// Files in `tmp/`: writes that never completed (or are in progress elsewhere).
    pub temps: Vec<PathBuf>,
}

/// Lists the entries of a cache directory (an absent `chunks/` lists nothing). Files that
/// vanish during the walk are skipped; names that are not entries are ignored.
///
/// # Errors
/// The I/O error of reading `chunks/` itself.
pub fn list(cache_dir: &Path) -> std::io::Result<Listing> {
    let root = chunks_dir(cache_dir);
    let mut listing = Listing::default();
    let shards = match std::fs::read_dir(&root) {
        Ok(shards) => shards,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
        Err(e) => return Err(e),
    };
    for shard in shards.flatten() {
        let name = shard.file_name();
        let name = name.to_string_lossy();
        if name == "tmp" {
            if let Ok(temps) = std::fs::read_dir(shard.path()) {
                listing
                    .temps
                    .extend(temps.flatten().map(|entry| entry.path()));
            }
            continue;
        }
        if name.len() != 2 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(shard.path()) else {
            continue;
        };
        for file in files.flatten() {
            let Some(key) = file.file_name().to_str().and_then(ChunkKey::from_hex) else {
                continue;
            };
            let Ok(meta) = file.metadata() else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            listing.entries.push(Found {
                key,
                path: file.path(),
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
    }
    listing.entries.sort_by_key(|e| (e.modified, e.key));
    Ok(listing)
}

/// Deletes every entry and temp file; returns how many entries and bytes were removed.
///
/// # Errors
/// The first I/O error other than a file already gone.
pub fn clear(cache_dir: &Path) -> std::io::Result<(u64, u64)> {
    let listing = list(cache_dir)?;
    let (mut count, mut bytes) = (0, 0);
    for entry in &listing.entries {
        match std::fs::remove_file(&entry.path) {
            Ok(()) => {
                count += 1;
                bytes += entry.size;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    for temp in &listing.temps {
        let _ = std::fs::remove_file(temp);
    }
    Ok((count, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_entries_and_temps_and_ignores_strangers() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(dir.path()).unwrap().entries.is_empty());
        let key = ChunkKey(0x1234 << 100);
        let path = entry_path(dir.path(), key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"0123456789").unwrap();
        std::fs::write(path.with_file_name("notakey"), b"x").unwrap();
        std::fs::create_dir_all(tmp_dir(dir.path())).unwrap();
        std::fs::write(tmp_dir(dir.path()).join("half"), b"x").unwrap();
        let listing = list(dir.path()).unwrap();
        assert_eq!(listing.entries.len(), 1);
        assert_eq!((listing.entries[0].key, listing.entries[0].size), (key, 10));
        assert_eq!(listing.temps.len(), 1);
        assert_eq!(clear(dir.path()).unwrap(), (1, 10));
        let listing = list(dir.path()).unwrap();
        assert!(listing.entries.is_empty() && listing.temps.is_empty());
    }
}
