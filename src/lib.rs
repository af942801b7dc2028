//! atlasfs presents archives of NetCDF files as one synthetic, lazily computed Zarr tree.
//!
//! Data flows top to bottom on a read, and the modules follow that shape:
//!
//! - [`frontend`]: FUSE adapter; translates kernel requests into key-space calls and nothing else.
//! - [`service`]: one object owning the start-up chain (config → sources → catalog → tree →
//!   cache → key space) and reloads; every front end and command sits on it.
//! - [`keyspace`]: Zarr keys (`zarr.json`, `.zarray`, chunk keys, …) over the tree.
//! - [`tree`]: an immutable snapshot of datasets, groups and arrays built from config + catalog.
//! - [`views`]: the `[[view]]` directories of the tree (pack, pyramid, expressions), built in
//!   dependency order over other nodes, with the operators that compute their chunks.
//! - [`operators`]: per-chunk recipes that compute a chunk's bytes from the sources.
//! - [`cache`]: computed chunks in a memory LRU over a bounded, checksummed, persistent disk LRU.
//! - [`sources`]: the catalog of source files (dimensions, variables, attributes, byte ranges)
//!   and of existing Zarr stores (hierarchy, chunk object versions), the NetCDF-3 and NetCDF-4
//!   indexers and the byte-range reader every read goes through.
//!
//! [`config`] holds the mount configuration (TOML) shared by all of them.
//!
//! A [`service::Service`] indexes the sources, builds the tree and serves its key space; the key
//! space is blocking, so async code calls it through `tokio::task::spawn_blocking`:
//!
//! ```no_run
//! use atlasfs::config::MountConfig;
//! use atlasfs::service::{Service, ServiceOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = MountConfig::load("mount-configs/sst.toml".as_ref())?;
//! let service = Service::start(config, ServiceOptions::inspect(), &|_| {})?;
//! let bytes = service.keys().read("sst/zarr.json", 0, 1 << 20)?;
//! service.reload()?; // re-index and swap in a new snapshot; a failure keeps the old one
//! # let _ = bytes; Ok(()) }
//! ```

pub mod cache;
pub mod config;
pub mod export;
pub mod frontend;
pub mod keyspace;
pub mod operators;
pub(crate) mod samples;
pub mod service;
pub mod sources;
pub mod tree;
pub mod views;
