//! Zarr metadata JSON as atlasfs models it: documents parsed with Python's non-finite float
//! tokens (`NaN`, `Infinity`, `-Infinity`, which zarr-python writes in attributes), attribute
//! values typed where JSON round-trips exactly and kept as JSON text otherwise, and the CF
//! `_FillValue` as xarray reads it from each Zarr format.

use base64::Engine;
use serde_json::{Map, Number, Value};

use crate::sources::model::{Attr, AttrValue, DType, JSON_INFINITY, JSON_NAN, JSON_NEG_INFINITY};

/// Parses a JSON document that may hold bare `NaN`, `Infinity` and `-Infinity` tokens; they
/// become the placeholder strings of [`AttrValue::Json`].
///
/// # Errors
/// The parser's message when the text is not JSON even so.
pub(super) fn parse_document(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    serde_json::from_str(&quote_non_finite(text)).map_err(|e| e.to_string())
}

/// Replaces the bare non-finite tokens outside strings by quoted placeholders.
fn quote_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else {
            let token = [
                ("-Infinity", JSON_NEG_INFINITY),
                ("Infinity", JSON_INFINITY),
                ("NaN", JSON_NAN),
            ]
            .into_iter()
            .find(|(token, _)| rest.starts_with(token));
            if let Some((token, placeholder)) = token {
                out.push_str(&Value::String(placeholder.to_owned()).to_string());
                rest = &rest[token.len()..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A placeholder string's float, if it is one.
fn non_finite(text: &str) -> Option<f64> {
    match text {
        t if t == JSON_NAN => Some(f64::NAN),
        t if t == JSON_INFINITY => Some(f64::INFINITY),
        t if t == JSON_NEG_INFINITY => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// One JSON number, or a non-finite placeholder, as a float.
fn float_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) if n.is_f64() => n.as_f64(),
        Value::String(s) => non_finite(s),
        _ => None,
    }
}

/// An attribute value typed when it round-trips exactly through the key space's JSON (scalars,
/// lists of two or more numbers of one kind or of strings); otherwise its JSON text.
pub(super) fn attr_value(value: &Value) -> AttrValue {
    let json = || AttrValue::Json(value.to_string());
    match value {
        Value::String(s) => match non_finite(s) {
            Some(f) => AttrValue::F64(vec![f]),
            None => AttrValue::Text(s.clone()),
        },
        Value::Number(n) => number(n),
        Value::Array(items) if items.len() >= 2 => {
            if let Some(v) = items.iter().map(Value::as_i64).collect::<Option<Vec<_>>>() {
                AttrValue::I64(v)
            } else if let Some(v) = items.iter().map(Value::as_u64).collect::<Option<Vec<_>>>() {
                AttrValue::U64(v)
            } else if let Some(v) = items.iter().map(float_of).collect::<Option<Vec<_>>>() {
                AttrValue::F64(v)
            } else if items
                .iter()
                .all(|x| x.as_str().is_some_and(|s| non_finite(s).is_none()))
            {
                AttrValue::Strings(
                    items
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect(),
                )
            } else {
                json()
            }
        }
        _ => json(),
    }
}

fn number(n: &Number) -> AttrValue {
    if let Some(i) = n.as_i64() {
        AttrValue::I64(vec![i])
    } else if let Some(u) = n.as_u64() {
        AttrValue::U64(vec![u])
    } else {
        AttrValue::F64(vec![n.as_f64().unwrap_or(f64::NAN)])
    }
}

/// The attributes of a node, in document order, leaving out `_ARRAY_DIMENSIONS` (served as
/// dimension names) and `_FillValue` (see [`cf_fill_value`]).
pub(super) fn attributes(map: &Map<String, Value>) -> Vec<Attr> {
    map.iter()
        .filter(|(name, _)| *name != "_ARRAY_DIMENSIONS" && *name != "_FillValue")
        .map(|(name, value)| Attr {
            name: name.clone(),
            value: attr_value(value),
        })
        .collect()
}

/// The CF `_FillValue` xarray reads from an array, typed for `dtype`: in Zarr v2 the array's
/// `fill_value` itself (`fill`, little-endian; none when it is null), in Zarr v3 the
/// `_FillValue` attribute as xarray encodes it (floats as base64 of a little-endian f64).
pub(super) fn cf_fill_value(
    v2: bool,
    dtype: DType,
    fill: Option<&[u8]>,
    attrs: &Map<String, Value>,
) -> Option<AttrValue> {
    if v2 {
        return fill.and_then(|bytes| element_attr(dtype, bytes));
    }
    let value = attrs.get("_FillValue")?;
    if dtype.is_float() {
        let f = match value {
            Value::String(s) => match non_finite(s) {
                Some(f) => f,
                None => {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
                    f64::from_le_bytes(bytes.try_into().ok()?)
                }
            },
            other => float_of(other).or_else(|| other.as_f64())?,
        };
        return Some(AttrValue::F64(vec![f]));
    }
    match value {
        Value::Number(n) => match number(n) {
            AttrValue::F64(f) => f
                .first()
                .filter(|f| f.fract() == 0.0)
                .map(|&f| AttrValue::I64(vec![f as i64])),
            typed => Some(typed),
        },
        _ => None,
    }
}

/// One little-endian element of `dtype` as an attribute of that type.
fn element_attr(dtype: DType, bytes: &[u8]) -> Option<AttrValue> {
    let n = dtype.size()?;
    let b = bytes.get(..n)?;
    Some(match dtype {
        DType::I8 => AttrValue::I8(vec![b[0] as i8]),
        DType::U8 => AttrValue::U8(vec![b[0]]),
        DType::I16 => AttrValue::I16(vec![i16::from_le_bytes(b.try_into().ok()?)]),
        DType::U16 => AttrValue::U16(vec![u16::from_le_bytes(b.try_into().ok()?)]),
        DType::I32 => AttrValue::I32(vec![i32::from_le_bytes(b.try_into().ok()?)]),
        DType::U32 => AttrValue::U32(vec![u32::from_le_bytes(b.try_into().ok()?)]),
        DType::I64 => AttrValue::I64(vec![i64::from_le_bytes(b.try_into().ok()?)]),
        DType::U64 => AttrValue::U64(vec![u64::from_le_bytes(b.try_into().ok()?)]),
        DType::F32 => AttrValue::F32(vec![f32::from_le_bytes(b.try_into().ok()?)]),
        DType::F64 => AttrValue::F64(vec![f64::from_le_bytes(b.try_into().ok()?)]),
        DType::Char | DType::String => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::keyspace::json as served;

    #[test]
    fn python_non_finite_tokens_parse_outside_strings_only() {
        let doc =
            parse_document(br#"{"a": NaN, "b": [-Infinity, 1.5], "c": "NaN in text"}"#).unwrap();
        assert!(matches!(attr_value(&doc["a"]), AttrValue::F64(v) if v[0].is_nan()));
        assert_eq!(
            attr_value(&doc["b"]),
            AttrValue::F64(vec![f64::NEG_INFINITY, 1.5])
        );
        assert_eq!(attr_value(&doc["c"]), AttrValue::Text("NaN in text".into()));
        assert!(parse_document(b"{\"a\": nope}").is_err());
    }

    #[test]
    fn attribute_values_round_trip_through_the_served_json() {
        for value in [
            json!("K"),
            json!(3),
            json!(1.0),
            json!(0.1),
            json!(u64::MAX),
            json!([1, 2]),
            json!([1.5, 2.0]),
            json!(["a", "b"]),
            json!([5]),
            json!([]),
            json!(true),
            json!(null),
            json!([1, 2.5]),
            json!({"k": [1, {"x": "y"}]}),
        ] {
            let typed = attr_value(&value);
            assert_eq!(served::attr(&typed), value, "{value} became {typed:?}");
        }
        assert!(matches!(attr_value(&json!([5])), AttrValue::Json(_)));
        assert!(matches!(attr_value(&json!(true)), AttrValue::Json(_)));
        assert_eq!(attr_value(&json!([1, 2])), AttrValue::I64(vec![1, 2]));
    }

    #[test]
    fn non_finite_floats_inside_json_values_are_served_as_python_tokens() {
        let doc = parse_document(br#"{"a": [1, NaN, "x"]}"#).unwrap();
        let typed = attr_value(&doc["a"]);
        assert!(matches!(typed, AttrValue::Json(_)));
        let text = String::from_utf8(served::to_bytes(&served::attr(&typed))).unwrap();
        assert_eq!(
            text.split_whitespace().collect::<String>(),
            r#"[1,NaN,"x"]"#
        );
    }

    #[test]
    fn dimension_names_and_fill_values_are_not_plain_attributes() {
        let map = json!({"units": "K", "_ARRAY_DIMENSIONS": ["x"], "_FillValue": 1});
        let attrs = attributes(map.as_object().unwrap());
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].name, "units");
    }

    #[test]
    fn cf_fill_values_follow_xarray_per_format() {
        let none = Map::new();
        let v2 = cf_fill_value(true, DType::F32, Some(&(-999f32).to_le_bytes()), &none);
        assert_eq!(v2, Some(AttrValue::F32(vec![-999.0])));
        assert_eq!(cf_fill_value(true, DType::I16, None, &none), None);
        // xarray's FillValueCoder: base64 of the little-endian f64.
        let attrs = json!({"_FillValue": "AAAAAAA4j8A="});
        let v3 = cf_fill_value(false, DType::F32, None, attrs.as_object().unwrap());
        assert_eq!(v3, Some(AttrValue::F64(vec![-999.0])));
        let nan = json!({"_FillValue": "AAAAAAAA+H8="});
        let v3 = cf_fill_value(false, DType::F64, None, nan.as_object().unwrap());
        assert!(matches!(v3, Some(AttrValue::F64(v)) if v[0].is_nan()));
        let int = json!({"_FillValue": -1});
        let v3 = cf_fill_value(false, DType::I16, Some(&[0, 0]), int.as_object().unwrap());
        assert_eq!(v3, Some(AttrValue::I64(vec![-1])));
        assert_eq!(cf_fill_value(false, DType::I16, Some(&[0, 0]), &none), None);
    }
}
