//! The sample-set test's side of the truth: its source files, written with libnetcdf, read
//! back and decoded as CF says, and its own lookup of each descriptor line's labels.

use super::*;

// ------------------------------------------------------------------------------------------
// the source files

/// Source file `i`: hours `4i .. 4i+3`, latitudes 50 down to 41, longitudes 0 to 7.
pub(super) fn write_source_file(path: &Path, i: usize) {
    let mut file = netcdf::create(path).unwrap();
    file.add_unlimited_dimension("time").unwrap();
    file.add_dimension("latitude", NY).unwrap();
    file.add_dimension("longitude", NX).unwrap();
    let hours: Vec<i32> = (0..HOURS_PER_FILE)
        .map(|h| (i * HOURS_PER_FILE + h) as i32)
        .collect();
    let mut time = file.add_variable::<i32>("time", &["time"]).unwrap();
    time.put_attribute("units", TIME_UNITS).unwrap();
    time.put_attribute("calendar", "standard").unwrap();
    time.put_values(&hours, ..).unwrap();
    let lat: Vec<f64> = (0..NY).map(|y| 50.0 - y as f64).collect();
    let mut var = file.add_variable::<f64>("latitude", &["latitude"]).unwrap();
    var.put_attribute("units", "degrees_north").unwrap();
    var.put_values(&lat, ..).unwrap();
    let lon: Vec<f32> = (0..NX).map(|x| x as f32).collect();
    let mut var = file
        .add_variable::<f32>("longitude", &["longitude"])
        .unwrap();
    var.put_attribute("units", "degrees_east").unwrap();
    var.put_values(&lon, ..).unwrap();

    let n = HOURS_PER_FILE * NY * NX;
    let at = |k: usize| {
        let (t, y, x) = (i * HOURS_PER_FILE + k / (NY * NX), (k / NX) % NY, k % NX);
        (t, y, x)
    };
    let t2m: Vec<f32> = (0..n)
        .map(|k| match at(k) {
            (t, y, x) if (t + y + x) % 7 == 0 => T2M_FILL,
            _ => 250.0 + ((k * 37 + i * 11) % 211) as f32 * 0.173,
        })
        .collect();
    let mut var = file
        .add_variable::<f32>("t2m", &["time", "latitude", "longitude"])
        .unwrap();
    var.set_fill_value(T2M_FILL).unwrap();
    var.put_attribute("units", "K").unwrap();
    var.put_attribute("long_name", "2 metre temperature")
        .unwrap();
    var.put_values(&t2m, ..).unwrap();
    let pk: Vec<i16> = (0..n)
        .map(|k| match at(k) {
            (t, y, x) if (3 * t + y + 2 * x) % 9 == 0 => PK_FILL,
            _ => ((k * 131 + i * 17) % 4001) as i16 - 2000,
        })
        .collect();
    let mut var = file
        .add_variable::<i16>("pk", &["time", "latitude", "longitude"])
        .unwrap();
    var.set_fill_value(PK_FILL).unwrap();
    var.put_attribute("scale_factor", 0.01f64).unwrap();
    var.put_attribute("add_offset", 280.0f64).unwrap();
    var.put_attribute("units", "K").unwrap();
    var.put_values(&pk, ..).unwrap();
}

/// A numeric attribute as f64.
pub(super) fn attr_f64(var: &netcdf::Variable<'_>, name: &str) -> Option<f64> {
    match var.attribute_value(name)?.ok()? {
        AttributeValue::Double(v) => Some(v),
        AttributeValue::Float(v) => Some(f64::from(v)),
        AttributeValue::Short(v) => Some(f64::from(v)),
        AttributeValue::Int(v) => Some(f64::from(v)),
        other => panic!("attribute {name} of {}: {other:?}", var.name()),
    }
}

/// The joined source as libnetcdf reads it, data variables decoded as CF says; data variables
/// are flat `(time, latitude, longitude)` arrays.
pub(super) struct Source {
    /// Raw coordinate values (hours; degrees), as f64.
    pub(super) coords: [Vec<f64>; 3],
    /// `t2m` and `pk`, decoded.
    pub(super) data: Vec<(&'static str, Vec<f64>)>,
}

impl Source {
    pub(super) fn read(files: &[std::path::PathBuf]) -> Source {
        let mut coords: [Vec<f64>; 3] = Default::default();
        let mut t2m = Vec::new();
        let mut pk = Vec::new();
        for (i, path) in files.iter().enumerate() {
            let file = netcdf::open(path).unwrap();
            let var = |name: &str| file.variable(name).expect("a variable");
            let time: Vec<i32> = var("time").get_values(..).unwrap();
            coords[0].extend(time.iter().map(|&h| f64::from(h)));
            if i == 0 {
                coords[1] = var("latitude").get_values(..).unwrap();
                let lon: Vec<f32> = var("longitude").get_values(..).unwrap();
                coords[2] = lon.into_iter().map(f64::from).collect();
            }
            let v = var("t2m");
            let fill = attr_f64(&v, "_FillValue").expect("t2m has a _FillValue");
            let raw: Vec<f32> = v.get_values(..).unwrap();
            t2m.extend(raw.into_iter().map(|x| {
                if f64::from(x) == fill {
                    f64::NAN
                } else {
                    f64::from(x)
                }
            }));
            let v = var("pk");
            let fill = attr_f64(&v, "_FillValue").expect("pk has a _FillValue");
            let scale = attr_f64(&v, "scale_factor").expect("pk has a scale_factor");
            let offset = attr_f64(&v, "add_offset").expect("pk has an add_offset");
            let raw: Vec<i16> = v.get_values(..).unwrap();
            pk.extend(raw.into_iter().map(|x| {
                if f64::from(x) == fill {
                    f64::NAN
                } else {
                    f64::from(x) * scale + offset
                }
            }));
        }
        assert_eq!(coords[0].len(), NT);
        Source {
            coords,
            data: vec![("t2m", t2m), ("pk", pk)],
        }
    }

    pub(super) fn variable(&self, name: &str) -> &[f64] {
        &self
            .data
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
            .1
    }
}

// ------------------------------------------------------------------------------------------
// the test's own label lookup

/// `YYYY-MM-DDTHH[:MM]` as hours since 2023-01-01 (proleptic Gregorian, days from civil).
pub(super) fn iso_hours(label: &str) -> f64 {
    let days_from_civil = |y: i64, m: i64, d: i64| {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy
    };
    let (date, time) = label.split_once('T').unwrap_or((label, "00"));
    let num = |s: &str| -> i64 { s.parse().unwrap_or_else(|_| panic!("label {label:?}")) };
    let d: Vec<i64> = date.split('-').map(num).collect();
    let t: Vec<i64> = time.split(':').map(num).collect();
    let days = days_from_civil(d[0], d[1], d[2]) - days_from_civil(2023, 1, 1);
    (days * 24 + t[0]) as f64 + *t.get(1).unwrap_or(&0) as f64 / 60.0
}

/// A label of dimension `dim` as a raw coordinate value.
pub(super) fn label(dim: &str, v: &Value) -> f64 {
    match (dim, v) {
        ("time", Value::String(s)) => iso_hours(s),
        (_, v) => v.as_f64().unwrap_or_else(|| panic!("label {v} of {dim}")),
    }
}

/// What a line selects along one dimension.
#[derive(Debug)]
pub(super) enum Pick {
    /// One label: the dimension is dropped.
    Scalar(usize),
    /// Positions in order.
    Many(Vec<usize>),
}

/// `.sel(dim=...)` of one descriptor value on `coord`.
pub(super) fn pick(dim: &str, coord: &[f64], sel: Option<&Value>) -> Pick {
    let position = |v: &Value| {
        let x = label(dim, v);
        let found: Vec<usize> = (0..coord.len()).filter(|&i| coord[i] == x).collect();
        assert_eq!(found.len(), 1, "{dim} label {v}: positions {found:?}");
        found[0]
    };
    match sel {
        None => Pick::Many((0..coord.len()).collect()),
        Some(Value::Array(list)) => Pick::Many(list.iter().map(position).collect()),
        Some(Value::Object(range)) => {
            let (a, b) = (label(dim, &range["start"]), label(dim, &range["end"]));
            let (lo, hi) = (a.min(b), a.max(b));
            let step = range
                .get("step")
                .map_or(1, |s| s.as_u64().unwrap() as usize);
            let inside: Vec<usize> = (0..coord.len())
                .filter(|&i| lo <= coord[i] && coord[i] <= hi)
                .step_by(step)
                .collect();
            assert!(!inside.is_empty(), "{dim} range {range:?} selects nothing");
            Pick::Many(inside)
        }
        Some(v) => Pick::Scalar(position(v)),
    }
}

/// A line's picks along (time, latitude, longitude); the header's keys are defaults.
pub(super) fn picks(source: &Source, header: &Value, line: &Value) -> Vec<Pick> {
    DIMS.iter()
        .zip(&source.coords)
        .map(|(dim, coord)| pick(dim, coord, line.get(*dim).or(header.get(*dim))))
        .collect()
}

/// The sample shape of `picks` (dimensions picked by a scalar dropped).
pub(super) fn sample_shape(picks: &[Pick]) -> Vec<u64> {
    picks
        .iter()
        .filter_map(|p| match p {
            Pick::Scalar(_) => None,
            Pick::Many(v) => Some(v.len() as u64),
        })
        .collect()
}

/// The values of a flat `(time, latitude, longitude)` array at `picks`, in C order.
pub(super) fn gather(values: &[f64], picks: &[Pick]) -> Vec<f64> {
    let axis = |p: &Pick| match p {
        Pick::Scalar(i) => vec![*i],
        Pick::Many(v) => v.clone(),
    };
    let (ts, ys, xs) = (axis(&picks[0]), axis(&picks[1]), axis(&picks[2]));
    let mut out = Vec::with_capacity(ts.len() * ys.len() * xs.len());
    for &t in &ts {
        for &y in &ys {
            for &x in &xs {
                out.push(values[(t * NY + y) * NX + x]);
            }
        }
    }
    out
}
