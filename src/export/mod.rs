//! `export`: the subtree at a tree path written out as a real Zarr store, in a directory or
//! an object store. Every key is written verbatim as the key space serves it (chunks already
//! encoded with the array's codecs, metadata documents as served), chunks first, split over
//! `--shard K/N` workers that write disjoint keys, and the metadata last, once every chunk is
//! present — so a store without its root metadata is visibly incomplete. The root's attributes
//! record how the store was made ([`provenance`]). `--shard-shape` groups chunks into Zarr v3
//! shards ([`ShardShape`]); `--codec` serves the exported arrays with another compressor
//! ([`recoded`]).

mod dest;
mod plan;
pub mod provenance;
mod recode;
mod sharding;
mod write;

pub use dest::Destination;
pub use plan::{ExportPlan, Unit};
pub use provenance::Provenance;
pub use recode::{recoded, ExportCodec};
pub use sharding::ShardShape;
pub use write::{finalize, missing_chunks, write_unit, Written};

use crate::keyspace::KeyError;

/// An export that failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The exported path is no group or array of the tree.
    #[error("{0:?} is no group, view or array of the tree (see `atlasfs tree CONFIG`)")]
    NoPath(String),
    /// A key could not be read from the key space.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The destination could not be opened, read or written.
    #[error("destination {dest}: {reason}")]
    Store {
        /// The destination (directory or URL).
        dest: String,
        /// Why.
        reason: String,
    },
    /// Metadata cannot be written yet: chunks are missing.
    #[error("{missing} of {total} chunks are not written yet (first missing: {first})")]
    Incomplete {
        /// Chunks missing.
        missing: u64,
        /// Chunks in the export.
        total: u64,
        /// The first missing key.
        first: String,
    },
    /// A shard shape that cannot apply.
    #[error("--shard-shape: {0}")]
    Sharding(String),
    /// A served metadata document is not the JSON it should be.
    #[error("metadata document {key}: {reason}")]
    Metadata {
        /// Its key.
        key: String,
        /// Why.
        reason: String,
    },
}
