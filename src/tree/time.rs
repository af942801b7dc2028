//! Values of inline numeric variables as f64 and back, and the CF time encoding of a variable
//! (its `units` "… since …" and `calendar`), used to order files and re-encode joined time axes.

use super::calendar::{Calendar, TimeUnits};
use crate::operators::{element_f64, push_element};
use crate::sources::model::{AttrValue, DType, InlineData, Storage, VarMeta};

/// A variable's CF time encoding.
#[derive(Debug, Clone)]
pub(super) struct TimeEncoding {
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
pub(super) fn encoding(
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
pub(super) fn values(var: &VarMeta) -> Option<Vec<f64>> {
    let Storage::Inline(InlineData::Bytes(bytes)) = &var.storage else {
        return None;
    };
    let size = var.dtype.size()?;
    Some(
        bytes
            .chunks_exact(size)
            .map(|b| element_f64(b, var.dtype))
            .collect(),
    )
}

/// Encodes f64 values as little-endian bytes of `dtype` (integers are rounded).
pub(super) fn encode(values: &[f64], dtype: DType) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * dtype.size().unwrap_or(8));
    for &v in values {
        push_element(&mut out, v, dtype);
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
