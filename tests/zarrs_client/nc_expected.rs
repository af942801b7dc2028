//! The mount test's side of the truth: every numeric variable of the original files as
//! libnetcdf reads them, and the aggregation's time coordinate worked out from the files' own
//! units and calendars.

use super::*;

// ------------------------------------------------------------------------------------------
// expected contents, read with libnetcdf

/// One numeric variable as libnetcdf reads it from the original file(s).
#[derive(Debug, Clone)]
pub(super) struct Variable {
    /// Path below the dataset group, e.g. `forecast/ensemble/spread`.
    pub(super) path: String,
    pub(super) dims: Vec<String>,
    pub(super) shape: Vec<u64>,
    pub(super) kind: Kind,
    pub(super) values: Values,
    pub(super) units: Option<String>,
    pub(super) calendar: Option<String>,
    /// The `bounds` attribute: a variable that shares this one's time units (CF).
    pub(super) bounds: Option<String>,
    /// Largest allowed difference (time coordinates re-encoded to other units).
    pub(super) tolerance: f64,
}

/// What a dataset must contain.
#[derive(Debug, Default)]
pub(super) struct Expected {
    /// Group paths below the dataset ("" is the dataset itself).
    pub(super) groups: Vec<String>,
    pub(super) variables: Vec<Variable>,
    /// Char and string variables, not compared here.
    pub(super) skipped: Vec<String>,
}

pub(super) fn text_attr(var: &netcdf::Variable<'_>, name: &str) -> Option<String> {
    match var.attribute_value(name)? {
        Ok(AttributeValue::Str(s)) => Some(s),
        _ => None,
    }
}

pub(super) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

pub(super) fn read_variables<'a>(
    vars: impl Iterator<Item = netcdf::Variable<'a>>,
    prefix: &str,
    file: &Path,
    out: &mut Expected,
) {
    for var in vars {
        let path = join(prefix, &var.name());
        let Some(kind) = numeric_kind(&var.vartype()) else {
            out.skipped.push(path);
            continue;
        };
        let values = kind
            .read_netcdf(&var)
            .unwrap_or_else(|e| panic!("libnetcdf cannot read {path} of {}: {e}", file.display()));
        out.variables.push(Variable {
            dims: var.dimensions().iter().map(|d| d.name()).collect(),
            shape: var.dimensions().iter().map(|d| d.len() as u64).collect(),
            kind,
            values,
            units: text_attr(&var, "units"),
            calendar: text_attr(&var, "calendar"),
            bounds: text_attr(&var, "bounds"),
            tolerance: 0.0,
            path,
        });
    }
}

pub(super) fn read_group(group: &netcdf::Group<'_>, prefix: &str, file: &Path, out: &mut Expected) {
    for sub in group.groups() {
        let path = join(prefix, &sub.name());
        out.groups.push(path.clone());
        read_variables(sub.variables(), &path, file, out);
        read_group(&sub, &path, file, out);
    }
}

/// Every group and numeric variable of one file.
pub(super) fn read_file(path: &Path) -> Expected {
    let file = netcdf::open(path)
        .unwrap_or_else(|e| panic!("libnetcdf cannot open {}: {e}", path.display()));
    let mut out = Expected {
        groups: vec![String::new()],
        ..Expected::default()
    };
    read_variables(file.variables(), "", path, &mut out);
    if let Some(root) = file.root() {
        read_group(&root, "", path, &mut out);
    }
    // A bounds variable without units of its own is encoded in its coordinate's units (CF 7.1).
    let inherited: Vec<(String, Option<String>, Option<String>)> = out
        .variables
        .iter()
        .filter_map(|v| Some((v.bounds.clone()?, v.units.clone(), v.calendar.clone())))
        .collect();
    for (bounds, units, calendar) in inherited {
        if let Some(b) = out
            .variables
            .iter_mut()
            .find(|v| v.path == bounds && v.units.is_none())
        {
            b.units = units;
            b.calendar = b.calendar.take().or(calendar);
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// time units and calendars, for the aggregation's expected time coordinate

/// `<unit> since <reference>`: seconds per unit, and the reference as seconds since 0000-01-01
/// in `calendar` (exact: every fixture's reference is a whole second).
pub(super) fn parse_time_units(units: &str, calendar: &str) -> (f64, f64) {
    let (unit, reference) = units
        .split_once(" since ")
        .unwrap_or_else(|| panic!("not a time unit: {units:?}"));
    let seconds_per_unit = match unit.trim().to_ascii_lowercase().as_str() {
        "days" | "day" | "d" => 86400.0,
        "hours" | "hour" | "h" => 3600.0,
        "minutes" | "minute" | "min" => 60.0,
        "seconds" | "second" | "s" => 1.0,
        other => panic!("time unit {other:?} not handled by this test"),
    };
    let reference = reference.trim().trim_end_matches('Z');
    let (date, time) = reference
        .split_once(['T', ' '])
        .unwrap_or((reference, "00:00:00"));
    let num = |s: &str| -> i64 {
        s.parse()
            .unwrap_or_else(|_| panic!("cannot parse {s:?} in {units:?}"))
    };
    let d: Vec<i64> = date.split('-').map(num).collect();
    let t: Vec<i64> = time.trim().split(':').map(num).collect();
    assert!(
        d.len() == 3 && (1..=3).contains(&t.len()),
        "reference {reference:?}"
    );
    let days = days_since_year_zero(d[0], d[1], d[2], calendar);
    let secs = t[0] * 3600 + t.get(1).unwrap_or(&0) * 60 + t.get(2).unwrap_or(&0);
    (seconds_per_unit, (days * 86400 + secs) as f64)
}

pub(super) fn days_since_year_zero(y: i64, m: i64, d: i64, calendar: &str) -> i64 {
    const CUMULATIVE_NOLEAP: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    match calendar {
        "standard" | "gregorian" | "proleptic_gregorian" => {
            // Gregorian and mixed calendars agree after the 1582 reform.
            assert!(
                calendar == "proleptic_gregorian" || y > 1582,
                "reference year {y} before the Gregorian reform is not handled by this test"
            );
            // Days from civil (H. Hinnant), shifted to year 0.
            let y = if m <= 2 { y - 1 } else { y };
            let era = y.div_euclid(400);
            let yoe = y - era * 400;
            let mp = (m + 9) % 12;
            let doy = (153 * mp + 2) / 5 + d - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            era * 146_097 + doe + 60
        }
        "noleap" | "365_day" => y * 365 + CUMULATIVE_NOLEAP[(m - 1) as usize] + d - 1,
        other => panic!("calendar {other:?} not handled by this test"),
    }
}

/// A time variable's values as absolute seconds since year zero.
pub(super) fn absolute_seconds(var: &Variable) -> Vec<f64> {
    let units = var.units.as_deref().expect("time variable without units");
    let calendar = var.calendar.as_deref().unwrap_or("standard");
    let (per_unit, reference) = parse_time_units(units, calendar);
    let values: Vec<f64> = match &var.values {
        Values::F64(v) => v.clone(),
        Values::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        Values::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        other => panic!("time values of type {other:?} not handled by this test"),
    };
    values.iter().map(|v| reference + v * per_unit).collect()
}

pub(super) fn is_time(var: &Variable) -> bool {
    var.units.as_deref().is_some_and(|u| u.contains(" since "))
}

/// The files joined along [`CONCAT_DIM`], in time order, as the mount must present them:
/// variables with that dimension concatenated, the others from the first file, and time
/// coordinates re-encoded to the first file's units.
pub(super) fn read_aggregation(files: &[PathBuf]) -> Expected {
    let mut parts: Vec<(f64, PathBuf, Expected)> = files
        .iter()
        .map(|path| {
            let expected = read_file(path);
            let coord = expected
                .variables
                .iter()
                .find(|v| v.path == CONCAT_DIM)
                .unwrap_or_else(|| panic!("{} has no {CONCAT_DIM} variable", path.display()));
            let first = absolute_seconds(coord)[0];
            (first, path.clone(), expected)
        })
        .collect();
    parts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut parts = parts.into_iter();
    let (_, _, mut joined) = parts.next().expect("an aggregation needs files");
    for (_, path, part) in parts {
        for var in &mut joined.variables {
            let Some(axis) = var.dims.iter().position(|d| d == CONCAT_DIM) else {
                continue;
            };
            assert_eq!(
                axis, 0,
                "{}: this test only concatenates along the first dimension",
                var.path
            );
            let next = part
                .variables
                .iter()
                .find(|v| v.path == var.path)
                .unwrap_or_else(|| panic!("{} has no variable {}", path.display(), var.path));
            let values = if is_time(var) {
                // Re-encode to the first file's units; exact arithmetic up to the division.
                let (per_unit, reference) = parse_time_units(
                    var.units.as_deref().expect("units"),
                    var.calendar.as_deref().unwrap_or("standard"),
                );
                var.tolerance = 1e-6 / per_unit;
                let encoded = absolute_seconds(next)
                    .into_iter()
                    .map(|s| (s - reference) / per_unit);
                match var.kind {
                    Kind::F64 => Values::F64(encoded.collect()),
                    Kind::F32 => Values::F32(encoded.map(|x| x as f32).collect()),
                    other => panic!("{}: {other:?} time not handled by this test", var.path),
                }
            } else {
                next.values.clone()
            };
            var.values.append(values);
            var.shape[0] += next.shape[0];
        }
    }
    joined
}
