//! The sample operator: chunk `s` of a sample-set array is sample `s` — the source array's
//! values at the indices one descriptor line picks, gathered from the boxes of contiguous
//! indices it reads through the region reader (so every source chunk comes from the chunk
//! cache), padded or cut to the set's shape. Its key is the selection, not the position: the
//! same line elsewhere in the file, or in another set over the same source, is the same chunk.
//! A coordinate's array packs many samples per chunk with the same code.

use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use super::labels::Pick;
use crate::operators::{
    advance, strides, ChunkError, FingerprintWriter, Geometry, Operator, OperatorContext, Region,
    RegionBytes,
};
use crate::tree::ArrayNode;
use crate::views::decoded::{float_bytes, Decoding};

/// Computes the samples of one array of a set.
#[derive(Debug)]
pub(crate) struct Sample {
    /// What the samples are cut from.
    pub(crate) input: Arc<ArrayNode>,
    /// Per sample, the pick along each of `input`'s dimensions.
    pub(crate) picks: Arc<Vec<Vec<Pick>>>,
    /// The sample's length along each kept dimension of `input` (after pad or crop).
    pub(crate) lengths: Vec<u64>,
    /// The order of the sample's axes: output axis `i` is kept dimension `order[i]` (the
    /// header's `dims`); identity when not asked for.
    pub(crate) order: Vec<usize>,
    /// How to decode values (data variables), or `None` to copy them (coordinates).
    pub(crate) decoding: Option<Decoding>,
    /// The value of padded elements, as served (one element).
    pub(crate) pad: Vec<u8>,
    /// Samples per chunk.
    pub(crate) per_chunk: u64,
}

/// Where sample elements come from along one dimension: per sample position, the box (run of
/// contiguous indices) and the offset in it; `None` for a padded position.
struct Along {
    runs: Vec<(u64, u64)>,
    positions: Vec<Option<(usize, u64)>>,
}

impl Along {
    fn new(indices: &[u64], len: usize) -> Along {
        // A cut sample reads only what it keeps.
        let indices = &indices[..len.min(indices.len())];
        let mut sorted = indices.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for i in sorted {
            match runs.last_mut() {
                Some((start, count)) if *start + *count == i => *count += 1,
                _ => runs.push((i, 1)),
            }
        }
        let positions = (0..len)
            .map(|p| {
                indices.get(p).map(|&i| {
                    let run = runs.partition_point(|(start, _)| *start <= i) - 1;
                    (run, i - runs[run].0)
                })
            })
            .collect();
        Along { runs, positions }
    }
}

impl Sample {
    fn samples_of(&self, index: &[u64]) -> std::ops::Range<usize> {
        let first = index.first().copied().unwrap_or(0) * self.per_chunk;
        let n = self.picks.len() as u64;
        (first.min(n) as usize)..((first + self.per_chunk).min(n) as usize)
    }

    /// Per dimension of `input`: the runs and sample positions of sample `s`.
    fn along(&self, s: usize) -> Vec<Along> {
        let mut kept = self.lengths.iter();
        self.picks[s]
            .iter()
            .map(|pick| {
                let indices = pick.indices();
                let len = match pick {
                    Pick::One(_) => 1,
                    _ => kept.next().copied().unwrap_or(0) as usize,
                };
                Along::new(&indices, len)
            })
            .collect()
    }

    /// The boxes of `input` sample `s` reads.
    fn boxes(along: &[Along]) -> Vec<Region> {
        let mut out = vec![Region {
            start: Vec::new(),
            count: Vec::new(),
        }];
        for dim in along {
            out = out
                .into_iter()
                .flat_map(|b| {
                    dim.runs.iter().map(move |&(start, count)| {
                        let mut next = b.clone();
                        next.start.push(start);
                        next.count.push(count);
                        next
                    })
                })
                .collect();
        }
        out
    }

    /// Sample `s`'s values as served.
    fn gather(&self, s: usize, context: &OperatorContext<'_>) -> Result<Vec<u8>, ChunkError> {
        let along = self.along(s);
        let boxes = Sample::boxes(&along);
        let elem = self.input.geometry.dtype.size().unwrap_or(1);
        let read: Vec<RegionBytes> = boxes
            .iter()
            .map(|b| context.regions.read_region(&self.input, b))
            .collect::<Result<_, _>>()?;
        let shape: Vec<usize> = along.iter().map(|a| a.positions.len()).collect();
        let total: usize = shape.iter().product();
        let mut raw = vec![0u8; total * elem];
        let mut padded = vec![false; total];
        let first = vec![0u64; shape.len()];
        let last: Vec<u64> = shape.iter().map(|&n| n.saturating_sub(1) as u64).collect();
        let mut position = first.clone();
        for (n, is_pad) in padded.iter_mut().enumerate() {
            // Which box, and where in it, element `position` comes from.
            let mut which = 0usize;
            let mut offset = 0u64;
            let mut pad = false;
            for (d, dim) in along.iter().enumerate() {
                match dim.positions[position[d] as usize] {
                    Some((run, at)) => {
                        which = which * dim.runs.len() + run;
                        offset = offset * dim.runs[run].1 + at;
                    }
                    None => pad = true,
                }
            }
            if pad {
                *is_pad = true;
            } else {
                let from = offset as usize * elem;
                let bytes = read[which].get(from..from + elem).ok_or_else(|| {
                    ChunkError::new(
                        crate::operators::ChunkErrorKind::Encoding,
                        None,
                        format!("{} gave a short region", self.input.path),
                    )
                })?;
                raw[n * elem..(n + 1) * elem].copy_from_slice(bytes);
            }
            advance(&mut position, &first, &last);
        }
        let mut out = match &self.decoding {
            Some(decoding) => float_bytes(&decoding.decode(&raw), decoding.float),
            None => raw,
        };
        let size = self.pad.len();
        for (n, _) in padded.iter().enumerate().filter(|(_, p)| **p) {
            out[n * size..(n + 1) * size].copy_from_slice(&self.pad);
        }
        Ok(transpose(out, &self.lengths, &self.order, size))
    }
}

/// `values` (C order over `lengths`, elements of `size` bytes) with its axes in `order`.
fn transpose(values: Vec<u8>, lengths: &[u64], order: &[usize], size: usize) -> Vec<u8> {
    if order.iter().enumerate().all(|(i, &o)| i == o) {
        return values;
    }
    let strides = strides(lengths);
    let out_lengths: Vec<u64> = order.iter().map(|&o| lengths[o]).collect();
    let first = vec![0u64; out_lengths.len()];
    let last: Vec<u64> = out_lengths.iter().map(|n| n.saturating_sub(1)).collect();
    let mut out = Vec::with_capacity(values.len());
    let mut position = first.clone();
    for _ in 0..values.len() / size.max(1) {
        let from: u64 = position
            .iter()
            .zip(order)
            .map(|(&p, &o)| p * strides[o])
            .sum();
        let from = from as usize * size;
        out.extend_from_slice(&values[from..from + size]);
        advance(&mut position, &first, &last);
    }
    out
}

impl Operator for Sample {
    fn describe(&self, _: &Geometry) -> String {
        format!("{} samples of {}", self.picks.len(), self.input.path)
    }

    fn fingerprint(&self, out: &mut FingerprintWriter<'_>) {
        out.write(&("sample", 1u32));
        out.write(&self.decoding.as_ref().map(Decoding::identity));
        out.write(&(&self.lengths, &self.pad, self.per_chunk, &self.order));
        out.input(&self.input);
    }

    fn chunk_identity(&self, _: &[u128], _: &Region, index: &[u64], hasher: &mut Xxh3) {
        let samples = self.samples_of(index);
        hasher.update(&(samples.len() as u64).to_le_bytes());
        hasher.update(
            &crate::operators::fingerprint_hash(&self.picks[samples].to_vec()).to_le_bytes(),
        );
    }

    fn positional(&self) -> bool {
        false
    }

    fn flat_chunk_keys(&self) -> bool {
        true
    }

    fn retained(&self) -> bool {
        true
    }

    fn inputs(&self, _: &Geometry, index: &[u64]) -> Vec<(Arc<ArrayNode>, Region)> {
        let mut boxes: Vec<Region> = self
            .samples_of(index)
            .flat_map(|s| Sample::boxes(&self.along(s)))
            .collect();
        if boxes.len() > 1 && self.per_chunk > 1 {
            // Many samples of a coordinate: their bounding box.
            let first = boxes[0].clone();
            let bounds = boxes.iter().fold(first, |acc, b| {
                let start: Vec<u64> = acc
                    .start
                    .iter()
                    .zip(&b.start)
                    .map(|(a, b)| *a.min(b))
                    .collect();
                let end: Vec<u64> = acc
                    .end()
                    .iter()
                    .zip(b.end())
                    .map(|(a, b)| (*a).max(b))
                    .collect();
                let count = end.iter().zip(&start).map(|(e, s)| e - s).collect();
                Region { start, count }
            });
            boxes = vec![bounds];
        }
        boxes.into_iter().map(|b| (self.input.clone(), b)).collect()
    }

    fn check(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<(), ChunkError> {
        for (input, region) in self.inputs(geometry, index) {
            context.regions.check_region(&input, &region)?;
        }
        Ok(())
    }

    fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<Vec<u8>, ChunkError> {
        let per_sample: u64 = self.lengths.iter().product::<u64>() * self.pad.len() as u64;
        let mut out = Vec::with_capacity((per_sample * self.per_chunk) as usize);
        let samples = self.samples_of(index);
        let missing = self.per_chunk as usize - samples.len();
        for s in samples {
            out.extend(self.gather(s, context)?);
        }
        for _ in 0..missing {
            for _ in 0..per_sample as usize / self.pad.len().max(1) {
                out.extend_from_slice(&geometry.fill);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::transpose;

    #[test]
    fn samples_take_the_headers_axis_order() {
        // 2 x 3 (time, lat) as (lat, time).
        let values: Vec<u8> = (0..6).collect();
        assert_eq!(
            transpose(values.clone(), &[2, 3], &[1, 0], 1),
            [0, 3, 1, 4, 2, 5]
        );
        assert_eq!(transpose(values.clone(), &[2, 3], &[0, 1], 1), values);
        // 2 x 1 x 2 of 2-byte elements, axes (2, 0, 1).
        let wide: Vec<u8> = (0..8).collect();
        assert_eq!(
            transpose(wide, &[2, 1, 2], &[2, 0, 1], 2),
            [0, 1, 4, 5, 2, 3, 6, 7]
        );
    }
}
