//! The native read as an operator: chunks assembled from the source variables ([`Part`]s) of
//! one or more files, concatenated along an axis, read and decoded in Rust ([`super::native`]).
//! Keys, staleness checks and sizes come with [`FromParts`].

use super::parts::FromParts;
use super::{native, ChunkError, Geometry, Part};
use crate::sources::bytes::ByteSource;

/// Chunks read from source variables.
#[derive(Debug, Clone)]
pub struct NativeRead {
    /// Contributing source variables.
    pub parts: Vec<Part>,
}

impl FromParts for NativeRead {
    const NAME: &'static str = "native";
    const VERSION: u32 = 1;

    fn parts(&self) -> &[Part] {
        &self.parts
    }

    fn values(
        &self,
        geometry: &Geometry,
        index: &[u64],
        source: &dyn ByteSource,
    ) -> Result<Vec<u8>, ChunkError> {
        native::compute(&self.parts, geometry, index, source)
    }
}
