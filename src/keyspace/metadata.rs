//! Zarr metadata documents for groups and arrays, in v3 (`zarr.json`) and v2 (`.zarray`,
//! `.zattrs`, `.zgroup`) form, following the conventions xarray writes: dimension names,
//! `_FillValue`, string and character types.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::json;
use crate::sources::model::{Attr, AttrValue, DType};
use crate::tree::ArrayNode;

/// Attributes as a JSON object, leaving out `_FillValue` (carried by the format's own field).
pub(super) fn attributes(attrs: &[Attr]) -> Map<String, Value> {
    attrs
        .iter()
        .filter(|a| a.name != "_FillValue")
        .map(|a| (a.name.clone(), json::attr(&a.value)))
        .collect()
}

fn fill_attr(array: &ArrayNode) -> Option<&AttrValue> {
    array
        .attrs
        .iter()
        .find(|a| a.name == "_FillValue")
        .map(|a| &a.value)
}

/// `zarr.json` of an array.
pub(super) fn array_v3(array: &ArrayNode) -> Value {
    let g = &array.geometry;
    let data_type = match g.dtype {
        DType::I8 => json!("int8"),
        DType::U8 => json!("uint8"),
        DType::I16 => json!("int16"),
        DType::U16 => json!("uint16"),
        DType::I32 => json!("int32"),
        DType::U32 => json!("uint32"),
        DType::I64 => json!("int64"),
        DType::U64 => json!("uint64"),
        DType::F32 => json!("float32"),
        DType::F64 => json!("float64"),
        DType::Char => {
            json!({"name": "null_terminated_bytes", "configuration": {"length_bytes": 1}})
        }
        DType::String => json!("string"),
    };
    let mut codecs = match g.dtype {
        DType::String => vec![json!({"name": "vlen-utf8", "configuration": {}})],
        d if d.size() == Some(1) => vec![json!({"name": "bytes"})],
        _ => vec![json!({"name": "bytes", "configuration": {"endian": "little"}})],
    };
    codecs.extend(array.recipe.encoding.v3_codecs());
    let fill_value = match g.dtype {
        DType::Char | DType::String => json!(""),
        d => json::element(&g.fill, d),
    };
    let mut attrs = attributes(&array.attrs);
    // xarray keeps the CF _FillValue in the attributes for v3, encoded as its FillValueCoder does.
    if let Some(value) = fill_attr(array) {
        let encoded = match (g.dtype, value) {
            (DType::F32 | DType::F64, v) => v
                .as_f64s()
                .and_then(|v| v.first().copied())
                .map(|v| json!(base64::engine::general_purpose::STANDARD.encode(v.to_le_bytes()))),
            (DType::Char, AttrValue::Text(s)) => Some(json!(
                base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
            )),
            (DType::String, v) => v.as_text().map(|s| json!(s)),
            (_, v) => match v {
                AttrValue::I64(x) => x.first().map(|x| json!(x)),
                AttrValue::U64(x) => x.first().map(|x| json!(x)),
                other => other
                    .as_f64s()
                    .and_then(|v| v.first().copied())
                    .map(|v| json!(v as i64)),
            },
        };
        if let Some(encoded) = encoded {
            attrs.insert("_FillValue".into(), encoded);
        }
    }
    let separator = if array.recipe.operator.flat_chunk_keys() {
        "."
    } else {
        "/"
    };
    json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": g.shape,
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": g.chunks}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": separator}},
        "fill_value": fill_value,
        "codecs": codecs,
        "attributes": attrs,
        "dimension_names": array.dims,
        "storage_transformers": [],
    })
}

/// `zarr.json` of a group, with inline consolidated metadata (an object of documents by path)
/// when given.
pub(super) fn group_v3(attrs: &[Attr], consolidated: Option<Value>) -> Value {
    let mut doc = json!({
        "zarr_format": 3,
        "node_type": "group",
        "attributes": attributes(attrs),
    });
    if let Some(metadata) = consolidated {
        doc["consolidated_metadata"] =
            json!({"kind": "inline", "must_understand": false, "metadata": metadata});
    }
    doc
}

/// `.zarray` of an array.
pub(super) fn zarray(array: &ArrayNode) -> Value {
    let g = &array.geometry;
    let dtype = match g.dtype {
        DType::I8 => "|i1",
        DType::U8 => "|u1",
        DType::I16 => "<i2",
        DType::U16 => "<u2",
        DType::I32 => "<i4",
        DType::U32 => "<u4",
        DType::I64 => "<i8",
        DType::U64 => "<u8",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::Char => "|S1",
        DType::String => "|O",
    };
    // xarray reads v2's fill_value as the CF _FillValue, so it is null unless the source has
    // one, and then it is that attribute's value (a Zarr v3 source may store another fill value).
    let fill_value = match (g.dtype, fill_attr(array)) {
        (DType::Char | DType::String, _) | (_, None) => Value::Null,
        (d, Some(value)) => cf_fill(d, value).unwrap_or_else(|| json::element(&g.fill, d)),
    };
    let filters = match g.dtype {
        DType::String => json!([{"id": "vlen-utf8"}]),
        _ => Value::Null,
    };
    json!({
        "zarr_format": 2,
        "shape": g.shape,
        "chunks": g.chunks,
        "dtype": dtype,
        "fill_value": fill_value,
        "order": "C",
        "filters": filters,
        "compressor": array.recipe.encoding.v2_compressor(),
        "dimension_separator": ".",
    })
}

/// A numeric CF `_FillValue` as a `fill_value` of type `dtype`; `None` when it is not numeric.
fn cf_fill(dtype: DType, value: &AttrValue) -> Option<Value> {
    match value {
        AttrValue::I64(v) if !dtype.is_float() => v.first().map(|x| json!(x)),
        AttrValue::U64(v) if !dtype.is_float() => v.first().map(|x| json!(x)),
        other => {
            let v = *other.as_f64s()?.first()?;
            Some(if dtype.is_float() {
                json::fill_float(v)
            } else {
                json!(v as i64)
            })
        }
    }
}

/// `.zattrs` of an array: its attributes and `_ARRAY_DIMENSIONS`.
pub(super) fn zattrs_array(array: &ArrayNode) -> Value {
    let mut attrs = attributes(&array.attrs);
    attrs.insert("_ARRAY_DIMENSIONS".into(), json!(array.dims));
    Value::Object(attrs)
}
