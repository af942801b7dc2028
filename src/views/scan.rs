//! The data range of a pack view's source (`range = "data"`): one scan of every chunk of the
//! source through the chunk cache (so the view's later reads find the source chunks cached),
//! persisted under the cache directory keyed by the source's fingerprint and decoding, so an
//! unchanged source is never scanned twice and a changed one always is. Never a range per
//! region: every chunk of the view is packed with the one range.
//!
//! [`RangeScans`] is also what anything built into the tree reads while it is built: whole
//! coordinate arrays and descriptor files of sample sets.

use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use super::decoded::Decoding;
use super::regrid::weights_store::WeightsStore;
use crate::cache::ChunkCache;
use crate::keyspace::{CachedChunks, FreshKeys};
use crate::operators::kernels::pack::ValueRange;
use crate::operators::{advance, ArrayFingerprints, ChunkError, RegionBytes, RegionReader};
use crate::sources::bytes::{ByteSource, LocalFiles};
use crate::tree::ArrayNode;

/// A scan that failed: the source chunk that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("scanning the range of {array}: {source}")]
pub struct ScanError {
    /// The array scanned.
    pub array: String,
    /// Why.
    pub source: ChunkError,
}

/// Scans data ranges through a chunk cache, remembering them in a directory.
pub struct RangeScans {
    cache: Arc<ChunkCache>,
    source: Arc<dyn ByteSource>,
    dir: Option<PathBuf>,
    /// Where regrid views persist their weights (under `dir`, bounded), if anywhere.
    weights: Option<Arc<WeightsStore>>,
    skip: bool,
    /// Reads descriptor files on object stores (local files are read directly).
    texts: Option<Arc<crate::sources::router::Sources>>,
}

impl RangeScans {
    /// Scans reading through `cache` and `source`, remembered under `dir` (when given).
    pub fn new(cache: Arc<ChunkCache>, source: Arc<dyn ByteSource>, dir: Option<PathBuf>) -> Self {
        RangeScans {
            cache,
            source,
            dir,
            weights: None,
            skip: false,
            texts: None,
        }
    }

    /// Lets regrid views persist their weights under the cache directory, bounded by a share
    /// of the disk cache's `max_size` (without this they are kept in memory only).
    pub fn with_weights_bound(mut self, max_size: u64) -> Self {
        self.weights = self
            .dir
            .as_ref()
            .map(|d| Arc::new(WeightsStore::new(d, max_size)));
        self
    }

    /// Reads coordinates and object-store texts with `sources` (range scans stay as they are).
    pub fn with_sources(mut self, sources: Arc<crate::sources::router::Sources>) -> Self {
        self.source = sources.clone();
        self.texts = Some(sources);
        self
    }

    /// The whole text of a descriptor file: a local path or an object-store URL.
    pub(crate) fn read_text(
        &self,
        location: &str,
        storage: &crate::config::StorageSection,
    ) -> Result<String, String> {
        match &self.texts {
            Some(sources) => sources.read_text(location, storage),
            None if crate::config::is_url(location) => {
                Err("object-store descriptor files are read only by a service".to_owned())
            }
            None => std::fs::read_to_string(location).map_err(|e| e.to_string()),
        }
    }

    /// Every value of `array` (little-endian, C order, of its type): coordinates, read
    /// through a memory cache of their own so that building the tree computes nothing in
    /// the served cache (its counters say what reading did).
    pub(crate) fn read_whole(&self, array: &ArrayNode) -> Result<Vec<u8>, ScanError> {
        let keys = FreshKeys::default();
        let cache = ChunkCache::new(64 << 20, None);
        let chunks = CachedChunks {
            cache: &cache,
            source: &*self.source,
            keys: &keys,
        };
        let region = crate::operators::Region {
            start: vec![0; array.geometry.shape.len()],
            count: array.geometry.shape.clone(),
        };
        chunks
            .read_region(array, &region)
            .map(RegionBytes::into_vec)
            .map_err(|source| ScanError {
                array: array.path.clone(),
                source,
            })
    }

    /// No scans: every data range is the placeholder [0, 1], for trees that validate a config
    /// and are never served (`atlasfs check`).
    pub fn skipped() -> Self {
        RangeScans {
            skip: true,
            ..RangeScans::in_memory()
        }
    }

    /// Scans reading local files through a 256 MiB memory cache, remembered nowhere.
    pub fn in_memory() -> Self {
        RangeScans::new(
            Arc::new(ChunkCache::new(256 << 20, None)),
            Arc::new(LocalFiles::default()),
            None,
        )
    }

    /// Where regrid views persist their weights, if anywhere.
    pub(crate) fn weights(&self) -> Option<Arc<WeightsStore>> {
        self.weights.clone()
    }

    /// Min and max of `array`'s decoded values (`None` when every value is missing).
    pub(crate) fn data_range(
        &self,
        array: &ArrayNode,
        decoding: &Decoding,
    ) -> Result<Option<(f64, f64)>, ScanError> {
        if self.skip {
            return Ok(Some((0.0, 1.0)));
        }
        let keys = FreshKeys::default();
        let digest = crate::operators::fingerprint_hash(&(
            "range-scan",
            1u32,
            keys.digest(array),
            decoding.identity(),
        ));
        let file = self
            .dir
            .as_ref()
            .map(|d| d.join("ranges").join(format!("{digest:032x}.json")));
        if let Some(known) = file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice::<ValueRange>(&b).ok())
        {
            return Ok(known.bounds());
        }
        let chunks = CachedChunks {
            cache: &self.cache,
            source: &*self.source,
            keys: &keys,
        };
        let geometry = &array.geometry;
        let grid = geometry.grid();
        let mut indices = Vec::new();
        if !grid.contains(&0) {
            let first = vec![0; grid.len()];
            let last: Vec<u64> = grid.iter().map(|g| g - 1).collect();
            let mut index = first.clone();
            indices.push(index.clone());
            while advance(&mut index, &first, &last) {
                indices.push(index.clone());
            }
        }
        tracing::info!(
            "scanning the range of {} ({} chunks) for a pack view",
            array.path,
            indices.len()
        );
        let range = indices
            .par_iter()
            .map(|index| {
                let region = geometry.chunk_region(index);
                let raw = chunks.read_region(array, &region)?;
                Ok(ValueRange::scan(&decoding.decode(&raw), None))
            })
            .try_reduce(ValueRange::default, |a, b| Ok(a.merge(b)))
            .map_err(|source| ScanError {
                array: array.path.clone(),
                source,
            })?;
        if let Some(file) = file {
            let written = file
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| {
                    let tmp = file.with_extension("tmp");
                    std::fs::write(&tmp, serde_json::to_vec(&range).unwrap_or_default())?;
                    std::fs::rename(&tmp, &file)
                });
            if let Err(e) = written {
                tracing::warn!("could not remember the range of {}: {e}", array.path);
            }
        }
        Ok(range.bounds())
    }
}
