//! Stacking cells along new dimensions taken from keys (NcML joinNew): each data variable gains
//! the new dimensions in front, coordinates of the new dimensions are made from the key values
//! (integers, dates, strings), and missing cells read as the fill value and are reported.

use std::collections::{BTreeMap, BTreeSet};

use super::concat;
use super::plan::{GroupPlan, VarPlan};
use super::time::encode;
use crate::sources::model::{Attr, AttrValue, DType, InlineData, Storage, VarMeta};
use crate::sources::pattern::{parse_date, FieldKind};

/// A key value with the ordering of its kind.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Value {
    Int(i64),
    Seconds(i64),
    Text(String),
}

fn typed(text: &str, kind: &FieldKind) -> Result<Value, String> {
    match kind {
        FieldKind::Int => text
            .parse()
            .map(Value::Int)
            .map_err(|_| format!("{text:?} is not an integer")),
        FieldKind::Date(format) => parse_date(text, format)
            .map(Value::Seconds)
            .ok_or_else(|| format!("{text:?} is not a date in {format}")),
        FieldKind::Text => Ok(Value::Text(text.to_owned())),
    }
}

/// Stacks `cells` (key values → plan) along `dims`.
pub(super) fn stack(
    cells: Vec<(Vec<String>, GroupPlan)>,
    dims: &[String],
    kinds: &BTreeMap<String, FieldKind>,
    where_: &str,
    notes: &mut Vec<String>,
) -> Result<GroupPlan, String> {
    let k = dims.len();
    // Typed, sorted, de-duplicated coordinate values per new dimension.
    let mut coords: Vec<Vec<Value>> = vec![Vec::new(); k];
    let mut typed_cells = Vec::with_capacity(cells.len());
    for (key, plan) in cells {
        let mut values = Vec::with_capacity(k);
        for (d, text) in key.iter().enumerate() {
            let value = typed(text, kinds.get(&dims[d]).unwrap_or(&FieldKind::Text))
                .map_err(|e| format!("{where_}: key {}: {e}", dims[d]))?;
            if !coords[d].contains(&value) {
                coords[d].push(value.clone());
            }
            values.push(value);
        }
        typed_cells.push((values, plan));
    }
    for c in &mut coords {
        c.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    }
    let mut placed: Vec<(Vec<u64>, GroupPlan)> = typed_cells
        .into_iter()
        .map(|(values, plan)| {
            let index = values
                .iter()
                .zip(&coords)
                .map(|(v, c)| c.iter().position(|x| x == v).unwrap_or(0) as u64)
                .collect();
            (index, plan)
        })
        .collect();
    placed.sort_by(|a, b| a.0.cmp(&b.0));
    report_missing(&placed, &coords, dims, where_, notes);

    let first = &placed[0].1;
    let mut out = GroupPlan {
        attrs: first.attrs.clone(),
        ..GroupPlan::default()
    };
    let axis_like: BTreeSet<String> = placed
        .iter()
        .flat_map(|(_, p)| p.vars.iter())
        .filter(|(name, var)| is_axis_like(name, var, &placed))
        .map(|(name, _)| name.clone())
        .collect();
    decode_differing_encodings(&mut placed, &axis_like)?;
    for (index, plan) in &placed {
        for (name, var) in &plan.vars {
            if axis_like.contains(name) {
                out.vars.entry(name.clone()).or_insert_with(|| var.clone());
                continue;
            }
            let stacked = out.vars.entry(name.clone()).or_insert_with(|| VarPlan {
                dims: dims
                    .iter()
                    .cloned()
                    .chain(var.dims.iter().cloned())
                    .collect(),
                shape: coords
                    .iter()
                    .map(|c| c.len() as u64)
                    .chain(var.shape.iter().copied())
                    .collect(),
                parts: Vec::new(),
                concat_axis: var.concat_axis.map(|a| a + k),
                ..var.clone()
            });
            if stacked.shape[k..] != var.shape[..] || stacked.dtype != var.dtype {
                let here = var
                    .parts
                    .first()
                    .map(|p| p.path.to_string())
                    .unwrap_or_default();
                let there = stacked
                    .parts
                    .first()
                    .map(|p| p.path.to_string())
                    .unwrap_or_default();
                return Err(format!(
                    "variable {name} is {:?} {:?} in {here} but {:?} {:?} in {there}",
                    var.dtype,
                    var.shape,
                    stacked.dtype,
                    &stacked.shape[k..]
                ));
            }
            for part in &var.parts {
                let mut part = part.clone();
                part.origin = index
                    .iter()
                    .copied()
                    .chain(part.origin.iter().copied())
                    .collect();
                stacked.parts.push(part);
            }
        }
    }
    for (d, name) in dims.iter().enumerate() {
        out.vars.insert(name.clone(), coordinate(name, &coords[d]));
    }
    Ok(out)
}

/// When cells encode a variable differently (scale, offset, fill or missing values), every
/// cell's parts are decoded with their own encoding, as joins along existing dimensions do.
fn decode_differing_encodings(
    placed: &mut [(Vec<u64>, GroupPlan)],
    axis_like: &BTreeSet<String>,
) -> Result<(), String> {
    let names: BTreeSet<String> = placed
        .iter()
        .flat_map(|(_, p)| p.vars.keys().cloned())
        .collect();
    for name in names.difference(axis_like) {
        let encodings: Vec<_> = placed
            .iter()
            .filter_map(|(_, p)| p.vars.get(name))
            .map(|v| (v.decoded, concat::encoding_attrs(&v.attrs)))
            .collect();
        if encodings.windows(2).all(|w| w[0] == w[1]) {
            continue;
        }
        for (_, plan) in placed.iter_mut() {
            if let Some(var) = plan.vars.get_mut(name) {
                if var.dtype == DType::String || var.dtype == DType::Char {
                    let path = var
                        .parts
                        .first()
                        .map(|p| p.path.to_string())
                        .unwrap_or_default();
                    return Err(format!(
                        "variable {name} has different fill values across cells (e.g. {path})"
                    ));
                }
                concat::decode(var);
            }
        }
    }
    Ok(())
}

/// Coordinates of existing dimensions, their bounds and grid mappings are shared by all cells.
fn is_axis_like(name: &str, var: &VarPlan, placed: &[(Vec<u64>, GroupPlan)]) -> bool {
    if var.dims.len() == 1 && var.dims[0] == name {
        return true;
    }
    if var.dims.is_empty() && var.attrs.iter().any(|a| a.name == "grid_mapping_name") {
        return true;
    }
    placed.iter().flat_map(|(_, p)| p.vars.values()).any(|v| {
        v.attrs
            .iter()
            .any(|a| a.name == "bounds" && a.value.as_text() == Some(name))
    })
}

fn report_missing(
    placed: &[(Vec<u64>, GroupPlan)],
    coords: &[Vec<Value>],
    dims: &[String],
    where_: &str,
    notes: &mut Vec<String>,
) {
    let present: BTreeSet<&Vec<u64>> = placed.iter().map(|(i, _)| i).collect();
    let mut index = vec![0u64; coords.len()];
    loop {
        if !present.contains(&index) {
            let what: Vec<String> = index
                .iter()
                .zip(coords)
                .zip(dims)
                .map(|((&i, c), d)| format!("{d}={}", display(&c[i as usize])))
                .collect();
            notes.push(format!("missing {where_}: {}", what.join(", ")));
        }
        let mut d = coords.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            if (index[d] as usize) < coords[d].len() {
                break;
            }
            index[d] = 0;
        }
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::Int(i) => i.to_string(),
        Value::Text(t) => t.clone(),
        Value::Seconds(s) => {
            let days = s.div_euclid(86_400);
            let (y, m, d) = civil_from_days(days);
            format!("{y:04}-{m:02}-{d:02}")
        }
    }
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The coordinate variable of a new dimension.
fn coordinate(name: &str, values: &[Value]) -> VarPlan {
    let n = values.len() as u64;
    let mut attrs = Vec::new();
    let (dtype, storage) = match values.first() {
        Some(Value::Text(_)) => (
            DType::String,
            Storage::Inline(InlineData::Strings(values.iter().map(display).collect())),
        ),
        Some(Value::Seconds(_)) => {
            let secs: Vec<i64> = values
                .iter()
                .map(|v| if let Value::Seconds(s) = v { *s } else { 0 })
                .collect();
            let whole_days = secs.iter().all(|s| s % 86_400 == 0);
            let (units, divisor) = if whole_days {
                ("days since 1970-01-01", 86_400)
            } else {
                ("seconds since 1970-01-01", 1)
            };
            attrs.push(Attr {
                name: "units".into(),
                value: AttrValue::Text(units.into()),
            });
            attrs.push(Attr {
                name: "calendar".into(),
                value: AttrValue::Text("proleptic_gregorian".into()),
            });
            let vals: Vec<f64> = secs.iter().map(|s| (s / divisor) as f64).collect();
            (
                DType::I64,
                Storage::Inline(InlineData::Bytes(encode(&vals, DType::I64))),
            )
        }
        _ => {
            let vals: Vec<f64> = values
                .iter()
                .map(|v| {
                    if let Value::Int(i) = v {
                        *i as f64
                    } else {
                        0.0
                    }
                })
                .collect();
            (
                DType::I64,
                Storage::Inline(InlineData::Bytes(encode(&vals, DType::I64))),
            )
        }
    };
    VarPlan::synthetic(VarMeta {
        name: name.to_owned(),
        dims: vec![name.to_owned()],
        shape: vec![n],
        dtype,
        attrs,
        fill: dtype.default_fill(),
        storage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_day_counts() {
        assert_eq!(civil_from_days(18_353), (2020, 4, 1));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn values_order_by_kind() {
        assert!(typed("10", &FieldKind::Int).unwrap() > typed("9", &FieldKind::Int).unwrap());
        assert!(typed("b", &FieldKind::Text).unwrap() > typed("a", &FieldKind::Text).unwrap());
        assert!(typed("2021", &FieldKind::Int).is_ok());
        assert!(typed("x", &FieldKind::Int).is_err());
    }

    #[test]
    fn synthetic_coordinates_are_inline() {
        let plan = coordinate("polygon_id", &[Value::Int(0), Value::Int(3)]);
        assert_eq!(plan.shape, vec![2]);
        assert!(matches!(plan.parts[0].var.storage, Storage::Inline(_)));
    }
}
