//! The operators of a regrid view: [`Regrid`] computes one output chunk from the source
//! window its weights read (one 2-d slice per element of the other dimensions), and
//! [`Centres`] serves a target coordinate known from the config.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;
use xxhash_rust::xxh3::Xxh3;

use super::pair::GridPair;
use crate::operators::kernels::Float;
use crate::operators::{
    ChunkError, FingerprintWriter, Geometry, Operator, OperatorContext, Region, RegionBytes,
};
use crate::sources::model::DType;
use crate::tree::ArrayNode;
use crate::views::decoded::{float_bytes, into_chunk, Decoding};

/// How the output's grid dimensions sit among its dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// y and x at the source's positions.
    Plane,
    /// One `cell` dimension, last, in place of the source's y and x (its last two).
    Cells,
}

/// One variable on the target grid.
#[derive(Debug)]
pub(crate) struct Regrid {
    pub(crate) source: Arc<ArrayNode>,
    pub(crate) decoding: Decoding,
    /// Positions of the grid's y and x dimensions in the source (and in a [`Layout::Plane`]
    /// output).
    pub(crate) axes: [usize; 2],
    pub(crate) layout: Layout,
    pub(crate) pair: Arc<GridPair>,
    pub(crate) nan_threshold: f64,
}

impl Regrid {
    /// The source region behind output `region`: the whole source grid at the same elements
    /// of the other dimensions (what the chunk's key depends on).
    fn source_slices(&self, region: &Region) -> Region {
        let [ay, ax] = self.axes;
        let shape = &self.source.geometry.shape;
        let whole = |a: usize| 0..shape.get(a).copied().unwrap_or(0) as usize;
        self.source_window(region, whole(ay), whole(ax))
    }

    /// The source region of rows `ys` and columns `xs` at the elements of the other
    /// dimensions of output `region`.
    fn source_window(&self, region: &Region, ys: Range<usize>, xs: Range<usize>) -> Region {
        let [ay, ax] = self.axes;
        let mut source = match self.layout {
            Layout::Plane => region.clone(),
            Layout::Cells => {
                let others = region.start.len().saturating_sub(1);
                let mut source = Region {
                    start: region.start[..others].to_vec(),
                    count: region.count[..others].to_vec(),
                };
                source.start.extend([0, 0]);
                source.count.extend([0, 0]);
                source
            }
        };
        for (a, span) in [(ay, ys), (ax, xs)] {
            if let (Some(start), Some(count)) = (source.start.get_mut(a), source.count.get_mut(a)) {
                (*start, *count) = (span.start as u64, span.len() as u64);
            }
        }
        source
    }

    /// The target rows and columns of output `region` (row `0..1` and columns the cells for
    /// [`Layout::Cells`]), and how many 2-d slices it holds.
    fn target_span(&self, region: &Region) -> (Range<usize>, Range<usize>, usize) {
        let range = |a: usize| {
            let start = region.start.get(a).copied().unwrap_or(0) as usize;
            start..start + region.count.get(a).copied().unwrap_or(0) as usize
        };
        let spatial: Vec<usize> = match self.layout {
            Layout::Plane => self.axes.to_vec(),
            Layout::Cells => vec![region.count.len().saturating_sub(1)],
        };
        let slices = region
            .count
            .iter()
            .enumerate()
            .filter(|(d, _)| !spatial.contains(d))
            .map(|(_, &c)| c as usize)
            .product();
        match self.layout {
            Layout::Plane => (range(self.axes[0]), range(self.axes[1]), slices),
            Layout::Cells => (0..1, range(spatial[0]), slices),
        }
    }
}

impl Operator for Regrid {
    fn describe(&self, _: &Geometry) -> String {
        format!("{:?} regrid of {}", self.pair.method, self.source.path)
    }

    fn fingerprint(&self, out: &mut FingerprintWriter<'_>) {
        out.write(&("regrid", 1u32));
        out.write(&self.decoding.identity());
        out.write(&(self.axes, self.pair.method, self.nan_threshold.to_bits()));
        out.write(&format!("{:?}", self.pair.target));
        out.input(&self.source);
        for coordinate in self.pair.coordinate_arrays() {
            out.input(&coordinate);
        }
    }

    fn chunk_identity(&self, _: &[u128], _: &Region, _: &[u64], _: &mut Xxh3) {}

    fn inputs(&self, geometry: &Geometry, index: &[u64]) -> Vec<(Arc<ArrayNode>, Region)> {
        let mut inputs = vec![(
            self.source.clone(),
            self.source_slices(&geometry.chunk_region(index)),
        )];
        for coordinate in self.pair.coordinate_arrays() {
            let whole = Region {
                start: vec![0; coordinate.geometry.shape.len()],
                count: coordinate.geometry.shape.clone(),
            };
            inputs.push((coordinate, whole));
        }
        inputs
    }

    fn check(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<(), ChunkError> {
        let region = self.source_slices(&geometry.chunk_region(index));
        context.regions.check_region(&self.source, &region)
    }

    fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<Vec<u8>, ChunkError> {
        let region = geometry.chunk_region(index);
        let values = match geometry.dtype {
            DType::F32 => le_bytes(&self.regrid::<f32>(&region, context)?, f32::to_le_bytes),
            _ => le_bytes(&self.regrid::<f64>(&region, context)?, f64::to_le_bytes),
        };
        Ok(into_chunk(
            values,
            &region,
            &geometry.chunks,
            &geometry.fill,
        ))
    }
}

/// The little-endian bytes of `values`, `N` bytes each.
fn le_bytes<T: Copy, const N: usize>(values: &[T], bytes: fn(T) -> [u8; N]) -> Vec<u8> {
    let mut out = vec![0; values.len() * N];
    for (slot, &v) in out.chunks_exact_mut(N).zip(values) {
        slot.copy_from_slice(&bytes(v));
    }
    out
}

/// Element types a regrid computes in: the view's (decoded) type.
pub(crate) trait Element: Float + bytemuck::Pod {
    /// The decoded values of `window` of the operator's source.
    fn read(
        regrid: &Regrid,
        context: &OperatorContext<'_>,
        window: &Region,
    ) -> Result<SourceValues<Self>, ChunkError>;
}

/// The decoded source values a regrid reads: converted values, or the source's own bytes
/// when they already are the values (`float32` without scaling, missing values replaced by
/// NaN in place), which saves copying a whole window of a large grid.
pub(crate) enum SourceValues<T> {
    /// Values converted from the source.
    Converted(Vec<T>),
    /// The values as native bytes, checked to be aligned for `T` and a whole number of them.
    InPlace(RegionBytes),
}

impl<T: bytemuck::Pod> SourceValues<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            SourceValues::Converted(values) => values,
            SourceValues::InPlace(bytes) => bytemuck::try_cast_slice(bytes).unwrap_or(&[]),
        }
    }
}

impl Element for f32 {
    fn read(
        regrid: &Regrid,
        context: &OperatorContext<'_>,
        window: &Region,
    ) -> Result<SourceValues<f32>, ChunkError> {
        if regrid.decoding.plain_f32_missing().is_some() {
            let raw = context.regions.read_region(&regrid.source, window)?;
            if let Ok(bytes) = regrid.decoding.decode_f32_bytes(raw) {
                let castable = cfg!(target_endian = "little")
                    && bytemuck::try_cast_slice::<u8, f32>(&bytes).is_ok();
                return Ok(if castable {
                    SourceValues::InPlace(bytes)
                } else {
                    SourceValues::Converted(
                        bytes
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                            .collect(),
                    )
                });
            }
        }
        Ok(SourceValues::Converted(
            regrid
                .decoding
                .read(context, &regrid.source, window)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
        ))
    }
}

impl Element for f64 {
    fn read(
        regrid: &Regrid,
        context: &OperatorContext<'_>,
        window: &Region,
    ) -> Result<SourceValues<f64>, ChunkError> {
        Ok(SourceValues::Converted(regrid.decoding.read(
            context,
            &regrid.source,
            window,
        )?))
    }
}

impl Regrid {
    /// The values of output `region` (C order, its shape), computed in `T`.
    fn regrid<T: Element>(
        &self,
        region: &Region,
        context: &OperatorContext<'_>,
    ) -> Result<Vec<T>, ChunkError> {
        let (ty, tx, slices) = self.target_span(region);
        let weights = self.pair.weights(context)?;
        let plan = weights.plan(ty.clone(), tx.clone());
        let (ys, xs) = plan.window.clone();
        let plane = ty.len() * tx.len();
        let mut out = vec![T::from_f64(f64::NAN); slices * plane];
        if ys.is_empty() || xs.is_empty() || plane == 0 {
            return Ok(out);
        }
        let window = self.source_window(region, ys.clone(), xs.clone());
        let read = T::read(self, context, &window)?;
        let values = read.as_slice();
        let source_plane = ys.len() * xs.len();
        let apply = |(s, target): (usize, &mut [T])| {
            if let Some(source) = values.get(s * source_plane..(s + 1) * source_plane) {
                plan.apply(ty.clone(), tx.clone(), source, self.nan_threshold, target);
            }
        };
        // Several steps in one chunk are regridded on every core, so a chunk of many steps
        // does not leave cores idle while a reader waits for it.
        if slices > 1 {
            out.par_chunks_exact_mut(plane).enumerate().for_each(apply);
        } else {
            out.chunks_exact_mut(plane).enumerate().for_each(apply);
        }
        Ok(out)
    }
}

/// A 1-d coordinate (or a scalar) whose values the config gives.
#[derive(Debug)]
pub(crate) struct Centres {
    pub(crate) values: Vec<f64>,
}

impl Operator for Centres {
    fn describe(&self, _: &Geometry) -> String {
        format!("{} target centres", self.values.len())
    }

    fn fingerprint(&self, out: &mut FingerprintWriter<'_>) {
        out.write(&("centres", 1u32));
        out.write(&self.values);
    }

    fn chunk_identity(&self, _: &[u128], _: &Region, _: &[u64], _: &mut Xxh3) {}

    fn check(&self, _: &Geometry, _: &[u64], _: &OperatorContext<'_>) -> Result<(), ChunkError> {
        Ok(())
    }

    fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        _: &OperatorContext<'_>,
    ) -> Result<Vec<u8>, ChunkError> {
        let region = geometry.chunk_region(index);
        let start = region.start.first().map_or(0, |&s| s as usize);
        let end = start + region.count.first().map_or(1, |&c| c as usize);
        let values = self.values.get(start..end).unwrap_or(&[]);
        let bytes = match geometry.dtype {
            DType::I32 => values
                .iter()
                .flat_map(|&v| (v as i32).to_le_bytes())
                .collect(),
            dtype => float_bytes(values, dtype),
        };
        Ok(into_chunk(bytes, &region, &geometry.chunks, &geometry.fill))
    }
}
