//! The shared tier: computed chunks on object storage, looked up after a miss of memory and
//! disk and before computing, so many nodes compute each chunk once. Entries are
//! content-addressed by the chunk key, immutable and written once (a create that loses the race
//! finds the same bytes there), and carry the disk entry's 64-byte header as a trailer: an entry
//! whose header or checksum does not hold is dropped, counted and recomputed, never served.
//! Uploads go through a bounded queue on a thread of their own, so a reader never waits for
//! one; a failing tier (unreachable, 5xx, 403) pauses for a while and warns once per pause, and
//! chunks are then computed locally. Knows no object store: [`SharedStore`] is the storage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::entry::{self, HEADER_LEN};
use super::key::ChunkKey;

/// How long the tier is left alone after a failure.
const PAUSE: Duration = Duration::from_secs(30);
/// Uploads waiting at most; more are dropped (a mount) or wait (a batch).
const QUEUE: usize = 256;
/// How long a flush waits for the uploads still queued.
const FLUSH_WAIT: Duration = Duration::from_secs(300);

/// A failure of the shared tier's storage (the message never holds credentials).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SharedStoreError(pub String);

/// What creating an entry found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// Written.
    Written,
    /// Another writer created it first (with the same bytes, the key being their hash).
    AlreadyThere,
}

/// Object storage for the shared tier, by entry name (`<2 hex>/<32 hex>`).
pub trait SharedStore: Send + Sync {
    /// The entry `name`, `None` when there is none.
    ///
    /// # Errors
    /// The store could not be asked.
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, SharedStoreError>;
    /// Creates the entry `name` unless it exists.
    ///
    /// # Errors
    /// The store refused or could not be reached.
    fn create(&self, name: &str, bytes: Vec<u8>) -> Result<Created, SharedStoreError>;
    /// Replaces the entry `name` (a damaged one).
    ///
    /// # Errors
    /// The store refused or could not be reached.
    fn replace(&self, name: &str, bytes: Vec<u8>) -> Result<(), SharedStoreError>;
    /// The store as shown in messages.
    fn describe(&self) -> String;
}

/// Counters of the shared tier.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedStats {
    /// Chunks found there (not computed here).
    pub hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
    /// Entries found damaged, dropped and recomputed.
    pub damaged: u64,
    /// Chunks uploaded.
    pub uploads: u64,
    /// Uploads another node had made first.
    pub already_there: u64,
    /// Uploads dropped: the queue was full, or the tier was paused.
    pub dropped: u64,
    /// Lookups and uploads that failed (the tier then pauses).
    pub failures: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    damaged: AtomicU64,
    uploads: AtomicU64,
    already_there: AtomicU64,
    dropped: AtomicU64,
    failures: AtomicU64,
}

/// Whether the tier is paused after a failure, and warning once per pause.
struct Health {
    paused_until: Mutex<Option<Instant>>,
    shown: String,
}

impl Health {
    fn paused(&self) -> bool {
        let guard = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        guard.is_some_and(|until| Instant::now() < until)
    }

    fn failed(&self, what: &str, error: &SharedStoreError) {
        let mut guard = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if guard.is_none_or(|until| now >= until) {
            tracing::warn!(
                "shared cache {}: {what} failed: {error}; computing chunks here for the next {} s",
                self.shown,
                PAUSE.as_secs()
            );
        }
        *guard = Some(now + PAUSE);
    }
}

struct Upload {
    key: ChunkKey,
    bytes: Arc<Vec<u8>>,
    replace: bool,
}

/// Uploads queued and not yet done, to wait for at a flush.
#[derive(Default)]
struct Pending {
    count: Mutex<u64>,
    done: Condvar,
}

impl Pending {
    fn add(&self) {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }

    fn finish(&self) {
        let mut count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *count = count.saturating_sub(1);
        self.done.notify_all();
    }

    fn wait(&self, limit: Duration) -> u64 {
        let deadline = Instant::now() + limit;
        let mut count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        while *count > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            count = self
                .done
                .wait_timeout(count, left)
                .map_or_else(|p| p.into_inner().0, |(c, _)| c);
        }
        *count
    }
}

/// The shared tier of a chunk cache.
pub struct SharedTier {
    store: Arc<dyn SharedStore>,
    queue: Mutex<Option<SyncSender<Upload>>>,
    uploader: Mutex<Option<std::thread::JoinHandle<()>>>,
    pending: Arc<Pending>,
    counters: Arc<Counters>,
    health: Arc<Health>,
    /// Whether an upload waits for room in the queue (batch work) instead of being dropped.
    wait_for_room: bool,
}

impl SharedTier {
    /// A shared tier on `store`. With `wait_for_room` (warm, export), a full queue holds the
    /// computing thread instead of dropping the upload.
    pub fn new(store: Arc<dyn SharedStore>, wait_for_room: bool) -> SharedTier {
        let (sender, receiver) = sync_channel(QUEUE);
        let pending = Arc::new(Pending::default());
        let counters = Arc::new(Counters::default());
        let health = Arc::new(Health {
            paused_until: Mutex::new(None),
            shown: store.describe(),
        });
        let uploader = {
            let (store, pending, counters, health) = (
                store.clone(),
                pending.clone(),
                counters.clone(),
                health.clone(),
            );
            std::thread::Builder::new()
                .name("atlasfs-share".to_owned())
                .spawn(move || upload_all(&receiver, &*store, &pending, &counters, &health))
                .map_err(|e| tracing::warn!("cannot start the shared cache uploader: {e}"))
                .ok()
        };
        SharedTier {
            store,
            queue: Mutex::new(uploader.is_some().then_some(sender)),
            uploader: Mutex::new(uploader),
            pending,
            counters,
            health,
            wait_for_room,
        }
    }

    /// The chunk `key` if the tier holds an intact entry of it. A damaged entry is counted,
    /// logged and queued to be replaced once the chunk is computed (see [`SharedTier::offer`]);
    /// a failure pauses the tier.
    pub(crate) fn get(&self, key: ChunkKey) -> Lookup {
        if self.health.paused() {
            return Lookup::Miss;
        }
        match self.store.get(&name(key)) {
            Ok(Some(mut object)) => match split(&mut object, key) {
                Ok(()) => {
                    self.counters.hits.fetch_add(1, Ordering::Relaxed);
                    Lookup::Hit(object)
                }
                Err(why) => {
                    self.counters.damaged.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        "shared cache {}: entry {} is damaged ({why}); computing it again",
                        self.health.shown,
                        name(key)
                    );
                    Lookup::Damaged
                }
            },
            Ok(None) => {
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                Lookup::Miss
            }
            Err(e) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                self.health.failed("a lookup", &e);
                Lookup::Miss
            }
        }
    }

    /// Queues a chunk computed here to be uploaded (`replace`: over a damaged entry).
    pub(crate) fn offer(&self, key: ChunkKey, bytes: Arc<Vec<u8>>, replace: bool) {
        if self.health.paused() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sender) = queue.as_ref() else {
            return;
        };
        self.pending.add();
        let upload = Upload {
            key,
            bytes,
            replace,
        };
        let sent = if self.wait_for_room {
            sender.send(upload).is_ok()
        } else {
            match sender.try_send(upload) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            }
        };
        if !sent {
            self.pending.finish();
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits (up to five minutes) for the queued uploads; returns how many were left.
    pub(crate) fn flush(&self) -> u64 {
        let left = self.pending.wait(FLUSH_WAIT);
        if left > 0 {
            tracing::warn!(
                "shared cache {}: {left} upload(s) still queued; they are left out",
                self.health.shown
            );
        }
        left
    }

    /// Its counters.
    pub fn stats(&self) -> SharedStats {
        let c = &self.counters;
        SharedStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            damaged: c.damaged.load(Ordering::Relaxed),
            uploads: c.uploads.load(Ordering::Relaxed),
            already_there: c.already_there.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
        }
    }
}

impl Drop for SharedTier {
    fn drop(&mut self) {
        self.flush();
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = self
            .uploader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = thread.join();
        }
    }
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// An intact entry: the chunk's bytes.
    Hit(Vec<u8>),
    /// Nothing (or the tier is paused or failing).
    Miss,
    /// A damaged entry, to be replaced.
    Damaged,
}

fn upload_all(
    receiver: &Receiver<Upload>,
    store: &dyn SharedStore,
    pending: &Pending,
    counters: &Counters,
    health: &Health,
) {
    for upload in receiver {
        if health.paused() {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            let name = name(upload.key);
            let framed = frame(upload.key, &upload.bytes);
            let done = if upload.replace {
                store.replace(&name, framed).map(|()| Created::Written)
            } else {
                store.create(&name, framed)
            };
            match done {
                Ok(Created::Written) => counters.uploads.fetch_add(1, Ordering::Relaxed),
                Ok(Created::AlreadyThere) => counters.already_there.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    health.failed("an upload", &e);
                    counters.failures.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
        pending.finish();
    }
}

/// The entry name of `key`: `<2 hex>/<32 hex>`, as the disk tier's layout.
fn name(key: ChunkKey) -> String {
    format!("{}/{}", key.shard(), key.hex())
}

/// An entry: the chunk's bytes, then the disk entry's header.
fn frame(key: ChunkKey, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + HEADER_LEN);
    out.extend_from_slice(bytes);
    out.extend_from_slice(&entry::header(key, bytes));
    out
}

/// Checks an entry of `key` and leaves the chunk's bytes in `object`.
fn split(object: &mut Vec<u8>, key: ChunkKey) -> Result<(), String> {
    let Some(at) = object.len().checked_sub(HEADER_LEN) else {
        return Err(format!("{} bytes, shorter than its header", object.len()));
    };
    let header = object.split_off(at);
    entry::check(object, Some(&header), key).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Memory {
        objects: Mutex<HashMap<String, Vec<u8>>>,
        fail: std::sync::atomic::AtomicBool,
    }

    impl SharedStore for Memory {
        fn get(&self, name: &str) -> Result<Option<Vec<u8>>, SharedStoreError> {
            if self.fail.load(Ordering::Relaxed) {
                return Err(SharedStoreError("unreachable".to_owned()));
            }
            Ok(self.objects.lock().unwrap().get(name).cloned())
        }
        fn create(&self, name: &str, bytes: Vec<u8>) -> Result<Created, SharedStoreError> {
            let mut objects = self.objects.lock().unwrap();
            if objects.contains_key(name) {
                return Ok(Created::AlreadyThere);
            }
            objects.insert(name.to_owned(), bytes);
            Ok(Created::Written)
        }
        fn replace(&self, name: &str, bytes: Vec<u8>) -> Result<(), SharedStoreError> {
            self.objects.lock().unwrap().insert(name.to_owned(), bytes);
            Ok(())
        }
        fn describe(&self) -> String {
            "memory".to_owned()
        }
    }

    fn key(n: u128) -> ChunkKey {
        ChunkKey::of(n << 8, false)
    }

    #[test]
    fn an_uploaded_chunk_is_found_intact_and_a_second_upload_finds_it_there() {
        let store = Arc::new(Memory::default());
        let tier = SharedTier::new(store.clone(), true);
        assert!(matches!(tier.get(key(1)), Lookup::Miss));
        tier.offer(key(1), Arc::new(vec![1, 2, 3]), false);
        tier.offer(key(1), Arc::new(vec![1, 2, 3]), false);
        assert_eq!(tier.flush(), 0);
        assert!(matches!(tier.get(key(1)), Lookup::Hit(b) if b == [1, 2, 3]));
        let stats = tier.stats();
        assert_eq!(
            (stats.uploads, stats.already_there, stats.hits, stats.misses),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn damaged_entries_are_never_served_and_are_replaced() {
        let store = Arc::new(Memory::default());
        let tier = SharedTier::new(store.clone(), true);
        tier.offer(key(2), Arc::new(vec![7; 100]), false);
        tier.flush();
        let entry = name(key(2));
        store.objects.lock().unwrap().get_mut(&entry).unwrap()[5] ^= 1;
        assert!(matches!(tier.get(key(2)), Lookup::Damaged));
        store
            .objects
            .lock()
            .unwrap()
            .get_mut(&entry)
            .unwrap()
            .truncate(10);
        assert!(matches!(tier.get(key(2)), Lookup::Damaged));
        // An entry of another key under this name is damaged too.
        let other = frame(key(3), &[7; 100]);
        store.objects.lock().unwrap().insert(entry.clone(), other);
        assert!(matches!(tier.get(key(2)), Lookup::Damaged));
        tier.offer(key(2), Arc::new(vec![7; 100]), true);
        tier.flush();
        assert!(matches!(tier.get(key(2)), Lookup::Hit(b) if b == [7; 100]));
        assert_eq!(tier.stats().damaged, 3);
    }

    #[test]
    fn a_failing_store_pauses_the_tier() {
        let store = Arc::new(Memory::default());
        let tier = SharedTier::new(store.clone(), false);
        store.fail.store(true, Ordering::Relaxed);
        assert!(matches!(tier.get(key(4)), Lookup::Miss));
        store.fail.store(false, Ordering::Relaxed);
        // Paused: no lookup reaches the store, uploads are dropped.
        tier.offer(key(4), Arc::new(vec![1]), false);
        assert!(matches!(tier.get(key(4)), Lookup::Miss));
        let stats = tier.stats();
        assert_eq!((stats.failures, stats.dropped, stats.misses), (1, 1, 0));
    }
}
