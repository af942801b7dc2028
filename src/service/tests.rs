//! In-process tests of the service (no FUSE): a service started from a config over NetCDF files
//! written here serves the values the `netcdf` crate reads from those files, a reload picks up
//! a new file, and a reload of a broken config keeps the previous snapshot.

use std::path::{Path, PathBuf};

use super::{Service, ServiceError, ServiceOptions};
use crate::cache::LockMode;
use crate::config::MountConfig;

const DAYS_PER_FILE: usize = 3;
const WIDTH: usize = 4;

/// A NetCDF-4 file of `DAYS_PER_FILE` days from day `first`: `time(time)` in days since
/// 2000-01-01 and `sst(time, x)` = 100 × day + x + 0.25.
fn write_day_file(path: &Path, first: usize) {
    let mut file = netcdf::create(path).unwrap();
    file.add_dimension("time", DAYS_PER_FILE).unwrap();
    file.add_dimension("x", WIDTH).unwrap();
    let days: Vec<f64> = (first..first + DAYS_PER_FILE).map(|d| d as f64).collect();
    let mut time = file.add_variable::<f64>("time", &["time"]).unwrap();
    time.put_attribute("units", "days since 2000-01-01")
        .unwrap();
    time.put_values(&days, ..).unwrap();
    let values: Vec<f32> = days
        .iter()
        .flat_map(|day| (0..WIDTH).map(move |x| (*day * 100.0 + x as f64 + 0.25) as f32))
        .collect();
    let mut sst = file.add_variable::<f32>("sst", &["time", "x"]).unwrap();
    sst.put_attribute("units", "K").unwrap();
    sst.put_values(&values, ..).unwrap();
}

/// `sst` of every file of `dir`, joined along time in day order, as the `netcdf` crate reads it.
fn expected_sst(dir: &Path) -> Vec<f32> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "nc"))
        .collect();
    files.sort();
    let mut days: Vec<(f64, Vec<f32>)> = Vec::new();
    for path in files {
        let file = netcdf::open(&path).unwrap();
        let time: Vec<f64> = file.variable("time").unwrap().get_values(..).unwrap();
        let sst: Vec<f32> = file.variable("sst").unwrap().get_values(..).unwrap();
        for (i, day) in time.into_iter().enumerate() {
            days.push((day, sst[i * WIDTH..(i + 1) * WIDTH].to_vec()));
        }
    }
    days.sort_by(|a, b| a.0.total_cmp(&b.0));
    days.into_iter().flat_map(|(_, row)| row).collect()
}

/// A temporary archive: a data dir, a cache dir and a config joining the files along time.
struct Archive {
    dir: tempfile::TempDir,
}

impl Archive {
    fn new(files: usize) -> Archive {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let archive = Archive { dir };
        for i in 0..files {
            archive.add_file(i);
        }
        std::fs::write(archive.config(), archive.config_text()).unwrap();
        archive
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("atlas.toml")
    }

    fn config_text(&self) -> String {
        format!(
            "[cache]\ndir = {:?}\nmax_size = \"64MiB\"\n\n[[dataset]]\nname = \"sst\"\n\
             files = {:?}\nconcat_dim = \"time\"\n",
            self.dir.path().join("cache"),
            self.data().join("*.nc"),
        )
    }

    /// Writes file `i`, holding days `3i .. 3i + 3`.
    fn add_file(&self, i: usize) {
        write_day_file(
            &self.data().join(format!("day{i:03}.nc")),
            i * DAYS_PER_FILE,
        );
    }

    fn start(&self, options: ServiceOptions) -> Service {
        let config = MountConfig::load(&self.config()).unwrap();
        Service::start(config, options, &|_| {}).unwrap()
    }
}

/// The `zarr.json` of `key` as JSON.
fn document(service: &Service, key: &str) -> serde_json::Value {
    let bytes = service.keys().read(key, 0, 1 << 20).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The shape of `sst/sst`.
fn sst_shape(service: &Service) -> Vec<u64> {
    serde_json::from_value(document(service, "sst/sst/zarr.json")["shape"].clone()).unwrap()
}

/// Every value of `sst/sst`, read chunk by chunk through the key space and decoded as the
/// array's `zarr.json` says (little-endian `float32`, no compression).
fn served_sst(service: &Service) -> Vec<f32> {
    let meta = document(service, "sst/sst/zarr.json");
    assert_eq!(meta["data_type"], "float32", "{meta}");
    let codecs = meta["codecs"].as_array().unwrap();
    assert_eq!(codecs.len(), 1, "one bytes codec, no compression: {meta}");
    assert_eq!(codecs[0]["name"], "bytes", "{meta}");
    let shape: Vec<usize> = serde_json::from_value(meta["shape"].clone()).unwrap();
    let chunks: Vec<usize> =
        serde_json::from_value(meta["chunk_grid"]["configuration"]["chunk_shape"].clone()).unwrap();
    assert_eq!(chunks[1], WIDTH, "{meta}");
    let mut values = Vec::new();
    for chunk in 0..shape[0].div_ceil(chunks[0]) {
        let key = format!("sst/sst/c/{chunk}/0");
        let bytes = service.keys().read(&key, 0, 1 << 20).unwrap();
        assert_eq!(bytes.len(), chunks[0] * WIDTH * 4, "{key}");
        let chunk_values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let rows = chunks[0].min(shape[0] - chunk * chunks[0]);
        values.extend_from_slice(&chunk_values[..rows * WIDTH]);
    }
    values
}

#[test]
fn a_started_service_serves_the_values_of_the_files() {
    let archive = Archive::new(2);
    let service = archive.start(ServiceOptions::inspect());
    assert_eq!(sst_shape(&service), [6, WIDTH as u64]);
    let expected = expected_sst(&archive.data());
    assert_eq!(expected.len(), 6 * WIDTH);
    assert_eq!(served_sst(&service), expected);
    let root = document(&service, "sst/zarr.json");
    assert_eq!(root["node_type"], "group", "{root}");
    assert_eq!(service.files_served(), 2);
    assert!(service.left_out().is_empty());
    assert!(archive.dir.path().join("cache/catalog.bin").exists());
}

#[test]
fn a_reload_after_a_new_file_serves_the_longer_array() {
    let archive = Archive::new(2);
    let service = archive.start(ServiceOptions::mount());
    let before = service.keys();
    assert_eq!(sst_shape(&service), [6, WIDTH as u64]);
    archive.add_file(2);
    let next = service.reload().unwrap();
    assert_eq!(sst_shape(&service), [9, WIDTH as u64]);
    assert_eq!(served_sst(&service), expected_sst(&archive.data()));
    assert_eq!(service.files_served(), 3);
    assert_eq!(next.report().scanned, 1, "only the new file is read again");
    // A reader holding the previous key space still reads the previous snapshot.
    let old: serde_json::Value =
        serde_json::from_slice(&before.read("sst/sst/zarr.json", 0, 1 << 20).unwrap()).unwrap();
    assert_eq!(old["shape"], serde_json::json!([6, WIDTH]));
}

#[test]
fn a_reload_of_a_broken_config_keeps_the_previous_snapshot() {
    let archive = Archive::new(2);
    let service = archive.start(ServiceOptions::inspect());
    let before = service.keys();
    archive.add_file(2);
    std::fs::write(archive.config(), "[[dataset]]\nname = ").unwrap();
    assert!(matches!(service.reload(), Err(ServiceError::Config(_))));
    assert!(std::sync::Arc::ptr_eq(&before, &service.keys()));
    assert_eq!(sst_shape(&service), [6, WIDTH as u64]);
    assert_eq!(served_sst(&service), {
        let mut all = expected_sst(&archive.data());
        all.truncate(6 * WIDTH);
        all
    });
    // Fixed again, the next reload serves the new file.
    std::fs::write(archive.config(), archive.config_text()).unwrap();
    service.reload().unwrap();
    assert_eq!(sst_shape(&service), [9, WIDTH as u64]);
}

#[test]
fn a_config_naming_no_dimension_fails_the_start_naming_it() {
    let archive = Archive::new(1);
    let text = archive
        .config_text()
        .replace("concat_dim = \"time\"", "concat_dim = \"tiem\"");
    std::fs::write(archive.config(), text).unwrap();
    let config = MountConfig::load(&archive.config()).unwrap();
    let error = Service::start(config, ServiceOptions::inspect(), &|_| {})
        .err()
        .unwrap();
    assert!(matches!(error, ServiceError::Tree(_)), "{error:?}");
    assert!(error.to_string().contains("tiem"), "{error}");
}

#[test]
fn a_second_exclusive_start_on_one_cache_dir_is_refused() {
    let archive = Archive::new(1);
    let _first = archive.start(ServiceOptions::mount());
    let config = MountConfig::load(&archive.config()).unwrap();
    let error = Service::start(config, ServiceOptions::mount(), &|_| {})
        .err()
        .unwrap();
    assert!(matches!(error, ServiceError::Cache(_)), "{error:?}");
    let warm = super::CacheUse::Dir {
        mode: LockMode::Shared,
        memory: Some(0),
        require_disk: true,
    };
    assert_eq!(ServiceOptions::warm().cache, warm);
}

/// A front end recording the shapes of the key spaces it is told of.
#[derive(Default)]
struct Recorder(parking_lot::Mutex<Vec<Vec<u64>>>);

impl super::FrontEnd for Recorder {
    fn swap(&self, next: std::sync::Arc<crate::keyspace::KeySpace>) -> usize {
        let bytes = next.read("sst/sst/zarr.json", 0, 1 << 20).unwrap();
        let meta: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        self.0
            .lock()
            .push(serde_json::from_value(meta["shape"].clone()).unwrap());
        0
    }
}

#[test]
fn an_attached_front_end_is_told_of_each_successful_reload() {
    let archive = Archive::new(1);
    let service = archive.start(ServiceOptions::inspect());
    let front = std::sync::Arc::new(Recorder::default());
    service.attach(front.clone());
    archive.add_file(1);
    service.reload().unwrap();
    std::fs::write(archive.config(), "not toml").unwrap();
    assert!(service.reload().is_err());
    assert_eq!(*front.0.lock(), [vec![6, WIDTH as u64]]);
}
