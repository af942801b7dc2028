//! Day files for the view tests: `time` (days since 2000-01-01, `DAYS_PER_FILE` a file),
//! descending `lat`, `lon`, float32 `sst` with `_FillValue` -999 and a masked corner, float64
//! `dic` and `alt`; written with the `netcdf` crate (libnetcdf).

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::path::Path;

/// Days in each file.
pub(crate) const DAYS_PER_FILE: usize = 2;
/// Latitudes.
pub(crate) const NY: usize = 6;
/// Longitudes.
pub(crate) const NX: usize = 10;

/// Day file `i`: `sst(time, lat, lon)` float32 with `_FillValue` -999 and a masked corner,
/// `dic` and `alt` float64, latitudes descending.
pub(crate) fn write_day_file(path: &Path, i: usize) {
    write_day_file_shifted(path, i, 0.0);
}

/// [`write_day_file`] with every `sst` value raised by `shift`.
pub(crate) fn write_day_file_shifted(path: &Path, i: usize, shift: f32) {
    let mut file = netcdf::create(path).unwrap();
    file.add_unlimited_dimension("time").unwrap();
    file.add_dimension("lat", NY).unwrap();
    file.add_dimension("lon", NX).unwrap();
    let days: Vec<f64> = (0..DAYS_PER_FILE)
        .map(|d| (i * DAYS_PER_FILE + d) as f64)
        .collect();
    let mut time = file.add_variable::<f64>("time", &["time"]).unwrap();
    time.put_attribute("units", "days since 2000-01-01")
        .unwrap();
    time.put_values(&days, ..).unwrap();
    let lat: Vec<f32> = (0..NY).map(|y| 50.0 - 10.0 * y as f32).collect();
    let mut var = file.add_variable::<f32>("lat", &["lat"]).unwrap();
    var.put_values(&lat, ..).unwrap();
    let lon: Vec<f32> = (0..NX).map(|x| 5.0 + 10.0 * x as f32).collect();
    let mut var = file.add_variable::<f32>("lon", &["lon"]).unwrap();
    var.put_values(&lon, ..).unwrap();
    let n = DAYS_PER_FILE * NY * NX;
    let sst: Vec<f32> = (0..n)
        .map(|k| {
            let (y, x) = ((k / NX) % NY, k % NX);
            if y < 2 && x < 3 {
                -999.0
            } else {
                270.0 + (k * 7 % 31) as f32 * 0.37 + i as f32 + shift
            }
        })
        .collect();
    let mut var = file
        .add_variable::<f32>("sst", &["time", "lat", "lon"])
        .unwrap();
    var.set_fill_value(-999.0f32).unwrap();
    var.put_values(&sst, ..).unwrap();
    for (name, scale) in [("dic", 2.5), ("alt", 1.5)] {
        let values: Vec<f64> = (0..n).map(|k| (k as f64).sin() * scale + 2000.0).collect();
        let mut var = file
            .add_variable::<f64>(name, &["time", "lat", "lon"])
            .unwrap();
        var.put_values(&values, ..).unwrap();
    }
}
