//! What the native and string reads share: source variables placed in an array ([`Part`]s),
//! which of them a chunk overlaps, their contribution to cache keys (one piece per part, so
//! appending a file keeps the keys of chunks that do not read it) and the staleness check —
//! everything of [`Operator`] but the values, which a [`FromParts`] reader computes.

use std::fmt::Debug;

use xxhash_rust::xxh3::Xxh3;

use super::operator::{FingerprintWriter, Operator, OperatorContext};
use super::{ChunkError, Geometry, Part, Region};
use crate::sources::bytes::ByteSource;
use crate::sources::model::Storage;

/// The box a part covers in array coordinates.
pub(crate) fn part_box(part: &Part) -> Region {
    let mut count = vec![1u64; part.lead()];
    count.extend_from_slice(&part.var.shape);
    Region {
        start: part.origin.clone(),
        count,
    }
}

/// The parts overlapping a chunk region, each with its overlap in the variable's own
/// coordinates and the overlap's position in the chunk (one index per array dimension).
pub(crate) fn overlaps<'a>(
    parts: &'a [Part],
    region: &'a Region,
) -> impl Iterator<Item = (&'a Part, Region, Vec<u64>)> + 'a {
    parts
        .iter()
        .filter(|part| part.touches(region))
        .filter_map(move |part| {
            let lead = part.lead();
            let part_box = part_box(part);
            let overlap = if region.start.is_empty() {
                part_box.clone()
            } else {
                region.intersect(&part_box)?
            };
            let local = Region {
                start: overlap.start[lead..]
                    .iter()
                    .zip(&part_box.start[lead..])
                    .map(|(a, b)| a - b)
                    .collect(),
                count: overlap.count[lead..].to_vec(),
            };
            let in_chunk = overlap
                .start
                .iter()
                .zip(&region.start)
                .map(|(a, b)| a - b)
                .collect();
            Some((part, local, in_chunk))
        })
}

/// An operator computing chunks from source variables only.
pub(crate) trait FromParts: Send + Sync + Debug {
    /// The operator's name in cache keys.
    const NAME: &'static str;
    /// Bump when the values computed change for the same inputs.
    const VERSION: u32;

    /// The contributing source variables.
    fn parts(&self) -> &[Part];

    /// Computes chunk `index` (see [`Operator::compute`]).
    fn values(
        &self,
        geometry: &Geometry,
        index: &[u64],
        source: &dyn ByteSource,
    ) -> Result<Vec<u8>, ChunkError>;

    /// See [`Operator::chunk_len`]: exact from the geometry unless overridden.
    fn values_len(&self, geometry: &Geometry, index: &[u64]) -> Option<u64> {
        let _ = index;
        geometry.exact_chunk_len()
    }
}

impl<T: FromParts> Operator for T {
    fn describe(&self, _: &Geometry) -> String {
        format!("from {} file(s)", self.parts().len())
    }

    fn fingerprint(&self, out: &mut FingerprintWriter<'_>) {
        out.write(&(T::NAME, T::VERSION));
        for part in self.parts() {
            out.piece(part);
        }
    }

    fn chunk_identity(&self, pieces: &[u128], region: &Region, _: &[u64], hasher: &mut Xxh3) {
        for (part, piece) in self.parts().iter().zip(pieces) {
            if part.touches(region) {
                hasher.update(&piece.to_le_bytes());
            }
        }
    }

    fn check(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<(), ChunkError> {
        check(self.parts(), &geometry.chunk_region(index), context.source)
    }

    fn check_part(
        &self,
        geometry: &Geometry,
        index: &[u64],
        region: &Region,
        context: &OperatorContext<'_>,
    ) -> Result<(), ChunkError> {
        let part = geometry
            .chunk_region(index)
            .intersect(region)
            .unwrap_or_else(|| region.clone());
        check(self.parts(), &part, context.source)
    }

    fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<Vec<u8>, ChunkError> {
        self.values(geometry, index, context.source)
    }

    fn chunk_len(&self, geometry: &Geometry, index: &[u64]) -> Option<u64> {
        self.values_len(geometry, index)
    }
}

// Each part enters the fingerprint as one piece, serialised whole, so its path, version,
// storage layout, origin, transform and any field added later are covered without listing them.

/// Checks the version of every file `region` reads (inline data reads none).
fn check(parts: &[Part], region: &Region, source: &dyn ByteSource) -> Result<(), ChunkError> {
    for (part, _, _) in overlaps(parts, region) {
        if matches!(part.var.storage, Storage::Inline(_)) {
            continue;
        }
        source.check_version(&part.path, part.version)?;
    }
    Ok(())
}
