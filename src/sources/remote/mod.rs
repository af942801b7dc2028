//! Sources on object storage (S3 and compatibles, GCS, Azure, plain HTTPS) through
//! `object_store`: URLs and globs ([`location`]), clients built from a dataset's storage table
//! ([`store`], `profile`), listings ([`listing`]), ranged and retried reads ([`object`]) and
//! the ranged storage the indexer parses remote granules through ([`index_storage`]), and the
//! shared cache tier's storage (`shared_store`).

pub mod index_storage;
pub mod listing;
pub mod location;
pub mod object;
mod profile;
mod shared_store;
pub mod store;

pub use shared_store::ObjectSharedStore;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use object_store::ObjectMeta;
use parking_lot::RwLock;

use crate::sources::model::FileVersion;

/// Errors reaching an object store (reads report [`crate::sources::bytes::SourceError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// A URL that names no object store atlasfs can read.
    #[error("invalid object-store URL {url}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The client for a store cannot be built.
    #[error("cannot use object store {store}: {reason}")]
    Store {
        /// The store URL.
        store: String,
        /// Why (never with credentials).
        reason: String,
    },
    /// A listing failed.
    #[error("cannot list {url}: {error}")]
    List {
        /// What was listed.
        url: String,
        /// Why.
        error: crate::sources::bytes::SourceError,
    },
    /// A granule list file cannot be read.
    #[error("cannot read the granule list {path}: {reason}")]
    GranuleList {
        /// The list.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The runtime that drives object-store requests for the synchronous rest of atlasfs.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("atlasfs-io")
            .enable_all()
            .build()
            .expect("a tokio runtime can be started")
    })
}

/// The catalog's version of an object: size, modification time and a hash of the ETag.
pub fn version_of(meta: &ObjectMeta) -> FileVersion {
    FileVersion {
        size: meta.size,
        mtime_ns: meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
        etag: meta
            .e_tag
            .as_deref()
            .map(|tag| xxhash_rust::xxh3::xxh3_64(tag.trim_matches('"').as_bytes()).max(1))
            .unwrap_or(0),
    }
}

fn secrets() -> &'static RwLock<BTreeSet<String>> {
    static SECRETS: OnceLock<RwLock<BTreeSet<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let from_env = [
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_ACCESS_KEY_ID",
            "AZURE_STORAGE_ACCOUNT_KEY",
            "AZURE_STORAGE_SAS_TOKEN",
            "AZURE_CLIENT_SECRET",
            "GOOGLE_SERVICE_ACCOUNT_KEY",
        ]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .filter(|value| value.len() >= 4)
        .collect();
        RwLock::new(from_env)
    })
}

/// Remembers a credential so that [`redacted`] hides it from any message.
pub fn register_secret(value: &str) {
    if value.len() >= 4 {
        secrets().write().insert(value.to_owned());
    }
}

/// An error's message with every known credential replaced by `***`.
pub fn redacted(error: &dyn std::fmt::Display) -> String {
    let mut text = error.to_string();
    for secret in secrets().read().iter() {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "***");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_never_reach_a_message() {
        register_secret("opt-secret-3f9a");
        let message = redacted(&"signing with opt-secret-3f9a failed");
        assert_eq!(message, "signing with *** failed");
        assert_eq!(redacted(&"nothing secret"), "nothing secret");
    }
}
