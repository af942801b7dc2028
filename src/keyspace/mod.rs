//! The Zarr key space over a tree snapshot: which keys exist (groups, arrays, metadata
//! documents, chunk keys), their exact sizes, listings, and reads. Every front end (FUSE, and
//! later HTTP and a zarrs store) sits on this; it knows nothing of kernels or sockets.

mod documents;
pub mod json;
mod listing;
mod metadata;

use std::sync::Arc;

pub use listing::Listing;

use crate::cache::{CacheStats, MemoryCache};
use crate::config::ZarrFormat;
use crate::operators::ChunkError;
use crate::sources::bytes::{ByteSource, LocalFiles};
use crate::tree::{ArrayNode, NodeRef, Tree};
use documents::Documents;

/// A key that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No such key.
    #[error("no such key {0}")]
    NotFound(String),
    /// A chunk failed to compute.
    #[error("chunk {key} of {array}: {source}")]
    Chunk {
        /// The array's path.
        array: String,
        /// The chunk key within the array (e.g. `c/3/0/1`).
        key: String,
        /// Why.
        source: ChunkError,
    },
}

/// What a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory (group, array or chunk-key prefix).
    Dir,
    /// A file of exactly this many bytes.
    File(u64),
}

enum Resolved<'a> {
    Dir,
    Document(&'a Arc<Vec<u8>>),
    Chunk(&'a Arc<ArrayNode>, Vec<u64>),
}

/// The key space of one tree snapshot in one Zarr format.
pub struct KeySpace {
    tree: Arc<Tree>,
    format: ZarrFormat,
    documents: Documents,
    cache: MemoryCache<(usize, Vec<u64>)>,
    source: Arc<dyn ByteSource>,
}

impl KeySpace {
    /// A key space reading local files, with a 512 MiB memory cache.
    pub fn new(tree: Arc<Tree>, format: ZarrFormat) -> Self {
        Self::with_parts(tree, format, Arc::new(LocalFiles::default()), 512 << 20)
    }

    /// A key space reading through `source` with a memory cache of `memory` bytes.
    pub fn with_parts(
        tree: Arc<Tree>,
        format: ZarrFormat,
        source: Arc<dyn ByteSource>,
        memory: u64,
    ) -> Self {
        let documents = documents::build(&tree, format);
        KeySpace {
            tree,
            format,
            documents,
            cache: MemoryCache::new(memory),
            source,
        }
    }

    /// The Zarr format served.
    pub fn format(&self) -> ZarrFormat {
        self.format
    }

    /// Memory cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    fn resolve(&self, key: &str) -> Option<Resolved<'_>> {
        let key = key.trim_matches('/');
        if let Some(doc) = self.documents.get(key) {
            return Some(Resolved::Document(doc));
        }
        let segments: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
        for split in (0..=segments.len()).rev() {
            let path = segments[..split].join("/");
            match self.tree.node(&path) {
                None => continue,
                Some(NodeRef::Group(_)) if split == segments.len() => return Some(Resolved::Dir),
                Some(NodeRef::Group(_)) => return None,
                Some(NodeRef::Array(array)) => {
                    return self.resolve_in_array(array, &segments[split..]);
                }
            }
        }
        None
    }

    fn resolve_in_array<'a>(
        &self,
        array: &'a Arc<ArrayNode>,
        rest: &[&str],
    ) -> Option<Resolved<'a>> {
        let ndim = array.geometry.shape.len();
        if rest.is_empty() {
            return Some(Resolved::Dir);
        }
        let index: Vec<u64> = match self.format {
            ZarrFormat::V3 => {
                if rest[0] != "c" {
                    return None;
                }
                let index = parse_indices(&rest[1..])?;
                if index.len() < ndim {
                    let grid = array.geometry.grid();
                    return index
                        .iter()
                        .zip(&grid)
                        .all(|(i, g)| i < g)
                        .then_some(Resolved::Dir);
                }
                index
            }
            ZarrFormat::V2 => {
                if rest.len() != 1 {
                    return None;
                }
                let index = parse_indices(&rest[0].split('.').collect::<Vec<_>>())?;
                if ndim == 0 {
                    return (index == [0]).then(|| Resolved::Chunk(array, Vec::new()));
                }
                index
            }
        };
        array
            .geometry
            .contains_chunk(&index)
            .then_some(Resolved::Chunk(array, index))
    }

    /// What `key` is, without computing anything.
    pub fn stat(&self, key: &str) -> Option<Kind> {
        Some(match self.resolve(key)? {
            Resolved::Dir => Kind::Dir,
            Resolved::Document(doc) => Kind::File(doc.len() as u64),
            Resolved::Chunk(array, index) => {
                Kind::File(array.recipe.chunk_len(&array.geometry, &index))
            }
        })
    }

    /// The entries of directory `key`, computed lazily by position.
    pub fn list(&self, key: &str) -> Option<Listing> {
        let key = key.trim_matches('/');
        let segments: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
        for split in (0..=segments.len()).rev() {
            let path = segments[..split].join("/");
            match self.tree.node(&path) {
                None => continue,
                Some(NodeRef::Group(group)) if split == segments.len() => {
                    return Some(Listing::group(group, self.format, !path.is_empty()));
                }
                Some(NodeRef::Group(_)) => return None,
                Some(NodeRef::Array(array)) => {
                    let rest = &segments[split..];
                    return match self.format {
                        ZarrFormat::V3 if rest.is_empty() => Some(Listing::array_v3(array)),
                        ZarrFormat::V3 if rest[0] == "c" => {
                            let prefix = parse_indices(&rest[1..])?;
                            (prefix.len() < array.geometry.shape.len())
                                .then(|| Listing::chunk_prefix(array, prefix.len()))
                        }
                        ZarrFormat::V2 if rest.is_empty() => Some(Listing::array_v2(array)),
                        _ => None,
                    };
                }
            }
        }
        None
    }

    /// Up to `size` bytes of `key` from `offset`.
    ///
    /// # Errors
    /// [`KeyError::NotFound`] for unknown keys; [`KeyError::Chunk`] when a chunk cannot be
    /// computed (naming the array, chunk key and source file).
    pub fn read(&self, key: &str, offset: u64, size: usize) -> Result<Vec<u8>, KeyError> {
        let bytes = match self.resolve(key) {
            Some(Resolved::Document(doc)) => doc.clone(),
            Some(Resolved::Chunk(array, index)) => self.chunk(array, &index)?,
            _ => return Err(KeyError::NotFound(key.to_owned())),
        };
        let start = (offset as usize).min(bytes.len());
        let end = start.saturating_add(size).min(bytes.len());
        Ok(bytes[start..end].to_vec())
    }

    fn chunk(&self, array: &ArrayNode, index: &[u64]) -> Result<Arc<Vec<u8>>, KeyError> {
        let error = |source| KeyError::Chunk {
            array: array.path.clone(),
            key: chunk_key(self.format, index),
            source,
        };
        let bytes = self
            .cache
            .get_or_compute(&(array.id, index.to_vec()), || {
                array.recipe.compute(&array.geometry, index, &*self.source)
            })
            .map_err(error)?;
        // Cached bytes are served only while their sources are unchanged.
        array
            .recipe
            .check_sources(&array.geometry, index, &*self.source)
            .map_err(error)?;
        Ok(bytes)
    }

    /// Whether `key`'s content still matches its sources: always true for metadata; for a chunk,
    /// whether every source it reads is unchanged. Front ends keep kernel caches only while true.
    pub fn is_current(&self, key: &str) -> bool {
        match self.resolve(key) {
            Some(Resolved::Chunk(array, index)) => array
                .recipe
                .check_sources(&array.geometry, &index, &*self.source)
                .is_ok(),
            _ => true,
        }
    }
}

/// The chunk key of `index` within an array.
pub fn chunk_key(format: ZarrFormat, index: &[u64]) -> String {
    let parts: Vec<String> = index.iter().map(u64::to_string).collect();
    match format {
        ZarrFormat::V3 if parts.is_empty() => "c".to_owned(),
        ZarrFormat::V3 => format!("c/{}", parts.join("/")),
        ZarrFormat::V2 if parts.is_empty() => "0".to_owned(),
        ZarrFormat::V2 => parts.join("."),
    }
}

fn parse_indices(parts: &[&str]) -> Option<Vec<u64>> {
    parts
        .iter()
        .map(|p| {
            // Reject "+1", "01" and friends so each chunk has exactly one key.
            if p.is_empty()
                || (p.len() > 1 && p.starts_with('0'))
                || !p.bytes().all(|b| b.is_ascii_digit())
            {
                None
            } else {
                p.parse().ok()
            }
        })
        .collect()
}
