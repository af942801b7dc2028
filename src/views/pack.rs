//! The pack view: every float data variable of a group packed into an 8- or 16-bit integer
//! type with CF `scale_factor` / `add_offset` and a reserved `_FillValue` (formulas in
//! [`crate::operators::kernels::pack`]), optionally bit-rounded first; coordinates and other
//! variables are served as they are. The range is given, taken from the source's attributes,
//! or scanned once from its data ([`super::scan`]).

use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use super::decoded::{attr_f64, into_chunk, without_encoding_attrs, Decoding};
use super::{arrays_of, is_coordinate, provenance, Builder};
use crate::config::{PackParams, PackRange};
use crate::operators::kernels::bitround::{round_slice, KeepBits};
use crate::operators::kernels::pack::{PackedType, Packing};
use crate::operators::{
    ChunkError, FingerprintWriter, Geometry, Operator, OperatorContext, Recipe, Region,
};
use crate::sources::model::{Attr, AttrValue, DType};
use crate::tree::{ArrayNode, GroupNode, Node, TreeError};

/// Values decoded and packed at a time on the float32 path.
const BLOCK: usize = 4096;

/// Packs chunks of one float array.
#[derive(Debug)]
struct Pack {
    input: Arc<ArrayNode>,
    decoding: Decoding,
    packing: Packing,
    keepbits: Option<KeepBits>,
}

impl Operator for Pack {
    fn describe(&self, _: &Geometry) -> String {
        format!(
            "{} packed into {:?} (scale_factor {}, add_offset {})",
            self.input.path, self.packing.dtype, self.packing.scale_factor, self.packing.add_offset
        )
    }

    fn fingerprint(&self, out: &mut FingerprintWriter<'_>) {
        out.write(&("pack", 1u32));
        out.write(&self.decoding.identity());
        out.write(&(
            format!("{:?}", self.packing.dtype),
            self.packing.scale_factor.to_bits(),
            self.packing.add_offset.to_bits(),
            self.keepbits.map(KeepBits::get),
        ));
        out.input(&self.input);
    }

    fn chunk_identity(&self, _: &[u128], _: &Region, _: &[u64], _: &mut Xxh3) {}

    fn inputs(&self, geometry: &Geometry, index: &[u64]) -> Vec<(Arc<ArrayNode>, Region)> {
        vec![(self.input.clone(), geometry.chunk_region(index))]
    }

    fn check(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<(), ChunkError> {
        context
            .regions
            .check_region(&self.input, &geometry.chunk_region(index))
    }

    fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<Vec<u8>, ChunkError> {
        let region = geometry.chunk_region(index);
        if let Some(missing) = self.decoding.plain_f32_missing() {
            // float32 stored as is: decoded, rounded and packed block by block, without
            // whole-chunk intermediate buffers.
            let raw = context.regions.read_region(&self.input, &region)?;
            let mut packed = Vec::with_capacity(raw.len() / 4 * self.packing.dtype.size());
            if self.keepbits.is_none() && missing.len() <= 1 {
                // At most one missing value and no rounding: coded straight from the bytes.
                self.packing
                    .pack_f32_le_bytes(&raw, missing.first().copied(), &mut packed);
                return Ok(into_chunk(
                    packed,
                    &region,
                    &geometry.chunks,
                    &geometry.fill,
                ));
            }
            let mut block = Vec::with_capacity(BLOCK);
            for bytes in raw.chunks(BLOCK * 4) {
                block.clear();
                block.extend(bytes.chunks_exact(4).map(|b| {
                    let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    if missing.contains(&v) {
                        f32::NAN
                    } else {
                        v
                    }
                }));
                if let Some(bits) = self.keepbits {
                    round_slice(&mut block, bits);
                }
                self.packing.pack_bytes(&block, None, &mut packed);
            }
            return Ok(into_chunk(
                packed,
                &region,
                &geometry.chunks,
                &geometry.fill,
            ));
        }
        let values = self.decoding.read(context, &self.input, &region)?;
        let mut packed = Vec::with_capacity(values.len() * self.packing.dtype.size());
        if self.decoding.float == DType::F32 {
            let mut narrow: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            if let Some(bits) = self.keepbits {
                round_slice(&mut narrow, bits);
            }
            self.packing.pack_bytes(&narrow, None, &mut packed);
        } else {
            let mut wide = values;
            if let Some(bits) = self.keepbits {
                round_slice(&mut wide, bits);
            }
            self.packing.pack_bytes(&wide, None, &mut packed);
        }
        Ok(into_chunk(
            packed,
            &region,
            &geometry.chunks,
            &geometry.fill,
        ))
    }
}

fn packed_dtype(t: PackedType) -> DType {
    match t {
        PackedType::Int16 => DType::I16,
        PackedType::Uint16 => DType::U16,
        PackedType::Int8 => DType::I8,
        PackedType::Uint8 => DType::U8,
    }
}

fn code_attr(t: PackedType, code: i32) -> AttrValue {
    match t {
        PackedType::Int16 => AttrValue::I16(vec![code as i16]),
        PackedType::Uint16 => AttrValue::U16(vec![code as u16]),
        PackedType::Int8 => AttrValue::I8(vec![code as i8]),
        PackedType::Uint8 => AttrValue::U8(vec![code as u8]),
    }
}

/// The range `params` asks for, of `array` decoded by `decoding`.
fn range_of(
    builder: &Builder<'_>,
    params: &PackParams,
    array: &ArrayNode,
    decoding: &Decoding,
) -> Result<Option<(f64, f64)>, TreeError> {
    match params.range {
        PackRange::Fixed(lo, hi) => Ok(Some((lo, hi))),
        PackRange::Attrs => {
            let raw = match (
                attr_f64(&array.attrs, "valid_min"),
                attr_f64(&array.attrs, "valid_max"),
            ) {
                (Some(lo), Some(hi)) => Some((lo, hi)),
                _ => array
                    .attrs
                    .iter()
                    .find(|a| a.name == "valid_range")
                    .and_then(|a| a.value.as_f64s())
                    .filter(|v| v.len() == 2)
                    .map(|v| (v[0], v[1])),
            };
            let Some((lo, hi)) = raw else {
                return Err(builder.config_error(format!(
                    "range = \"attrs\" but {} has neither valid_min/valid_max nor valid_range",
                    array.path
                )));
            };
            let (a, b) = (decoding.value(lo), decoding.value(hi));
            Ok(Some((a.min(b), a.max(b))))
        }
        PackRange::Data => builder
            .scans
            .data_range(array, decoding)
            .map_err(|e| TreeError::data(&format!("view {}", builder.view.name), e.to_string())),
    }
}

/// The pack view of one group.
pub(super) fn apply(
    builder: &mut Builder<'_>,
    params: &PackParams,
    source: &GroupNode,
    path: &str,
) -> Result<GroupNode, TreeError> {
    let mut out = GroupNode {
        attrs: provenance(
            &source.attrs,
            builder.view,
            &format!(
                "dtype {:?}, range {:?}, keepbits {:?}",
                params.dtype, params.range, params.keepbits
            ),
        ),
        children: Default::default(),
    };
    let keepbits = params
        .keepbits
        .map(KeepBits::new)
        .transpose()
        .map_err(|e| builder.config_error(e.to_string()))?;
    for (name, array) in arrays_of(source) {
        let at = format!("{path}/{name}");
        let decoding = Decoding::of(array);
        let packable = decoding.as_ref().is_some_and(|d| {
            d.is_float() && !is_coordinate(source, name, array) && builder.selects(name)
        });
        let node = match (packable, decoding) {
            (true, Some(decoding)) => {
                let dtype = params.dtype;
                let packing = match range_of(builder, params, array, &decoding)? {
                    Some((lo, hi)) => Packing::new(dtype, lo, hi)
                        .map_err(|e| builder.config_error(format!("{}: {e}", array.path)))?,
                    // Every value missing: any packing serves the fill everywhere.
                    None => Packing::new(dtype, 0.0, 0.0)
                        .map_err(|e| builder.config_error(e.to_string()))?,
                };
                let served = packed_dtype(dtype);
                let fill = dtype.fill();
                let mut attrs = without_encoding_attrs(&array.attrs);
                attrs.push(Attr {
                    name: "_FillValue".into(),
                    value: code_attr(dtype, fill),
                });
                attrs.push(Attr {
                    name: "scale_factor".into(),
                    value: AttrValue::F64(vec![packing.scale_factor]),
                });
                attrs.push(Attr {
                    name: "add_offset".into(),
                    value: AttrValue::F64(vec![packing.add_offset]),
                });
                let geometry = Geometry {
                    shape: array.geometry.shape.clone(),
                    chunks: array.geometry.chunks.clone(),
                    dtype: served,
                    fill: fill.to_le_bytes()[..dtype.size()].to_vec(),
                };
                let operator = Pack {
                    input: array.clone(),
                    decoding,
                    packing,
                    keepbits,
                };
                let encoding = super::encoding(params.codec, params.level, served);
                builder.array(
                    at,
                    array.dims.clone(),
                    geometry,
                    attrs,
                    Recipe::new(Arc::new(operator), encoding),
                )
            }
            _ => builder.alias(array, at),
        };
        out.children.insert(name.clone(), Node::Array(node));
    }
    Ok(out)
}
