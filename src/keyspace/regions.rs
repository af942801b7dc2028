//! The chunk reader under the key space and the region reader it gives operators: a chunk is
//! taken from the two-tier cache or computed once (single flight), with an
//! [`OperatorContext`] whose region reader reads other arrays through the same cache, so a view
//! reuses every cached chunk of what it reads. Only whole input chunks are cached; a region is
//! assembled from them (decoded with the input's encoding) for each view chunk.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use xxhash_rust::xxh3::Xxh3;

use crate::cache::{ChunkCache, ChunkKey, Served};
use crate::operators::{
    advance, copy_box, ArrayFingerprints, ChunkError, Encoding, OperatorContext, RecipeFingerprint,
    Region, RegionBytes, RegionReader,
};
use crate::sources::bytes::ByteSource;
use crate::tree::ArrayNode;

/// The cache keys of chunks of any array: memoised by a key space for its own arrays.
pub(crate) trait ChunkKeys: ArrayFingerprints + Sync {
    /// The cache key of chunk `index` of `array`.
    fn key_of(&self, array: &ArrayNode, index: &[u64]) -> ChunkKey;
}

/// Keys of any arrays, fingerprints memoised for this value's life (read-ahead jobs and range
/// scans, which outlive a borrow of the key space).
#[derive(Default)]
pub(crate) struct FreshKeys {
    memo: Mutex<HashMap<usize, Arc<RecipeFingerprint>>>,
}

impl FreshKeys {
    fn fingerprint(&self, array: &ArrayNode) -> Arc<RecipeFingerprint> {
        let at = std::ptr::from_ref(array) as usize;
        if let Some(known) = self.memo.lock().get(&at) {
            return known.clone();
        }
        // Computed unlocked: an input's fingerprint is asked for on the way.
        let computed = Arc::new(RecipeFingerprint::new(&array.recipe, &array.geometry, self));
        self.memo.lock().insert(at, computed.clone());
        computed
    }
}

impl ArrayFingerprints for FreshKeys {
    fn digest(&self, array: &ArrayNode) -> u128 {
        self.fingerprint(array).digest()
    }
}

impl ChunkKeys for FreshKeys {
    fn key_of(&self, array: &ArrayNode, index: &[u64]) -> ChunkKey {
        let own = self
            .fingerprint(array)
            .chunk_key(&array.recipe, &array.geometry, index);
        with_inputs(self, array, index, own)
    }
}

/// The cache key of chunk `index` of `array`: `own` (from its recipe's fingerprint) and the
/// keys of every input chunk the chunk reads, so it changes exactly when one of those does.
pub(crate) fn with_inputs(
    keys: &dyn ChunkKeys,
    array: &ArrayNode,
    index: &[u64],
    own: u128,
) -> ChunkKey {
    let retained = array.recipe.operator.retained();
    let inputs = array.recipe.operator.inputs(&array.geometry, index);
    if inputs.is_empty() {
        return ChunkKey::of(own, retained);
    }
    let mut hasher = Xxh3::new();
    hasher.update(&own.to_le_bytes());
    for (input, region) in &inputs {
        for chunk in chunks_of(input, region) {
            hasher.update(&keys.key_of(input, &chunk).0.to_le_bytes());
        }
    }
    ChunkKey::of(hasher.digest128(), retained)
}

/// An input chunk's values, or why they could not be had.
type ChunkValues = Result<Arc<Vec<u8>>, ChunkError>;

/// Chunks through the cache, and regions of arrays made of them.
pub(crate) struct CachedChunks<'a> {
    pub(crate) cache: &'a ChunkCache,
    pub(crate) source: &'a dyn ByteSource,
    pub(crate) keys: &'a dyn ChunkKeys,
}

impl CachedChunks<'_> {
    fn context(&self) -> OperatorContext<'_> {
        OperatorContext {
            source: self.source,
            regions: self,
        }
    }

    /// Chunk `index` of `array` as served, from the cache or computed once; sources unchecked.
    pub(crate) fn fetch(
        &self,
        array: &ArrayNode,
        index: &[u64],
    ) -> Result<(Arc<Vec<u8>>, Served), ChunkError> {
        self.fetch_keyed(self.keys.key_of(array, index), array, index)
    }

    /// [`CachedChunks::fetch`] with the chunk's cache key already known.
    pub(crate) fn fetch_keyed(
        &self,
        key: ChunkKey,
        array: &ArrayNode,
        index: &[u64],
    ) -> Result<(Arc<Vec<u8>>, Served), ChunkError> {
        let on_disk = array.recipe.operator.worth_keeping_on_disk();
        self.cache.get_or_compute_kept(key, on_disk, || {
            array
                .recipe
                .compute(&array.geometry, index, &self.context())
        })
    }

    /// Checks the sources chunk `index` of `array` reads.
    pub(crate) fn check(&self, array: &ArrayNode, index: &[u64]) -> Result<(), ChunkError> {
        array
            .recipe
            .check_sources(&array.geometry, index, &self.context())
    }

    /// The values of chunk `index` of `array` (decoded with its encoding), served only while
    /// its sources are unchanged. Decoded copies of compressed chunks are kept in the cache's
    /// decoded tier, so a chunk many regions read is decoded once while it stays hot.
    fn decoded(&self, array: &ArrayNode, index: &[u64]) -> Result<Arc<Vec<u8>>, ChunkError> {
        let plain = matches!(array.recipe.encoding, Encoding::Bytes);
        if plain && self.cache.has_memory_tier() {
            // The memory tier keeps these values already.
            let (values, served) = self.chunk(array, index)?;
            if served == Served::Computed {
                self.cache.count_decoded();
            }
            return Ok(values);
        }
        let key = self.keys.key_of(array, index);
        let len = array.recipe.values_len(&array.geometry, index);
        let mut checked = false;
        let values = self.cache.decoded_or(key, || -> Result<_, ChunkError> {
            checked = true;
            let (bytes, served) = self.chunk(array, index)?;
            if plain {
                if served == Served::Computed {
                    self.cache.count_decoded();
                }
                // No memory tier (`warm`): the decoded tier keeps them.
                return Ok(bytes);
            }
            self.cache.count_decoded();
            let values = array.recipe.encoding.decode(&bytes, len)?;
            Ok(Arc::new(values.into_owned()))
        })?;
        if !checked {
            self.check(array, index)?;
        }
        Ok(values)
    }

    /// The values of those of `indices` that no memory tier holds, computed on a thread each
    /// when there are several (a region over chunks of separate files, or separate time steps
    /// of a store, waits for the slowest rather than for their sum); `None` for the others.
    /// Dedicated threads, not a shared pool: a computation may wait on another's single flight.
    fn compute_missing(&self, array: &ArrayNode, indices: &[Vec<u64>]) -> Vec<Option<ChunkValues>> {
        if indices.len() < 2 {
            return Vec::new();
        }
        let missing: Vec<usize> = (0..indices.len())
            .filter(|&n| {
                let key = self.keys.key_of(array, &indices[n]);
                !self.cache.in_memory(key) && !self.cache.decoded_in_memory(key)
            })
            .collect();
        let mut out: Vec<Option<ChunkValues>> = (0..indices.len()).map(|_| None).collect();
        if missing.len() < 2 {
            return out;
        }
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        for batch in missing.chunks(threads) {
            let computed: Vec<(usize, ChunkValues)> = std::thread::scope(|scope| {
                let handles: Vec<_> = batch
                    .iter()
                    .map(|&n| scope.spawn(move || (n, self.decoded(array, &indices[n]))))
                    .collect();
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            });
            for (n, values) in computed {
                out[n] = Some(values);
            }
        }
        out
    }

    /// Chunk `index` of `array`, served only while its sources are unchanged.
    pub(crate) fn chunk(
        &self,
        array: &ArrayNode,
        index: &[u64],
    ) -> Result<(Arc<Vec<u8>>, Served), ChunkError> {
        let fetched = self.fetch(array, index)?;
        // Cached bytes are served only while their sources are unchanged. A view chunk computed
        // just now read its inputs through `chunk`, which checked them in this very call.
        let just_read_inputs = fetched.1 == Served::Computed
            && !array
                .recipe
                .operator
                .inputs(&array.geometry, index)
                .is_empty();
        if !just_read_inputs {
            self.check(array, index)?;
        }
        Ok(fetched)
    }
}

/// The chunk indices of `array` that `region` overlaps, in C order.
fn chunks_of(array: &ArrayNode, region: &Region) -> Vec<Vec<u64>> {
    if region.count.contains(&0) {
        return Vec::new();
    }
    let chunks = &array.geometry.chunks;
    let per_chunk =
        |at: &[u64]| -> Vec<u64> { at.iter().zip(chunks).map(|(&i, &c)| i / c.max(1)).collect() };
    let first = per_chunk(&region.start);
    let last = per_chunk(&region.end().iter().map(|e| e - 1).collect::<Vec<_>>());
    let mut index = first.clone();
    let mut out = vec![index.clone()];
    while advance(&mut index, &first, &last) {
        out.push(index.clone());
    }
    out
}

impl RegionReader for CachedChunks<'_> {
    fn read_region(&self, array: &ArrayNode, region: &Region) -> Result<RegionBytes, ChunkError> {
        let geometry = &array.geometry;
        let elem = geometry.dtype.size().ok_or_else(|| {
            ChunkError::new(
                crate::operators::ChunkErrorKind::Unsupported,
                None,
                format!(
                    "regions of {} (variable-length values) cannot be read",
                    array.path
                ),
            )
        })?;
        let total = region
            .count
            .iter()
            .try_fold(elem as u64, |n, &c| n.checked_mul(c))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                ChunkError::new(
                    crate::operators::ChunkErrorKind::Unsupported,
                    None,
                    format!("region {region:?} of {} is too large", array.path),
                )
            })?;
        let whole = geometry
            .chunks
            .iter()
            .product::<u64>()
            .saturating_mul(elem as u64);
        let values_of = |index: &[u64], early: Option<ChunkValues>| {
            let in_input = |e: ChunkError| e.in_input(&array.path, index);
            let values = early
                .unwrap_or_else(|| self.decoded(array, index))
                .map_err(in_input)?;
            if values.len() as u64 != whole {
                return Err(in_input(ChunkError::new(
                    crate::operators::ChunkErrorKind::Encoding,
                    None,
                    format!("chunk holds {} bytes, not {whole}", values.len()),
                )));
            }
            Ok(values)
        };
        let indices = chunks_of(array, region);
        if let [index] = indices.as_slice() {
            let held = geometry.chunk_region(index);
            if held.start == region.start && geometry.chunks == region.count {
                return Ok(RegionBytes::Shared(values_of(index, None)?));
            }
        }
        let mut out = vec![0u8; total];
        let mut early = self.compute_missing(array, &indices);
        for (n, index) in indices.iter().enumerate() {
            let values = values_of(index, early.get_mut(n).and_then(Option::take))?;
            let held = geometry.chunk_region(index);
            let Some(overlap) = region.intersect(&held) else {
                continue;
            };
            let src_start: Vec<u64> = overlap
                .start
                .iter()
                .zip(&held.start)
                .map(|(a, b)| a - b)
                .collect();
            let dst_start: Vec<u64> = overlap
                .start
                .iter()
                .zip(&region.start)
                .map(|(a, b)| a - b)
                .collect();
            copy_box(
                &values,
                &geometry.chunks,
                &src_start,
                &mut out,
                &region.count,
                &dst_start,
                &overlap.count,
                elem,
            );
        }
        Ok(RegionBytes::Owned(out))
    }

    fn offer(&self, array: &ArrayNode, index: &[u64], values: Vec<u8>) {
        let key = self.keys.key_of(array, index);
        if !self.cache.takes_offer(key) {
            return;
        }
        match array.recipe.encoding.encode(values) {
            Ok(bytes) => {
                let on_disk = array.recipe.operator.worth_keeping_on_disk();
                self.cache.offer(key, bytes, on_disk);
            }
            Err(e) => tracing::debug!("{} {index:?}: not kept ({e})", array.path),
        }
    }

    fn check_region(&self, array: &ArrayNode, region: &Region) -> Result<(), ChunkError> {
        // Only what the region reads: a view reading one day of a chunk of many files depends
        // on that day's file alone.
        for index in chunks_of(array, region) {
            array
                .recipe
                .operator
                .check_part(&array.geometry, &index, region, &self.context())
                .map_err(|e| e.in_input(&array.path, &index))?;
        }
        Ok(())
    }
}
