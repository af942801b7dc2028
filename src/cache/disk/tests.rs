//! The disk tier: persistence, the size bound, damaged and unfinished entries, passthrough.

use super::*;
use crate::cache::entry_file::get_header;
use std::io::Read;

fn open(dir: &Path, max: u64) -> DiskCache {
    let lock = CacheLock::acquire(dir, LockMode::Exclusive).unwrap();
    DiskCache::open(dir, max, lock).unwrap()
}

fn entry_size(data_len: usize) -> u64 {
    data_len as u64
}

#[test]
fn entries_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 20);
    assert!(cache.put(ChunkKey(1), b"hello"));
    assert_eq!(cache.get(ChunkKey(1)).as_deref(), Some(&b"hello"[..]));
    assert_eq!(cache.get(ChunkKey(2)), None);
    drop(cache);
    let cache = open(dir.path(), 1 << 20);
    assert_eq!(cache.get(ChunkKey(1)).as_deref(), Some(&b"hello"[..]));
    let stats = cache.stats();
    assert_eq!(
        (stats.entries, stats.bytes, stats.hits),
        (1, entry_size(5), 1)
    );
}

#[test]
fn the_bound_holds_and_the_least_recently_used_go_first() {
    let dir = tempfile::tempdir().unwrap();
    let max = 3 * entry_size(100);
    let cache = open(dir.path(), max);
    for k in 0..3 {
        assert!(cache.put(ChunkKey(2 * k), &[k as u8; 100]));
    }
    assert!(cache.get(ChunkKey(0)).is_some()); // 2 is now the least recently used
    assert!(cache.put(ChunkKey(6), &[3; 100]));
    assert!(!cache.contains(ChunkKey(2)));
    assert!(cache.contains(ChunkKey(0)) && cache.contains(ChunkKey(6)));
    let on_disk: u64 = layout::list(dir.path())
        .unwrap()
        .entries
        .iter()
        .map(|e| e.size)
        .sum();
    assert!(on_disk <= max, "{on_disk} > {max}");
    assert_eq!(cache.stats().evictions, 1);
    // Too big for the bound: not stored, nothing evicted.
    assert!(!cache.put(ChunkKey(8), &vec![0; max as usize + 1]));
    assert_eq!(cache.stats().entries, 3);
}

#[test]
fn retained_chunks_are_kept_and_newer_ones_served_uncached_when_full() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 3 * entry_size(100));
    let retained = |n: u128| ChunkKey::of(n << 8, true);
    assert!(cache.put(ChunkKey(2), &[0; 100]));
    for n in 1..=3 {
        assert!(cache.put(retained(n), &[1; 100]));
    }
    // The ordinary entry made room; now only retained ones are left, and they stay.
    assert!(!cache.contains(ChunkKey(2)));
    assert!(!cache.put(retained(4), &[1; 100]));
    assert!((1..=3).all(|n| cache.contains(retained(n))));
    assert_eq!(cache.stats().retained_full, 1);
    // Ordinary chunks still find room, evicting the oldest retained one.
    assert!(cache.put(ChunkKey(4), &[2; 100]));
    assert!(!cache.contains(retained(1)) && cache.contains(retained(2)));
    // Classes survive reopening: they are in the entries' names.
    drop(cache);
    let cache = open(dir.path(), 3 * entry_size(100));
    assert!(cache.put(retained(5), &[1; 100]));
    assert!(!cache.contains(ChunkKey(4)));
    assert!(!cache.put(retained(6), &[1; 100]));
}

#[test]
fn reopening_with_a_smaller_bound_evicts() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 20);
    for k in 0..10 {
        cache.put(ChunkKey(k), &[0; 100]);
    }
    drop(cache);
    let cache = open(dir.path(), 4 * entry_size(100));
    assert_eq!(cache.stats().entries, 4);
    assert_eq!(layout::list(dir.path()).unwrap().entries.len(), 4);
}

#[test]
fn damaged_entries_are_dropped_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 20);
    cache.put(ChunkKey(1), &[7; 1000]);
    cache.put(ChunkKey(2), &[8; 1000]);
    let flip = layout::entry_path(dir.path(), ChunkKey(1));
    let mut bytes = std::fs::read(&flip).unwrap();
    bytes[500] ^= 1;
    std::fs::write(&flip, bytes).unwrap();
    let cut = layout::entry_path(dir.path(), ChunkKey(2));
    let file = std::fs::OpenOptions::new().write(true).open(&cut).unwrap();
    file.set_len(600).unwrap();
    cache.put(ChunkKey(3), &[9; 1000]);
    let header_flip = layout::entry_path(dir.path(), ChunkKey(3));
    let file = std::fs::File::open(&header_flip).unwrap();
    let mut header = get_header(&file).unwrap().unwrap();
    header[40] ^= 1;
    set_header(&file, &header).unwrap();
    drop(file);
    // An entry of the old format: data and trailer in one file, no header attribute.
    let old = layout::entry_path(dir.path(), ChunkKey(4));
    let mut bytes = vec![1u8; 1000];
    bytes.extend_from_slice(&entry::header(ChunkKey(4), &[1; 1000]));
    std::fs::write(&old, bytes).unwrap();
    drop(cache);
    let cache = open(dir.path(), 1 << 20);
    assert_eq!(cache.get(ChunkKey(1)), None);
    assert_eq!(cache.get(ChunkKey(2)), None);
    assert!(cache.open_verified(ChunkKey(3), 100).is_none());
    assert_eq!(cache.get(ChunkKey(4)), None);
    assert!(!flip.exists() && !cut.exists() && !header_flip.exists() && !old.exists());
    let stats = cache.stats();
    assert_eq!((stats.corrupt, stats.entries), (4, 0));
    assert!(cache.put(ChunkKey(1), &[7; 1000]));
    assert_eq!(cache.get(ChunkKey(1)), Some(vec![7; 1000]));
}

#[test]
fn unfinished_writes_are_cleaned_up_by_the_exclusive_holder() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), 1 << 20));
    let temp = layout::tmp_dir(dir.path()).join("abc.1.0");
    std::fs::write(&temp, b"half an entry").unwrap();
    let shared = CacheLock::acquire(dir.path(), LockMode::Shared).unwrap();
    drop(DiskCache::open(dir.path(), 1 << 20, shared).unwrap());
    assert!(temp.exists(), "a shared holder leaves others' writes alone");
    drop(open(dir.path(), 1 << 20));
    assert!(!temp.exists());
}

#[test]
fn failed_writes_are_counted_and_served_uncached() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 20);
    // Make the temp directory unusable: a file where the directory should be.
    std::fs::remove_dir_all(layout::tmp_dir(dir.path())).unwrap();
    std::fs::write(layout::tmp_dir(dir.path()), b"not a dir").unwrap();
    assert!(!cache.put(ChunkKey(1), b"x"));
    assert!(
        !cache.put(ChunkKey(2), b"y"),
        "writes pause after a failure"
    );
    let stats = cache.stats();
    assert_eq!((stats.write_errors, stats.skipped_writes), (1, 1));
    assert!(stats.write_failing.is_some());
    assert_eq!(stats.bytes, 0);
}

#[test]
fn entry_files_hold_the_data_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 20);
    cache.put(ChunkKey(5), b"just the chunk");
    let path = layout::entry_path(dir.path(), ChunkKey(5));
    assert_eq!(std::fs::read(&path).unwrap(), b"just the chunk");
    let header = get_header(&std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(
        header.as_deref(),
        Some(&entry::header(ChunkKey(5), b"just the chunk")[..])
    );
}

#[test]
fn passthrough_trusts_sealed_entries_and_checks_changed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 2 * entry_size(100));
    assert!(cache.open_verified(ChunkKey(10), 100).is_none());
    cache.put(ChunkKey(10), &[1; 100]);
    // Sealed when written: handed out without hashing it.
    let mut file = cache.open_verified(ChunkKey(10), 100).unwrap();
    assert_eq!(cache.stats().checks, 0);
    // Evicted while open: the open file still reads the whole chunk.
    cache.put(ChunkKey(20), &[2; 100]);
    cache.put(ChunkKey(30), &[3; 100]);
    assert!(!cache.contains(ChunkKey(10)));
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, vec![1; 100]);
    assert!(cache.open_verified(ChunkKey(10), 100).is_none());
    // Changed in place (which moves its mtime): checked, found damaged, never handed out.
    let path = layout::entry_path(dir.path(), ChunkKey(20));
    let mut writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    writer.seek(std::io::SeekFrom::Start(7)).unwrap();
    writer.write_all(&[6]).unwrap();
    drop(writer);
    assert!(cache.open_verified(ChunkKey(20), 100).is_none());
    assert!(!path.exists());
    assert_eq!((cache.stats().corrupt, cache.stats().checks), (1, 1));
    // Its seal lost but intact: checked once, sealed again, then trusted.
    let path = layout::entry_path(dir.path(), ChunkKey(30));
    std::fs::File::open(&path)
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
    assert!(cache.open_verified(ChunkKey(30), 100).is_some());
    assert!(cache.open_verified(ChunkKey(30), 100).is_some());
    assert_eq!(cache.stats().checks, 2);
    cache.count_passthrough();
    assert_eq!((cache.stats().passthrough, cache.stats().hits), (1, 1));
}
