//! Every object of a Zarr store with its version: a local directory walked (size and mtime),
//! or an object-store prefix listed once (size, mtime and ETag). Metadata documents are found
//! in it, and each chunk's version comes from it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ZarrStoreError;
use crate::config::{is_url, StorageSection};
use crate::sources::bytes::local_version;
use crate::sources::model::FileVersion;
use crate::sources::remote::{runtime, version_of};
use crate::sources::router::Sources;

/// Names of Zarr metadata documents.
pub const DOCUMENTS: [&str; 5] = ["zarr.json", ".zmetadata", ".zgroup", ".zarray", ".zattrs"];

/// Walks stop this deep (a guard against pathological trees).
const MAX_DEPTH: usize = 64;

/// The objects of one store.
#[derive(Debug, Default)]
pub struct StoreListing {
    /// Key (relative to the store's root, `/`-separated) to version.
    pub objects: BTreeMap<String, FileVersion>,
    /// What the walk left out and why.
    pub warnings: Vec<String>,
}

impl StoreListing {
    /// The metadata documents among the objects, in key order.
    pub fn documents(&self) -> Vec<(String, FileVersion)> {
        self.objects
            .iter()
            .filter(|(key, _)| {
                let name = key.rsplit('/').next().unwrap_or(key);
                DOCUMENTS.contains(&name)
            })
            .map(|(key, version)| (key.clone(), *version))
            .collect()
    }
}

/// The path or URL of `key` in the store at `location`.
pub fn object_path(location: &str, key: &str) -> String {
    format!("{}/{key}", location.trim_end_matches('/'))
}

/// Lists the store at `location` (a directory or an object-store URL).
///
/// # Errors
/// [`ZarrStoreError::List`] when the directory cannot be read or the listing fails after
/// retries.
pub fn list(
    location: &str,
    storage: &StorageSection,
    sources: &Sources,
) -> Result<StoreListing, ZarrStoreError> {
    let failed = |reason: String| ZarrStoreError::List {
        location: location.to_owned(),
        reason,
    };
    if !is_url(location) {
        return walk(Path::new(location)).map_err(|e| failed(e.to_string()));
    }
    let (store, prefix) = sources
        .store(location, storage)
        .map_err(|e| failed(e.to_string()))?;
    let prefix = prefix.trim_end_matches('/');
    let objects = runtime()
        .block_on(store.list(prefix))
        .map_err(|e| failed(e.to_string()))?;
    let mut listing = StoreListing::default();
    for meta in objects {
        let key = meta.location.as_ref();
        let relative = if prefix.is_empty() {
            Some(key)
        } else {
            key.strip_prefix(prefix).and_then(|k| k.strip_prefix('/'))
        };
        if let Some(relative) = relative.filter(|k| !k.is_empty()) {
            let version = version_of(&meta);
            store.confirm(key, version);
            listing.objects.insert(relative.to_owned(), version);
        }
    }
    Ok(listing)
}

/// Walks a local store. Symbolic links are followed only to files inside the store.
fn walk(root: &Path) -> std::io::Result<StoreListing> {
    let meta = std::fs::metadata(root)?;
    if !meta.is_dir() {
        return Err(std::io::Error::other("not a directory"));
    }
    let canonical_root = std::fs::canonicalize(root)?;
    let mut listing = StoreListing::default();
    let mut pending: Vec<(PathBuf, String, usize)> = vec![(root.to_owned(), String::new(), 0)];
    while let Some((dir, prefix, depth)) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                listing.warnings.push(format!(
                    "left out {}: the name is not UTF-8",
                    entry.path().display()
                ));
                continue;
            };
            let key = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if depth + 1 < MAX_DEPTH {
                    pending.push((entry.path(), key, depth + 1));
                }
            } else if kind.is_file() {
                listing
                    .objects
                    .insert(key, local_version(&entry.metadata()?));
            } else if kind.is_symlink() {
                let target = std::fs::canonicalize(entry.path());
                match (target, std::fs::metadata(entry.path())) {
                    (Ok(target), Ok(meta))
                        if meta.is_file() && target.starts_with(&canonical_root) =>
                    {
                        listing.objects.insert(key, local_version(&meta));
                    }
                    _ => listing.warnings.push(format!(
                        "left out {}: a symbolic link to a directory, outside the store or dangling",
                        entry.path().display()
                    )),
                }
            }
        }
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_a_directory_with_relative_keys_and_finds_documents() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sst/c/0")).unwrap();
        std::fs::write(root.join("zarr.json"), b"{}").unwrap();
        std::fs::write(root.join("sst/zarr.json"), b"{}").unwrap();
        std::fs::write(root.join("sst/c/0/1"), b"12345").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x"), b"1").unwrap();
        std::os::unix::fs::symlink(outside.path().join("x"), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(root.join("sst/c/0/1"), root.join("sst/c/0/2")).unwrap();
        let listing = walk(root).unwrap();
        let keys: Vec<&str> = listing.objects.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec!["sst/c/0/1", "sst/c/0/2", "sst/zarr.json", "zarr.json"]
        );
        assert_eq!(listing.objects["sst/c/0/1"].size, 5);
        assert_eq!(listing.warnings.len(), 1, "{:?}", listing.warnings);
        let docs: Vec<String> = listing.documents().into_iter().map(|(k, _)| k).collect();
        assert_eq!(docs, vec!["sst/zarr.json", "zarr.json"]);
        assert!(walk(&root.join("zarr.json")).is_err());
        assert_eq!(object_path("/a/b.zarr/", "x/c/0"), "/a/b.zarr/x/c/0");
    }
}
