//! The operator interface. Each array's recipe is an [`Operator`]: what its chunks' cache keys
//! depend on, how to check its inputs are unchanged, how to compute a chunk as typed values and
//! how long a chunk is. An operator reads file bytes and regions of other arrays through an
//! [`OperatorContext`]; the key space provides both, the region reader going through the chunk
//! cache with single flight so a view reuses every cached chunk of what it reads.
//!
//! **Cache keys of views.** A chunk's key must be known before it is computed, so a view names
//! the regions of other arrays each chunk reads ([`Operator::inputs`]) and the key space adds
//! the cache keys of the input chunks those regions overlap to the chunk's key: a changed
//! source changes the keys of exactly the view chunks that read it, down any chain of views.
//! [`FingerprintWriter::input`] adds an input's whole fingerprint to comparisons of
//! fingerprints only. The region reader returns values only; it checks the input chunks'
//! sources like any read.
//!
//! Adding an operator is one module implementing [`Operator`] plus the variant of the config
//! that builds it; the key space, fingerprints and front ends call only this trait.

use std::fmt::Debug;
use std::sync::Arc;

use serde::Serialize;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use super::{ChunkError, Geometry, Region, RegionBytes};
use crate::sources::bytes::ByteSource;
use crate::tree::ArrayNode;

/// How to compute the chunks of one array.
pub trait Operator: Send + Sync + Debug {
    /// How `atlasfs tree` describes where the array comes from, e.g. `from 3 file(s)`.
    fn describe(&self, geometry: &Geometry) -> String;

    /// Writes what the keys of all chunks depend on: the operator's name and version first,
    /// then its parameters; [`FingerprintWriter::piece`] for inputs only some chunks read, and
    /// [`FingerprintWriter::input`] for each array read through the region reader.
    fn fingerprint(&self, out: &mut FingerprintWriter<'_>);

    /// Writes what the key of chunk `index` (covering `region`) depends on beyond the
    /// fingerprint and the chunk's position: typically the `pieces` the chunk reads.
    fn chunk_identity(&self, pieces: &[u128], region: &Region, index: &[u64], hasher: &mut Xxh3);

    /// Whether a chunk's key depends on its position in the array. An operator whose chunk
    /// contents follow from [`Operator::chunk_identity`] alone (a sample, named by its
    /// selection) says `false`, so the same chunk at another position — or in another array
    /// with the same fingerprint — has the same key and is computed once.
    fn positional(&self) -> bool {
        true
    }

    /// Whether the array's Zarr v3 chunk keys are flat (`c.0.1`, one directory) rather than
    /// nested (`c/0/1`): one path lookup per chunk instead of one per dimension, for arrays
    /// read a whole chunk at a time by file (the samples of a sample set).
    fn flat_chunk_keys(&self) -> bool {
        false
    }

    /// Whether computed chunks go to the disk tier. A chunk read from a local file and merely
    /// decoded (a local Zarr store's) is as quick to compute again as to read back, so it is
    /// kept in memory only.
    fn worth_keeping_on_disk(&self) -> bool {
        true
    }

    /// Whether computed chunks are kept once cached instead of cycled by the LRU (samples of a
    /// sample set: an epoch over a set larger than the cache would otherwise hit nothing).
    fn retained(&self) -> bool {
        false
    }

    /// The regions of other arrays chunk `index` reads through the region reader; the cache
    /// keys of the input chunks they overlap enter the chunk's key. Operators that read only
    /// files read no array.
    fn inputs(&self, geometry: &Geometry, index: &[u64]) -> Vec<(Arc<ArrayNode>, Region)> {
        let _ = (geometry, index);
        Vec::new()
    }

    /// Checks that every input chunk `index` reads is unchanged since the recipe was built
    /// (a cheap `stat` per source), so cached bytes of a changed source are never served.
    ///
    /// # Errors
    /// [`ChunkError`] naming the changed or vanished source.
    fn check(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<(), ChunkError>;

    /// Checks the inputs of the part `region` of chunk `index` only: what a view that reads
    /// just that part of the chunk depends on. By default the whole chunk's.
    ///
    /// # Errors
    /// As [`Operator::check`].
    fn check_part(
        &self,
        geometry: &Geometry,
        index: &[u64],
        region: &Region,
        context: &OperatorContext<'_>,
    ) -> Result<(), ChunkError> {
        let _ = region;
        self.check(geometry, index, context)
    }

    /// Computes chunk `index` as typed values: `geometry.chunks` elements of `geometry.dtype`,
    /// little-endian, C order (vlen-utf8 for strings), before the array's encoding.
    ///
    /// # Errors
    /// [`ChunkError`] naming the source file or input chunk that failed.
    fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<Vec<u8>, ChunkError>;

    /// The exact length of chunk `index`'s values without computing it, or `None` when it is
    /// known only once computed (variable-length values).
    fn chunk_len(&self, geometry: &Geometry, index: &[u64]) -> Option<u64> {
        let _ = index;
        let elements = geometry
            .chunks
            .iter()
            .try_fold(1u64, |n, &c| n.checked_mul(c))?;
        elements.checked_mul(geometry.dtype.size()? as u64)
    }
}

/// What an operator reads with: the byte source of files and objects, and other arrays.
pub struct OperatorContext<'a> {
    /// Files and objects, checked against their indexed versions.
    pub source: &'a dyn ByteSource,
    /// Regions of other arrays, through the chunk cache.
    pub regions: &'a dyn RegionReader,
}

/// Reads regions of other arrays of the same tree through the chunk cache with single flight.
pub trait RegionReader: Sync {
    /// The values of `region` of `array`: little-endian, C order, of the array's type, the
    /// region's shape; elements are computed (or taken from the cache) chunk by chunk. A region
    /// that is exactly one whole chunk shares that chunk's cached values instead of copying them.
    ///
    /// # Errors
    /// The input chunk's [`ChunkError`], naming that chunk ([`ChunkError::in_input`]).
    fn read_region(&self, array: &ArrayNode, region: &Region) -> Result<RegionBytes, ChunkError>;

    /// Checks the sources of every chunk of `array` that `region` overlaps.
    ///
    /// # Errors
    /// The input chunk's [`ChunkError`], naming that chunk.
    fn check_region(&self, array: &ArrayNode, region: &Region) -> Result<(), ChunkError>;

    /// Keeps `values` (the typed output of `array`'s operator, before its encoding) as chunk
    /// `index` of `array`, unless the memory tier holds that chunk already: an operator that
    /// computes another array's chunk on the way (a pyramid level's counts next to its values)
    /// spares that array its own computation. Values that fail to encode are dropped: the
    /// array's operator computes them when asked.
    fn offer(&self, _array: &ArrayNode, _index: &[u64], _values: Vec<u8>) {}
}

/// The fingerprints of other arrays, for operators that read them.
pub trait ArrayFingerprints {
    /// The digest of `array`'s fingerprint: equal digests mean equal chunks.
    fn digest(&self, array: &ArrayNode) -> u128;
}

/// Collects what an operator's chunk keys depend on.
pub struct FingerprintWriter<'a> {
    pub(crate) base: Xxh3,
    pub(crate) pieces: Vec<u128>,
    pub(crate) compare: u128,
    inputs: &'a dyn ArrayFingerprints,
}

/// Hashes the canonical serialisation of `value`.
pub(crate) fn hash<T: Serialize + ?Sized>(value: &T) -> u128 {
    // Serialising plain data into memory cannot fail; a failure would only weaken the key to
    // "unknown", which is hashed as such rather than panicking.
    match postcard::to_stdvec(value) {
        Ok(bytes) => xxh3_128(&bytes),
        Err(_) => u128::MAX,
    }
}

impl<'a> FingerprintWriter<'a> {
    pub(crate) fn new(inputs: &'a dyn ArrayFingerprints) -> Self {
        FingerprintWriter {
            base: Xxh3::new(),
            pieces: Vec::new(),
            compare: 0,
            inputs,
        }
    }

    /// Adds `value` (serialised whole) to the keys of every chunk.
    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) {
        self.base.update(&hash(value).to_le_bytes());
    }

    /// Hashes `value` as the next piece, which [`Operator::chunk_identity`] adds to the keys
    /// of the chunks that read it.
    pub fn piece<T: Serialize + ?Sized>(&mut self, value: &T) {
        self.pieces.push(hash(value));
    }

    /// Adds array `input`'s whole fingerprint to comparisons of fingerprints; its chunks'
    /// keys enter the keys of the chunks that read them through [`Operator::inputs`].
    pub fn input(&mut self, input: &ArrayNode) {
        let digest = self.inputs.digest(input);
        self.compare ^= xxh3_128(&[digest.to_le_bytes(), self.compare.to_le_bytes()].concat());
    }

    /// Adds something to comparisons of whole fingerprints that enters chunk keys through
    /// [`Operator::chunk_identity`] only (per-chunk object versions).
    pub fn compare(&mut self, digest: u128) {
        self.compare ^= digest;
    }
}
