//! A second HTTP client: zarrs (its HTTP store, `zarrs_http`) reads `atlasfs serve` and agrees
//! with libnetcdf.
//!
//! Day files written with the `netcdf` crate (libnetcdf) are joined along `time` and served by
//! the release binary on a loopback port, in Zarr v3 and (with `--zarr-format 2`) v2. zarrs
//! opens the dataset's group and arrays over HTTP (GET, HEAD for sizes, byte ranges) and reads
//! each array whole; the values must be those libnetcdf reads from the files, bit for bit
//! (raw stored values: masked elements hold the `_FillValue` on both sides).

use std::path::PathBuf;
use std::sync::Arc;

use zarrs::array::Array;
use zarrs::group::Group;
use zarrs_http::HTTPStore;

#[path = "support/day_files.rs"]
mod day_files;
#[path = "support/serve.rs"]
mod serve;
use day_files::{write_day_file, DAYS_PER_FILE, NX, NY};
use serve::Server;

const FILES: usize = 3;

/// Variable `name` of every file, concatenated along `time` (libnetcdf reads).
fn expected<T: netcdf::NcTypeDescriptor + Copy>(files: &[PathBuf], name: &str) -> Vec<T> {
    files
        .iter()
        .flat_map(|path| {
            let file = netcdf::open(path).unwrap();
            file.variable(name).unwrap().get_values::<T, _>(..).unwrap()
        })
        .collect()
}

fn same_bits_f32(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn same_bits_f64(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn zarrs_reads_the_served_tree_over_http_and_agrees_with_libnetcdf() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("days");
    std::fs::create_dir(&data).unwrap();
    let files: Vec<PathBuf> = (0..FILES)
        .map(|i| {
            let path = data.join(format!("day_{i:02}.nc"));
            write_day_file(&path, i);
            path
        })
        .collect();
    let config = dir.path().join("atlasfs.toml");
    std::fs::write(
        &config,
        format!(
            "[mount]\nzarr_format = 3\n\n[cache]\ndir = {:?}\n\n[[dataset]]\nname = \"days\"\n\
             files = {:?}\nconcat_dim = \"time\"\n",
            dir.path().join("cache"),
            data.join("*.nc"),
        ),
    )
    .unwrap();
    let sst = expected::<f32>(&files, "sst");
    let dic = expected::<f64>(&files, "dic");
    let time = expected::<f64>(&files, "time");
    let nt = (FILES * DAYS_PER_FILE) as u64;

    for (format, args) in [(3, &[][..]), (2, &["--zarr-format", "2"][..])] {
        let mut server = Server::start(&config, args);
        assert!(server.ready.ends_with("(1 dataset)"), "{}", server.ready);
        let store = Arc::new(HTTPStore::new(&server.url).unwrap());
        Group::open(store.clone(), "/days")
            .unwrap_or_else(|e| panic!("v{format}: group: {e}\n{}", server.log_text()));
        let array = Array::open(store.clone(), "/days/sst").unwrap();
        assert_eq!(array.shape(), [nt, NY as u64, NX as u64], "v{format}");
        let got: Vec<f32> = array.retrieve_array_subset(&array.subset_all()).unwrap();
        assert!(same_bits_f32(&got, &sst), "v{format}: sst differs");
        let array = Array::open(store.clone(), "/days/dic").unwrap();
        let got: Vec<f64> = array.retrieve_array_subset(&array.subset_all()).unwrap();
        assert!(same_bits_f64(&got, &dic), "v{format}: dic differs");
        let array = Array::open(store.clone(), "/days/time").unwrap();
        let got: Vec<f64> = array.retrieve_array_subset(&array.subset_all()).unwrap();
        assert!(same_bits_f64(&got, &time), "v{format}: time differs");
        // A missing array is missing, not an error.
        assert!(Array::open(store, "/days/nope").is_err());
        let status = server.stop();
        assert!(
            status.is_some_and(|s| s.success()),
            "v{format}: {status:?}\n{}",
            server.log_text()
        );
    }
}
