//! The Zarr key space over a tree snapshot: which keys exist (groups, arrays, metadata
//! documents, chunk keys), their exact sizes, listings, and reads. Every front end (FUSE, and
//! later HTTP and a zarrs store) sits on this; it knows nothing of kernels or sockets. Chunk
//! reads go through the two-tier [`ChunkCache`], keyed by each array's [`RecipeFingerprint`],
//! with read-ahead for sequential readers ([`readahead`]) and whole subtrees for `warm`
//! ([`warm`]). A running mount replaces its key space with a [`KeySpace::successor`] over a new
//! tree; [`KeySpace::changed_keys`] tells which keys serve something different.
//!
//! The key space is **blocking**: a chunk read computes the chunk, reading files and driving a
//! private tokio runtime for object stores. Async front ends call it through
//! `tokio::task::spawn_blocking`, never from a runtime's thread.

mod compare;
mod consolidated;
mod doc_cache;
mod documents;
pub mod json;
mod listing;
mod metadata;
mod open;
pub mod readahead;
mod regions;
mod slice;
pub mod warm;

#[cfg(test)]
mod document_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod view_tests;

use std::sync::{Arc, OnceLock};

pub use listing::Listing;
pub use open::OpenKey;
pub use readahead::{ReadAhead, ReadAheadConfig};
pub use slice::Slice;

use crate::cache::stats::ReadAheadStats;
use crate::cache::{CacheStats, ChunkCache, ChunkKey, Served};
use crate::config::ZarrFormat;
use crate::operators::{ArrayFingerprints, ChunkError, RecipeFingerprint};
use crate::sources::bytes::{ByteSource, LocalFiles};
use crate::tree::{ArrayNode, NodeRef, Tree};
use documents::Documents;
pub(crate) use regions::{CachedChunks, ChunkKeys, FreshKeys};

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
    /// A metadata document of this many bytes.
    Document(u64),
    Chunk(&'a Arc<ArrayNode>, Vec<u64>),
}

/// The key space of one tree snapshot in one Zarr format.
///
/// Blocking: call it from async code only through `tokio::task::spawn_blocking`, never from a
/// runtime's thread (see the module documentation).
pub struct KeySpace {
    tree: Arc<Tree>,
    format: ZarrFormat,
    documents: Documents,
    cache: Arc<ChunkCache>,
    source: Arc<dyn ByteSource>,
    /// Per array id: the array's address in this tree (arrays of other snapshots reuse ids) and
    /// its fingerprint, computed on first use.
    fingerprints: Vec<(usize, OnceLock<RecipeFingerprint>)>,
    readahead: Option<Arc<ReadAhead>>,
}

impl KeySpace {
    /// A key space reading local files, with a 512 MiB memory cache and no disk cache.
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
        Self::with_cache(
            tree,
            format,
            source,
            Arc::new(ChunkCache::new(memory, None)),
        )
    }

    /// A key space reading through `source` and keeping chunks in `cache`.
    pub fn with_cache(
        tree: Arc<Tree>,
        format: ZarrFormat,
        source: Arc<dyn ByteSource>,
        cache: Arc<ChunkCache>,
    ) -> Self {
        let documents = Documents::new(format, DOCUMENT_CACHE_BYTES);
        let mut arrays = tree.arrays();
        arrays.extend(tree.hidden.iter().cloned());
        let mut fingerprints: Vec<(usize, OnceLock<RecipeFingerprint>)> =
            (0..arrays.iter().map(|a| a.id + 1).max().unwrap_or(0))
                .map(|_| (0, OnceLock::new()))
                .collect();
        for array in &arrays {
            fingerprints[array.id].0 = address(array);
        }
        KeySpace {
            tree,
            format,
            documents,
            cache,
            source,
            fingerprints,
            readahead: None,
        }
    }

    /// Turns on read-ahead for sequential readers.
    pub fn with_readahead(mut self, config: ReadAheadConfig) -> Self {
        self.readahead = (config.depth > 0).then(|| Arc::new(ReadAhead::new(config)));
        self
    }

    /// The key space of the next snapshot of a running mount: `tree` served in `format`, sharing
    /// this key space's chunk cache, byte source and read-ahead (so counters and cached chunks
    /// carry over).
    pub fn successor(&self, tree: Arc<Tree>, format: ZarrFormat) -> KeySpace {
        let mut next = KeySpace::with_cache(tree, format, self.source.clone(), self.cache.clone());
        next.readahead = self.readahead.clone();
        next
    }

    /// The Zarr format served.
    pub fn format(&self) -> ZarrFormat {
        self.format
    }

    /// The tree served.
    pub fn tree(&self) -> &Arc<Tree> {
        &self.tree
    }

    /// Cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Writes every computed chunk still waiting for the disk cache (call before exiting).
    pub fn flush(&self) {
        self.cache.flush();
    }

    /// Read-ahead counters (zero when read-ahead is off).
    pub fn readahead_stats(&self) -> ReadAheadStats {
        self.readahead
            .as_ref()
            .map(|readahead| readahead.stats())
            .unwrap_or_default()
    }

    /// Renders the consolidated metadata documents of the mount root's groups ahead of their
    /// first read, as long as they fit together in the rendered-document cache; returns how
    /// many. Rendering the document of a large tree takes tens of milliseconds (about
    /// 0.1 s for 12 MB, 12,000 nodes), which the first open would otherwise wait for. Call it
    /// off the request path, e.g. on a thread of its own right after mounting.
    pub fn prerender_dataset_documents(&self) -> usize {
        let mut rendered = 0;
        for (key, len) in self.documents.dataset_documents(&self.tree) {
            if self.documents.held_bytes() + len as usize > DOCUMENT_CACHE_BYTES {
                continue;
            }
            if self.documents.bytes(&self.tree, &key).is_some() {
                rendered += 1;
            }
        }
        rendered
    }

    /// The cache key of chunk `index` of `array`.
    pub fn chunk_key(&self, array: &ArrayNode, index: &[u64]) -> ChunkKey {
        let own = self
            .fingerprint(array)
            .chunk_key(&array.recipe, &array.geometry, index);
        regions::with_inputs(self, array, index, own)
    }

    /// The fingerprint of `array`, memoised for this tree's arrays.
    fn fingerprint(&self, array: &ArrayNode) -> std::borrow::Cow<'_, RecipeFingerprint> {
        match self.fingerprints.get(array.id) {
            Some((at, cell)) if *at == address(array) => std::borrow::Cow::Borrowed(
                cell.get_or_init(|| RecipeFingerprint::new(&array.recipe, &array.geometry, self)),
            ),
            // An array of another snapshot: correct, just not memoised.
            _ => std::borrow::Cow::Owned(RecipeFingerprint::new(
                &array.recipe,
                &array.geometry,
                self,
            )),
        }
    }

    fn resolve(&self, key: &str) -> Option<Resolved<'_>> {
        let key = key.trim_matches('/');
        if let Some(len) = self.documents.len_of(&self.tree, key) {
            return Some(Resolved::Document(len));
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
            ZarrFormat::V3 if array.recipe.operator.flat_chunk_keys() => {
                let [name] = rest else { return None };
                let indices = name.strip_prefix("c.")?;
                let index = parse_indices(&indices.split('.').collect::<Vec<_>>())?;
                if index.len() != ndim {
                    return None;
                }
                index
            }
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

    /// The cache key of the chunk `key` names (`None` for a metadata document or no chunk):
    /// equal keys mean equal bytes, so HTTP serves it as the chunk's `ETag`.
    pub fn chunk_key_of(&self, key: &str) -> Option<ChunkKey> {
        match self.resolve(key)? {
            Resolved::Chunk(array, index) => Some(self.chunk_key(array, &index)),
            _ => None,
        }
    }

    /// What `key` is, without computing anything.
    pub fn stat(&self, key: &str) -> Option<Kind> {
        Some(match self.resolve(key)? {
            Resolved::Dir => Kind::Dir,
            Resolved::Document(len) => Kind::File(len),
            Resolved::Chunk(array, index) => Kind::File(self.chunk_len(array, &index)),
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
                        ZarrFormat::V3
                            if rest.is_empty() && array.recipe.operator.flat_chunk_keys() =>
                        {
                            Some(Listing::array_v3_flat(array))
                        }
                        ZarrFormat::V3 if rest.is_empty() => Some(Listing::array_v3(array)),
                        ZarrFormat::V3 if array.recipe.operator.flat_chunk_keys() => None,
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
    pub fn read(&self, key: &str, offset: u64, size: usize) -> Result<Slice, KeyError> {
        let bytes = match self.resolve(key) {
            Some(Resolved::Document(_)) => self
                .document(key)
                .ok_or_else(|| KeyError::NotFound(key.to_owned()))?,
            Some(Resolved::Chunk(array, index)) => {
                let bytes = self.chunk(array, &index)?.0;
                if offset == 0 {
                    self.read_ahead(array, &index);
                }
                bytes
            }
            _ => return Err(KeyError::NotFound(key.to_owned())),
        };
        Ok(Slice::new(bytes, offset, size))
    }

    /// The bytes of metadata document `key`, rendered or from the cache of rendered documents.
    fn document(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        self.documents.bytes(&self.tree, key.trim_matches('/'))
    }

    /// The bytes of chunk `index` of `array`, from the cache or computed, and where they came
    /// from; served only while the chunk's sources are unchanged.
    fn chunk(&self, array: &ArrayNode, index: &[u64]) -> Result<(Arc<Vec<u8>>, Served), KeyError> {
        self.chunks()
            .chunk(array, index)
            .map_err(|source| KeyError::Chunk {
                array: array.path.clone(),
                key: array_chunk_key(self.format, array, index),
                source,
            })
    }

    /// Chunks through this key space's cache, keyed by its memoised fingerprints.
    fn chunks(&self) -> CachedChunks<'_> {
        CachedChunks {
            cache: &self.cache,
            source: &*self.source,
            keys: self,
        }
    }

    /// The size of chunk `index` of `array` as served: exact from the geometry for
    /// uncompressed arrays; otherwise the cached entry's length, or the chunk is computed (and
    /// cached) and its length returned — 0 when it cannot be computed, whose read then fails.
    fn chunk_len(&self, array: &ArrayNode, index: &[u64]) -> u64 {
        if let Some(len) = array.recipe.exact_len(&array.geometry, index) {
            return len;
        }
        let key = self.chunk_key(array, index);
        if let Some(len) = self.cache.cached_len(key) {
            return len;
        }
        self.chunks()
            .fetch_keyed(key, array, index)
            .map_or(0, |(bytes, _)| bytes.len() as u64)
    }

    /// Queues the chunks after `index` when the reader walks `array` in order.
    fn read_ahead(&self, array: &Arc<ArrayNode>, index: &[u64]) {
        let Some(readahead) = &self.readahead else {
            return;
        };
        for next in readahead.observe(array.id, &array.geometry.grid(), index) {
            if !readahead.has_room(self.cache.in_flight()) {
                break;
            }
            let key = self.chunk_key(array, &next);
            if self.cache.in_memory(key) {
                continue;
            }
            let (cache, source, array) = (self.cache.clone(), self.source.clone(), array.clone());
            readahead.submit(
                key.0,
                Box::new(move || {
                    // Inputs of a view are keyed afresh: the job outlives this key space's memo.
                    let chunks = CachedChunks {
                        cache: &cache,
                        source: &*source,
                        keys: &FreshKeys::default(),
                    };
                    let computed = chunks.fetch_keyed(key, &array, &next);
                    match computed {
                        Ok((_, served)) => served == Served::Computed,
                        Err(e) => {
                            tracing::debug!("read-ahead of {} {next:?}: {e}", array.path);
                            false
                        }
                    }
                }),
            );
        }
    }
}

impl ArrayFingerprints for KeySpace {
    fn digest(&self, array: &ArrayNode) -> u128 {
        self.fingerprint(array).digest()
    }
}

impl ChunkKeys for KeySpace {
    fn key_of(&self, array: &ArrayNode, index: &[u64]) -> ChunkKey {
        self.chunk_key(array, index)
    }
}

/// Bytes of rendered metadata documents a key space keeps (the rest are rendered when read).
const DOCUMENT_CACHE_BYTES: usize = 16 << 20;

/// Where an array lives, to tell this tree's arrays from another snapshot's with the same id.
fn address(array: &ArrayNode) -> usize {
    std::ptr::from_ref(array) as usize
}

/// The chunk key of `index` within `array` (flat v3 keys for arrays that ask for them).
pub fn array_chunk_key(format: ZarrFormat, array: &ArrayNode, index: &[u64]) -> String {
    if format == ZarrFormat::V3 && array.recipe.operator.flat_chunk_keys() {
        let parts: Vec<String> = index.iter().map(u64::to_string).collect();
        return format!("c.{}", parts.join("."));
    }
    chunk_key(format, index)
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
