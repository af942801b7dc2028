//! One object store as atlasfs reads it: ranged GETs of exactly the bytes asked for (adjacent
//! ranges coalesced), bounded in concurrency, retried with backoff on failures the HTTP client
//! does not retry itself (resets and truncated bodies), and checked against the version the
//! catalog recorded, so a changed object fails loudly instead of serving mixed bytes.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::try_join_all;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::location::join;
use super::{redacted, version_of};
use crate::sources::bytes::{SourceError, VersionChange};
use crate::sources::model::FileVersion;

/// Ranges closer than this are fetched by one request.
const COALESCE_GAP: u64 = 8 << 10;
/// A coalesced request is not grown past this size.
const COALESCE_MAX: u64 = 32 << 20;
/// How long a version confirmed by a listing, HEAD or GET is trusted without asking again.
pub const REVALIDATE_AFTER: Duration = Duration::from_secs(30);

/// Requests and bytes fetched, for reports.
#[derive(Debug, Default)]
pub struct Traffic {
    /// GET and HEAD requests sent (retries included).
    pub requests: AtomicU64,
    /// Body bytes received.
    pub bytes: AtomicU64,
}

/// A store and how to reach it.
pub struct RemoteStore {
    store: Arc<dyn ObjectStore>,
    url: String,
    limit: Semaphore,
    retries: usize,
    confirmed: Mutex<HashMap<String, (Instant, FileVersion)>>,
    traffic: Traffic,
}

/// How one attempt failed.
enum Attempt {
    /// Worth another try.
    Retry(String),
    /// Final.
    Fail(SourceError),
}

impl RemoteStore {
    /// Wraps `store`, known as `url` (`scheme://bucket`) in errors.
    pub fn new(store: Arc<dyn ObjectStore>, url: &str, concurrency: usize, retries: usize) -> Self {
        RemoteStore {
            store,
            url: url.to_owned(),
            limit: Semaphore::new(concurrency.max(1)),
            retries,
            confirmed: Mutex::new(HashMap::new()),
            traffic: Traffic::default(),
        }
    }

    /// The `object_store` client.
    pub fn client(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The store's URL (`scheme://bucket`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests and bytes so far.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Records that `key` was seen at `version` just now (by a listing, HEAD or GET).
    pub fn confirm(&self, key: &str, version: FileVersion) {
        self.confirmed
            .lock()
            .insert(key.to_owned(), (Instant::now(), version));
    }

    /// Fails unless `key` is still at `version`; asks the store at most every
    /// [`REVALIDATE_AFTER`].
    pub async fn check(&self, key: &str, version: FileVersion) -> Result<(), SourceError> {
        if let Some((when, seen)) = self.confirmed.lock().get(key).copied() {
            if when.elapsed() < REVALIDATE_AFTER && same_object(seen, version) {
                return Ok(());
            }
        }
        let found = self.head(key).await?;
        if !same_object(found, version) {
            return Err(self.changed(key, version, Some(found)));
        }
        Ok(())
    }

    /// The current version of `key`.
    pub async fn head(&self, key: &str) -> Result<FileVersion, SourceError> {
        let path = ObjectPath::from(key);
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let _permit = self.limit.acquire().await.expect("never closed");
            self.traffic.requests.fetch_add(1, Ordering::Relaxed);
            let found = match self.store.head(&path).await {
                // Some HTTP servers refuse HEAD but serve GET: ask for one byte instead.
                Err(
                    object_store::Error::PermissionDenied { .. }
                    | object_store::Error::NotSupported { .. },
                ) if self.is_plain_http() => {
                    let first_byte = GetOptions {
                        range: Some(GetRange::Bounded(0..1)),
                        ..GetOptions::default()
                    };
                    self.store
                        .get_opts(&path, first_byte)
                        .await
                        .map(|result| result.meta)
                }
                other => other,
            };
            match found {
                Ok(meta) => {
                    let version = version_of(&meta);
                    self.confirm(key, version);
                    return Ok(version);
                }
                Err(e) => match self.classify(key, e) {
                    Attempt::Fail(e) => return Err(e),
                    Attempt::Retry(reason) => last = reason,
                },
            }
        }
        Err(self.gave_up(key, &last))
    }

    /// Reads each of `ranges` of `key`, which must be at `version`. Adjacent or close ranges
    /// share one request; requests run concurrently up to the store's limit.
    pub async fn read_ranges(
        &self,
        key: &str,
        version: FileVersion,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>, SourceError> {
        let merged = coalesce(ranges);
        let fetched = try_join_all(
            merged
                .iter()
                .map(|range| self.read_range(key, version, range.clone())),
        )
        .await?;
        Ok(ranges
            .iter()
            .map(|range| {
                let i = merged.partition_point(|m| m.end < range.end);
                let start = (range.start - merged[i].start) as usize;
                fetched[i].slice(start..start + (range.end - range.start) as usize)
            })
            .collect())
    }

    /// Reads one range, retrying failures the HTTP client did not already retry.
    pub async fn read_range(
        &self,
        key: &str,
        version: FileVersion,
        range: Range<u64>,
    ) -> Result<Bytes, SourceError> {
        if range.end > version.size {
            return Err(self.changed(key, version, None));
        }
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            match self.try_read(key, version, range.clone()).await {
                Ok(bytes) => return Ok(bytes),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry(reason)) => {
                    tracing::debug!(
                        "{} bytes {}-{}: attempt {} failed: {reason}",
                        join(&self.url, key),
                        range.start,
                        range.end,
                        attempt + 1
                    );
                    last = reason;
                }
            }
        }
        Err(self.gave_up(key, &last))
    }

    async fn try_read(
        &self,
        key: &str,
        version: FileVersion,
        range: Range<u64>,
    ) -> Result<Bytes, Attempt> {
        let _permit = self.limit.acquire().await.expect("never closed");
        self.traffic.requests.fetch_add(1, Ordering::Relaxed);
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&ObjectPath::from(key), options)
            .await
            .map_err(|e| self.classify(key, e))?;
        let found = version_of(&result.meta);
        if !same_object(found, version) {
            return Err(Attempt::Fail(self.changed(key, version, Some(found))));
        }
        let bytes = result
            .bytes()
            .await
            .map_err(|e| Attempt::Retry(redacted(&e)))?;
        self.traffic
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let wanted = range.end - range.start;
        if bytes.len() as u64 != wanted {
            return Err(Attempt::Retry(format!(
                "short body: {} of {wanted} bytes",
                bytes.len()
            )));
        }
        self.confirm(key, version);
        Ok(bytes)
    }

    /// Lists the objects under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, SourceError> {
        use futures::TryStreamExt;
        let prefix = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            self.traffic.requests.fetch_add(1, Ordering::Relaxed);
            match self
                .store
                .list(prefix.as_ref())
                .try_collect::<Vec<_>>()
                .await
            {
                Ok(objects) => return Ok(objects),
                Err(e) => match self.classify(prefix.as_ref().map_or("", |p| p.as_ref()), e) {
                    Attempt::Fail(e) => return Err(e),
                    Attempt::Retry(reason) => last = reason,
                },
            }
        }
        Err(self.gave_up(prefix.as_ref().map_or("", |p| p.as_ref()), &last))
    }

    /// Whether the store is plain HTTP(S) rather than an object-store API.
    fn is_plain_http(&self) -> bool {
        self.url.starts_with("http://") || self.url.starts_with("https://")
    }

    fn classify(&self, key: &str, error: object_store::Error) -> Attempt {
        let path = join(&self.url, key);
        match error {
            object_store::Error::NotFound { .. } => Attempt::Fail(SourceError::NotFound { path }),
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => Attempt::Fail(SourceError::Denied {
                path,
                reason: redacted(&error),
            }),
            object_store::Error::Precondition { .. } | object_store::Error::NotModified { .. } => {
                Attempt::Fail(SourceError::Changed {
                    path,
                    // The store refused the version asked for; which one it has, it did not say.
                    change: VersionChange {
                        indexed: FileVersion {
                            size: 0,
                            mtime_ns: 0,
                            etag: 0,
                        },
                        found: None,
                    },
                })
            }
            other => {
                let message = redacted(&other);
                if message.contains("169.254.169.254") {
                    // The client found no credentials and instance metadata is unreachable.
                    Attempt::Fail(SourceError::Denied {
                        path,
                        reason: "no credentials found: set them in the environment \
                                 (e.g. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), a profile \
                                 file, or `anonymous = true` in [dataset.storage]"
                            .to_owned(),
                    })
                } else {
                    Attempt::Retry(message)
                }
            }
        }
    }

    fn changed(&self, key: &str, version: FileVersion, found: Option<FileVersion>) -> SourceError {
        SourceError::Changed {
            path: join(&self.url, key),
            change: VersionChange {
                indexed: version,
                found,
            },
        }
    }

    fn gave_up(&self, key: &str, last: &str) -> SourceError {
        SourceError::Remote {
            path: join(&self.url, key),
            reason: format!("{last} (gave up after {} attempts)", self.retries + 1),
        }
    }
}

/// Whether two versions name the same object content: size and ETag, or size and the
/// modification second when there is no ETag (listings and HEAD differ in precision).
pub fn same_object(a: FileVersion, b: FileVersion) -> bool {
    a.size == b.size
        && if a.etag != 0 && b.etag != 0 {
            a.etag == b.etag
        } else {
            a.mtime_ns.div_euclid(1_000_000_000) == b.mtime_ns.div_euclid(1_000_000_000)
        }
}

/// Sorted, merged cover of `ranges`: ranges closer than [`COALESCE_GAP`] share one request.
fn coalesce(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.iter().filter(|r| !r.is_empty()).cloned().collect();
    sorted.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for range in sorted {
        match merged.last_mut() {
            Some(last)
                if range.start <= last.end + COALESCE_GAP
                    && range.end.max(last.end) - last.start <= COALESCE_MAX =>
            {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    if merged.is_empty() {
        // Only empty ranges: one empty request-free cover keeps the slicing uniform.
        merged.push(0..0);
    }
    merged
}

/// 100 ms, 200 ms, 400 ms, … at most 3.2 s.
fn backoff(attempt: usize) -> Duration {
    Duration::from_millis(100 << attempt.min(6).saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_close_ranges_only() {
        let merged = coalesce(&[100..200, 0..50, 200..300, 1_000_000..1_000_010]);
        assert_eq!(merged, vec![0..300, 1_000_000..1_000_010]);
        assert_eq!(coalesce(&[]), vec![0..0]);
    }

    #[test]
    fn same_object_compares_etag_or_second() {
        let v = |size, mtime_ns, etag| FileVersion {
            size,
            mtime_ns,
            etag,
        };
        assert!(same_object(
            v(10, 1_500_000_000, 7),
            v(10, 1_000_000_000, 7)
        ));
        assert!(!same_object(v(10, 0, 7), v(10, 0, 8)));
        assert!(!same_object(v(10, 0, 7), v(11, 0, 7)));
        assert!(same_object(
            v(10, 1_200_000_000, 0),
            v(10, 1_000_000_000, 0)
        ));
        assert!(!same_object(
            v(10, 2_000_000_000, 0),
            v(10, 1_000_000_000, 0)
        ));
    }
}
