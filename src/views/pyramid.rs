//! The native pyramid view: groups `0..levels-1` in ndpyramid's order (level 0 the coarsest,
//! the last at the source's resolution), level k a block reduction of the source by
//! 2^(levels−1−k) along two dimensions with trailing partial blocks trimmed — what
//! `ds.coarsen({y: f, x: f}, boundary="trim").<method>()` gives. Each level is computed from
//! the next finer level's cached chunks (the mean carries per-element counts of valid source
//! values in hidden arrays, so it is never a mean of means; a level's values chunk offers the
//! counts it computed on the way to the cache). Chunks are square along the two
//! dimensions and one element along the others, as map viewers read them (`chunks` overrides
//! both, e.g. several time steps per chunk for readers of whole levels); coordinates along
//! the two dimensions are block means, as xarray's `coord_func` default.

use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use super::decoded::{
    float_bytes, into_chunk, nan_fill_attr, nan_fill_bytes, without_encoding_attrs, Decoding,
};
use super::{arrays_of, is_coordinate, provenance, Builder};
use crate::config::PyramidParams;
use crate::operators::kernels::coarsen::{halve_last_two, Blocks, Partials, Reduction};
use crate::operators::{
    ChunkError, ChunkErrorKind, FingerprintWriter, Geometry, Operator, OperatorContext, Recipe,
    Region, RegionBytes,
};
use crate::sources::model::{Attr, AttrValue, DType};
use crate::tree::{ArrayNode, GroupNode, Node, TreeError};

/// One level of one variable (its values, or the hidden counts of valid source values behind
/// them), from the next finer level.
#[derive(Debug)]
struct Level {
    finer: Arc<ArrayNode>,
    finer_counts: Option<Arc<ArrayNode>>,
    decoding: Decoding,
    factor: u64,
    axes: [usize; 2],
    method: Reduction,
    counts: bool,
    /// For a values level: its own level's counts array, which a coarser level reads; its
    /// chunks are computed alongside the values and offered to the cache.
    sibling_counts: Option<Arc<ArrayNode>>,
}

/// Counts of valid source values as the little-endian `u32` bytes of a counts chunk.
fn counts_bytes(counts: &[u32]) -> Vec<u8> {
    if cfg!(target_endian = "little") {
        return bytemuck::cast_slice(counts).to_vec();
    }
    counts.iter().flat_map(|n| n.to_le_bytes()).collect()
}

/// The counts a counts region holds: read in place when aligned (they always are from the
/// cache), converted otherwise.
enum Counts {
    InPlace(RegionBytes),
    Converted(Vec<u32>),
}

impl Counts {
    fn as_slice(&self) -> &[u32] {
        match self {
            Counts::InPlace(bytes) => bytemuck::try_cast_slice(bytes).unwrap_or(&[]),
            Counts::Converted(counts) => counts,
        }
    }
}

/// The counts of a counts region's little-endian `u32` bytes.
fn counts_of(bytes: RegionBytes) -> Counts {
    if cfg!(target_endian = "little") && bytemuck::try_cast_slice::<u8, u32>(&bytes).is_ok() {
        return Counts::InPlace(bytes);
    }
    Counts::Converted(
        bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

impl Level {
    /// The region of the finer level that `region` of this level covers.
    fn finer_region(&self, region: &Region) -> Region {
        let mut finer = region.clone();
        for &a in &self.axes {
            finer.start[a] *= self.factor;
            finer.count[a] *= self.factor;
        }
        finer
    }
}

fn kernel_error(e: impl std::fmt::Display) -> ChunkError {
    ChunkError::new(ChunkErrorKind::Unsupported, None, e.to_string())
}

impl Operator for Level {
    fn describe(&self, _: &Geometry) -> String {
        format!(
            "{:?} of {}x{} blocks of {}",
            self.method, self.factor, self.factor, self.finer.path
        )
    }

    fn fingerprint(&self, out: &mut FingerprintWriter<'_>) {
        out.write(&("pyramid-level", 1u32));
        out.write(&self.decoding.identity());
        out.write(&(self.factor, self.axes, self.method, self.counts));
        out.input(&self.finer);
        if let Some(counts) = &self.finer_counts {
            out.input(counts);
        }
    }

    fn chunk_identity(&self, _: &[u128], _: &Region, _: &[u64], _: &mut Xxh3) {}

    fn inputs(&self, geometry: &Geometry, index: &[u64]) -> Vec<(Arc<ArrayNode>, Region)> {
        let region = self.finer_region(&geometry.chunk_region(index));
        let mut inputs = vec![(self.finer.clone(), region.clone())];
        if let Some(counts) = &self.finer_counts {
            inputs.push((counts.clone(), region));
        }
        inputs
    }

    fn check(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<(), ChunkError> {
        let region = self.finer_region(&geometry.chunk_region(index));
        context.regions.check_region(&self.finer, &region)
    }

    fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<Vec<u8>, ChunkError> {
        let region = geometry.chunk_region(index);
        let finer_region = self.finer_region(&region);
        if self.factor == 1 && self.method != Reduction::Sum && geometry.dtype == DType::F32 {
            // The finest level of float32 data: the source's bytes with missing values as NaN.
            let raw = context.regions.read_region(&self.finer, &finer_region)?;
            if let Ok(decoded) = self.decoding.decode_f32_bytes(raw) {
                return Ok(into_chunk(
                    decoded.into_vec(),
                    &region,
                    &geometry.chunks,
                    &geometry.fill,
                ));
            }
        }
        let values = self
            .decoding
            .read_floats(context, &self.finer, &finer_region)?;
        let computed = if self.factor == 1 {
            let values = values.to_f64();
            if self.method == Reduction::Sum {
                // A block of one: its NaN-skipping sum is 0 where the value is missing.
                let sums: Vec<f64> = values
                    .iter()
                    .map(|&v| if v.is_nan() { 0.0 } else { v })
                    .collect();
                float_bytes(&sums, geometry.dtype)
            } else {
                float_bytes(&values, geometry.dtype)
            }
        } else {
            let counts = match &self.finer_counts {
                Some(array) => Some(counts_of(
                    context.regions.read_region(array, &finer_region)?,
                )),
                None => None,
            };
            let counts = counts.as_ref().map(|c| c.as_slice());
            let shape: Vec<usize> = finer_region.count.iter().map(|&c| c as usize).collect();
            let rank = shape.len();
            let last_two = self.factor == 2 && self.axes == [rank - 2, rank - 1];
            let fast = last_two
                .then(|| match values.as_f32() {
                    Some(narrow) => halve_last_two(narrow, counts, &shape, self.method),
                    None => halve_last_two(&values.to_f64(), counts, &shape, self.method),
                })
                .flatten();
            let (reduced, reduced_counts) = match fast {
                Some(fast) => fast,
                None => {
                    let blocks = Blocks {
                        axes: self.axes,
                        factor: self.factor as usize,
                    };
                    let partials =
                        Partials::from_level(&values.to_f64(), counts, &shape, self.method)
                            .and_then(|p| p.combine(blocks))
                            .map_err(kernel_error)?;
                    let counts = partials
                        .counts()
                        .iter()
                        .map(|&n| n.min(u64::from(u32::MAX)) as u32)
                        .collect();
                    (partials.finish::<f64>(), counts)
                }
            };
            if self.counts {
                counts_bytes(&reduced_counts)
            } else {
                if let Some(sibling) = &self.sibling_counts {
                    let sibling_chunk = into_chunk(
                        counts_bytes(&reduced_counts),
                        &region,
                        &sibling.geometry.chunks,
                        &sibling.geometry.fill,
                    );
                    context.regions.offer(sibling, index, sibling_chunk);
                }
                float_bytes(&reduced, geometry.dtype)
            }
        };
        Ok(into_chunk(
            computed,
            &region,
            &geometry.chunks,
            &geometry.fill,
        ))
    }
}

/// A 1-d coordinate as block means along its dimension (trailing partial block trimmed), or
/// each block's first value where the values are (`nearest`).
#[derive(Debug)]
struct CoordMean {
    input: Arc<ArrayNode>,
    decoding: Decoding,
    factor: u64,
    first: bool,
}

impl Operator for CoordMean {
    fn describe(&self, _: &Geometry) -> String {
        let what = if self.first { "first values" } else { "means" };
        format!("{what} of {} blocks of {}", self.factor, self.input.path)
    }

    fn fingerprint(&self, out: &mut FingerprintWriter<'_>) {
        out.write(&("coordinate-mean", 1u32, self.factor, self.first));
        out.write(&self.decoding.identity());
        out.input(&self.input);
    }

    fn chunk_identity(&self, _: &[u128], _: &Region, _: &[u64], _: &mut Xxh3) {}

    fn inputs(&self, _: &Geometry, _: &[u64]) -> Vec<(Arc<ArrayNode>, Region)> {
        let whole = Region {
            start: vec![0],
            count: self.input.geometry.shape.clone(),
        };
        vec![(self.input.clone(), whole)]
    }

    fn check(
        &self,
        g: &Geometry,
        i: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<(), ChunkError> {
        let (input, region) = self.inputs(g, i).remove(0);
        context.regions.check_region(&input, &region)
    }

    fn compute(
        &self,
        geometry: &Geometry,
        _: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<Vec<u8>, ChunkError> {
        let whole = Region {
            start: vec![0],
            count: self.input.geometry.shape.clone(),
        };
        let values = self.decoding.read(context, &self.input, &whole)?;
        let f = self.factor.max(1) as usize;
        let means: Vec<f64> = values
            .chunks_exact(f)
            .map(|block| match self.first {
                true => block[0],
                false => block.iter().sum::<f64>() / f as f64,
            })
            .collect();
        Ok(float_bytes(&means, geometry.dtype))
    }
}

fn level_attrs(attrs: &[Attr], float: DType) -> Vec<Attr> {
    let mut out = without_encoding_attrs(attrs);
    out.extend(nan_fill_attr(float));
    out
}

fn multiscales(datasets: serde_json::Value, params: &PyramidParams, dims: &[String]) -> Attr {
    let factors: Vec<u64> = (0..params.levels)
        .map(|k| 1u64 << (params.levels - 1 - k))
        .collect();
    let value = serde_json::json!([{
        "datasets": datasets,
        "type": "reduce",
        "metadata": {
            "method": "pyramid_coarsen",
            "version": concat!("atlasfs ", env!("CARGO_PKG_VERSION")),
            "args": [],
            "kwargs": {"dims": dims, "factors": factors, "boundary": "trim", "method": params.method},
        },
    }]);
    Attr {
        name: "multiscales".into(),
        value: AttrValue::Json(value.to_string()),
    }
}

/// The pyramid of one group.
pub(super) fn apply(
    builder: &mut Builder<'_>,
    params: &PyramidParams,
    source: &GroupNode,
    path: &str,
) -> Result<GroupNode, TreeError> {
    if params.crs.is_some() {
        return super::regrid::tiles::apply(builder, params, source, path);
    }
    let arrays = arrays_of(source);
    let data = builder.gridded(source);
    let dims: Vec<String> = match &params.dims {
        Some(dims) => dims.clone(),
        None => match data.first() {
            Some((_, a)) => a.dims[a.dims.len() - 2..].to_vec(),
            None => {
                return Err(builder.config_error(format!(
                    "{path}: no numeric data variable has two dimensions to coarsen"
                )))
            }
        },
    };
    let levels = params.levels as usize;
    let mut groups: Vec<GroupNode> = (0..levels).map(|_| GroupNode::default()).collect();
    let mut reduced_any = false;
    for (name, array) in &arrays {
        let axes: Vec<usize> = dims
            .iter()
            .filter_map(|d| array.dims.iter().position(|a| a == d))
            .collect();
        let is_data = data.iter().any(|(n, _)| n == name);
        let coordinate_axis =
            array.dims.len() == 1 && axes.len() == 1 && is_coordinate(source, name, array);
        for (k, group) in groups.iter_mut().enumerate() {
            let at = format!("{path}/{k}/{name}");
            let factor = 1u64 << (levels - 1 - k);
            let node = if is_data && axes.len() == 2 {
                continue;
            } else if coordinate_axis && factor > 1 {
                let Some(decoding) = Decoding::of(array) else {
                    continue;
                };
                let float = decoding.float;
                let len = array.geometry.shape[0] / factor;
                let geometry = Geometry {
                    shape: vec![len],
                    chunks: vec![len.max(1)],
                    dtype: float,
                    fill: nan_fill_bytes(float),
                };
                let attrs = level_attrs(&array.attrs, float)
                    .into_iter()
                    .filter(|a| a.name != "_FillValue")
                    .collect();
                let operator = CoordMean {
                    input: (*array).clone(),
                    decoding,
                    factor,
                    first: params.method == Reduction::Nearest,
                };
                builder.array(
                    at,
                    array.dims.clone(),
                    geometry,
                    attrs,
                    Recipe::new(Arc::new(operator), crate::operators::Encoding::Bytes),
                )
            } else if axes.is_empty() || coordinate_axis {
                builder.alias(array, at)
            } else {
                // Along the coarsened dimensions but not coarsened (not selected, or along one
                // of them only, e.g. bounds): left out of every level, so each level's
                // dimensions agree.
                continue;
            };
            group.children.insert((*name).clone(), Node::Array(node));
        }
        if !(is_data && axes.len() == 2) {
            continue;
        }
        reduced_any = true;
        let axes = [axes[0], axes[1]];
        let Some(decoding) = Decoding::of(array) else {
            continue;
        };
        let float = decoding.float;
        let attrs = level_attrs(&array.attrs, float);
        let geometry_at = |factor: u64, dtype: DType, fill: Vec<u8>| {
            let shape: Vec<u64> = array
                .geometry
                .shape
                .iter()
                .enumerate()
                .map(|(d, &n)| if axes.contains(&d) { n / factor } else { n })
                .collect();
            let chunks = shape
                .iter()
                .enumerate()
                .map(|(d, &n)| {
                    if axes.contains(&d) {
                        params.chunk.min(n).max(1)
                    } else {
                        1
                    }
                })
                .collect();
            let chunks = super::override_chunks(chunks, &array.dims, &shape, &params.chunks);
            Geometry {
                shape,
                chunks,
                dtype,
                fill,
            }
        };
        let plain = |a: &ArrayNode| Decoding::of(a);
        let encoding = super::encoding(
            params.codec.unwrap_or(crate::config::Codec::None),
            params.level,
            float,
        );
        // The finest level: the source decoded, in square chunks.
        let finest = builder.array(
            format!("{path}/{}/{name}", levels - 1),
            array.dims.clone(),
            geometry_at(1, float, nan_fill_bytes(float)),
            attrs.clone(),
            Recipe::new(
                Arc::new(Level {
                    finer: (*array).clone(),
                    finer_counts: None,
                    decoding: decoding.clone(),
                    factor: 1,
                    axes,
                    method: params.method,
                    counts: false,
                    sibling_counts: None,
                }),
                encoding,
            ),
        );
        groups[levels - 1]
            .children
            .insert((*name).clone(), Node::Array(finest.clone()));
        let (mut finer, mut finer_counts) = (finest, None::<Arc<ArrayNode>>);
        for k in (0..levels - 1).rev() {
            let factor = 1u64 << (levels - 1 - k);
            let Some(finer_decoding) = plain(&finer) else {
                break;
            };
            let level = |counts: bool, sibling_counts: Option<Arc<ArrayNode>>| Level {
                finer: finer.clone(),
                finer_counts: finer_counts.clone(),
                decoding: finer_decoding.clone(),
                factor: 2,
                axes,
                method: params.method,
                counts,
                sibling_counts,
            };
            let counts = (params.method == Reduction::Mean).then(|| {
                builder.array(
                    format!("{path}/{k}/.counts/{name}"),
                    array.dims.clone(),
                    geometry_at(factor, DType::U32, vec![0; 4]),
                    Vec::new(),
                    Recipe::new(
                        Arc::new(level(true, None)),
                        crate::operators::Encoding::Zstd { level: 1 },
                    ),
                )
            });
            // The coarsest level's counts are read by nothing: not computed alongside.
            let sibling = counts.clone().filter(|_| k > 0);
            let values = builder.array(
                format!("{path}/{k}/{name}"),
                array.dims.clone(),
                geometry_at(factor, float, nan_fill_bytes(float)),
                attrs.clone(),
                Recipe::new(Arc::new(level(false, sibling)), encoding),
            );
            groups[k]
                .children
                .insert((*name).clone(), Node::Array(values.clone()));
            if let Some(c) = &counts {
                builder.hidden.push(c.clone());
            }
            finer = values;
            finer_counts = counts;
        }
    }
    if !reduced_any {
        return Err(builder.config_error(format!(
            "{path}: no data variable has both dimensions {dims:?}"
        )));
    }
    let mut attrs = provenance(
        &source.attrs,
        builder.view,
        &format!(
            "levels {}, method {:?}, dims {dims:?}",
            params.levels, params.method
        ),
    );
    let datasets: Vec<serde_json::Value> = (0..levels)
        .map(|k| serde_json::json!({"path": k.to_string(), "level": k}))
        .collect();
    attrs.push(multiscales(
        serde_json::Value::Array(datasets),
        params,
        &dims,
    ));
    let mut out = GroupNode {
        attrs,
        children: Default::default(),
    };
    for (k, mut group) in groups.into_iter().enumerate() {
        // Each level is a dataset of its own: the source's attributes and history, and its
        // own `multiscales`.
        group.attrs = out
            .attrs
            .iter()
            .filter(|a| a.name != "multiscales")
            .cloned()
            .collect();
        group.attrs.push(multiscales(
            serde_json::json!([{"path": ".", "level": k}]),
            params,
            &dims,
        ));
        out.children.insert(k.to_string(), Node::Group(group));
    }
    builder.check_chunk_dims(&params.chunks, &out, path)?;
    Ok(out)
}
