//! The directory of persisted regrid weights (`<cache dir>/weights/`) and its bound: the only
//! code that reads, writes or deletes its files. Views hand it whole files by name (one per
//! separable pair of grids, one per output chunk of sparse weights); what the bytes mean is
//! theirs.
//!
//! **The budget** is [`BUDGET_SHARE`]: 1/8 of `[cache] max_size`, on top of the chunks' own
//! bound, so the cache directory holds at most 9/8 of `max_size`. Weights are small beside the
//! chunks they serve (a separable pair is kilobytes; the per-chunk sparse weights of a 0.1°
//! global grid to another kind of grid are some hundreds of megabytes) but cost minutes to
//! recompute, so they get a share that keeps a few such pairs, and any number of separable
//! ones, at the default 10 GiB (1.25 GiB), while never crowding out the chunks.
//!
//! **Eviction** is least recently used by file modification time: [`WeightsStore::load`] sets
//! a file's mtime to now, [`WeightsStore::save`] writes whole (a temporary file renamed into
//! place) and adds to a running total; past the budget the directory is listed and the files
//! used longest ago are deleted until the total is under 90 % of the budget — never the file
//! just written, even when it alone is over the budget. The total comes from one listing on
//! first use (which also removes temporary files left by processes that are gone) and is
//! re-synchronised by each eviction's listing, so other processes writing the same directory
//! (`warm`) are counted then.
//!
//! A file that cannot be read is reported missing and its weights are recomputed; a write that
//! fails is logged once and the view keeps serving from memory. A file deleted while another
//! thread reads it is still read whole (Linux keeps the inode until it is closed).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;

/// The directory under the cache directory that holds the weights.
pub(crate) const WEIGHTS_DIR: &str = "weights";

/// The weights' budget is `max_size / BUDGET_SHARE`.
pub(crate) const BUDGET_SHARE: u64 = 8;

/// Eviction stops once the total is at most this many tenths of the budget.
const EVICT_TO_TENTHS: u64 = 9;

/// The persisted weights of a cache directory, bounded by a byte budget.
#[derive(Debug)]
pub(crate) struct WeightsStore {
    dir: PathBuf,
    budget: u64,
    state: Mutex<State>,
    /// A write has failed and was logged (later failures are logged at debug level).
    warned: AtomicBool,
    /// Numbers this process's temporary files.
    seq: AtomicU64,
}

/// The bookkeeping behind the lock.
#[derive(Debug, Default)]
struct State {
    /// The directory has been listed (on first use).
    listed: bool,
    /// Bytes of the weight files, as far as this process knows.
    total: u64,
}

/// One weight file found by a listing.
struct Listed {
    path: PathBuf,
    size: u64,
    used: SystemTime,
}

impl WeightsStore {
    /// The weights under `cache_dir`, bounded by `max_size`'s share.
    pub(crate) fn new(cache_dir: &Path, max_size: u64) -> WeightsStore {
        WeightsStore::with_budget(cache_dir.join(WEIGHTS_DIR), budget(max_size))
    }

    fn with_budget(dir: PathBuf, budget: u64) -> WeightsStore {
        WeightsStore {
            dir,
            budget,
            state: Mutex::new(State::default()),
            warned: AtomicBool::new(false),
            seq: AtomicU64::new(0),
        }
    }

    /// The bytes of weight file `name`, marked as used now; `None` when it is missing or
    /// cannot be read (the caller recomputes).
    pub(crate) fn load(&self, name: &str) -> Option<Vec<u8>> {
        self.first_use();
        let mut file = std::fs::File::open(self.dir.join(name)).ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        if let Err(e) = file.set_modified(SystemTime::now()) {
            tracing::debug!("could not mark regrid weights {name} as used: {e}");
        }
        Some(bytes)
    }

    /// Writes weight file `name` whole and evicts the least recently used others when the
    /// directory passes the budget. A failure is logged; the caller keeps its weights.
    pub(crate) fn save(&self, name: &str, bytes: &[u8]) {
        self.first_use();
        let file = self.dir.join(name);
        let tmp = self.dir.join(format!(
            "{name}.tmp{}-{}",
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed)
        ));
        if let Err(e) =
            std::fs::create_dir_all(&self.dir).and_then(|()| std::fs::write(&tmp, bytes))
        {
            let _ = std::fs::remove_file(&tmp);
            return self.failed(&file, &e);
        }
        let mut state = self.state.lock();
        let replaced = std::fs::metadata(&file).map_or(0, |m| m.len());
        if let Err(e) = std::fs::rename(&tmp, &file) {
            drop(state);
            let _ = std::fs::remove_file(&tmp);
            return self.failed(&file, &e);
        }
        state.total = state.total.saturating_sub(replaced) + bytes.len() as u64;
        if state.total > self.budget {
            self.evict(&mut state, &file);
        }
    }

    /// On first use: the total from one listing, and temporary files of dead processes gone.
    fn first_use(&self) {
        let mut state = self.state.lock();
        if state.listed {
            return;
        }
        state.listed = true;
        let (files, temps) = list(&self.dir);
        state.total = files.iter().map(|f| f.size).sum();
        for temp in temps.iter().filter(|t| !written_by_live_process(t)) {
            let _ = std::fs::remove_file(temp);
        }
        tracing::debug!(
            "regrid weights {}: {} files, {} bytes (budget {})",
            self.dir.display(),
            files.len(),
            state.total,
            self.budget
        );
    }

    /// Deletes the files used longest ago, except `keep`, until the total is under 90 % of
    /// the budget; the total is taken again from the listing.
    fn evict(&self, state: &mut State, keep: &Path) {
        let (mut files, _) = list(&self.dir);
        state.total = files.iter().map(|f| f.size).sum();
        files.sort_by(|a, b| (a.used, &a.path).cmp(&(b.used, &b.path)));
        let target = self.budget / 10 * EVICT_TO_TENTHS;
        let mut evicted = 0usize;
        for f in files {
            if state.total <= target {
                break;
            }
            if f.path == keep {
                continue;
            }
            match std::fs::remove_file(&f.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::debug!("could not evict {}: {e}", f.path.display());
                    continue;
                }
            }
            state.total = state.total.saturating_sub(f.size);
            evicted += 1;
        }
        tracing::debug!(
            "regrid weights: evicted {evicted} files, {} bytes left (budget {})",
            state.total,
            self.budget
        );
    }

    fn failed(&self, file: &Path, e: &std::io::Error) {
        match self.warned.swap(true, Ordering::Relaxed) {
            false => tracing::warn!(
                "could not persist regrid weights {}: {e} (they are kept in memory; further \
                 failures are logged at debug level)",
                file.display()
            ),
            true => tracing::debug!("could not persist regrid weights {}: {e}", file.display()),
        }
    }
}

/// The weights' budget for a disk cache of `max_size` bytes.
pub(crate) fn budget(max_size: u64) -> u64 {
    max_size / BUDGET_SHARE
}

/// What the weights directory of a cache directory holds, for `atlasfs cache stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WeightsUsage {
    /// Weight files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The bytes they may take (a share of `max_size`).
    pub budget: u64,
}

impl WeightsUsage {
    /// The budget is `max_size / SHARE`.
    pub const SHARE: u64 = BUDGET_SHARE;

    /// The weights under `cache_dir` against `max_size`'s share (none when the directory is
    /// missing or unreadable).
    pub fn of(cache_dir: &Path, max_size: u64) -> WeightsUsage {
        let (files, _) = list(&cache_dir.join(WEIGHTS_DIR));
        WeightsUsage {
            files: files.len() as u64,
            bytes: files.iter().map(|f| f.size).sum(),
            budget: budget(max_size),
        }
    }
}

/// The weight files of `dir` and its temporary files (none when it cannot be listed).
fn list(dir: &Path) -> (Vec<Listed>, Vec<PathBuf>) {
    let (mut files, mut temps) = (Vec::new(), Vec::new());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (files, temps);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        if temp_pid(&path).is_some() {
            temps.push(path);
        } else {
            files.push(Listed {
                path,
                size: meta.len(),
                used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
    }
    (files, temps)
}

/// The process id in a temporary file's name (`<name>.tmp<pid>[-<n>]`), if it is one.
fn temp_pid(path: &Path) -> Option<u32> {
    let ext = path.extension()?.to_str()?.strip_prefix("tmp")?;
    let digits = ext.split('-').next()?;
    digits.parse().ok()
}

/// Whether the process that named temporary file `path` still runs (and may rename it).
fn written_by_live_process(path: &Path) -> bool {
    temp_pid(path).is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn store(dir: &Path, budget: u64) -> WeightsStore {
        WeightsStore::with_budget(dir.join(WEIGHTS_DIR), budget)
    }

    fn on_disk(dir: &Path) -> (Vec<String>, u64) {
        let (files, _) = list(&dir.join(WEIGHTS_DIR));
        let mut names: Vec<String> = files
            .iter()
            .filter_map(|f| Some(f.path.file_name()?.to_str()?.to_owned()))
            .collect();
        names.sort();
        (names, files.iter().map(|f| f.size).sum())
    }

    fn used_ago(dir: &Path, name: &str, secs: u64) {
        let file = std::fs::File::options()
            .write(true)
            .open(dir.join(WEIGHTS_DIR).join(name))
            .unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn the_budget_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let weights = store(dir.path(), 1000);
        for i in 0..10 {
            weights.save(&format!("w{i}.bin"), &[i as u8; 300]);
            let (names, bytes) = on_disk(dir.path());
            assert!(bytes <= 1000, "{i}: {bytes} bytes on disk");
            assert!(names.contains(&format!("w{i}.bin")), "{i}: {names:?}");
        }
        assert_eq!(weights.load("w9.bin"), Some(vec![9u8; 300]));
        assert_eq!(weights.state.lock().total, on_disk(dir.path()).1);
    }

    #[test]
    fn a_loaded_file_survives_and_an_unused_older_one_goes() {
        let dir = tempfile::tempdir().unwrap();
        let weights = store(dir.path(), 1000);
        for (name, ago) in [("a.bin", 30), ("b.bin", 20), ("c.bin", 10)] {
            weights.save(name, &[1; 300]);
            used_ago(dir.path(), name, ago);
        }
        assert_eq!(weights.load("a.bin"), Some(vec![1; 300]));
        weights.save("d.bin", &[2; 300]);
        let (names, bytes) = on_disk(dir.path());
        assert_eq!(names, ["a.bin", "c.bin", "d.bin"]);
        assert_eq!(bytes, 900);
    }

    #[test]
    fn the_file_just_written_survives_even_over_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let weights = store(dir.path(), 100);
        weights.save("small.bin", &[1; 50]);
        weights.save("big.bin", &[2; 500]);
        assert_eq!(on_disk(dir.path()).0, ["big.bin"]);
        assert_eq!(weights.load("big.bin"), Some(vec![2; 500]));
    }

    #[test]
    fn a_new_store_counts_what_is_there_and_removes_dead_temps() {
        let dir = tempfile::tempdir().unwrap();
        let first = store(dir.path(), 1000);
        for name in ["a.bin", "b.bin", "c.bin"] {
            first.save(name, &[0; 300]);
        }
        let weights_dir = dir.path().join(WEIGHTS_DIR);
        // pids are below 2^22 on Linux: this one never runs
        let dead = weights_dir.join("x.bin.tmp999999999-0");
        let old_style = weights_dir.join("y.tmp999999998");
        let live = weights_dir.join(format!("z.bin.tmp{}-7", std::process::id()));
        for temp in [&dead, &old_style, &live] {
            std::fs::write(temp, [0; 10]).unwrap();
        }
        used_ago(dir.path(), "a.bin", 60);
        let second = store(dir.path(), 1000);
        assert_eq!(second.load("b.bin"), Some(vec![0; 300]));
        assert!(!dead.exists() && !old_style.exists() && live.exists());
        assert_eq!(second.state.lock().total, 900);
        second.save("d.bin", &[0; 300]);
        assert_eq!(on_disk(dir.path()).0, ["b.bin", "c.bin", "d.bin"]);
        assert_eq!(
            WeightsUsage::of(dir.path(), 8000),
            WeightsUsage {
                files: 3,
                bytes: 900,
                budget: 1000
            }
        );
    }

    #[test]
    fn a_failed_write_leaves_nothing_and_does_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(WEIGHTS_DIR), b"not a directory").unwrap();
        let weights = store(dir.path(), 1000);
        weights.save("a.bin", &[1; 10]);
        weights.save("b.bin", &[1; 10]);
        assert_eq!(weights.load("a.bin"), None);
        assert!(weights.warned.load(Ordering::Relaxed));
    }

    #[test]
    fn rewriting_a_file_counts_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let weights = store(dir.path(), 1000);
        for _ in 0..5 {
            weights.save("a.bin", &[1; 300]);
        }
        assert_eq!(weights.state.lock().total, 300);
    }
}
