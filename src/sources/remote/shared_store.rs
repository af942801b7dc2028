//! The shared cache tier's storage on an object store (`[cache] shared`): one object per entry
//! under the URL's prefix, created with a conditional put (if-none-match) so that a racing
//! writer's entry is kept, and read whole. Errors are redacted of credentials.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::location::ObjectUrl;
use super::store::open_store;
use super::{redacted, runtime, RemoteError};
use crate::cache::shared::{Created, SharedStore, SharedStoreError};
use crate::config::StorageSection;

/// Retries of one request to the shared tier unless `[cache.storage] retries` says otherwise:
/// a failing tier is left alone for a while rather than retried at length.
const DEFAULT_RETRIES: usize = 1;

/// Entries of the shared tier in an object store.
pub struct ObjectSharedStore {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    shown: String,
}

impl ObjectSharedStore {
    /// The shared tier at `url`, reached with `storage`.
    ///
    /// # Errors
    /// [`RemoteError`] when the URL is not an object-store URL or the client cannot be built.
    pub fn open(url: &str, storage: &StorageSection) -> Result<ObjectSharedStore, RemoteError> {
        let parsed = ObjectUrl::parse(url)?;
        let mut storage = storage.clone();
        storage.retries.get_or_insert(DEFAULT_RETRIES);
        let store = open_store(&parsed.store, &storage)?;
        Ok(ObjectSharedStore {
            store,
            prefix: parsed.key.trim_matches('/').to_owned(),
            shown: url.to_owned(),
        })
    }

    fn path(&self, name: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(name)
        } else {
            Path::from(format!("{}/{name}", self.prefix))
        }
    }
}

fn failed(error: &object_store::Error) -> SharedStoreError {
    SharedStoreError(redacted(error))
}

impl SharedStore for ObjectSharedStore {
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, SharedStoreError> {
        let path = self.path(name);
        runtime().block_on(async {
            match self.store.get(&path).await {
                Ok(result) => result
                    .bytes()
                    .await
                    .map(|b| Some(b.to_vec()))
                    .map_err(|e| failed(&e)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(failed(&e)),
            }
        })
    }

    fn create(&self, name: &str, bytes: Vec<u8>) -> Result<Created, SharedStoreError> {
        let path = self.path(name);
        let payload = PutPayload::from(bytes);
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match runtime().block_on(self.store.put_opts(&path, payload.clone(), options)) {
            Ok(_) => Ok(Created::Written),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::AlreadyThere),
            // A store without conditional writes: the bytes are the key's, so overwriting
            // another writer's entry writes the same bytes.
            Err(object_store::Error::NotImplemented { .. }) => runtime()
                .block_on(self.store.put(&path, payload))
                .map(|_| Created::Written)
                .map_err(|e| failed(&e)),
            Err(e) => Err(failed(&e)),
        }
    }

    fn replace(&self, name: &str, bytes: Vec<u8>) -> Result<(), SharedStoreError> {
        let path = self.path(name);
        runtime()
            .block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| failed(&e))
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}
