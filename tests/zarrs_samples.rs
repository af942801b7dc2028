//! zarrs (Rust) reads sample sets through a real mount and agrees with libnetcdf.
//!
//! The test writes three NetCDF-4 files with libnetcdf (the `netcdf` crate), joined along `time`
//! (`concat_dim = "time"`, hourly, int32 hours since 2023-01-01): a float32 `t2m` with a
//! `_FillValue` and masked elements, a packed int16 `pk` (`scale_factor`, `add_offset`,
//! `_FillValue`), a descending float64 `latitude` and an ascending float32 `longitude`. Two
//! descriptor files are mounted as `[[samples]]` sets, once in Zarr v3 and once in v2:
//! `sets/boxes` (time ranges, a time list out of order, label ranges in the coordinate's order
//! and against it, lists, steps, integer `_id`) and `sets/maps` (a header naming the variable, a
//! time scalar that drops the dimension, `longitude` taken whole, float `_weight`).
//!
//! Through the mount, zarrs opens each set's group and arrays and checks the dimension names,
//! shapes, data types, chunk shape `(1, *sample shape)`, the chunk key of every sample (flat
//! `c.<s>.0.0.0` in v3, `<s>.0.0.0` in v2) and the metadata (codec `bytes` little-endian only in
//! v3; no compressor or filter in v2). It reads every sample with `retrieve_chunk` and all of
//! them with `retrieve_array_subset`, every per-sample coordinate and `_`-key array, and one
//! sample file per variable directly with `std::fs` as little-endian bytes.
//!
//! The expected values do not come from atlasfs: the test reads the original files with
//! libnetcdf, decodes them as CF says (`_FillValue` → NaN, then `raw * scale_factor +
//! add_offset`), and selects each line's labels with its own lookup (inclusive label ranges in
//! either order, in the coordinate's order, with a positional step; exact scalars; lists in
//! their order). float32 values must have the same bits (any NaN matching any NaN); the
//! float64 values decoded from packed integers may differ by 1e-9.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use netcdf::AttributeValue;
use serde_json::{json, Value};
use zarrs::array::{data_type, Array, DataType};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::Group;

#[path = "support/mount.rs"]
mod mount;
#[path = "zarrs_samples/sample_source.rs"]
mod sample_source;
#[path = "support/zarrs_names.rs"]
mod zarrs_names;
use mount::{toml_string, Mount};
use sample_source::*;
use zarrs_names::dimension_names;

const FILES: usize = 3;
const HOURS_PER_FILE: usize = 4;
const NT: usize = FILES * HOURS_PER_FILE;
const NY: usize = 10;
const NX: usize = 8;
const DIMS: [&str; 3] = ["time", "latitude", "longitude"];
const TIME_UNITS: &str = "hours since 2023-01-01 00:00:00";
const T2M_FILL: f32 = -9999.0;
const PK_FILL: i16 = -32767;
/// Allowed difference of values decoded from packed integers.
const PACKED_TOLERANCE: f64 = 1e-9;
/// Mismatching elements shown per comparison.
const SHOW: usize = 5;

// ------------------------------------------------------------------------------------------
// the sets

/// One `[[samples]]` set: its descriptor lines (after an optional header) and what it serves.
struct Set {
    name: &'static str,
    file: &'static str,
    header: Option<Value>,
    lines: Vec<Value>,
    variables: &'static [&'static str],
    /// The `_`-key and its Zarr data type.
    key: (&'static str, DataType),
}

fn sets() -> Vec<Set> {
    vec![
        Set {
            name: "sets/boxes",
            file: "boxes.jsonl",
            header: None,
            lines: vec![
                // across files 0 and 1; a descending latitude given low..high
                json!({"time": {"start": "2023-01-01T02", "end": "2023-01-01T04"},
                       "latitude": {"start": 47, "end": 49},
                       "longitude": {"start": 1, "end": 3}, "_id": 11}),
                // a time list out of order; latitude in its own order; longitude high..low
                json!({"time": ["2023-01-01T09:00", "2023-01-01T01:00", "2023-01-01T05:00"],
                       "latitude": {"start": 44, "end": 42},
                       "longitude": {"start": 7, "end": 5}, "_id": 12}),
                // lists of latitudes and longitudes
                json!({"time": {"start": "2023-01-01T08", "end": "2023-01-01T10"},
                       "latitude": [41, 50, 45], "longitude": [0, 7, 3], "_id": 13}),
                // steps on time and on the descending latitude
                json!({"time": {"start": "2023-01-01T00", "end": "2023-01-01T04", "step": 2},
                       "latitude": {"start": 50, "end": 46, "step": 2},
                       "longitude": {"start": 2, "end": 4}, "_id": 14}),
                // the last hours of the last file; the last latitudes given low..high
                json!({"time": {"start": "2023-01-01T09", "end": "2023-01-01T11"},
                       "latitude": {"start": 41, "end": 43},
                       "longitude": {"start": 5, "end": 7}, "_id": 15}),
            ],
            variables: &["t2m", "pk"],
            key: ("_id", data_type::int64()),
        },
        Set {
            name: "sets/maps",
            file: "maps.jsonl",
            header: Some(json!({"atlas_samples": 1, "variable": ["t2m"]})),
            lines: vec![
                json!({"time": "2023-01-01T05", "latitude": {"start": 50, "end": 47},
                       "_weight": 0.5}),
                json!({"time": "2023-01-01T11:00", "latitude": {"start": 42, "end": 45},
                       "_weight": 1.25}),
                json!({"time": "2023-01-01T00", "latitude": [45, 41, 50, 49],
                       "_weight": 3.5}),
            ],
            variables: &["t2m"],
            key: ("_weight", data_type::float64()),
        },
    ]
}

fn write_descriptors(dir: &Path, set: &Set) {
    let mut text = String::new();
    for line in set.header.iter().chain(&set.lines) {
        text += &format!("{line}\n");
    }
    std::fs::write(dir.join(set.file), text).expect("writing a descriptor file");
}

// ------------------------------------------------------------------------------------------
// reading through zarrs

/// One chunk (`Some(indices)`) or the whole array (`None`), as f64 (exact for every type here).
fn read_f64(array: &Array<FilesystemStore>, chunk: Option<&[u64]>) -> Result<Vec<f64>, String> {
    macro_rules! read {
        ($t:ty) => {
            match chunk {
                Some(indices) => array.retrieve_chunk::<Vec<$t>>(indices),
                None => array.retrieve_array_subset::<Vec<$t>>(&array.subset_all()),
            }
            .map(|v| v.into_iter().map(|x| x as f64).collect())
            .map_err(|e| e.to_string())
        };
    }
    let t = array.data_type();
    if *t == data_type::float32() {
        read!(f32)
    } else if *t == data_type::float64() {
        read!(f64)
    } else if *t == data_type::int32() {
        read!(i32)
    } else if *t == data_type::int64() {
        read!(i64)
    } else {
        Err(format!("data type {t} not expected"))
    }
}

/// Up to [`SHOW`] elements differing by more than `tolerance` (NaN matches only NaN).
fn mismatches(expected: &[f64], got: &[f64], tolerance: f64) -> Option<String> {
    if expected.len() != got.len() {
        return Some(format!(
            "{} elements, {} expected",
            got.len(),
            expected.len()
        ));
    }
    let bad: Vec<String> = expected
        .iter()
        .zip(got)
        .enumerate()
        .filter(|(_, (e, g))| {
            if e.is_nan() || g.is_nan() {
                e.is_nan() != g.is_nan()
            } else {
                (*e - *g).abs() > tolerance
            }
        })
        .map(|(i, (e, g))| format!("[{i}] expected {e:?}, got {g:?}"))
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "{} of {} differ: {}",
            bad.len(),
            expected.len(),
            bad[..bad.len().min(SHOW)].join("; ")
        )
    })
}

/// The store key of sample `s` of `array_path` (no leading '/'), `rank` dimensions in all.
fn sample_key(array_path: &str, s: u64, rank: usize, zarr_format: u8) -> String {
    let zeros = ".0".repeat(rank - 1);
    match zarr_format {
        3 => format!("{array_path}/c.{s}{zeros}"),
        _ => format!("{array_path}/{s}{zeros}"),
    }
}

/// The array's metadata document read from the mount as a file.
fn metadata_file(mnt: &Path, array_path: &str, zarr_format: u8) -> Value {
    let name = if zarr_format == 3 {
        "zarr.json"
    } else {
        ".zarray"
    };
    let path = mnt.join(array_path).join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What one data variable of a set must hold.
struct Expected<'a> {
    /// Each sample's values, in C order.
    samples: &'a [Vec<f64>],
    /// The sample shape and its dimensions.
    shape: &'a [u64],
    dims: &'a [String],
}

/// Checks one data variable of a set; returns what is wrong.
fn check_variable(
    store: &Arc<FilesystemStore>,
    mnt: &Path,
    set: &Set,
    var: &str,
    want: &Expected<'_>,
    zarr_format: u8,
) -> Vec<String> {
    let (expected, shape, dims) = (want.samples, want.shape, want.dims);
    let path = format!("{}/{var}", set.name);
    let at = format!("zarr v{zarr_format} {path}");
    let array = match Array::open(store.clone(), &format!("/{path}")) {
        Ok(array) => array,
        Err(e) => return vec![format!("{at}: zarrs cannot open the array: {e}")],
    };
    let mut problems = Vec::new();
    let n = expected.len() as u64;
    let mut want_shape = vec![n];
    want_shape.extend(shape);
    let rank = want_shape.len();
    let mut want_dims = vec!["sample".to_owned()];
    want_dims.extend(dims.iter().cloned());
    let (want_type, tolerance) = match var {
        "t2m" => (data_type::float32(), 0.0),
        _ => (data_type::float64(), PACKED_TOLERANCE),
    };
    if array.shape() != want_shape.as_slice() {
        problems.push(format!(
            "{at}: shape {:?}, expected {want_shape:?}",
            array.shape()
        ));
    }
    if *array.data_type() != want_type {
        problems.push(format!(
            "{at}: data type {}, expected {want_type}",
            array.data_type()
        ));
    }
    let got_dims = dimension_names(&array, zarr_format);
    if got_dims.as_ref() != Some(&want_dims) {
        problems.push(format!(
            "{at}: dimensions {got_dims:?}, expected {want_dims:?}"
        ));
    }
    let mut one_chunk = vec![1u64];
    one_chunk.extend(shape);
    match array.chunk_shape(&vec![0; rank]) {
        Ok(c) if c.iter().map(|d| d.get()).eq(one_chunk.iter().copied()) => {}
        other => problems.push(format!(
            "{at}: chunk shape {other:?}, expected {one_chunk:?}"
        )),
    }
    let mut grid = vec![n];
    grid.resize(rank, 1);
    if array.chunk_grid_shape() != grid.as_slice() {
        problems.push(format!(
            "{at}: chunk grid {:?}, expected {grid:?}",
            array.chunk_grid_shape()
        ));
    }
    let meta = metadata_file(mnt, &path, zarr_format);
    let layout_ok = if zarr_format == 3 {
        meta["chunk_key_encoding"]
            == json!({"name": "default", "configuration": {"separator": "."}})
            && meta["codecs"] == json!([{"name": "bytes", "configuration": {"endian": "little"}}])
    } else {
        meta["compressor"].is_null()
            && meta["filters"].is_null()
            && meta["dimension_separator"] == "."
            && meta["dtype"].as_str().is_some_and(|d| d.starts_with('<'))
    };
    if !layout_ok {
        problems.push(format!(
            "{at}: metadata not flat keys with bytes only: {meta}"
        ));
    }
    if !problems.is_empty() {
        return problems; // reading would only repeat the error
    }
    let mut indices = vec![0u64; rank];
    for (s, want) in expected.iter().enumerate() {
        indices[0] = s as u64;
        let key = array.chunk_key(&indices);
        let want_key = sample_key(&path, s as u64, rank, zarr_format);
        if key.as_str() != want_key {
            problems.push(format!(
                "{at}: sample {s} has key {key}, expected {want_key}"
            ));
        }
        match read_f64(&array, Some(&indices)) {
            Err(e) => problems.push(format!("{at}: retrieve_chunk of sample {s}: {e}")),
            Ok(got) => {
                if let Some(m) = mismatches(want, &got, tolerance) {
                    problems.push(format!("{at}: sample {s}: {m}"));
                }
            }
        }
    }
    let all: Vec<f64> = expected.concat();
    match read_f64(&array, None) {
        Err(e) => problems.push(format!("{at}: retrieve_array_subset: {e}")),
        Ok(got) => {
            if let Some(m) = mismatches(&all, &got, tolerance) {
                problems.push(format!("{at}: retrieve_array_subset: {m}"));
            }
        }
    }
    // The last sample's file, read as a loader would: little-endian values, nothing else.
    let s = expected.len() - 1;
    let file = mnt.join(sample_key(&path, s as u64, rank, zarr_format));
    match std::fs::read(&file) {
        Err(e) => problems.push(format!("{at}: reading {}: {e}", file.display())),
        Ok(bytes) => {
            let got: Vec<f64> = if var == "t2m" {
                bytes
                    .chunks(4)
                    .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap_or([0; 4]))))
                    .collect()
            } else {
                bytes
                    .chunks(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                    .collect()
            };
            let width = if var == "t2m" { 4 } else { 8 };
            if bytes.len() != expected[s].len() * width {
                problems.push(format!(
                    "{at}: sample file {s} has {} bytes, expected {}",
                    bytes.len(),
                    expected[s].len() * width
                ));
            } else if let Some(m) = mismatches(&expected[s], &got, tolerance) {
                problems.push(format!("{at}: sample file {s} (std::fs): {m}"));
            }
        }
    }
    problems
}

/// Checks a per-sample array `(sample, ...)` of raw values; returns what is wrong.
fn check_per_sample(
    store: &Arc<FilesystemStore>,
    set: &Set,
    name: &str,
    want_dims: &[&str],
    want_shape: &[u64],
    want: &[f64],
    zarr_format: u8,
) -> Vec<String> {
    let at = format!("zarr v{zarr_format} {}/{name}", set.name);
    let array = match Array::open(store.clone(), &format!("/{}/{name}", set.name)) {
        Ok(array) => array,
        Err(e) => return vec![format!("{at}: zarrs cannot open the array: {e}")],
    };
    let mut problems = Vec::new();
    let dims = dimension_names(&array, zarr_format);
    let want_dims: Vec<String> = want_dims.iter().map(|d| d.to_string()).collect();
    if dims.as_ref() != Some(&want_dims) {
        problems.push(format!("{at}: dimensions {dims:?}, expected {want_dims:?}"));
    }
    if array.shape() != want_shape {
        problems.push(format!(
            "{at}: shape {:?}, expected {want_shape:?}",
            array.shape()
        ));
    }
    if name == "time" && array.attributes().get("units").and_then(Value::as_str) != Some(TIME_UNITS)
    {
        problems.push(format!("{at}: units {:?}", array.attributes().get("units")));
    }
    if name == set.key.0 && *array.data_type() != set.key.1 {
        problems.push(format!(
            "{at}: data type {}, expected {}",
            array.data_type(),
            set.key.1
        ));
    }
    match read_f64(&array, None) {
        Err(e) => problems.push(format!("{at}: {e}")),
        Ok(got) => {
            if let Some(m) = mismatches(want, &got, 0.0) {
                problems.push(format!("{at}: {m}"));
            }
        }
    }
    problems
}

/// Checks one set through zarrs; returns what is wrong and how many samples were read.
fn check_set(
    store: &Arc<FilesystemStore>,
    mnt: &Path,
    source: &Source,
    set: &Set,
    zarr_format: u8,
) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let at = format!("zarr v{zarr_format} {}", set.name);
    let n = set.lines.len();
    match Group::open(store.clone(), &format!("/{}", set.name)) {
        Err(e) => return (vec![format!("{at}: zarrs cannot open the group: {e}")], 0),
        Ok(group) => {
            let info = group.attributes().get("atlas_samples");
            if info.and_then(|i| i["samples"].as_u64()) != Some(n as u64)
                || info.and_then(|i| i["lines_left_out"].as_u64()) != Some(0)
            {
                problems.push(format!("{at}: group attribute atlas_samples {info:?}"));
            }
        }
    }
    let no_header = json!({});
    let header = set.header.as_ref().unwrap_or(&no_header);
    let all_picks: Vec<Vec<Pick>> = set.lines.iter().map(|l| picks(source, header, l)).collect();
    let shape = sample_shape(&all_picks[0]);
    for (i, p) in all_picks.iter().enumerate() {
        assert_eq!(
            sample_shape(p),
            shape,
            "{}: line {i} has another shape",
            set.name
        );
    }
    let kept: Vec<String> = DIMS
        .iter()
        .zip(&all_picks[0])
        .filter(|(_, p)| matches!(p, Pick::Many(_)))
        .map(|(d, _)| d.to_string())
        .collect();
    for var in set.variables {
        let expected: Vec<Vec<f64>> = all_picks
            .iter()
            .map(|p| gather(source.variable(var), p))
            .collect();
        let nan = expected.iter().flatten().filter(|v| v.is_nan()).count();
        assert!(
            nan > 0,
            "{}/{var}: the test wants masked elements in some sample",
            set.name
        );
        let want = Expected {
            samples: &expected,
            shape: &shape,
            dims: &kept,
        };
        problems.extend(check_variable(store, mnt, set, var, &want, zarr_format));
    }
    let absent = format!("/{}/pk", set.name);
    if !set.variables.contains(&"pk") && Array::open(store.clone(), &absent).is_ok() {
        problems.push(format!(
            "{at}: pk is served though the set does not select it"
        ));
    }
    // Per-sample coordinates: the labels of each line's selection, raw.
    for (d, dim) in DIMS.iter().enumerate() {
        let coord = &source.coords[d];
        let mut want = Vec::new();
        for p in &all_picks {
            match &p[d] {
                Pick::Scalar(i) => want.push(coord[*i]),
                Pick::Many(v) => want.extend(v.iter().map(|&i| coord[i])),
            }
        }
        let (dims, shape): (Vec<&str>, Vec<u64>) = match &all_picks[0][d] {
            Pick::Scalar(_) => (vec!["sample"], vec![n as u64]),
            Pick::Many(v) => (vec!["sample", dim], vec![n as u64, v.len() as u64]),
        };
        problems.extend(check_per_sample(
            store,
            set,
            dim,
            &dims,
            &shape,
            &want,
            zarr_format,
        ));
    }
    let (key, _) = set.key;
    let want: Vec<f64> = set.lines.iter().map(|l| l[key].as_f64().unwrap()).collect();
    problems.extend(check_per_sample(
        store,
        set,
        key,
        &["sample"],
        &[n as u64],
        &want,
        zarr_format,
    ));
    (problems, n * set.variables.len())
}

#[test]
fn zarrs_reads_sample_sets_and_agrees_with_libnetcdf() {
    let started = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("atlasfs-zarrs-samples-")
        .tempdir()
        .expect("creating a tempdir");
    let files: Vec<_> = (0..FILES)
        .map(|i| {
            let path = work.path().join(format!("src_{i}.nc"));
            write_source_file(&path, i);
            path
        })
        .collect();
    let source = Source::read(&files);
    let sets = sets();

    let mut problems = Vec::new();
    let mut samples_read = 0;
    for zarr_format in [3u8, 2] {
        let dir = Mount::tempdir();
        let mut config = Mount::config_head(dir.path(), zarr_format);
        config += &format!(
            "\n[[dataset]]\nname = \"era\"\nfiles = {}\nconcat_dim = \"time\"\n",
            toml_string(&work.path().join("src_*.nc").to_string_lossy())
        );
        for set in &sets {
            write_descriptors(dir.path(), set);
            config += &format!(
                "\n[[samples]]\nname = {}\nfrom = \"era\"\ndescriptors = {}\n",
                toml_string(set.name),
                toml_string(set.file)
            );
        }
        let mount = Mount::start(dir, &config, &[]);
        let store = Arc::new(
            FilesystemStore::new(&mount.mountpoint).expect("a zarrs store on the mountpoint"),
        );
        let before = problems.len();
        for set in &sets {
            let (found, n) = check_set(&store, &mount.mountpoint, &source, set, zarr_format);
            problems.extend(found);
            samples_read += n;
        }
        if problems.len() > before {
            problems.push(format!(
                "zarr v{zarr_format}: daemon log tail:\n{}",
                mount.log_tail()
            ));
        }
        drop(store);
        drop(mount); // unmounts
    }
    eprintln!(
        "zarrs read {samples_read} samples of {} sets in 2 formats in {:.1} s",
        sets.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "zarrs disagrees with libnetcdf on sample sets ({} problems):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
