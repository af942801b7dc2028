//! The start-up chain, one step at a time: [`Startup::open`] opens the chunk cache (taking the
//! cache dir's lock first, so a second mount of the same dir fails before indexing) and the
//! sources; [`Startup::index`] indexes them into a catalog; [`Indexed::build`] builds the tree
//! and its key space into a [`Service`]. [`Service::start`] runs all three; commands that report
//! between steps (the index report before the tree, `check`'s lines) take them one by one.

use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};

use super::reload::Served;
use super::{CacheUse, CatalogMode, Service, ServiceError, ServiceOptions, Snapshot};
use crate::cache::{ChunkCache, LockMode, SharedTier};
use crate::config::{CacheSection, MountConfig};
use crate::keyspace::KeySpace;
use crate::sources::catalog::{Catalog, IndexEvent, IndexReport};
use crate::sources::remote::ObjectSharedStore;
use crate::sources::router::Sources;
use crate::tree::Tree;
use crate::views::RangeScans;

/// A service being started: its config, chunk cache and sources are open, nothing indexed yet.
pub struct Startup {
    config: MountConfig,
    options: ServiceOptions,
    cache: Arc<ChunkCache>,
    sources: Arc<Sources>,
}

/// A service whose sources are indexed: the catalog and the index report, before the tree.
pub struct Indexed {
    startup: Startup,
    catalog: Catalog,
    report: IndexReport,
}

/// The sources (local files and object stores) that `config` reads.
///
/// # Errors
/// [`ServiceError::Sources`] when an object store cannot be configured.
pub fn sources_for(config: &MountConfig) -> Result<Sources, ServiceError> {
    Ok(Sources::for_config(config)?)
}

impl Startup {
    /// Opens the chunk cache as `options` say, then the sources of `config`.
    ///
    /// # Errors
    /// [`ServiceError::Cache`] when the cache dir is in use in a conflicting mode;
    /// [`ServiceError::DiskCacheOff`] or [`ServiceError::DiskCacheUnusable`] when a disk cache is
    /// required and there is none; [`ServiceError::Sources`] as [`sources_for`].
    pub fn open(config: MountConfig, options: ServiceOptions) -> Result<Startup, ServiceError> {
        let cache = open_cache(&config, &options.cache)?;
        let sources = sources_for(&config)?;
        Ok(Startup {
            config,
            options,
            cache: Arc::new(cache),
            sources: Arc::new(sources),
        })
    }

    /// Opens the chunk cache as `options` say, reading through `sources` (e.g. empty
    /// [`Sources`] after [`sources_for`] failed, to report what else can be checked).
    ///
    /// # Errors
    /// As [`Startup::open`], except for the sources.
    pub fn with_sources(
        config: MountConfig,
        options: ServiceOptions,
        sources: Sources,
    ) -> Result<Startup, ServiceError> {
        let cache = open_cache(&config, &options.cache)?;
        Ok(Startup {
            config,
            options,
            cache: Arc::new(cache),
            sources: Arc::new(sources),
        })
    }

    /// The config being started.
    pub fn config(&self) -> &MountConfig {
        &self.config
    }

    /// The chunk cache opened.
    pub fn cache(&self) -> &ChunkCache {
        &self.cache
    }

    /// Indexes the sources (incrementally; persisted unless the options say in memory),
    /// calling `progress` as files are read.
    ///
    /// # Errors
    /// [`ServiceError::Index`] for an invalid glob or pattern, or an unwritable catalog.
    pub fn index(self, progress: &(dyn Fn(IndexEvent) + Sync)) -> Result<Indexed, ServiceError> {
        let (catalog, report) = index(&self.config, &self.sources, self.options.catalog, progress)?;
        Ok(Indexed {
            startup: self,
            catalog,
            report,
        })
    }
}

impl Indexed {
    /// The config being started.
    pub fn config(&self) -> &MountConfig {
        &self.startup.config
    }

    /// The catalog indexed.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// What the index read, reused and could not use.
    pub fn report(&self) -> &IndexReport {
        &self.report
    }

    /// Builds the tree and its key space. A tree that leaves every dataset out is built (its
    /// `left_out` says why); [`Service::ensure_usable`] refuses it.
    ///
    /// # Errors
    /// [`ServiceError::Tree`] when the config names something the files do not have.
    pub fn build(self) -> Result<Service, ServiceError> {
        let Indexed {
            startup,
            catalog,
            report,
        } = self;
        let scans = match startup.options.scan_ranges {
            true => range_scans(&startup.config, &startup.cache, &startup.sources),
            false => RangeScans::skipped(),
        }
        .with_sources(startup.sources.clone());
        let tree = Tree::build_with(&startup.config, &catalog, &scans)?;
        let mut keys = KeySpace::with_cache(
            Arc::new(tree),
            startup.config.mount.zarr_format,
            startup.sources.clone(),
            startup.cache.clone(),
        );
        if let Some(read_ahead) = startup.options.read_ahead {
            keys = keys.with_readahead(read_ahead);
        }
        let mut served = Served::new(&startup.config);
        served.serve_files(&startup.config, &catalog);
        free_in_background(catalog);
        Ok(Service {
            current: ArcSwap::from_pointee(Snapshot {
                config: startup.config,
                report,
                keys: Arc::new(keys),
            }),
            options: startup.options,
            sources: startup.sources,
            cache: startup.cache,
            front_ends: RwLock::new(Vec::new()),
            reloads: Mutex::new(served),
        })
    }
}

/// Data-range scans of pack views through the service's cache, remembered under the cache
/// directory when the disk cache is on (as are regrid weights, within a share of its bound).
pub(crate) fn range_scans(
    config: &MountConfig,
    cache: &Arc<ChunkCache>,
    sources: &Arc<Sources>,
) -> RangeScans {
    let dir = cache.disk().is_some().then(|| config.cache.dir.clone());
    RangeScans::new(cache.clone(), sources.clone(), dir)
        .with_weights_bound(config.cache.max_size)
        .with_sources(sources.clone())
}

/// The chunk cache `config` asks for, opened as `cache` says.
fn open_cache(config: &MountConfig, cache: &CacheUse) -> Result<ChunkCache, ServiceError> {
    let section = &config.cache;
    match *cache {
        CacheUse::Memory => Ok(ChunkCache::new(section.memory, None)),
        CacheUse::Dir {
            mode,
            memory,
            require_disk,
        } => {
            if require_disk && section.max_size == 0 {
                return Err(ServiceError::DiskCacheOff);
            }
            let opened = ChunkCache::open_dir(
                &section.dir,
                memory.unwrap_or(section.memory),
                section.max_size,
                mode,
            )?;
            if require_disk && opened.disk().is_none() {
                return Err(ServiceError::DiskCacheUnusable {
                    dir: section.dir.clone(),
                });
            }
            with_shared_tier(opened, section, mode == LockMode::Shared)
        }
    }
}

/// `cache` over the config's shared tier, if it names one; batch work (`wait_for_room`)
/// waits for room in the upload queue instead of dropping uploads.
fn with_shared_tier(
    cache: ChunkCache,
    section: &CacheSection,
    wait_for_room: bool,
) -> Result<ChunkCache, ServiceError> {
    let Some(url) = &section.shared else {
        return Ok(cache);
    };
    let store = ObjectSharedStore::open(url, &section.storage).map_err(ServiceError::SharedTier)?;
    tracing::info!("shared cache tier: {url}");
    Ok(cache.with_shared_tier(SharedTier::new(Arc::new(store), wait_for_room)))
}

/// Frees the catalog on a thread of its own, then gives the freed memory back to the OS: at
/// 10^5 files that is about 10^6 small allocations, a seventh of a re-index when freed in line.
pub(super) fn free_in_background(catalog: Catalog) {
    let freeing = std::thread::Builder::new()
        .name("catalog-free".into())
        .spawn(move || {
            drop(catalog);
            release_freed_memory();
        });
    if let Err(err) = freeing {
        tracing::debug!(%err, "no thread to free the catalog on; freed here instead");
    }
}

/// Hands the memory freed after a build (the catalog, the index's and the tree's scratch) back to
/// the system: glibc keeps freed heap pages mapped, which for an archive of 10,000 files would
/// leave the daemon's RSS at twice what it holds.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own heap.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Indexes `config` through `sources`, persisting the catalog or not.
pub(crate) fn index(
    config: &MountConfig,
    sources: &Sources,
    mode: CatalogMode,
    progress: &(dyn Fn(IndexEvent) + Sync),
) -> Result<(Catalog, IndexReport), ServiceError> {
    match mode {
        CatalogMode::Persisted => Catalog::index(config, sources, progress),
        CatalogMode::InMemory => Catalog::index_in_memory(config, sources, progress),
    }
    .map_err(ServiceError::Index)
}
