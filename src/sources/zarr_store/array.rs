//! One array of a Zarr store as atlasfs serves it: zarrs opens its metadata (data type, codecs,
//! fill value, chunk grid and chunk key encoding); the served type, chunk shape, fill value,
//! dimension names and attributes follow from it. Also how chunk keys spell chunk indices.

use std::sync::Arc;

use serde_json::{Map, Value};
use zarrs::array::data_type::{
    Float32DataType, Float64DataType, Int16DataType, Int32DataType, Int64DataType, Int8DataType,
    UInt16DataType, UInt32DataType, UInt64DataType, UInt8DataType,
};
use zarrs::array::{Array, ArrayMetadata, ArrayMetadataV2, ArrayMetadataV3, DataType};

use super::attrs::{attributes, cf_fill_value};
use super::{ZarrArrayMeta, ZarrVersion};
use crate::sources::model::{Attr, DType};

/// A zarrs array with no storage: the codecs, data type, fill value, chunk grid and chunk key
/// encoding of an indexed array.
pub type Decoder = Array<()>;

/// Builds the zarrs view of an indexed array's metadata document; a panic inside zarrs on
/// strange metadata is reported like any other rejection.
///
/// # Errors
/// What zarrs says about the metadata (an unsupported codec, data type, chunk grid, …).
pub fn open_array(format: ZarrVersion, path: &str, metadata: &str) -> Result<Decoder, String> {
    let metadata = match format {
        ZarrVersion::V3 => ArrayMetadata::V3(
            serde_json::from_str::<ArrayMetadataV3>(metadata).map_err(|e| e.to_string())?,
        ),
        ZarrVersion::V2 => ArrayMetadata::V2(
            serde_json::from_str::<ArrayMetadataV2>(metadata).map_err(|e| e.to_string())?,
        ),
    };
    let node = format!("/{path}");
    std::panic::catch_unwind(|| Array::new_with_metadata(Arc::new(()), &node, metadata))
        .map_err(|_| "zarrs cannot open its metadata".to_owned())?
        .map_err(|e| e.to_string())
}

/// Served chunks larger than this are refused (a chunk is computed and held whole).
const MAX_CHUNK_BYTES: u64 = 2 << 30;

/// The array at `path` (its metadata document `doc` without attributes, and `attrs`) as
/// served, with notes worth reporting; or why it cannot be served.
pub fn served_array(
    format: ZarrVersion,
    path: &str,
    doc: &Value,
    attrs: &Map<String, Value>,
) -> Result<(ZarrArrayMeta, Vec<String>), String> {
    let metadata = doc.to_string();
    let decoder = open_array(format, path, &metadata)?;
    let dtype = served_dtype(decoder.data_type()).ok_or_else(|| {
        let name = match format {
            ZarrVersion::V3 => doc.get("data_type"),
            ZarrVersion::V2 => doc.get("dtype"),
        };
        format!(
            "data type {} is not served",
            name.map(type_name).unwrap_or_else(|| "?".to_owned())
        )
    })?;
    let shape = decoder.shape().to_vec();
    let chunks = regular_chunks(format, doc)
        .filter(|c| c.len() == shape.len())
        .ok_or("only regular chunk grids are served")?;
    key_encoding(format, doc).ok_or("its chunk key encoding is not supported")?;
    chunks
        .iter()
        .try_fold(dtype.size().unwrap_or(1) as u64, |n, &c| n.checked_mul(c))
        .filter(|&n| n <= MAX_CHUNK_BYTES)
        .ok_or_else(|| {
            format!("a chunk of {chunks:?} elements is larger than the 2 GiB served at most")
        })?;
    let fill = little_endian(decoder.fill_value().as_ne_bytes(), dtype);
    let v2_fill = match doc.get("fill_value") {
        Some(Value::Null) | None => None,
        Some(_) => Some(fill.as_slice()),
    };
    let mut notes = Vec::new();
    let dims = dimension_names(doc, attrs, shape.len(), &mut notes);
    let mut served: Vec<Attr> = attributes(attrs);
    if let Some(value) = cf_fill_value(format == ZarrVersion::V2, dtype, v2_fill, attrs) {
        served.push(Attr {
            name: "_FillValue".to_owned(),
            value,
        });
    }
    Ok((
        ZarrArrayMeta {
            path: path.to_owned(),
            format,
            metadata,
            dims,
            shape,
            chunks,
            dtype,
            fill,
            attrs: served,
            stored: Default::default(),
        },
        notes,
    ))
}

fn type_name(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned(),
        other => other.to_string(),
    }
}

/// The served type of a zarrs data type; `None` for types atlasfs does not serve.
pub fn served_dtype(data_type: &DataType) -> Option<DType> {
    Some(if data_type.is::<Int8DataType>() {
        DType::I8
    } else if data_type.is::<UInt8DataType>() {
        DType::U8
    } else if data_type.is::<Int16DataType>() {
        DType::I16
    } else if data_type.is::<UInt16DataType>() {
        DType::U16
    } else if data_type.is::<Int32DataType>() {
        DType::I32
    } else if data_type.is::<UInt32DataType>() {
        DType::U32
    } else if data_type.is::<Int64DataType>() {
        DType::I64
    } else if data_type.is::<UInt64DataType>() {
        DType::U64
    } else if data_type.is::<Float32DataType>() {
        DType::F32
    } else if data_type.is::<Float64DataType>() {
        DType::F64
    } else {
        return None;
    })
}

/// Native-endian elements of `dtype` in little-endian order.
pub fn little_endian(native: &[u8], dtype: DType) -> Vec<u8> {
    into_little_endian(native.to_vec(), dtype)
}

/// [`little_endian`] in place: a no-op on little-endian machines, no copy of a whole chunk.
pub fn into_little_endian(mut bytes: Vec<u8>, dtype: DType) -> Vec<u8> {
    if cfg!(target_endian = "big") {
        let elem = dtype.size().unwrap_or(1).max(1);
        for element in bytes.chunks_exact_mut(elem) {
            element.reverse();
        }
    }
    bytes
}

/// The chunk shape of a regular chunk grid.
fn regular_chunks(format: ZarrVersion, doc: &Value) -> Option<Vec<u64>> {
    let shape = match format {
        ZarrVersion::V2 => doc.get("chunks")?,
        ZarrVersion::V3 => {
            let grid = doc.get("chunk_grid")?;
            if grid.get("name")?.as_str()? != "regular" {
                return None;
            }
            grid.pointer("/configuration/chunk_shape")?
        }
    };
    shape
        .as_array()?
        .iter()
        .map(|n| n.as_u64().filter(|&n| n > 0))
        .collect()
}

/// How an array's chunk indices are spelled in keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyEncoding {
    /// v3 `default` (`c/1/2`, `c` for 0-d) rather than the v2 spelling (`1.2`, `0` for 0-d).
    pub default: bool,
    /// Between indices.
    pub separator: char,
}

impl KeyEncoding {
    /// The chunk index a key (relative to the array) names, if it names one of `ndim`
    /// dimensions.
    pub fn parse(&self, key: &str, ndim: usize) -> Option<Vec<u64>> {
        let rest = if self.default {
            if ndim == 0 {
                return (key == "c").then(Vec::new);
            }
            key.strip_prefix('c')?.strip_prefix(self.separator)?
        } else {
            if ndim == 0 {
                return (key == "0").then(Vec::new);
            }
            key
        };
        let index: Vec<u64> = rest
            .split(self.separator)
            .map(|p| {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    None
                } else {
                    p.parse().ok()
                }
            })
            .collect::<Option<_>>()?;
        (index.len() == ndim).then_some(index)
    }
}

/// The chunk key encoding of an array's metadata document.
pub fn key_encoding(format: ZarrVersion, doc: &Value) -> Option<KeyEncoding> {
    let separator = |value: Option<&Value>, default: char| match value {
        None | Some(Value::Null) => Some(default),
        Some(Value::String(s)) if s == "." => Some('.'),
        Some(Value::String(s)) if s == "/" => Some('/'),
        Some(_) => None,
    };
    match format {
        ZarrVersion::V2 => Some(KeyEncoding {
            default: false,
            separator: separator(doc.get("dimension_separator"), '.')?,
        }),
        ZarrVersion::V3 => {
            let encoding = doc.get("chunk_key_encoding")?;
            let configured = encoding.pointer("/configuration/separator");
            match encoding.get("name")?.as_str()? {
                "default" => Some(KeyEncoding {
                    default: true,
                    separator: separator(configured, '/')?,
                }),
                "v2" => Some(KeyEncoding {
                    default: false,
                    separator: separator(configured, '.')?,
                }),
                _ => None,
            }
        }
    }
}

/// Dimension names from v3 `dimension_names`, else the `_ARRAY_DIMENSIONS` attribute xarray
/// writes; a missing name becomes `dim_<axis>`, with a note.
fn dimension_names(
    doc: &Value,
    attrs: &Map<String, Value>,
    ndim: usize,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let named = |value: Option<&Value>| -> Option<Vec<Option<String>>> {
        let list = value?.as_array()?;
        (list.len() == ndim).then(|| {
            list.iter()
                .map(|n| n.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
                .collect()
        })
    };
    let names = named(doc.get("dimension_names"))
        .or_else(|| named(attrs.get("_ARRAY_DIMENSIONS")))
        .unwrap_or_else(|| vec![None; ndim]);
    let mut missing = Vec::new();
    let names = names
        .into_iter()
        .enumerate()
        .map(|(axis, name)| {
            name.unwrap_or_else(|| {
                missing.push(axis);
                format!("dim_{axis}")
            })
        })
        .collect();
    if !missing.is_empty() {
        notes.push(format!(
            "no dimension name for axis {missing:?}; served as dim_<axis>"
        ));
    }
    names
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn chunk_keys_parse_per_encoding() {
        let v3 = KeyEncoding {
            default: true,
            separator: '/',
        };
        assert_eq!(v3.parse("c/1/20", 2), Some(vec![1, 20]));
        assert_eq!(v3.parse("c", 0), Some(vec![]));
        assert_eq!(v3.parse("c/1", 2), None);
        assert_eq!(v3.parse("zarr.json", 2), None);
        assert_eq!(v3.parse("c/+1/2", 2), None);
        let v2 = KeyEncoding {
            default: false,
            separator: '.',
        };
        assert_eq!(v2.parse("3.0", 2), Some(vec![3, 0]));
        assert_eq!(v2.parse("0", 0), Some(vec![]));
        assert_eq!(v2.parse(".zarray", 1), None);
        let doc =
            json!({"chunk_key_encoding": {"name": "v2", "configuration": {"separator": "/"}}});
        assert_eq!(
            key_encoding(ZarrVersion::V3, &doc),
            Some(KeyEncoding {
                default: false,
                separator: '/'
            })
        );
        assert_eq!(
            key_encoding(
                ZarrVersion::V3,
                &json!({"chunk_key_encoding": {"name": "x"}})
            ),
            None
        );
    }

    #[test]
    fn missing_dimension_names_are_synthesised_with_a_note() {
        let mut notes = Vec::new();
        let dims = dimension_names(
            &json!({"dimension_names": ["x", null]}),
            &Map::new(),
            2,
            &mut notes,
        );
        assert_eq!(dims, vec!["x", "dim_1"]);
        assert_eq!(notes.len(), 1);
    }
}
