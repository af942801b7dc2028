//! Sources: the catalog of NetCDF files (what they hold and where each variable's bytes live)
//! and of existing Zarr stores, the indexers that build it, and the byte-range reader every
//! chunk read goes through.

pub mod bytes;
pub mod catalog;
pub mod chunk_table;
pub mod esm_catalog;
mod hdf5_array_checksums;
mod hdf5_array_numbering;
mod hdf5_btree_v1;
mod hdf5_checks;
mod hdf5_dataspace;
mod hdf5_extents;
mod hdf5_layout;
mod hdf5_overlaps;
pub mod membership;
pub mod model;
mod nc3_checks;
pub mod pattern;
mod persist;
pub mod remote;
pub mod router;
pub mod scan;
pub mod zarr_store;
