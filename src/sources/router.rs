//! [`Sources`]: the one [`ByteSource`] the rest of atlasfs reads through. Local paths go to
//! [`LocalFiles`]; URLs go to the object store they name, whose client is built once from the
//! dataset's `[dataset.storage]` table and shared by listing, indexing and chunk reads.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use parking_lot::RwLock;

use super::bytes::{ByteSource, LocalFiles, RangeRead, SourceError};
use super::model::FileVersion;
use super::remote::listing::{self, is_granule_list, parse_granule_list};
use super::remote::location::ObjectUrl;
use super::remote::object::RemoteStore;
use super::remote::store::{open_store, DEFAULT_CONCURRENCY, DEFAULT_RETRIES};
use super::remote::{runtime, RemoteError};
use crate::config::{is_url, MountConfig, StorageSection};

/// Local files and the object stores a config names.
#[derive(Default)]
pub struct Sources {
    local: LocalFiles,
    remotes: RwLock<HashMap<String, (StorageSection, Arc<RemoteStore>)>>,
}

impl Sources {
    /// Sources with a client for every store the datasets of `config` name.
    ///
    /// # Errors
    /// [`RemoteError`] for an invalid URL, a store client that cannot be built, or one store
    /// named by two datasets with different storage tables.
    pub fn for_config(config: &MountConfig) -> Result<Sources, RemoteError> {
        let sources = Sources::default();
        sources.add_config(config)?;
        Ok(sources)
    }

    /// Adds a client for every store the datasets of `config` name that is not known yet (a
    /// reloaded config may name new ones).
    ///
    /// # Errors
    /// As [`Sources::for_config`].
    pub fn add_config(&self, config: &MountConfig) -> Result<(), RemoteError> {
        for dataset in &config.datasets {
            for location in [Some(&dataset.files), dataset.zarr.as_ref()]
                .into_iter()
                .flatten()
            {
                if is_url(location) {
                    self.store(location, &dataset.storage)?;
                }
            }
        }
        for set in &config.samples {
            if is_url(&set.descriptors) {
                self.store(&set.descriptors, &set.storage)?;
            }
        }
        Ok(())
    }

    /// The whole text of a small file or object (a granule list, a descriptor file).
    ///
    /// # Errors
    /// Why it cannot be read, or that it is not UTF-8.
    pub fn read_text(&self, location: &str, storage: &StorageSection) -> Result<String, String> {
        let bytes = if is_url(location) {
            let (store, key) = self.store(location, storage).map_err(|e| e.to_string())?;
            runtime()
                .block_on(async {
                    let version = store.head(&key).await?;
                    store.read_range(&key, version, 0..version.size).await
                })
                .map_err(|e| e.to_string())?
                .to_vec()
        } else {
            std::fs::read(location).map_err(|e| e.to_string())?
        };
        String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
    }

    /// The store of `url` and the key inside it, building its client with `storage` when it is
    /// new.
    ///
    /// # Errors
    /// As [`Sources::for_config`].
    pub fn store(
        &self,
        url: &str,
        storage: &StorageSection,
    ) -> Result<(Arc<RemoteStore>, String), RemoteError> {
        let object = ObjectUrl::parse(url)?;
        if let Some((known, store)) = self.remotes.read().get(&object.store) {
            if known != storage {
                return Err(RemoteError::Store {
                    store: object.store.clone(),
                    reason: "two datasets name this store with different [dataset.storage] tables"
                        .to_owned(),
                });
            }
            return Ok((store.clone(), object.key));
        }
        let client = open_store(&object.store, storage)?;
        let store = Arc::new(RemoteStore::new(
            client,
            &object.store,
            storage.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
            storage.retries.unwrap_or(DEFAULT_RETRIES),
        ));
        let mut remotes = self.remotes.write();
        let entry = remotes
            .entry(object.store.clone())
            .or_insert_with(|| (storage.clone(), store));
        Ok((entry.1.clone(), object.key))
    }

    /// The store already known for `url`, and the key.
    fn known(&self, url: &str) -> Result<(Arc<RemoteStore>, String), SourceError> {
        let object = ObjectUrl::parse(url).map_err(|e| SourceError::Remote {
            path: url.to_owned(),
            reason: e.to_string(),
        })?;
        match self.remotes.read().get(&object.store) {
            Some((_, store)) => Ok((store.clone(), object.key)),
            None => Err(SourceError::Remote {
                path: url.to_owned(),
                reason: "no dataset of the config names this store".to_owned(),
            }),
        }
    }

    /// The granules a remote `files` value names (a URL glob, or a granule list whose lines
    /// are URLs), with their versions, in URL order.
    ///
    /// # Errors
    /// [`RemoteError`] when a listing or lookup fails after retries.
    pub fn list(
        &self,
        files: &str,
        storage: &StorageSection,
    ) -> Result<Vec<(String, FileVersion)>, RemoteError> {
        if is_granule_list(files) {
            return self.list_granule_file(files, storage);
        }
        let (store, key_glob) = self.store(files, storage)?;
        runtime().block_on(listing::glob(&store, &key_glob))
    }

    fn list_granule_file(
        &self,
        files: &str,
        storage: &StorageSection,
    ) -> Result<Vec<(String, FileVersion)>, RemoteError> {
        let unreadable = |reason: String| RemoteError::GranuleList {
            path: files.to_owned(),
            reason,
        };
        let text = self.read_text(files, storage).map_err(unreadable)?;
        let mut granules = Vec::new();
        for url in parse_granule_list(&text) {
            if !is_url(&url) {
                return Err(unreadable(format!("line {url:?} is not a URL")));
            }
            let (store, key) = self.store(&url, storage)?;
            granules.push((store, key, url));
        }
        let mut found = runtime().block_on(futures::future::try_join_all(
            granules.into_iter().map(|(store, key, url)| async move {
                let version = store.head(&key).await.map_err(|error| RemoteError::List {
                    url: url.clone(),
                    error,
                })?;
                Ok::<_, RemoteError>((url, version))
            }),
        ))?;
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|a, b| a.0 == b.0);
        Ok(found)
    }

    /// The current versions of object URLs named without one (by an intake-esm catalog),
    /// looked up concurrently; each failure is a reason to skip that object.
    pub fn versions<'a>(
        &self,
        urls: impl Iterator<Item = &'a str>,
        storage: &StorageSection,
    ) -> HashMap<String, Result<FileVersion, String>> {
        let lookups = urls.map(|url| {
            let store = self.store(url, storage);
            async move {
                let version = match store {
                    Ok((store, key)) => store.head(&key).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                (url.to_owned(), version)
            }
        });
        runtime()
            .block_on(futures::future::join_all(lookups))
            .into_iter()
            .collect()
    }

    /// Requests sent (listings, lookups and GETs, retries included) and body bytes received
    /// from every object store so far.
    pub fn traffic(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        self.remotes
            .read()
            .values()
            .fold((0, 0), |(requests, bytes), (_, store)| {
                let traffic = store.traffic();
                (
                    requests + traffic.requests.load(Ordering::Relaxed),
                    bytes + traffic.bytes.load(Ordering::Relaxed),
                )
            })
    }

    /// The store and key of an object URL already listed, for ranged reads while indexing.
    ///
    /// # Errors
    /// [`SourceError::Remote`] when no dataset names the store.
    pub fn object(&self, url: &str) -> Result<(Arc<RemoteStore>, String), SourceError> {
        self.known(url)
    }
}

impl ByteSource for Sources {
    fn read_ranges(
        &self,
        path: &str,
        version: FileVersion,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Vec<u8>>, SourceError> {
        if !is_url(path) {
            return self.local.read_ranges(path, version, ranges);
        }
        let (store, key) = self.known(path)?;
        let fetched = runtime().block_on(store.read_ranges(&key, version, ranges))?;
        Ok(fetched.into_iter().map(|b| b.to_vec()).collect())
    }

    fn is_remote(&self, path: &str) -> bool {
        is_url(path)
    }

    fn will_read(&self, reads: &[RangeRead<'_>]) {
        let local: Vec<RangeRead<'_>> = reads.iter().filter(|r| !is_url(r.path)).cloned().collect();
        self.local.will_read(&local);
    }

    fn read_batch(&self, reads: &[RangeRead<'_>]) -> Vec<Result<Vec<u8>, SourceError>> {
        let fetches = reads.iter().map(|read| async move {
            if !is_url(read.path) {
                return self
                    .local
                    .read_ranges(read.path, read.version, std::slice::from_ref(&read.range))
                    .map(|mut bytes| bytes.pop().unwrap_or_default());
            }
            let (store, key) = self.known(read.path)?;
            store
                .read_range(&key, read.version, read.range.clone())
                .await
                .map(|bytes| bytes.to_vec())
        });
        runtime().block_on(futures::future::join_all(fetches))
    }

    fn check_version(&self, path: &str, version: FileVersion) -> Result<(), SourceError> {
        if !is_url(path) {
            return self.local.check_version(path, version);
        }
        let (store, key) = self.known(path)?;
        runtime().block_on(store.check(&key, version))
    }
}
