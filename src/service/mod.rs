//! The service: one object owning the start-up chain — config → sources → catalog → tree →
//! chunk cache → key space — and its reloads. Every front end (FUSE `mount`, `warm`, `tree`,
//! `index`, `check`, and later HTTP `serve` and `export`) starts one and serves its current
//! [`KeySpace`]; none of them repeats the chain. Printing, progress bars, daemonizing and signals
//! stay with the front ends: the service only logs (through `tracing`) what a reload changed.
//!
//! # Blocking
//!
//! A service and its key space are **blocking**: indexing, reloading and reading a chunk key
//! read files and drive a private tokio runtime for object stores. From async code, call them
//! through `tokio::task::spawn_blocking`, never on a runtime's thread (a nested runtime
//! panics, and a blocked worker stalls every task on it).
//!
//! ```no_run
//! use atlasfs::config::MountConfig;
//! use atlasfs::service::{Service, ServiceOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = MountConfig::load("mount-configs/sst.toml".as_ref())?;
//! let service = Service::start(config, ServiceOptions::inspect(), &|_| {})?;
//! let zarr_json = service.keys().read("sst/zarr.json", 0, 1 << 20)?;
//! // … the files change …
//! service.reload()?; // the new snapshot serves from now on; on an error the old one stays
//! # let _ = zarr_json; Ok(()) }
//! ```

mod error;
mod reload;
mod reloader;
mod report;
mod startup;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};

pub use error::ServiceError;
pub use reloader::Reloader;
pub use report::{causes, left_out_line};
pub use startup::{sources_for, Indexed, Startup};

use crate::cache::{ChunkCache, LockMode};
use crate::config::MountConfig;
use crate::keyspace::{KeySpace, ReadAheadConfig};
use crate::sources::catalog::{IndexEvent, IndexReport};
use crate::sources::router::Sources;
use crate::tree::Tree;

/// Where computed chunks are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Only in memory (`[cache] memory` bytes); the cache dir is not touched.
    Memory,
    /// In the config's cache dir, locked in `mode`, over `memory` bytes in memory (`None`: the
    /// config's `[cache] memory`).
    Dir {
        /// Alone (a mount) or shared with other holders (`warm`).
        mode: LockMode,
        /// The memory tier's bound, when not the config's.
        memory: Option<u64>,
        /// Fail unless a disk tier can be used.
        require_disk: bool,
    },
}

/// Whether the catalog an index builds is written to the cache dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogMode {
    /// Reused and written back (`catalog.bin`), so the next start reads only changed files.
    Persisted,
    /// Reused but never written (`check` changes nothing).
    InMemory,
}

/// What differs between the commands starting a service.
#[derive(Debug, Clone, Copy)]
pub struct ServiceOptions {
    /// Where computed chunks are kept.
    pub cache: CacheUse,
    /// Whether the catalog is persisted.
    pub catalog: CatalogMode,
    /// Read-ahead for sequential readers (`None`: off).
    pub read_ahead: Option<ReadAheadConfig>,
    /// Whether pack views with `range = "data"` scan their source when the tree is built
    /// (`false` for `check`, which validates the config without reading the data; such a
    /// tree is never served).
    pub scan_ranges: bool,
}

impl ServiceOptions {
    /// A mount: the cache dir held exclusively, the catalog persisted, default read-ahead.
    pub fn mount() -> Self {
        ServiceOptions {
            cache: CacheUse::Dir {
                mode: LockMode::Exclusive,
                memory: None,
                require_disk: false,
            },
            catalog: CatalogMode::Persisted,
            read_ahead: Some(ReadAheadConfig::default()),
            scan_ranges: true,
        }
    }

    /// Warming the disk cache: shared with other warm processes, no memory tier, a disk tier
    /// required.
    pub fn warm() -> Self {
        ServiceOptions {
            cache: CacheUse::Dir {
                mode: LockMode::Shared,
                memory: Some(0),
                require_disk: true,
            },
            catalog: CatalogMode::Persisted,
            read_ahead: None,
            scan_ranges: true,
        }
    }

    /// Looking at the tree (`tree`, `index`): the catalog persisted, chunks only in memory.
    pub fn inspect() -> Self {
        ServiceOptions {
            cache: CacheUse::Memory,
            catalog: CatalogMode::Persisted,
            read_ahead: None,
            scan_ranges: true,
        }
    }

    /// Checking (`check`): like [`ServiceOptions::inspect`], writing nothing.
    pub fn check() -> Self {
        ServiceOptions {
            catalog: CatalogMode::InMemory,
            ..Self::inspect()
        }
    }

    /// These options without the data-range scans of pack views (see
    /// [`ServiceOptions::scan_ranges`]).
    pub fn without_range_scans(self) -> Self {
        ServiceOptions {
            scan_ranges: false,
            ..self
        }
    }

    /// These options with `read_ahead` instead.
    pub fn with_read_ahead(self, read_ahead: Option<ReadAheadConfig>) -> Self {
        ServiceOptions { read_ahead, ..self }
    }
}

/// A front end that keeps its own handle on the key space it serves (FUSE retires inodes and
/// tells the kernel what to forget) and is told of each new one.
pub trait FrontEnd: Send + Sync {
    /// Serves `next` from now on; returns how many of its entries over the previous key space
    /// it dropped.
    fn swap(&self, next: Arc<KeySpace>) -> usize;
}

/// One snapshot of a service: the config read, the report of its index, and the key space over
/// the tree built from them. Immutable; a reload makes a new one. The catalog is not kept: the
/// tree holds what it serves, and a reload reads the persisted catalog again.
pub struct Snapshot {
    config: MountConfig,
    report: IndexReport,
    keys: Arc<KeySpace>,
}

impl Snapshot {
    /// The config this snapshot was built from (its `[cache]` is the one started with).
    pub fn config(&self) -> &MountConfig {
        &self.config
    }

    /// What the index read, reused and could not use.
    pub fn report(&self) -> &IndexReport {
        &self.report
    }

    /// The key space served (blocking: see the module documentation).
    pub fn keys(&self) -> &Arc<KeySpace> {
        &self.keys
    }

    /// The tree served; its `left_out` lists the datasets left out and why.
    pub fn tree(&self) -> &Arc<Tree> {
        self.keys.tree()
    }
}

/// The loaded config, sources, catalog, tree, chunk cache and current key space of one mount
/// (or command), and its reloads. Shared between threads (`Arc<Service>`); blocking (see the
/// module documentation).
pub struct Service {
    options: ServiceOptions,
    sources: Arc<Sources>,
    cache: Arc<ChunkCache>,
    current: ArcSwap<Snapshot>,
    front_ends: RwLock<Vec<Arc<dyn FrontEnd>>>,
    reloads: Mutex<reload::Served>,
}

impl Service {
    /// Runs the whole start-up chain ([`Startup`]) for `config`, calling `progress` while
    /// indexing.
    ///
    /// # Errors
    /// As [`Startup::open`], [`Startup::index`] and [`Indexed::build`], and
    /// [`ServiceError::NothingToServe`] when every dataset is left out.
    pub fn start(
        config: MountConfig,
        options: ServiceOptions,
        progress: &(dyn Fn(IndexEvent) + Sync),
    ) -> Result<Service, ServiceError> {
        let service = Startup::open(config, options)?.index(progress)?.build()?;
        service.ensure_usable()?;
        Ok(service)
    }

    /// The snapshot served now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The key space served now (blocking: see the module documentation).
    pub fn keys(&self) -> Arc<KeySpace> {
        self.current.load().keys.clone()
    }

    /// The tree served now.
    pub fn tree(&self) -> Arc<Tree> {
        self.current.load().keys.tree().clone()
    }

    /// The options the service was started with.
    pub fn options(&self) -> &ServiceOptions {
        &self.options
    }

    /// The chunk cache every snapshot shares.
    pub fn cache(&self) -> &Arc<ChunkCache> {
        &self.cache
    }

    /// Local files and object stores, shared by every snapshot.
    pub fn sources(&self) -> &Arc<Sources> {
        &self.sources
    }

    /// `left out <dataset>: <reason>` for each dataset the tree served leaves out.
    pub fn left_out(&self) -> Vec<String> {
        self.tree().left_out.iter().map(left_out_line).collect()
    }

    /// The number of usable source files served.
    pub fn files_served(&self) -> usize {
        self.reloads.lock().files()
    }

    /// Fails when every dataset was left out, so there is nothing to serve.
    ///
    /// # Errors
    /// [`ServiceError::NothingToServe`] naming each dataset left out and why.
    pub fn ensure_usable(&self) -> Result<(), ServiceError> {
        report::ensure_usable(&self.tree())
    }

    /// Logs what the index of the snapshot served could not use, what building its tree noted
    /// and the datasets it left out, as each reload does; returns the number of files skipped.
    pub fn log_build(&self) -> usize {
        let snapshot = self.snapshot();
        self.reloads
            .lock()
            .log_build(&snapshot.report, snapshot.tree())
    }

    /// Tells `front` of every key space a reload puts in place from now on.
    pub fn attach(&self, front: Arc<dyn FrontEnd>) {
        self.front_ends.write().push(front);
    }
}
