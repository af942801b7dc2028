//! The descriptor file of a sample set: JSON lines in sodeda's form, each a selection per
//! coordinate (`{start, end[, step]}` label slices, scalars, lists), a `variable` list and
//! `_`-keys carried along, after an optional header line `{"atlas_samples": 1, …}` with
//! defaults and a fixed sample shape. Parsing only: labels are looked up in `labels.rs`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A coordinate label as written: a number, or text (an ISO time).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Label {
    Number(f64),
    Text(String),
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Number(n) => write!(f, "{n}"),
            Label::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// What one line selects along one coordinate, as xarray's `.sel` would.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Selection {
    /// `{start, end[, step]}`: the labels between the two, inclusive, in either order; every
    /// `step`-th of them.
    Range { start: Label, end: Label, step: u64 },
    /// One label: the dimension is dropped.
    One(Label),
    /// These labels, in this order.
    List(Vec<Label>),
}

/// A value of a `_`-key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Extra {
    Number(f64),
    Text(String),
}

/// One descriptor line.
#[derive(Debug, Clone, Default)]
pub(crate) struct Line {
    /// 1-based line number in the file.
    pub(crate) number: usize,
    pub(crate) selections: BTreeMap<String, Selection>,
    pub(crate) variables: Option<Vec<String>>,
    pub(crate) extras: BTreeMap<String, Extra>,
}

/// The header line's settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Header {
    /// The fixed sample shape, per dimension.
    pub(crate) shape: Option<BTreeMap<String, u64>>,
    /// Pad shorter selections at the end.
    pub(crate) pad: bool,
    /// Cut longer selections at the end.
    pub(crate) crop: bool,
    /// The pad value (NaN when not given).
    pub(crate) fill: Option<f64>,
    /// The order of the sample's axes (dimensions not listed follow, in the source's order).
    pub(crate) dims: Vec<String>,
    /// The served type of data variables (`float32`/`float64`; default: as xarray decodes).
    pub(crate) dtype: Option<crate::sources::model::DType>,
    /// Selections, variables and `_`-keys for lines that leave them out.
    pub(crate) defaults: Line,
}

/// A parsed descriptor file.
#[derive(Debug, Default)]
pub(crate) struct Descriptors {
    pub(crate) header: Header,
    pub(crate) lines: Vec<Line>,
    /// Lines that could not be parsed: (line number, why).
    pub(crate) bad: Vec<(usize, String)>,
}

/// Parses a descriptor file. Bad lines are collected, not fatal.
///
/// # Errors
/// A header that is not understood (naming the key), which would change every sample.
pub(crate) fn parse(text: &str) -> Result<Descriptors, String> {
    let mut out = Descriptors::default();
    let mut first = true;
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let object = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(object)) => object,
            Ok(other) => {
                out.bad.push((
                    number,
                    format!("not a JSON object: {}", clip(&other.to_string())),
                ));
                first = false;
                continue;
            }
            Err(e) => {
                out.bad.push((number, format!("not a JSON object: {e}")));
                first = false;
                continue;
            }
        };
        if first && object.contains_key("atlas_samples") {
            out.header = header(object, number).map_err(|e| format!("line {number}: {e}"))?;
            first = false;
            continue;
        }
        first = false;
        match line(object, number) {
            Ok(line) => out.lines.push(line),
            Err(e) => out.bad.push((number, e)),
        }
    }
    Ok(out)
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn header(mut object: Map<String, Value>, number: usize) -> Result<Header, String> {
    match object.remove("atlas_samples") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        other => {
            return Err(format!(
                "header atlas_samples = {} is not a version this reader knows (1)",
                other.unwrap_or(Value::Null)
            ))
        }
    }
    let flag = |object: &mut Map<String, Value>, key: &str| match object.remove(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(other) => Err(format!("header {key} = {other} must be true or false")),
    };
    let pad = flag(&mut object, "pad")?;
    let crop = flag(&mut object, "crop")?;
    let fill = match object.remove("fill") {
        None => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("nan") => Some(f64::NAN),
        Some(other) => return Err(format!("header fill = {other} must be a number")),
    };
    let dtype = match object.remove("dtype") {
        None => None,
        Some(Value::String(s)) if s == "float32" => Some(crate::sources::model::DType::F32),
        Some(Value::String(s)) if s == "float64" => Some(crate::sources::model::DType::F64),
        Some(other) => {
            return Err(format!(
                "header dtype = {other} must be \"float32\" or \"float64\""
            ))
        }
    };
    let dims = match object.remove("dims") {
        None => Vec::new(),
        Some(Value::Array(names)) if names.iter().all(Value::is_string) => names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect(),
        Some(other) => return Err(format!("header dims = {other} must be a list of names")),
    };
    let shape = match object.remove("shape") {
        None => None,
        Some(Value::Object(dims)) => {
            let mut shape = BTreeMap::new();
            for (dim, len) in dims {
                match len.as_u64() {
                    Some(n) if n > 0 => {
                        shape.insert(dim, n);
                    }
                    _ => {
                        return Err(format!(
                            "header shape {dim} = {len} must be a positive integer"
                        ))
                    }
                }
            }
            Some(shape)
        }
        Some(other) => {
            return Err(format!(
                "header shape = {other} must be an object of dimension lengths"
            ))
        }
    };
    if (pad || crop) && shape.is_none() {
        return Err("header pad and crop need a shape".to_owned());
    }
    let defaults = line(object, number)?;
    Ok(Header {
        shape,
        pad,
        crop,
        fill,
        dims,
        dtype,
        defaults,
    })
}

fn line(object: Map<String, Value>, number: usize) -> Result<Line, String> {
    let mut out = Line {
        number,
        ..Line::default()
    };
    for (key, value) in object {
        if key == "variable" {
            out.variables = Some(variables(&value)?);
        } else if key.starts_with('_') {
            let extra = match value {
                Value::Number(n) => Extra::Number(n.as_f64().unwrap_or(f64::NAN)),
                Value::Bool(b) => Extra::Number(f64::from(u8::from(b))),
                Value::String(s) => Extra::Text(s),
                Value::Null => Extra::Number(f64::NAN),
                other => Extra::Text(other.to_string()),
            };
            out.extras.insert(key, extra);
        } else {
            let selection = selection(&key, value)?;
            out.selections.insert(key, selection);
        }
    }
    Ok(out)
}

fn variables(value: &Value) -> Result<Vec<String>, String> {
    let names: Option<Vec<String>> = match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    };
    match names {
        Some(names) if !names.is_empty() => Ok(names),
        _ => Err(format!(
            "variable = {} must be a name or a list of names",
            clip(&value.to_string())
        )),
    }
}

fn label(key: &str, value: &Value) -> Result<Label, String> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .map(Label::Number)
            .ok_or_else(|| format!("{key}: {n} is not a number")),
        Value::String(s) => Ok(Label::Text(s.clone())),
        other => Err(format!(
            "{key}: {} is not a label (a number or a time string)",
            clip(&other.to_string())
        )),
    }
}

fn selection(key: &str, value: Value) -> Result<Selection, String> {
    match value {
        Value::Object(mut range) => {
            let mut take = |name: &str| {
                range
                    .remove(name)
                    .ok_or_else(|| format!("{key}: a range needs \"start\" and \"end\""))
            };
            let start = label(key, &take("start")?)?;
            let end = label(key, &take("end")?)?;
            let step = match range.remove("step") {
                None => 1,
                Some(step) => match step.as_u64() {
                    Some(n) if n > 0 => n,
                    _ => {
                        return Err(format!(
                            "{key}: step = {step} must be a positive integer (a stride)"
                        ))
                    }
                },
            };
            if let Some(other) = range.keys().next() {
                return Err(format!(
                    "{key}: unknown range key {other:?} (start, end, step)"
                ));
            }
            Ok(Selection::Range { start, end, step })
        }
        Value::Array(items) => {
            if items.is_empty() {
                return Err(format!("{key}: an empty list selects nothing"));
            }
            let labels: Result<Vec<Label>, String> =
                items.iter().map(|item| label(key, item)).collect();
            Ok(Selection::List(labels?))
        }
        other => Ok(Selection::One(label(key, &other)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_header_and_bad_lines() {
        let text = r#"{"atlas_samples": 1, "shape": {"time": 4}, "pad": true, "variable": ["t2m"], "dtype": "float64"}
{"time": {"start": "2023-01-01T00", "end": "2023-01-01T03"}, "latitude": {"start": 48, "end": 47, "step": 2}, "_id": 7}

{"latitude": 47.5, "longitude": [8, 9], "variable": "u10", "_split": "train"}
[1, 2]
{"latitude": {"start": 1}}
{"time": {"start": 1, "end": 2, "stride": 3}}
"#;
        let d = parse(text).unwrap();
        assert!(d.header.pad && !d.header.crop);
        assert_eq!(d.header.dtype, Some(crate::sources::model::DType::F64));
        assert_eq!(d.header.shape.as_ref().unwrap()["time"], 4);
        assert_eq!(
            d.header.defaults.variables.as_deref(),
            Some(&["t2m".to_owned()][..])
        );
        assert_eq!(d.lines.len(), 2);
        assert_eq!(d.lines[0].number, 2);
        assert_eq!(
            d.lines[0].selections["latitude"],
            Selection::Range {
                start: Label::Number(48.0),
                end: Label::Number(47.0),
                step: 2
            }
        );
        assert_eq!(d.lines[0].extras["_id"], Extra::Number(7.0));
        assert_eq!(d.lines[1].number, 4);
        assert_eq!(
            d.lines[1].selections["longitude"],
            Selection::List(vec![Label::Number(8.0), Label::Number(9.0)])
        );
        assert_eq!(d.lines[1].extras["_split"], Extra::Text("train".into()));
        let bad: Vec<usize> = d.bad.iter().map(|b| b.0).collect();
        assert_eq!(bad, [5, 6, 7]);
        assert!(d.bad[0].1.starts_with("not a JSON object"));
        assert!(d.bad[2].1.contains("unknown range key \"stride\""));
    }

    #[test]
    fn a_header_that_is_not_understood_is_an_error() {
        assert!(parse("{\"atlas_samples\": 2}\n").is_err());
        assert!(parse("{\"atlas_samples\": 1, \"pad\": true}\n")
            .unwrap_err()
            .contains("need a shape"));
    }
}
