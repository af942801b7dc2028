//! Values of inline numeric variables as f64 and back, and the CF time encoding of a variable
//! (its `units` "… since …" and `calendar`), used to order files and re-encode joined time axes.

use super::calendar::{Calendar, TimeUnits};
use crate::sources::model::{AttrValue, DType, InlineData, Storage, VarMeta};

/// A variable's CF time encoding.
#[derive(Debug, Clone)]
pub struct TimeEncoding {
    /// The `units` text.
    pub units: String,
    /// The parsed units.
    pub parsed: TimeUnits,
}

/// The time encoding of a variable whose `units` is "<unit> since <date>", given the
/// `units`/`calendar` to fall back on (a bounds variable inherits its coordinate's).
///
/// # Errors
/// A message when the units or calendar are not understood.
pub fn encoding(
    var: &VarMeta,
    fallback: Option<(&str, Option<&str>)>,
) -> Result<Option<TimeEncoding>, String> {
    let own_units = var.attr("units").and_then(AttrValue::as_text);
    let own_calendar = var.attr("calendar").and_then(AttrValue::as_text);
    let (units, calendar) = match (own_units, fallback) {
        (Some(u), _) => (u, own_calendar),
        (None, Some((u, c))) => (u, own_calendar.or(c)),
        (None, None) => return Ok(None),
    };
    if !units.contains(" since ") {
        return Ok(None);
    }
    let calendar = Calendar::from_cf(calendar).map_err(|e| e.to_string())?;
    let parsed = TimeUnits::parse(units, calendar).map_err(|e| e.to_string())?;
    Ok(Some(TimeEncoding {
        units: units.to_owned(),
        parsed,
    }))
}

/// The values of an inline numeric variable as f64.
pub fn values(var: &VarMeta) -> Option<Vec<f64>> {
    let Storage::Inline(InlineData::Bytes(bytes)) = &var.storage else {
        return None;
    };
    let size = var.dtype.size()?;
    Some(
        bytes
            .chunks_exact(size)
            .map(|b| match var.dtype {
                DType::I8 => b[0] as i8 as f64,
                DType::U8 => b[0] as f64,
                DType::I16 => i16::from_le_bytes([b[0], b[1]]) as f64,
                DType::U16 => u16::from_le_bytes([b[0], b[1]]) as f64,
                DType::I32 => i32::from_le_bytes(b.try_into().expect("4")) as f64,
                DType::U32 => u32::from_le_bytes(b.try_into().expect("4")) as f64,
                DType::I64 => i64::from_le_bytes(b.try_into().expect("8")) as f64,
                DType::U64 => u64::from_le_bytes(b.try_into().expect("8")) as f64,
                DType::F32 => f32::from_le_bytes(b.try_into().expect("4")) as f64,
                DType::F64 => f64::from_le_bytes(b.try_into().expect("8")),
                DType::Char | DType::String => f64::NAN,
            })
            .collect(),
    )
}

/// Encodes f64 values as little-endian bytes of `dtype` (integers are rounded).
pub fn encode(values: &[f64], dtype: DType) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * dtype.size().unwrap_or(8));
    for &v in values {
        match dtype {
            DType::I8 => out.extend((v.round() as i8).to_le_bytes()),
            DType::U8 => out.extend((v.round() as u8).to_le_bytes()),
            DType::I16 => out.extend((v.round() as i16).to_le_bytes()),
            DType::U16 => out.extend((v.round() as u16).to_le_bytes()),
            DType::I32 => out.extend((v.round() as i32).to_le_bytes()),
            DType::U32 => out.extend((v.round() as u32).to_le_bytes()),
            DType::I64 => out.extend((v.round() as i64).to_le_bytes()),
            DType::U64 => out.extend((v.round() as u64).to_le_bytes()),
            DType::F32 => out.extend((v as f32).to_le_bytes()),
            DType::F64 | DType::Char | DType::String => out.extend(v.to_le_bytes()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::model::Attr;

    fn time_var(units: &str, values: &[f64]) -> VarMeta {
        VarMeta {
            name: "time".into(),
            dims: vec!["time".into()],
            shape: vec![values.len() as u64],
            dtype: DType::F64,
            attrs: vec![Attr {
                name: "units".into(),
                value: AttrValue::Text(units.into()),
            }],
            fill: vec![0; 8],
            storage: Storage::Inline(InlineData::Bytes(encode(values, DType::F64))),
        }
    }

    #[test]
    fn reencodes_hours_to_days_through_the_calendar() {
        let var = time_var("hours since 2000-01-02", &[0.0, 12.0]);
        let from = encoding(&var, None).unwrap().unwrap();
        let to = encoding(&time_var("days since 2000-01-01", &[]), None)
            .unwrap()
            .unwrap();
        let converted: Vec<f64> = values(&var)
            .unwrap()
            .iter()
            .map(|&v| from.parsed.convert(v, &to.parsed).unwrap())
            .collect();
        assert_eq!(converted, vec![1.0, 1.5]);
    }

    #[test]
    fn integers_round_trip_through_f64() {
        let bytes = encode(&[-3.0, 7.0], DType::I16);
        assert_eq!(bytes, vec![0xfd, 0xff, 7, 0]);
    }
}
