//! Views in-process, from real NetCDF files through catalog, tree and key space (no FUSE):
//! values against references computed here from what libnetcdf reads, and cache keys that
//! follow the sources — rewriting one file changes the keys of exactly the view chunks that
//! read it, down a chain of views, and no other (the dataset is chunked one day a chunk, so
//! every chunk of every view reads whole days and "reads the file" is a time-range test).

use std::collections::BTreeMap;
use std::path::Path;

use atlasfs::config::MountConfig;
use atlasfs::keyspace::KeySpace;
use atlasfs::service::{Service, ServiceOptions};

#[path = "support/day_files.rs"]
mod day_files;
use day_files::{write_day_file, write_day_file_shifted, DAYS_PER_FILE, NX, NY};

const FILES: usize = 3;

const VIEWS: &str = r#"
[[view]]
name = "pyramid"
from = "sst"
variables = ["sst"]
[view.pyramid]
levels = 3
chunk = 2

[[view]]
name = "packed"
from = "sst"
variables = ["sst"]
[view.pack]
dtype = "int16"
range = [260.0, 300.0]
codec = "none"

[[view]]
name = "cases"
from = "sst"
[view.expr]
delta = "dic - alt"
warm = "where(sst > 275, sst, 0)"

[[view]]
name = "chain"
from = "cases"
[view.pyramid]
levels = 2
chunk = 2
"#;

fn archive(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    for i in 0..FILES {
        write_day_file(&data.join(format!("day{i}.nc")), i);
    }
    let config = dir.join("atlasfs.toml");
    let text = format!(
        "[cache]\ndir = {:?}\n\n[[dataset]]\nname = \"sst\"\nfiles = {:?}\nconcat_dim = \"time\"\nchunks = {{ time = 1 }}\n{VIEWS}",
        dir.join("cache"),
        data.join("*.nc"),
    );
    std::fs::write(&config, text).unwrap();
    config
}

fn start(config: &Path) -> Service {
    Service::start(
        MountConfig::load(config).unwrap(),
        ServiceOptions::inspect(),
        &|_| {},
    )
    .unwrap()
}

/// The zarr.json of `path`.
fn meta(keys: &KeySpace, path: &str) -> serde_json::Value {
    let bytes = keys.read(&format!("{path}/zarr.json"), 0, 1 << 20).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn numbers(value: &serde_json::Value) -> Vec<usize> {
    serde_json::from_value(value.clone()).unwrap()
}

/// A whole uncompressed array read chunk by chunk, as f64, with its shape.
fn read_array(keys: &KeySpace, path: &str) -> (Vec<usize>, Vec<f64>) {
    let meta = meta(keys, path);
    assert_eq!(
        meta["codecs"].as_array().unwrap().len(),
        1,
        "{path}: uncompressed"
    );
    let shape = numbers(&meta["shape"]);
    let chunks = numbers(&meta["chunk_grid"]["configuration"]["chunk_shape"]);
    let dtype = meta["data_type"].as_str().unwrap().to_owned();
    let total: usize = shape.iter().product();
    let mut out = vec![f64::NAN; total];
    let grid: Vec<usize> = shape
        .iter()
        .zip(&chunks)
        .map(|(s, c)| s.div_ceil(*c))
        .collect();
    let count: usize = grid.iter().product();
    for n in 0..count {
        let mut index = vec![0; grid.len()];
        let mut rest = n;
        for d in (0..grid.len()).rev() {
            index[d] = rest % grid[d];
            rest /= grid[d];
        }
        let key = format!(
            "{path}/c/{}",
            index
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("/")
        );
        let bytes = keys.read(&key, 0, 1 << 24).unwrap();
        let values: Vec<f64> = match dtype.as_str() {
            "float32" => bytes
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            "float64" => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            "int16" => bytes
                .chunks_exact(2)
                .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])))
                .collect(),
            other => panic!("{path}: type {other}"),
        };
        for (k, v) in values.iter().enumerate() {
            let mut rest = k;
            let mut at = 0;
            let mut inside = true;
            let mut stride = 1;
            let mut pos = vec![0; chunks.len()];
            for d in (0..chunks.len()).rev() {
                pos[d] = index[d] * chunks[d] + rest % chunks[d];
                rest /= chunks[d];
            }
            for d in (0..chunks.len()).rev() {
                inside &= pos[d] < shape[d];
                at += pos[d] * stride;
                stride *= shape[d];
            }
            if inside {
                out[at] = *v;
            }
        }
    }
    (shape, out)
}

/// `sst` of every file in day order, -999 as NaN, as libnetcdf reads it.
fn source_sst(dir: &Path) -> Vec<f64> {
    (0..FILES)
        .flat_map(|i| {
            let file = netcdf::open(dir.join(format!("data/day{i}.nc"))).unwrap();
            let values: Vec<f32> = file.variable("sst").unwrap().get_values(..).unwrap();
            values
                .into_iter()
                .map(|v| if v == -999.0 { f64::NAN } else { f64::from(v) })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn pyramid_levels_are_nan_skipping_block_means_of_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let service = start(&archive(dir.path()));
    let keys = service.keys();
    let sst = source_sst(dir.path());
    let days = FILES * DAYS_PER_FILE;
    for (level, f) in [(0usize, 4usize), (1, 2), (2, 1)] {
        let (shape, got) = read_array(&keys, &format!("pyramid/{level}/sst"));
        assert_eq!(shape, vec![days, NY / f, NX / f], "level {level}");
        for t in 0..days {
            for y in 0..NY / f {
                for x in 0..NX / f {
                    let block: Vec<f64> = (0..f * f)
                        .map(|k| sst[(t * NY + y * f + k / f) * NX + x * f + k % f])
                        .filter(|v| !v.is_nan())
                        .collect();
                    let expected = if block.is_empty() {
                        f64::NAN
                    } else {
                        block.iter().sum::<f64>() / block.len() as f64
                    };
                    let value = got[(t * (NY / f) + y) * (NX / f) + x];
                    assert!(
                        (value.is_nan() && expected.is_nan()) || (value - expected).abs() <= 1e-4,
                        "level {level} [{t}, {y}, {x}]: {value} vs {expected}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_mean_level_computes_its_counts_with_its_values() {
    // Level 0 reads level 1's values and the counts of valid values behind them. Computing a
    // level-1 chunk keeps its counts too, so once level 1 is read, level 0 computes only its
    // own chunks.
    let dir = tempfile::tempdir().unwrap();
    let service = start(&archive(dir.path()));
    let keys = service.keys();
    read_array(&keys, "pyramid/1/sst");
    let before = keys.cache_stats().computed;
    read_array(&keys, "pyramid/0/sst");
    let level0 = meta(&keys, "pyramid/0/sst");
    let chunks: u64 = numbers(&level0["shape"])
        .iter()
        .zip(numbers(
            &level0["chunk_grid"]["configuration"]["chunk_shape"],
        ))
        .map(|(s, c)| s.div_ceil(c) as u64)
        .product();
    assert_eq!(
        keys.cache_stats().computed - before,
        chunks,
        "reading level 0 after level 1 computed more than level 0's {chunks} chunks"
    );
}

#[test]
fn packed_values_decode_within_half_a_scale_step() {
    let dir = tempfile::tempdir().unwrap();
    let service = start(&archive(dir.path()));
    let keys = service.keys();
    let attrs = meta(&keys, "packed/sst")["attributes"].clone();
    // The formula, from the range given in the config.
    let scale = (300.0 - 260.0) / 65534.0;
    let offset = 260.0 + 32767.0 * scale;
    assert!((attrs["scale_factor"].as_f64().unwrap() - scale).abs() < 1e-15);
    assert!((attrs["add_offset"].as_f64().unwrap() - offset).abs() < 1e-12);
    let (_, codes) = read_array(&keys, "packed/sst");
    for (code, source) in codes.iter().zip(source_sst(dir.path())) {
        if source.is_nan() {
            assert_eq!(*code, -32768.0, "NaN packs to the fill");
        } else {
            let decoded = code * scale + offset;
            assert!(
                (decoded - source).abs() <= scale / 2.0 + 1e-9,
                "{decoded} vs {source}"
            );
        }
    }
}

/// Every chunk key of every array under the views, by (array path, chunk index).
fn view_keys(keys: &KeySpace) -> BTreeMap<(String, Vec<u64>), u128> {
    let mut out = BTreeMap::new();
    for array in keys.tree().arrays() {
        if array.path.starts_with("sst/") {
            continue;
        }
        let grid = array.geometry.grid();
        let count: u64 = grid.iter().product();
        for n in 0..count {
            let mut index = vec![0; grid.len()];
            let mut rest = n;
            for d in (0..grid.len()).rev() {
                index[d] = rest % grid[d];
                rest /= grid[d];
            }
            let key = keys.chunk_key(&array, &index).0;
            out.insert((array.path.clone(), index), key);
        }
    }
    out
}

#[test]
fn a_rewritten_file_changes_the_keys_of_exactly_the_view_chunks_that_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = archive(dir.path());
    let service = start(&config);
    let before = view_keys(&service.keys());
    let arrays: BTreeMap<String, (Vec<String>, Vec<u64>)> = service
        .keys()
        .tree()
        .arrays()
        .iter()
        .map(|a| (a.path.clone(), (a.dims.clone(), a.geometry.chunks.clone())))
        .collect();
    // File 1 holds days 2 and 3.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_day_file_shifted(&dir.path().join("data/day1.nc"), 1, 1.0);
    service.reload().unwrap();
    let after = view_keys(&service.keys());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    let (mut changed, mut kept) = (0, 0);
    for ((path, index), key) in &before {
        let (dims, chunks) = &arrays[path];
        let reads_file_1 = match dims.iter().position(|d| d == "time") {
            Some(t) => {
                let (start, end) = (index[t] * chunks[t], (index[t] + 1) * chunks[t]);
                start < 4 && end > 2
            }
            None => false,
        };
        let now = after[&(path.clone(), index.clone())];
        assert_eq!(
            *key != now,
            reads_file_1,
            "{path} {index:?}: key changed = {}, reads the rewritten file = {reads_file_1}",
            *key != now
        );
        if reads_file_1 {
            changed += 1;
        } else {
            kept += 1;
        }
    }
    assert!(changed > 0 && kept > 0, "{changed} changed, {kept} kept");
}
