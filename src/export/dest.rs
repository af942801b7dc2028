//! Where an export writes: a local directory or an object-store URL (`s3://bucket/prefix`,
//! `gs://…`, `az://…`), both through `object_store`, so every write is whole (a local file is
//! written aside and renamed; an object is put at once) and a killed worker leaves no partial
//! key behind.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::ExportError;
use crate::config::StorageSection;
use crate::sources::remote::location::ObjectUrl;
use crate::sources::remote::store::open_store;
use crate::sources::remote::{redacted, runtime};

/// An export's destination store.
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    /// The key prefix inside the store (empty for a directory).
    prefix: String,
    /// The destination as given, for messages.
    shown: String,
    /// The local directory, when it is one (written through staging files `<key>#<n>`).
    local: Option<std::path::PathBuf>,
    /// When this export opened the destination: a staging file last written before then was
    /// left by a writer that stopped; a newer one may be another worker's write in flight.
    opened_at: SystemTime,
}

impl Destination {
    /// Opens `dest`: a URL with a scheme (reached with `storage`) or a local directory,
    /// created if missing.
    ///
    /// # Errors
    /// [`ExportError::Store`] when the directory cannot be created or the client built.
    pub fn open(dest: &str, storage: &StorageSection) -> Result<Destination, ExportError> {
        let failed = |reason: String| ExportError::Store {
            dest: dest.to_owned(),
            reason,
        };
        let (store, prefix): (Arc<dyn ObjectStore>, String) = if dest.contains("://") {
            let url = ObjectUrl::parse(dest).map_err(|e| failed(redacted(&e)))?;
            let store = open_store(&url.store, storage).map_err(|e| failed(redacted(&e)))?;
            (store, url.key.trim_matches('/').to_owned())
        } else {
            std::fs::create_dir_all(dest).map_err(|e| failed(e.to_string()))?;
            let local =
                LocalFileSystem::new_with_prefix(dest).map_err(|e| failed(e.to_string()))?;
            (Arc::new(local), String::new())
        };
        Ok(Destination {
            store,
            prefix,
            shown: dest.to_owned(),
            local: (!dest.contains("://")).then(|| std::path::PathBuf::from(dest)),
            opened_at: SystemTime::now(),
        })
    }

    fn path(&self, relative: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(relative)
        } else {
            Path::from(format!("{}/{relative}", self.prefix))
        }
    }

    fn failed(&self, error: &object_store::Error) -> ExportError {
        ExportError::Store {
            dest: self.shown.clone(),
            reason: redacted(error),
        }
    }

    /// A failure on the key `relative`, named in the message.
    fn failed_at(&self, relative: &str, error: &object_store::Error) -> ExportError {
        ExportError::Store {
            dest: self.shown.clone(),
            reason: format!("{relative}: {}", redacted(error)),
        }
    }

    /// Writes `bytes` at `relative`, whole.
    ///
    /// # Errors
    /// [`ExportError::Store`] when the write fails.
    pub fn put(&self, relative: &str, bytes: Vec<u8>) -> Result<(), ExportError> {
        let path = self.path(relative);
        runtime()
            .block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| self.failed_at(relative, &e))
    }

    /// The size of the key at `relative`, `None` when there is none.
    ///
    /// # Errors
    /// [`ExportError::Store`] when the store cannot be asked.
    pub fn size_of(&self, relative: &str) -> Result<Option<u64>, ExportError> {
        let path = self.path(relative);
        match runtime().block_on(self.store.head(&path)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed_at(relative, &e)),
        }
    }

    /// The size of the key at `relative` and its last `len` bytes (all of it when shorter),
    /// `None` when there is no such key.
    ///
    /// # Errors
    /// [`ExportError::Store`] when the store cannot be read.
    pub fn tail(&self, relative: &str, len: usize) -> Result<Option<(u64, Vec<u8>)>, ExportError> {
        let Some(size) = self.size_of(relative)? else {
            return Ok(None);
        };
        let path = self.path(relative);
        let start = size.saturating_sub(len as u64);
        match runtime().block_on(self.store.get_range(&path, start..size)) {
            Ok(bytes) => Ok(Some((size, bytes.to_vec()))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed_at(relative, &e)),
        }
    }

    /// Removes the staging files a killed writer left in a local directory (`<key>#<n>`: a
    /// key being written before its rename, which `object_store` listings leave out); returns
    /// how many. Only files last written before this export opened the destination go: a
    /// newer one is another worker's write in flight (two last shards finalizing at once).
    /// Object stores have none.
    ///
    /// # Errors
    /// [`ExportError::Store`] when the directory cannot be walked or a file removed.
    pub fn remove_staging_files(&self) -> Result<usize, ExportError> {
        let Some(root) = &self.local else {
            return Ok(0);
        };
        let failed = |e: std::io::Error| ExportError::Store {
            dest: self.shown.clone(),
            reason: e.to_string(),
        };
        let mut removed = 0;
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).map_err(failed)? {
                let entry = entry.map_err(failed)?;
                let kind = entry.file_type().map_err(failed)?;
                if kind.is_dir() {
                    dirs.push(entry.path());
                } else if is_staging(&entry.file_name().to_string_lossy())
                    && self.left_before_open(&entry)
                {
                    match std::fs::remove_file(entry.path()) {
                        Ok(()) => removed += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(failed(e)),
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Whether the file of `entry` was last written before this export opened the
    /// destination (a file that vanished or has no time is left alone).
    fn left_before_open(&self, entry: &std::fs::DirEntry) -> bool {
        entry
            .metadata()
            .and_then(|meta| meta.modified())
            .is_ok_and(|modified| modified < self.opened_at)
    }

    /// Every key present under the destination, relative to it, with its size.
    ///
    /// # Errors
    /// [`ExportError::Store`] when the listing fails.
    pub fn present(&self) -> Result<HashMap<String, u64>, ExportError> {
        let prefix = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
        let listed: Vec<object_store::ObjectMeta> = runtime()
            .block_on(self.store.list(prefix.as_ref()).try_collect())
            .map_err(|e| self.failed(&e))?;
        let skip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        Ok(listed
            .into_iter()
            .filter_map(|meta| {
                let key = meta.location.as_ref();
                key.get(skip..).map(|rest| (rest.to_owned(), meta.size))
            })
            .collect())
    }
}

/// Whether `key` is a local staging file: `<key>#<digits>`.
fn is_staging(key: &str) -> bool {
    key.rsplit_once('#').is_some_and(|(_, n)| {
        !n.is_empty() && !n.contains('/') && n.bytes().all(|b| b.is_ascii_digit())
    })
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{is_staging, Destination};
    use crate::config::StorageSection;

    /// Writes a staging file at `path` last modified at `when`.
    fn staging_file(path: &std::path::Path, when: SystemTime) {
        let file = std::fs::File::create(path).unwrap();
        file.set_modified(when).unwrap();
    }

    #[test]
    fn only_staging_files_older_than_the_export_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        std::fs::create_dir_all(root.join("sst/c/0")).unwrap();
        let now = SystemTime::now();
        let stopped = root.join("sst/c/0/0#1");
        staging_file(&stopped, now - Duration::from_secs(3600));
        let dest = Destination::open(root.to_str().unwrap(), &StorageSection::default()).unwrap();
        let in_flight = root.join("sst/zarr.json#1");
        staging_file(&in_flight, now + Duration::from_secs(3600));
        let key = root.join("sst/c/0/1");
        std::fs::write(&key, b"chunk").unwrap();

        assert_eq!(dest.remove_staging_files().unwrap(), 1);
        assert!(!stopped.exists(), "a stopped writer's staging file stays");
        assert!(
            in_flight.exists(),
            "another worker's write in flight was removed"
        );
        assert!(key.exists());
    }

    #[test]
    fn staging_files_are_told_from_keys() {
        assert!(is_staging("sst/c/0/1#3"));
        assert!(!is_staging("sst/c/0/1"));
        assert!(!is_staging("sst/#3/zarr.json"));
        assert!(!is_staging("sst/c#"));
    }
}
