//! Deferred disk writes. Copying a computed chunk into the disk tier costs about a fifth of the
//! CPU of computing it (page-cache copies), so a reader is not made to wait for it: the chunk is
//! served from memory at once and queued, and a background thread with idle scheduling priority
//! writes it when a core has nothing else to do. A queued chunk that the memory tier evicts is
//! written by the evicting caller before it is dropped, and [`WriteBack::flush`] (at unmount)
//! writes the rest — so every queued chunk is also held by the memory tier and deferral costs no
//! memory beyond it. A process killed with chunks still queued just loses those entries.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::disk::DiskCache;
use super::key::ChunkKey;

#[derive(Default)]
struct State {
    queue: VecDeque<ChunkKey>,
    pending: HashMap<ChunkKey, Arc<Vec<u8>>>,
    pending_bytes: u64,
    stop: bool,
}

/// The deferred writes of one disk tier.
pub(super) struct WriteBack {
    disk: Arc<DiskCache>,
    state: Mutex<State>,
    wake: Condvar,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl WriteBack {
    /// Starts the background writer of `disk`.
    pub(super) fn start(disk: Arc<DiskCache>) -> Arc<WriteBack> {
        let writeback = Arc::new(WriteBack {
            disk,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            thread: Mutex::new(None),
        });
        let worker = writeback.clone();
        let spawned = std::thread::Builder::new()
            .name("atlasfs-writeback".into())
            .spawn(move || {
                lower_priority();
                worker.run();
            });
        match spawned {
            Ok(handle) => *writeback.thread.lock() = Some(handle),
            Err(e) => {
                tracing::warn!("cannot start the disk writer thread ({e}); writing chunks at once");
                writeback.state.lock().stop = true;
            }
        }
        writeback
    }

    /// Queues `bytes` to be written as the entry of `key` (at once if the writer is stopped).
    pub(super) fn defer(&self, key: ChunkKey, bytes: Arc<Vec<u8>>) {
        let mut state = self.state.lock();
        if state.stop {
            drop(state);
            self.disk.put(key, &bytes);
            return;
        }
        let size = bytes.len() as u64;
        if state.pending.insert(key, bytes).is_none() {
            state.pending_bytes += size;
            state.queue.push_back(key);
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Takes `key` off the queue, if queued.
    fn claim(&self, state: &mut State, key: ChunkKey) -> Option<Arc<Vec<u8>>> {
        let bytes = state.pending.remove(&key)?;
        state.pending_bytes -= bytes.len() as u64;
        Some(bytes)
    }

    /// Writes `key` now if it is still queued (the memory tier is about to drop it).
    pub(super) fn write_now(&self, key: ChunkKey) {
        let claimed = {
            let mut state = self.state.lock();
            self.claim(&mut state, key)
        };
        if let Some(bytes) = claimed {
            self.disk.put(key, &bytes);
        }
    }

    /// Writes everything queued, in the caller's thread.
    pub(super) fn flush(&self) {
        let all: Vec<(ChunkKey, Arc<Vec<u8>>)> = {
            let mut state = self.state.lock();
            state.queue.clear();
            state.pending_bytes = 0;
            state.pending.drain().collect()
        };
        for (key, bytes) in all {
            self.disk.put(key, &bytes);
        }
    }

    /// Chunks and bytes queued.
    pub(super) fn pending(&self) -> (u64, u64) {
        let state = self.state.lock();
        (state.pending.len() as u64, state.pending_bytes)
    }

    /// Stops the background writer (waiting for its current write) and writes everything
    /// queued.
    pub(super) fn stop(&self) {
        self.state.lock().stop = true;
        self.wake.notify_all();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
        self.flush();
    }

    fn run(&self) {
        loop {
            let (key, bytes) = {
                let mut state = self.state.lock();
                loop {
                    if state.stop {
                        return;
                    }
                    if let Some(key) = state.queue.pop_front() {
                        if let Some(bytes) = self.claim(&mut state, key) {
                            break (key, bytes);
                        }
                        continue; // written meanwhile by an eviction
                    }
                    self.wake.wait(&mut state);
                }
            };
            self.disk.put(key, &bytes);
        }
    }
}

/// Runs the calling thread only when a core is otherwise idle (`SCHED_IDLE`), or failing that
/// at the lowest nice level.
fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread (pid 0 / its tid); the param is ours.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::lock::{CacheLock, LockMode};

    fn disk(dir: &std::path::Path) -> Arc<DiskCache> {
        let lock = CacheLock::acquire(dir, LockMode::Exclusive).unwrap();
        Arc::new(DiskCache::open(dir, 1 << 20, lock).unwrap())
    }

    #[test]
    fn queued_chunks_reach_the_disk_in_the_background_or_on_flush() {
        let dir = tempfile::tempdir().unwrap();
        let disk = disk(dir.path());
        let writeback = WriteBack::start(disk.clone());
        writeback.defer(ChunkKey(1), Arc::new(vec![1; 10]));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !disk.contains(ChunkKey(1)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(disk.contains(ChunkKey(1)), "written in the background");
        writeback.stop();
        writeback.defer(ChunkKey(2), Arc::new(vec![2; 10]));
        assert!(
            disk.contains(ChunkKey(2)),
            "a stopped writer writes at once"
        );
        assert_eq!(writeback.pending(), (0, 0));
    }

    #[test]
    fn write_now_and_flush_write_what_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let disk = disk(dir.path());
        let writeback = WriteBack {
            disk: disk.clone(),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            thread: Mutex::new(None),
        }; // no background thread: only explicit writes
        writeback.defer(ChunkKey(1), Arc::new(vec![1; 10]));
        writeback.defer(ChunkKey(2), Arc::new(vec![2; 10]));
        assert_eq!(writeback.pending(), (2, 20));
        writeback.write_now(ChunkKey(1));
        assert!(disk.contains(ChunkKey(1)) && !disk.contains(ChunkKey(2)));
        writeback.flush();
        assert!(disk.contains(ChunkKey(2)));
        assert_eq!(writeback.pending(), (0, 0));
    }
}
