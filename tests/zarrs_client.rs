//! A second client: zarrs (Rust) reads an atlasfs mount and agrees with libnetcdf.
//!
//! The fixture NetCDF files are written by the project's Python generator
//! (`tests/python/fixtures.py`, netCDF4-python/libnetcdf), then mounted for real with the release
//! binary, once in each Zarr format (3 and 2). Through the mount, zarrs — a Zarr implementation
//! that shares no code with atlasfs — opens every group and every numeric array and reads it
//! whole. For each array the test checks the shape, the data type, the dimension names (v3
//! `dimension_names`, v2 `_ARRAY_DIMENSIONS`) and every value.
//!
//! The expected values do not come from atlasfs. They come from the `netcdf` crate, i.e.
//! libnetcdf itself, reading the original files. Both sides hold raw stored values with no CF
//! decoding: masked elements hold the `_FillValue` on both, packed variables stay packed, and
//! NetCDF-3 `_Unsigned` bytes stay signed. Integers must be equal. Floats must have the same bits,
//! except that any NaN matches any NaN. Covered: NetCDF-3 classic, 64-bit offset and CDF-5
//! (record and non-record variables, big-endian on disk); NetCDF-4 contiguous, chunked
//! zlib+shuffle, fletcher32, compact and classic-model storage; every numeric type (i1 … f8,
//! also big-endian); masked, packed and scalar variables; groups (every subgroup variable).
//! Also covered are two `concat_dim = "time"` aggregations, one NetCDF-4 and one NetCDF-3 whose
//! file names are not in time order. For these the test builds the expected arrays itself: it
//! orders the files by time and concatenates them. Time coordinates are re-encoded to the
//! earliest file's units with the test's own calendar arithmetic (standard and noleap). Only
//! those re-encoded values are allowed a tolerance, of 1 µs. Char and string variables are not
//! numeric and are left to the Python tests.
//!
//! A third mount reads the same fixture files as objects of a real S3-protocol server on
//! loopback (`s3s-fs`, in this process, with signed requests): every dataset's `files` is an
//! `s3://` URL, and the same comparison with libnetcdf must hold.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netcdf::types::{FloatType, IntType, NcVariableType};
use netcdf::AttributeValue;
use zarrs::array::{data_type, Array, DataType};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::Group;

#[path = "zarrs_client/nc_expected.rs"]
mod nc_expected;
mod support;
use nc_expected::*;
use support::mount::{python, repo, run, toml_string, Mount};
use support::s3_server::{S3Server, S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY};
use support::zarrs_names::dimension_names;

/// Mismatching elements shown per array.
const SHOW: usize = 5;

/// Single-file fixture kinds mounted as one dataset each (see `tests/python/fixtures.py`).
const SINGLE_FILE_KINDS: &[&str] = &[
    "nc3_classic",
    "nc3_64bit_offset",
    "nc3_cdf5",
    "nc3_one_record_var",
    "nc4_classic_model",
    "nc4_contiguous",
    "nc4_chunked_zlib",
    "nc4_fletcher32",
    "nc4_compact",
    "nc4_numeric_types",
    "nc4_scalars",
    "nc4_masked",
    "nc4_packed",
    "nc4_groups",
];

/// Multi-file fixture kinds joined along `time`.
const AGGREGATION_KINDS: &[&str] = &["agg_standard", "agg_noleap"];
const CONCAT_DIM: &str = "time";

// ------------------------------------------------------------------------------------------
// values of every numeric type

/// Equality of raw values: integers exactly; floats bit for bit, any NaN matching any NaN.
trait Same: Copy + Debug {
    fn same(self, other: Self) -> bool;
}

macro_rules! same_int {
    ($($t:ty),*) => {$(
        impl Same for $t {
            fn same(self, other: Self) -> bool {
                self == other
            }
        }
    )*};
}
same_int!(i8, u8, i16, u16, i32, u32, i64, u64);

impl Same for f32 {
    fn same(self, other: Self) -> bool {
        self.to_bits() == other.to_bits() || (self.is_nan() && other.is_nan())
    }
}

impl Same for f64 {
    fn same(self, other: Self) -> bool {
        self.to_bits() == other.to_bits() || (self.is_nan() && other.is_nan())
    }
}

/// Up to [`SHOW`] mismatching elements, and how many there are.
fn mismatches<T: Same>(expected: &[T], got: &[T]) -> Option<String> {
    if expected.len() != got.len() {
        return Some(format!(
            "{} elements read, {} expected",
            got.len(),
            expected.len()
        ));
    }
    let bad: Vec<usize> = (0..expected.len())
        .filter(|&i| !expected[i].same(got[i]))
        .collect();
    if bad.is_empty() {
        return None;
    }
    let shown: Vec<String> = bad
        .iter()
        .take(SHOW)
        .map(|&i| format!("[{i}] expected {:?}, got {:?}", expected[i], got[i]))
        .collect();
    Some(format!(
        "{} of {} elements differ (flat index): {}",
        bad.len(),
        expected.len(),
        shown.join("; ")
    ))
}

macro_rules! numeric_kinds {
    ($($kind:ident $t:ty => $zarr:ident;)*) => {
        /// A numeric netCDF type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Kind { $($kind),* }

        /// A flat, C-ordered array of one numeric type.
        #[derive(Debug, Clone)]
        enum Values { $($kind(Vec<$t>)),* }

        impl Kind {
            /// The Zarr data type the mount must declare.
            fn zarr_type(self) -> DataType {
                match self { $(Kind::$kind => data_type::$zarr()),* }
            }

            fn read_netcdf(self, var: &netcdf::Variable<'_>) -> Result<Values, String> {
                match self {
                    $(Kind::$kind => var
                        .get_values::<$t, _>(..)
                        .map(Values::$kind)
                        .map_err(|e| e.to_string()),)*
                }
            }

            fn read_zarrs(self, array: &Array<FilesystemStore>) -> Result<Values, String> {
                match self {
                    $(Kind::$kind => array
                        .retrieve_array_subset::<Vec<$t>>(&array.subset_all())
                        .map(Values::$kind)
                        .map_err(|e| e.to_string()),)*
                }
            }
        }

        impl Values {
            fn append(&mut self, other: Values) {
                match (self, other) {
                    $((Values::$kind(a), Values::$kind(b)) => a.extend(b),)*
                    (a, b) => panic!("cannot concatenate {a:?} and {b:?}"),
                }
            }

            fn mismatches(&self, got: &Values) -> Option<String> {
                match (self, got) {
                    $((Values::$kind(a), Values::$kind(b)) => mismatches(a, b),)*
                    _ => Some("different value types".to_owned()),
                }
            }
        }
    };
}

numeric_kinds! {
    I8 i8 => int8;
    U8 u8 => uint8;
    I16 i16 => int16;
    U16 u16 => uint16;
    I32 i32 => int32;
    U32 u32 => uint32;
    I64 i64 => int64;
    U64 u64 => uint64;
    F32 f32 => float32;
    F64 f64 => float64;
}

fn numeric_kind(t: &NcVariableType) -> Option<Kind> {
    Some(match t {
        NcVariableType::Int(IntType::I8) => Kind::I8,
        NcVariableType::Int(IntType::U8) => Kind::U8,
        NcVariableType::Int(IntType::I16) => Kind::I16,
        NcVariableType::Int(IntType::U16) => Kind::U16,
        NcVariableType::Int(IntType::I32) => Kind::I32,
        NcVariableType::Int(IntType::U32) => Kind::U32,
        NcVariableType::Int(IntType::I64) => Kind::I64,
        NcVariableType::Int(IntType::U64) => Kind::U64,
        NcVariableType::Float(FloatType::F32) => Kind::F32,
        NcVariableType::Float(FloatType::F64) => Kind::F64,
        _ => return None,
    })
}

// ------------------------------------------------------------------------------------------
// processes and mounts

/// Writes every fixture under `dir` with `tests/python/fixtures.py`; returns kind -> files.
fn generate_fixtures(dir: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let out = dir.join("fixtures");
    let script = repo().join("tests/python/fixtures.py");
    let (status, stdout, stderr) = run(
        Command::new(python()).arg(&script).arg(&out),
        dir,
        Duration::from_secs(120),
    );
    assert!(
        status.success(),
        "{} failed ({status}):\n{stderr}",
        script.display()
    );
    let written: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("fixture generator printed no JSON ({e}):\n{stdout}"));
    let written = written.as_object().expect("a JSON object of kinds");
    written
        .iter()
        .map(|(kind, files)| {
            let files: Vec<PathBuf> = match files {
                serde_json::Value::String(s) => vec![PathBuf::from(s)],
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|s| PathBuf::from(s.as_str().expect("a path")))
                    .collect(),
                other => panic!("unexpected fixture entry {kind}: {other}"),
            };
            (kind.clone(), files)
        })
        .collect()
}

/// One dataset of a mount config.
struct Dataset {
    name: String,
    files: String,
    concat_dim: Option<&'static str>,
}

/// The `s3://` URL of a fixture path inside the bucket directory.
fn s3_url(bucket_dir: &Path, path: &Path) -> String {
    let key = path
        .strip_prefix(bucket_dir)
        .expect("fixtures live in the bucket directory");
    format!("s3://{S3_BUCKET}/{}", key.to_string_lossy())
}

/// A mount of `datasets`, whose `s3://` files (if any) are reached through `endpoint`.
fn mount_datasets(zarr_format: u8, datasets: &[Dataset], endpoint: Option<&str>) -> Mount {
    let dir = Mount::tempdir();
    let mut config = Mount::config_head(dir.path(), zarr_format);
    for ds in datasets {
        config += &format!(
            "\n[[dataset]]\nname = {}\nfiles = {}\n",
            toml_string(&ds.name),
            toml_string(&ds.files)
        );
        if let Some(dim) = ds.concat_dim {
            config += &format!("concat_dim = {}\n", toml_string(dim));
        }
        if let Some(endpoint) = endpoint {
            config += &format!(
                "[dataset.storage]\nendpoint = {}\nregion = \"us-east-1\"\n",
                toml_string(endpoint)
            );
        }
    }
    let env = [
        ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY),
    ];
    Mount::start(dir, &config, &env)
}

// ------------------------------------------------------------------------------------------
// the comparison

/// Compares one variable; returns what is wrong.
fn check_variable(
    store: &Arc<FilesystemStore>,
    dataset: &str,
    var: &Variable,
    zarr_format: u8,
) -> Vec<String> {
    let node = format!("/{dataset}/{}", var.path);
    let at = format!("zarr v{zarr_format} {node}");
    let array = match Array::open(store.clone(), &node) {
        Ok(array) => array,
        Err(e) => return vec![format!("{at}: zarrs cannot open the array: {e}")],
    };
    let mut problems = Vec::new();
    if array.shape() != var.shape.as_slice() {
        problems.push(format!(
            "{at}: shape {:?}, expected {:?}",
            array.shape(),
            var.shape
        ));
    }
    let expected_type = var.kind.zarr_type();
    if *array.data_type() != expected_type {
        problems.push(format!(
            "{at}: data type {}, expected {expected_type}",
            array.data_type()
        ));
    }
    let dims = dimension_names(&array, zarr_format);
    if dims.as_ref() != Some(&var.dims) {
        problems.push(format!(
            "{at}: dimension names {dims:?}, expected {:?}",
            var.dims
        ));
    }
    if !problems.is_empty() {
        return problems; // reading would only repeat the error
    }
    match var.kind.read_zarrs(&array) {
        Err(e) => problems.push(format!("{at}: zarrs cannot read the array: {e}")),
        Ok(got) if var.tolerance > 0.0 => {
            if let (Values::F64(e), Values::F64(g)) = (&var.values, &got) {
                let bad: Vec<String> = e
                    .iter()
                    .zip(g)
                    .enumerate()
                    .filter(|(_, (e, g))| {
                        (*e - *g).abs() > var.tolerance || e.is_nan() != g.is_nan()
                    })
                    .take(SHOW)
                    .map(|(i, (e, g))| format!("[{i}] expected {e:?}, got {g:?}"))
                    .collect();
                if e.len() != g.len() || !bad.is_empty() {
                    problems.push(format!(
                        "{at}: {} values vs {} expected, outside ±{:e}: {}",
                        g.len(),
                        e.len(),
                        var.tolerance,
                        bad.join("; ")
                    ));
                }
            } else if let Some(m) = var.values.mismatches(&got) {
                problems.push(format!("{at}: {m}"));
            }
        }
        Ok(got) => {
            if let Some(m) = var.values.mismatches(&got) {
                problems.push(format!("{at}: {m}"));
            }
        }
    }
    problems
}

/// Compares one dataset; returns what is wrong and how many arrays were read.
fn check_dataset(
    store: &Arc<FilesystemStore>,
    dataset: &str,
    expected: &Expected,
    zarr_format: u8,
) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    for group in &expected.groups {
        let node = if group.is_empty() {
            format!("/{dataset}")
        } else {
            format!("/{dataset}/{group}")
        };
        if let Err(e) = Group::open(store.clone(), &node) {
            problems.push(format!(
                "zarr v{zarr_format} {node}: zarrs cannot open the group: {e}"
            ));
        }
    }
    for var in &expected.variables {
        problems.extend(check_variable(store, dataset, var, zarr_format));
    }
    (problems, expected.variables.len())
}

#[test]
fn zarrs_reads_the_mount_and_agrees_with_libnetcdf() {
    let started = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("atlasfs-zarrs-fixtures-")
        .tempdir()
        .expect("creating a tempdir");
    let fixtures = generate_fixtures(work.path());
    let files = |kind: &str| -> &Vec<PathBuf> {
        fixtures
            .get(kind)
            .unwrap_or_else(|| panic!("the fixture generator wrote no {kind}"))
    };

    let mut datasets = Vec::new();
    let mut expected = Vec::new();
    for &kind in SINGLE_FILE_KINDS {
        let [path] = files(kind).as_slice() else {
            panic!("{kind}: expected one file");
        };
        datasets.push(Dataset {
            name: kind.to_owned(),
            files: path.to_string_lossy().into_owned(),
            concat_dim: None,
        });
        expected.push((kind, read_file(path)));
    }
    for &kind in AGGREGATION_KINDS {
        let paths = files(kind);
        assert!(paths.len() > 1, "{kind}: expected several files");
        let dir = paths[0].parent().expect("a directory");
        assert!(
            paths.iter().all(|p| p.parent() == Some(dir)),
            "{kind}: files in one directory"
        );
        datasets.push(Dataset {
            name: kind.to_owned(),
            files: dir.join("*.nc").to_string_lossy().into_owned(),
            concat_dim: Some(CONCAT_DIM),
        });
        expected.push((kind, read_aggregation(paths)));
    }

    // The same files as objects: the bucket is the fixture directory itself.
    let s3 = S3Server::start(work.path());
    let bucket_dir = work.path().join(S3_BUCKET);
    let s3_datasets: Vec<Dataset> = datasets
        .iter()
        .map(|ds| Dataset {
            name: ds.name.clone(),
            files: s3_url(&bucket_dir, Path::new(&ds.files)),
            concat_dim: ds.concat_dim,
        })
        .collect();

    let mut problems = Vec::new();
    let mut arrays_read = 0;
    let passes = [
        (3u8, &datasets, None),
        (2, &datasets, None),
        (3, &s3_datasets, Some(s3.endpoint.as_str())),
    ];
    for (zarr_format, datasets, endpoint) in passes {
        let mount = mount_datasets(zarr_format, datasets, endpoint);
        let store = Arc::new(
            FilesystemStore::new(&mount.mountpoint).expect("a zarrs store on the mountpoint"),
        );
        let before = problems.len();
        for (dataset, want) in &expected {
            let (found, n) = check_dataset(&store, dataset, want, zarr_format);
            problems.extend(found);
            arrays_read += n;
        }
        if problems.len() > before {
            problems.push(format!(
                "zarr v{zarr_format} ({}): daemon log tail:\n{}",
                endpoint.map_or("local files", |_| "S3"),
                mount.log_tail()
            ));
        }
        drop(store);
        drop(mount); // unmounts
    }

    let skipped: Vec<String> = expected
        .iter()
        .flat_map(|(ds, e)| e.skipped.iter().map(move |v| format!("{ds}/{v}")))
        .collect();
    eprintln!(
        "zarrs read {arrays_read} arrays over {} datasets in 2 formats and from S3 in {:.1} s \
         (not numeric, not compared: {})",
        expected.len(),
        started.elapsed().as_secs_f64(),
        skipped.join(", ")
    );
    assert!(
        problems.is_empty(),
        "zarrs disagrees with libnetcdf ({} problems):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
