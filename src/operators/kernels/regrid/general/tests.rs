//! Tests of the weights for grids that are not separable: against exact spherical areas, PROJ-projected targets and linear fields.

use super::*;
use crate::operators::kernels::test_rng::Rng;
use std::collections::HashMap;

/// Centres and bounds of a regular axis.
fn axis(start: f64, step: f64, n: usize) -> (Vec<f64>, Vec<[f64; 2]>) {
    let b: Vec<[f64; 2]> = (0..n)
        .map(|i| [start + step * i as f64, start + step * (i + 1) as f64])
        .collect();
    (b.iter().map(|b| 0.5 * (b[0] + b[1])).collect(), b)
}

fn all(grid: &CellGrid) -> Vec<usize> {
    (0..grid.centres.len()).collect()
}

/// Triplets as a map (target, source) -> weight.
fn as_map(w: &[(u32, u32, f64)]) -> HashMap<(u32, u32), f64> {
    w.iter().map(|&(t, s, w)| ((t, s), w)).collect()
}

/// Lon/lat to lon/lat: every weight equals the exact latitude-circle overlap over the exact
/// target area, across the antimeridian, for a rectilinear and a curvilinear source.
#[test]
fn lonlat_conservative_matches_exact_spherical_areas() {
    let (sy, syb) = axis(30.0, 1.0, 40);
    let (sx, sxb) = axis(160.0, 1.0, 40); // 160 .. 200 (= -160)
    let wrapped: Vec<f64> = sx.iter().map(|&x| projection_wrap(x)).collect();
    let wrapped_b: Vec<[f64; 2]> = sxb
        .iter()
        .map(|b| [projection_wrap(b[0]), projection_wrap(b[0]) + 1.0])
        .collect();
    let source = CellGrid::rectilinear(&sy, &syb, &wrapped, &wrapped_b, Space::LonLat);
    let (ty, tyb) = axis(31.3, 1.7, 20);
    let (tx, txb) = axis(161.2, 2.3, 15);
    let target = CellGrid::rectilinear(&ty, &tyb, &tx, &txb, Space::LonLat);
    let index = SourceIndex::new(&source);
    let got = as_map(&weights(
        Method::Conservative,
        &source,
        &index,
        &target,
        &all(&target),
    ));
    let mut expected = HashMap::new();
    for (tj, tb) in tyb.iter().enumerate() {
        for (ti, ub) in txb.iter().enumerate() {
            let t_area = polygon::lonlat_rect_area(ub[0], ub[1], tb[0], tb[1]);
            for (sj, sb) in syb.iter().enumerate() {
                for (si, vb) in sxb.iter().enumerate() {
                    let (x0, x1) = (ub[0].max(vb[0]), ub[1].min(vb[1]));
                    let (y0, y1) = (tb[0].max(sb[0]), tb[1].min(sb[1]));
                    if x1 > x0 && y1 > y0 {
                        let w = polygon::lonlat_rect_area(x0, x1, y0, y1) / t_area;
                        expected.insert(((tj * 15 + ti) as u32, (sj * 40 + si) as u32), w);
                    }
                }
            }
        }
    }
    assert_eq!(got.len(), expected.len());
    for (key, w) in &expected {
        let g = got.get(key).copied().unwrap_or(f64::NAN);
        assert!((g - w).abs() < 1e-12, "{key:?}: {g} vs {w}");
    }
    // The same source as a curvilinear grid without bounds (corners from centres).
    let (lat, lon): (Vec<f64>, Vec<f64>) = source.centres.iter().map(|c| (c[1], c[0])).unzip();
    let curvi = CellGrid::curvilinear([40, 40], &lat, &lon, None).unwrap();
    let index = SourceIndex::new(&curvi);
    let got2 = as_map(&weights(
        Method::Conservative,
        &curvi,
        &index,
        &target,
        &all(&target),
    ));
    assert_eq!(got2.len(), expected.len());
    for (key, w) in &expected {
        assert!(
            (got2[key] - w).abs() < 1e-9,
            "{key:?}: {} vs {w}",
            got2[key]
        );
    }
}

fn projection_wrap(lon: f64) -> f64 {
    super::super::projection::wrap_lon(lon)
}

/// The source used by the polar tests: 1° lon/lat cells south of 60°S, seen in EPSG:3031.
fn polar_case() -> (CellGrid, CellGrid, Projection) {
    let (sy, syb) = axis(-90.0, 1.0, 30);
    let (sx, sxb) = axis(-180.0, 1.0, 360);
    let lonlat = CellGrid::rectilinear(&sy, &syb, &sx, &sxb, Space::LonLat);
    let p3031 = Projection::from_epsg("EPSG:3031").unwrap();
    let source = lonlat.reproject(&Projection::LonLat, &p3031);
    let (t, tb) = axis(-4_000_000.0, 50_000.0, 160);
    let target = CellGrid::rectilinear(&t, &tb, &t, &tb, Space::Plane);
    (source, target, p3031)
}

/// EPSG:3031 50 km target from a 1° lon/lat source: constant fields stay constant where
/// the source covers the cell, cells beyond the source get no weights, and the area
/// integral of each source cell inside the target domain is conserved.
#[test]
fn polar_stereographic_target_conserves() {
    let (source, target, p3031) = polar_case();
    assert_eq!(source.space, Space::Plane);
    let index = SourceIndex::new(&source);
    let targets = all(&target);
    let w = weights(Method::Conservative, &source, &index, &target, &targets);
    let mut sums = vec![0.0; targets.len()];
    let mut received = vec![0.0; source.centres.len()];
    for &(t, s, w) in &w {
        sums[t as usize] += w;
        received[s as usize] += w * polygon::area(&target.corners[t as usize]);
    }
    let (mut inside, mut outside) = (0, 0);
    for (t, corners) in target.corners.iter().enumerate() {
        let lats: Vec<f64> = corners
            .iter()
            .map(|c| p3031.inverse(c[0], c[1]).1)
            .collect();
        if lats.iter().all(|&l| l < -60.05) {
            assert!(
                (sums[t] - 1.0).abs() < 1e-9,
                "cell {t}: weights sum to {}",
                sums[t]
            );
            inside += 1;
        } else if lats.iter().all(|&l| l > -59.95) {
            assert_eq!(sums[t], 0.0, "cell {t} beyond the source got weights");
            outside += 1;
        }
    }
    assert!(inside > 10_000 && outside > 2_000, "{inside} {outside}");
    let limit = 4_000_000.0 - 1.0;
    let mut checked = 0;
    for (s, corners) in source.corners.iter().enumerate() {
        if corners
            .iter()
            .all(|c| c[0].abs() < limit && c[1].abs() < limit)
        {
            let a = polygon::area(corners);
            assert!(
                (received[s] / a - 1.0).abs() < 1e-9,
                "source {s}: {} vs {a}",
                received[s]
            );
            checked += 1;
        }
    }
    assert!(checked > 9_000, "{checked}");
}

/// Bilinear in the target plane reproduces a field linear in x/y; nearest picks the
/// nearest centre and leaves cells beyond the source empty.
#[test]
fn polar_stereographic_bilinear_and_nearest() {
    let (source, target, p3031) = polar_case();
    let index = SourceIndex::new(&source);
    assert!(index.periodic);
    let targets = all(&target);
    let f = |p: Point| 2e-6 * p[0] - 3e-6 * p[1] + 5.0;
    let w = weights(Method::Bilinear, &source, &index, &target, &targets);
    let mut value = vec![0.0; targets.len()];
    let mut sum = vec![0.0; targets.len()];
    for &(t, s, w) in &w {
        value[t as usize] += w * f(source.centres[s as usize]);
        sum[t as usize] += w;
    }
    let mut covered = 0;
    for (t, c) in target.centres.iter().enumerate() {
        let lat = p3031.inverse(c[0], c[1]).1;
        if sum[t] > 0.0 {
            assert!((sum[t] - 1.0).abs() < 1e-12);
            assert!(
                (value[t] - f(*c)).abs() < 1e-6,
                "{t}: {} vs {}",
                value[t],
                f(*c)
            );
            covered += 1;
        } else {
            // Only beyond the outermost centres (60.5°S, joined by chords that cut up to
            // 0.002° inside the circle) or inside the innermost ring.
            assert!(
                !(-89.5 + 1e-6..=-60.5 - 2e-3).contains(&lat),
                "{t} at {lat} has no weights"
            );
        }
    }
    assert!(covered > 10_000);
    let w = weights(Method::Nearest, &source, &index, &target, &targets);
    let got: HashMap<u32, u32> = w.iter().map(|&(t, s, _)| (t, s)).collect();
    for (t, c) in target.centres.iter().enumerate() {
        let lat = p3031.inverse(c[0], c[1]).1;
        match got.get(&(t as u32)) {
            Some(&s) => {
                let d = distance(*c, source.centres[s as usize], Space::Plane);
                let best = source
                    .centres
                    .iter()
                    .map(|&x| distance(*c, x, Space::Plane))
                    .fold(f64::INFINITY, f64::min);
                assert_eq!(d, best);
                // Within 1.1 circumradius (~0.6° of latitude here) of the source edge.
                assert!(lat < -59.3, "{t} at {lat}");
            }
            None => assert!(lat > -60.0, "{t} at {lat} has no nearest"),
        }
    }
}

/// Bilinear on lon/lat grids is linear interpolation in lon and lat (xarray.interp), also
/// across the antimeridian of a global grid.
#[test]
fn lonlat_bilinear_is_linear_in_lon_lat() {
    let (sy, syb) = axis(-90.0, 2.0, 90);
    let (sx, sxb) = axis(-180.0, 2.5, 144);
    let source = CellGrid::rectilinear(&sy, &syb, &sx, &sxb, Space::LonLat);
    let index = SourceIndex::new(&source);
    let mut rng = Rng(3);
    let pts: Vec<Point> = (0..500)
        .map(|_| [rng.uniform(-180.0, 180.0), rng.uniform(-88.0, 88.0)])
        .collect();
    let target = CellGrid {
        shape: [1, pts.len()],
        centres: pts.clone(),
        corners: vec![[[f64::NAN; 2]; 4]; pts.len()],
        space: Space::LonLat,
    };
    let w = weights(Method::Bilinear, &source, &index, &target, &all(&target));
    // A field linear in latitude and in a longitude that is periodic piecewise: check
    // the latitude and the unwrapped longitude interpolate exactly.
    let mut lat = vec![0.0; pts.len()];
    let mut lon = vec![0.0; pts.len()];
    for &(t, s, w) in &w {
        let c = source.centres[s as usize];
        lat[t as usize] += w * c[1];
        lon[t as usize] += w * polygon::unwrap_lon(c[0], pts[t as usize][0]);
    }
    for (t, p) in pts.iter().enumerate() {
        assert!(
            (lat[t] - p[1]).abs() < 1e-9 && (lon[t] - p[0]).abs() < 1e-9,
            "{p:?}: {} {}",
            lon[t],
            lat[t]
        );
    }
}

#[test]
fn inverse_bilinear_on_a_skewed_quad() {
    let q = [[0.0, 0.0], [4.0, 1.0], [5.0, 5.0], [-1.0, 3.0]];
    for (u, v) in [(0.2, 0.7), (0.0, 0.0), (1.0, 0.5), (0.9, 0.1)] {
        let p = [0, 1].map(|k| {
            (1.0 - u) * (1.0 - v) * q[0][k]
                + u * (1.0 - v) * q[1][k]
                + u * v * q[2][k]
                + (1.0 - u) * v * q[3][k]
        });
        let (gu, gv) = inverse_bilinear(q, p).unwrap();
        assert!((gu - u).abs() < 1e-12 && (gv - v).abs() < 1e-12);
    }
    assert!(inverse_bilinear(q, [6.0, 6.0]).is_none());
}

#[test]
fn bad_grids_are_errors() {
    assert!(CellGrid::curvilinear([2, 2], &[0.0; 3], &[0.0; 4], None).is_err());
    assert!(CellGrid::curvilinear([1, 4], &[0.0; 4], &[0.0; 4], None).is_err());
    assert!(
        CellGrid::curvilinear([2, 2], &[0.0; 4], &[0.0; 4], Some((&[0.0; 15], &[0.0; 16])))
            .is_err()
    );
    let g = CellGrid::curvilinear(
        [1, 1],
        &[10.0],
        &[20.0],
        Some((&[9.0, 9.0, 11.0, 11.0], &[19.0, 21.0, 21.0, 19.0])),
    )
    .unwrap();
    assert_eq!(
        g.corners[0],
        [[19.0, 9.0], [21.0, 9.0], [21.0, 11.0], [19.0, 11.0]]
    );
}

/// Timing of the sizing case: 0.1° (3600×1800) to 0.25° (1440×720), conservative,
/// per 1440×90 output chunk in parallel. Run with `--ignored --nocapture`.
#[test]
#[ignore = "timing, run by hand"]
fn timing_conservative_tenth_degree_to_quarter_degree() {
    let t0 = std::time::Instant::now();
    let (sy, syb) = axis(-90.0, 0.1, 1800);
    let (sx, sxb) = axis(-180.0, 0.1, 3600);
    let source = CellGrid::rectilinear(&sy, &syb, &sx, &sxb, Space::LonLat);
    let index = SourceIndex::new(&source);
    let t1 = std::time::Instant::now();
    let (ty, tyb) = axis(-90.0, 0.25, 720);
    let (tx, txb) = axis(-180.0, 0.25, 1440);
    let target = CellGrid::rectilinear(&ty, &tyb, &tx, &txb, Space::LonLat);
    let chunks: Vec<Vec<usize>> = (0..8)
        .map(|c| (c * 90 * 1440..(c + 1) * 90 * 1440).collect())
        .collect();
    let (n, worst) = chunks
        .par_iter()
        .map(|chunk| {
            let w = weights(Method::Conservative, &source, &index, &target, chunk);
            let mut sums = vec![0.0; chunk.len()];
            for &(t, _, w) in &w {
                sums[t as usize] += w;
            }
            (
                w.len(),
                sums.iter().map(|s| (s - 1.0).abs()).fold(0.0, f64::max),
            )
        })
        .reduce(|| (0, 0.0), |a, b| (a.0 + b.0, a.1.max(b.1)));
    let t2 = std::time::Instant::now();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("")
        .to_owned();
    eprintln!(
        "grid+index {:.2} s, weights {:.2} s, {n} triplets, worst |sum-1| {worst:e}, {hwm}",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64()
    );
    assert!(worst < 1e-9);
}
