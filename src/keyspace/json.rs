//! JSON for Zarr metadata: attribute values typed as xarray writes them, and serialisation that
//! keeps non-finite floats as the `NaN`/`Infinity` tokens Python's JSON reader accepts.

use serde_json::{json, Value};

use crate::sources::model::{AttrValue, DType, JSON_INFINITY, JSON_NAN, JSON_NEG_INFINITY};

/// Strings in a value tree that stand for non-finite floats until [`to_bytes`] writes them
/// (the same placeholders [`AttrValue::Json`] text carries).
const NAN: &str = JSON_NAN;
const INF: &str = JSON_INFINITY;
const NEG_INF: &str = JSON_NEG_INFINITY;

/// A float as JSON; non-finite values become placeholders written as bare tokens.
pub fn float(v: f64) -> Value {
    if v.is_nan() {
        Value::String(NAN.into())
    } else if v == f64::INFINITY {
        Value::String(INF.into())
    } else if v == f64::NEG_INFINITY {
        Value::String(NEG_INF.into())
    } else {
        json!(v)
    }
}

/// A float as Zarr's `fill_value` encodes it: a number, or the strings "NaN", "Infinity", "-Infinity".
pub fn fill_float(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v == f64::INFINITY {
        json!("Infinity")
    } else if v == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(v)
    }
}

/// An attribute value as xarray writes it to Zarr: one value as a scalar, several as a list.
pub fn attr(value: &AttrValue) -> Value {
    fn seq<T: Copy>(v: &[T], f: impl Fn(T) -> Value) -> Value {
        match v {
            [one] => f(*one),
            many => Value::Array(many.iter().map(|&x| f(x)).collect()),
        }
    }
    match value {
        AttrValue::I8(v) => seq(v, |x| json!(x)),
        AttrValue::U8(v) => seq(v, |x| json!(x)),
        AttrValue::I16(v) => seq(v, |x| json!(x)),
        AttrValue::U16(v) => seq(v, |x| json!(x)),
        AttrValue::I32(v) => seq(v, |x| json!(x)),
        AttrValue::U32(v) => seq(v, |x| json!(x)),
        AttrValue::I64(v) => seq(v, |x| json!(x)),
        AttrValue::U64(v) => seq(v, |x| json!(x)),
        AttrValue::F32(v) => seq(v, |x| float(x as f64)),
        AttrValue::F64(v) => seq(v, float),
        AttrValue::Text(s) => json!(s),
        AttrValue::Strings(v) => match v.as_slice() {
            [one] => json!(one),
            many => json!(many),
        },
        AttrValue::Json(text) => serde_json::from_str(text).unwrap_or_else(|_| json!(text)),
    }
}

/// One element's little-endian bytes as a JSON number (fill values).
pub fn element(bytes: &[u8], dtype: DType) -> Value {
    let b = |n: usize| -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..n].copy_from_slice(&bytes[..n]);
        out
    };
    if bytes.len() < dtype.size().unwrap_or(0) {
        return Value::Null;
    }
    match dtype {
        DType::I8 => json!(bytes[0] as i8),
        DType::U8 => json!(bytes[0]),
        DType::I16 => json!(i16::from_le_bytes([bytes[0], bytes[1]])),
        DType::U16 => json!(u16::from_le_bytes([bytes[0], bytes[1]])),
        DType::I32 => json!(i32::from_le_bytes(b(4)[..4].try_into().expect("4"))),
        DType::U32 => json!(u32::from_le_bytes(b(4)[..4].try_into().expect("4"))),
        DType::I64 => json!(i64::from_le_bytes(b(8))),
        DType::U64 => json!(u64::from_le_bytes(b(8))),
        DType::F32 => fill_float(f32::from_le_bytes(b(4)[..4].try_into().expect("4")) as f64),
        DType::F64 => fill_float(f64::from_le_bytes(b(8))),
        DType::Char | DType::String => Value::Null,
    }
}

/// Serialises a document, writing placeholder strings as bare `NaN`/`Infinity` tokens.
pub fn to_bytes(value: &Value) -> Vec<u8> {
    let text = serde_json::to_string_pretty(value).expect("JSON values always serialise");
    let text = text
        .replace("\"\\u0000NaN\\u0000\"", "NaN")
        .replace("\"\\u0000-Infinity\\u0000\"", "-Infinity")
        .replace("\"\\u0000Infinity\\u0000\"", "Infinity");
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float32_attributes_keep_their_exact_value() {
        // xarray writes np.float32(0.1).item(), i.e. the f64 nearest the f32.
        let v = attr(&AttrValue::F32(vec![0.1]));
        assert_eq!(v, json!(0.10000000149011612f64));
    }

    #[test]
    fn non_finite_floats_become_python_tokens() {
        let doc = json!({ "a": attr(&AttrValue::F64(vec![f64::NAN, f64::NEG_INFINITY, 1.5])) });
        let text = String::from_utf8(to_bytes(&doc)).unwrap();
        assert!(
            text.contains("NaN") && text.contains("-Infinity") && !text.contains("\\u0000"),
            "{text}"
        );
    }

    #[test]
    fn single_values_are_scalars_and_several_are_lists() {
        assert_eq!(attr(&AttrValue::I16(vec![3])), json!(3));
        assert_eq!(attr(&AttrValue::I16(vec![3, 4])), json!([3, 4]));
        assert_eq!(
            attr(&AttrValue::Strings(vec!["a".into(), "b".into()])),
            json!(["a", "b"])
        );
    }
}
