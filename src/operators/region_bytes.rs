//! The bytes of a region another array's chunks were read into: a buffer of its own, or — when
//! the region is exactly one whole chunk — that chunk's cached values, shared without a copy.

use std::ops::Deref;
use std::sync::Arc;

/// The values of a region (little-endian, C order, the region's shape), as
/// [`RegionReader::read_region`](super::RegionReader::read_region) gives them.
#[derive(Debug, Clone)]
pub enum RegionBytes {
    /// Assembled from one or more chunks into a buffer of its own.
    Owned(Vec<u8>),
    /// One whole chunk, shared with the cache that holds it.
    Shared(Arc<Vec<u8>>),
}

impl RegionBytes {
    /// The bytes as a buffer of their own: moved when owned (or no longer shared), copied
    /// otherwise.
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            RegionBytes::Owned(bytes) => bytes,
            RegionBytes::Shared(bytes) => Arc::try_unwrap(bytes).unwrap_or_else(|b| b.to_vec()),
        }
    }
}

impl Deref for RegionBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            RegionBytes::Owned(bytes) => bytes,
            RegionBytes::Shared(bytes) => bytes,
        }
    }
}

impl From<Vec<u8>> for RegionBytes {
    fn from(bytes: Vec<u8>) -> Self {
        RegionBytes::Owned(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_bytes_are_copied_only_while_someone_else_holds_them() {
        let cached = Arc::new(vec![1u8, 2, 3]);
        let held = RegionBytes::Shared(cached.clone());
        assert_eq!(&*held, &[1, 2, 3]);
        let copy = held.into_vec();
        assert_eq!(copy, vec![1, 2, 3]);
        assert_eq!(Arc::strong_count(&cached), 1);
        let address = cached.as_ptr();
        let moved = RegionBytes::Shared(cached).into_vec();
        assert_eq!(moved.as_ptr(), address);
        assert_eq!(RegionBytes::from(vec![4u8]).into_vec(), vec![4]);
    }
}
