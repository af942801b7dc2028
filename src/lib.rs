//! atlasfs presents archives of NetCDF files as one synthetic, lazily computed Zarr tree.
//!
//! Data flows top to bottom on a read, and the modules follow that shape:
//!
//! - [`frontend`]: FUSE adapter; translates kernel requests into key-space calls and nothing else.
//! - [`keyspace`]: Zarr keys (`zarr.json`, `.zarray`, chunk keys, …) over the tree.
//! - [`tree`]: an immutable snapshot of datasets, groups and arrays built from config + catalog.
//! - [`operators`]: per-chunk recipes that compute a chunk's bytes from the sources.
//! - [`cache`]: computed chunks in a memory LRU over a bounded, checksummed, persistent disk LRU.
//! - [`sources`]: the catalog of source files (dimensions, variables, attributes, byte ranges)
//!   and of existing Zarr stores (hierarchy, chunk object versions), the NetCDF-3 and NetCDF-4
//!   indexers and the byte-range reader every read goes through.
//!
//! [`config`] holds the mount configuration (TOML) shared by all of them.
//!
//! ```no_run
//! use atlasfs::{config::MountConfig, sources::catalog::Catalog, tree::Tree, keyspace::KeySpace};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = MountConfig::load("mount-configs/sst.toml".as_ref())?;
//! let sources = atlasfs::sources::router::Sources::for_config(&config)?;
//! let (catalog, _report) = Catalog::index(&config, &sources, &mut |_| {})?;
//! let tree = Tree::build(&config, &catalog)?;
//! let keys = KeySpace::new(std::sync::Arc::new(tree), config.mount.zarr_format);
//! let bytes = keys.read("sst/zarr.json", 0, 1 << 20)?;
//! # let _ = bytes; Ok(()) }
//! ```

pub mod cache;
pub mod config;
pub mod frontend;
pub mod keyspace;
pub mod operators;
pub mod sources;
pub mod tree;
