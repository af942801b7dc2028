//! Resolving a set's descriptor lines against the group they cut from: which variables, the
//! pick along every dimension, and one sample shape for the whole set (the header's, padded or
//! cut, else the first good line's). Lines that do not resolve are set aside with the reason;
//! lines whose shape differs are reported together.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::descriptor::{Descriptors, Extra, Line};
use super::labels::{time_units, Axis, Pick};
use crate::sources::model::DType;
use crate::tree::{ArrayNode, GroupNode};
use crate::views::decoded::Decoding;
use crate::views::{arrays_of, is_coordinate, RangeScans};

/// A sample shape: per dimension its length, `None` when a scalar drops it.
pub(crate) type Shape = BTreeMap<String, Option<u64>>;

/// The samples of a set, resolved.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    /// The data variables, in the set's order.
    pub(crate) variables: Vec<String>,
    /// Per sample (good lines in file order), the pick per dimension.
    pub(crate) picks: Vec<BTreeMap<String, Pick>>,
    /// The `_`-keys per sample.
    pub(crate) extras: Vec<BTreeMap<String, Extra>>,
    /// The sample shape.
    pub(crate) shape: Shape,
    /// Lines set aside: (line numbers, why), in file order.
    pub(crate) bad: Vec<(Vec<usize>, String)>,
}

/// What lines are resolved against: the group's data variables and coordinates.
pub(crate) struct Source<'a> {
    pub(crate) name: &'a str,
    pub(crate) group: &'a GroupNode,
    pub(crate) scans: &'a RangeScans,
    axes: HashMap<String, Result<Arc<Axis>, String>>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(name: &'a str, group: &'a GroupNode, scans: &'a RangeScans) -> Self {
        Source {
            name,
            group,
            scans,
            axes: HashMap::new(),
        }
    }

    /// The numeric data variables, by name.
    pub(crate) fn variables(&self) -> Vec<(&'a String, &'a Arc<ArrayNode>)> {
        arrays_of(self.group)
            .into_iter()
            .filter(|(name, array)| {
                !is_coordinate(self.group, name, array) && Decoding::of(array).is_some()
            })
            .collect()
    }

    /// The coordinate variable of `dim` (a 1-d array named as its dimension).
    pub(crate) fn coordinate(&self, dim: &str) -> Option<&'a Arc<ArrayNode>> {
        arrays_of(self.group)
            .into_iter()
            .find(|(name, a)| name.as_str() == dim && a.dims.len() == 1 && a.dims[0] == dim)
            .map(|(_, a)| a)
    }

    /// The labels of `dim`, read once.
    fn axis(&mut self, dim: &str) -> Result<Arc<Axis>, String> {
        if let Some(known) = self.axes.get(dim) {
            return known.clone();
        }
        let made = self.read_axis(dim);
        self.axes.insert(dim.to_owned(), made.clone());
        made
    }

    fn read_axis(&self, dim: &str) -> Result<Arc<Axis>, String> {
        let coord = self
            .coordinate(dim)
            .ok_or_else(|| format!("{dim} has no coordinate variable to look labels up in"))?;
        let decoding =
            Decoding::of(coord).ok_or_else(|| format!("{dim}: text labels cannot be looked up"))?;
        let raw = self.scans.read_whole(coord).map_err(|e| e.to_string())?;
        let text = |name: &str| {
            coord
                .attrs
                .iter()
                .find(|a| a.name == name)
                .and_then(|a| a.value.as_text())
        };
        let time =
            time_units(text("units"), text("calendar")).map_err(|e| format!("{dim}: {e}"))?;
        Ok(Arc::new(Axis {
            name: dim.to_owned(),
            values: decoding.decode(&raw),
            single: coord.geometry.dtype == DType::F32,
            time,
        }))
    }
}

/// `line` with the header's defaults for what it leaves out.
fn with_defaults(line: &Line, defaults: &Line) -> Line {
    let mut merged = line.clone();
    for (k, v) in &defaults.selections {
        merged
            .selections
            .entry(k.clone())
            .or_insert_with(|| v.clone());
    }
    for (k, v) in &defaults.extras {
        merged.extras.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if merged.variables.is_none() {
        merged.variables.clone_from(&defaults.variables);
    }
    merged
}

/// Shows a shape as `{latitude: 32, longitude: 32, time: 4}` (dropped dimensions left out).
pub(crate) fn show(shape: &Shape) -> String {
    let parts: Vec<String> = shape
        .iter()
        .filter_map(|(d, n)| n.map(|n| format!("{d}: {n}")))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Resolves every line of `descriptors` against `source`.
///
/// # Errors
/// A header shape naming a dimension no variable of the set has.
pub(crate) fn resolve(
    source: &mut Source<'_>,
    descriptors: &Descriptors,
) -> Result<Resolved, String> {
    let header = &descriptors.header;
    let known = source.variables();
    let mut out = Resolved::default();
    let mut dims: Vec<String> = Vec::new();
    let mut reference: Option<(Shape, usize)> = None;
    // Lines whose shape differs, grouped by shape.
    let mut mismatched: Vec<(Shape, Vec<usize>)> = Vec::new();
    let mut bad: Vec<(usize, String)> = descriptors.bad.clone();
    for raw in &descriptors.lines {
        let line = with_defaults(raw, &header.defaults);
        let number = line.number;
        let wanted: Vec<String> = match &line.variables {
            Some(v) => v.clone(),
            None => known.iter().map(|(n, _)| (*n).clone()).collect(),
        };
        if let Some(missing) = wanted.iter().find(|v| !known.iter().any(|(n, _)| n == v)) {
            let names: Vec<&str> = known.iter().map(|(n, _)| n.as_str()).collect();
            bad.push((
                number,
                format!(
                    "variable {missing:?} is not in {} (variables: {})",
                    source.name,
                    names.join(", ")
                ),
            ));
            continue;
        }
        if out.variables.is_empty() {
            out.variables.clone_from(&wanted);
            for name in &wanted {
                if let Some((_, array)) = known.iter().find(|(n, _)| *n == name) {
                    for d in &array.dims {
                        if !dims.contains(d) {
                            dims.push(d.clone());
                        }
                    }
                }
            }
            if let Some(extra) = header.dims.iter().find(|d| !dims.contains(d)) {
                return Err(format!(
                    "the header's dims names {extra:?}, which no variable of the set has (dimensions: {})",
                    dims.join(", ")
                ));
            }
            if let Some(shape) = &header.shape {
                if let Some(extra) = shape.keys().find(|d| !dims.contains(d)) {
                    return Err(format!(
                        "the header's shape names {extra:?}, which no variable of the set has (dimensions: {})",
                        dims.join(", ")
                    ));
                }
            }
        } else if sorted(&wanted) != sorted(&out.variables) {
            bad.push((
                number,
                format!(
                    "selects variables {}, not the set's {}",
                    wanted.join(", "),
                    out.variables.join(", ")
                ),
            ));
            continue;
        }
        match pick_line(source, &line, &dims) {
            Err(e) => bad.push((number, e)),
            Ok(picks) => {
                let mut shape: Shape = picks.iter().map(|(d, p)| (d.clone(), p.len())).collect();
                if let Some(fixed) = &header.shape {
                    for (dim, &want) in fixed {
                        if let Some(Some(len)) = shape.get(dim).copied() {
                            let fits = len == want
                                || (len < want && header.pad)
                                || (len > want && header.crop);
                            if fits {
                                shape.insert(dim.clone(), Some(want));
                            }
                        }
                    }
                }
                let fits_header = header
                    .shape
                    .as_ref()
                    .is_none_or(|fixed| fixed.iter().all(|(d, n)| shape.get(d) == Some(&Some(*n))));
                let fits = fits_header && reference.as_ref().is_none_or(|(want, _)| *want == shape);
                if !fits {
                    match mismatched.iter_mut().find(|(s, _)| *s == shape) {
                        Some((_, lines)) => lines.push(number),
                        None => mismatched.push((shape, vec![number])),
                    }
                    continue;
                }
                if reference.is_none() {
                    reference = Some((shape, number));
                }
                out.picks.push(picks);
                out.extras.push(line.extras.clone());
            }
        }
    }
    let against = match (&reference, &header.shape) {
        (Some((want, first)), _) => Some((want.clone(), format!("line {first}"))),
        (None, Some(fixed)) => Some((
            fixed.iter().map(|(d, n)| (d.clone(), Some(*n))).collect(),
            "the header".to_owned(),
        )),
        (None, None) => None,
    };
    if let Some((want, whose)) = against {
        for (shape, lines) in mismatched {
            let why = format!(
                "sample shape {} differs from {} ({whose}); set \"pad\" or \"crop\" in the header",
                show(&shape),
                show(&want)
            );
            out.bad.push((lines, why));
        }
        out.shape = want;
    }
    for (number, why) in bad {
        out.bad.push((vec![number], why));
    }
    out.bad.sort_by_key(|(lines, _)| lines.first().copied());
    Ok(out)
}

fn sorted(names: &[String]) -> Vec<&String> {
    let mut v: Vec<&String> = names.iter().collect();
    v.sort();
    v
}

/// The pick of `line` along each of `dims`.
fn pick_line(
    source: &mut Source<'_>,
    line: &Line,
    dims: &[String],
) -> Result<BTreeMap<String, Pick>, String> {
    if let Some(unknown) = line.selections.keys().find(|k| !dims.contains(k)) {
        let mut known: Vec<&str> = dims.iter().map(String::as_str).collect();
        known.sort_unstable();
        return Err(format!(
            "unknown coordinate {unknown:?} (coordinates: {})",
            known.join(", ")
        ));
    }
    let mut picks = BTreeMap::new();
    for dim in dims {
        let pick = match line.selections.get(dim) {
            Some(selection) => source.axis(dim)?.pick(selection)?,
            None => Pick::whole(dim_len(source.group, dim)),
        };
        picks.insert(dim.clone(), pick);
    }
    Ok(picks)
}

/// The length of `dim` in `group` (from any array that has it).
fn dim_len(group: &GroupNode, dim: &str) -> u64 {
    arrays_of(group)
        .into_iter()
        .find_map(|(_, a)| {
            a.dims
                .iter()
                .position(|d| d == dim)
                .and_then(|i| a.geometry.shape.get(i).copied())
        })
        .unwrap_or(0)
}
