//! Unit tests of the separable weights and their application. Expected weights are written out
//! from the overlap formulas; applications are checked against exact integrals, linear
//! functions and a naive quadruple loop over the definition of the NaN rule.

use super::*;
use crate::operators::kernels::test_rng::Rng;

const LAT: AxisKind = AxisKind::Latitude;
const LON: AxisKind = AxisKind::Longitude;
const PLANAR: AxisKind = AxisKind::Planar;

fn sin(deg: f64) -> f64 {
    deg.to_radians().sin()
}

/// `len` values uniform in `[lo, hi)`, each NaN with probability `nan_fraction`.
pub(crate) fn noisy_field(
    rng: &mut Rng,
    len: usize,
    nan_fraction: f64,
    lo: f64,
    hi: f64,
) -> Vec<f64> {
    (0..len)
        .map(|_| {
            if rng.uniform(0.0, 1.0) < nan_fraction {
                f64::NAN
            } else {
                rng.uniform(lo, hi)
            }
        })
        .collect()
}

/// The rows `ys` × columns `xs` of a C-order field `width` values wide.
pub(crate) fn window_of<T: Copy>(
    field: &[T],
    width: usize,
    ys: &Range<usize>,
    xs: &Range<usize>,
) -> Vec<T> {
    ys.clone()
        .flat_map(|r| xs.clone().map(move |c| field[r * width + c]))
        .collect()
}

fn regular(kind: AxisKind, start: f64, stop: f64, step: f64) -> Axis {
    Axis::regular("a", kind, start, stop, step).unwrap()
}

fn assert_row(weights: &AxisWeights, target: usize, expected: &[(u32, f64)]) {
    let row = weights.row(target);
    assert_eq!(row.len(), expected.len(), "row {target}: {row:?}");
    for (got, want) in row.iter().zip(expected) {
        assert_eq!(got.0, want.0, "row {target}: {row:?}");
        assert!(
            (got.1 - want.1).abs() < 1e-14,
            "row {target}: {row:?} != {expected:?}"
        );
    }
}

/// Random cell edges from `lo` to `hi` (both included), `cells` cells of uneven widths.
fn random_edges(rng: &mut Rng, lo: f64, hi: f64, cells: usize) -> Vec<f64> {
    let mut inner: Vec<f64> = (0..cells - 1).map(|_| rng.uniform(lo, hi)).collect();
    inner.sort_by(f64::total_cmp);
    let mut edges = vec![lo];
    edges.extend(inner);
    edges.push(hi);
    edges
}

fn axis_from_edges(kind: AxisKind, edges: &[f64], descending: bool) -> Axis {
    let mut bounds: Vec<[f64; 2]> = edges.windows(2).map(|w| [w[0], w[1]]).collect();
    if descending {
        bounds.reverse();
    }
    let centres = bounds.iter().map(|b| (b[0] + b[1]) / 2.0).collect();
    Axis::with_bounds("a", kind, centres, bounds).unwrap()
}

/// Regrids a whole field in one call.
fn apply_whole(y: &AxisWeights, x: &AxisWeights, source: &[f64], t: f64) -> Vec<f64> {
    let mut out = vec![0.0; y.len() * x.len()];
    apply(
        y,
        x,
        0..y.len(),
        0..x.len(),
        0..y.source_len(),
        0..x.source_len(),
        source,
        t,
        &mut out,
    );
    out
}

#[test]
fn conservative_latitude_weights_are_sine_overlaps() {
    let source = regular(LAT, -10.0, 10.0, 1.0);
    let target = regular(LAT, 0.0, 5.0, 2.5);
    let w = conservative(&source, &target);
    assert_eq!(w.len(), 3);
    let full = sin(1.25) - sin(-1.25);
    // Source cell k (centre k − 10) spans [k − 10.5, k − 9.5].
    assert_row(
        &w,
        0,
        &[
            (9, (sin(-0.5) - sin(-1.25)) / full),
            (10, (sin(0.5) - sin(-0.5)) / full),
            (11, (sin(1.25) - sin(0.5)) / full),
        ],
    );
    let full = sin(3.75) - sin(1.25);
    assert_row(
        &w,
        1,
        &[
            (11, (sin(1.5) - sin(1.25)) / full),
            (12, (sin(2.5) - sin(1.5)) / full),
            (13, (sin(3.5) - sin(2.5)) / full),
            (14, (sin(3.75) - sin(3.5)) / full),
        ],
    );
}

#[test]
fn conservative_longitudes_wrap_between_conventions() {
    let source = regular(LON, 0.0, 359.0, 1.0);
    let target = regular(LON, -180.0, 178.0, 2.0);
    let w = conservative(&source, &target);
    assert_eq!(w.len(), 180);
    // [-181, -179] is [179, 181]: half of cell 179, cell 180, half of cell 181.
    assert_row(&w, 0, &[(179, 0.25), (180, 0.5), (181, 0.25)]);
    // [-1, 1]: half of cell 359, cell 0, half of cell 1.
    assert_row(&w, 90, &[(0, 0.5), (1, 0.25), (359, 0.25)]);
    for t in 0..w.len() {
        let total: f64 = w.row(t).iter().map(|e| e.1).sum();
        assert!((total - 1.0).abs() < 1e-14);
    }
    // The seam row wraps, so its window is the whole axis; a row inside does not.
    assert_eq!(w.source_span(90..91), 0..360);
    assert_eq!(w.source_span(10..12), 199..204);
    assert_eq!(w.source_span(5..5), 0..0);
}

#[test]
fn conservative_rows_outside_the_source_are_partial_or_empty() {
    let source = regular(PLANAR, 0.0, 9.0, 1.0);
    let target = regular(PLANAR, -10.0, 10.0, 4.0); // cells [c − 2, c + 2]
    let w = conservative(&source, &target);
    assert!(w.row(0).is_empty()); // [-12, -8]
    assert!(w.row(1).is_empty()); // [-8, -4]
    assert_row(&w, 2, &[(0, 0.125)]); // [-4, 0] ∩ [-0.5, 0.5]
    assert_row(
        &w,
        4,
        &[(4, 0.125), (5, 0.25), (6, 0.25), (7, 0.25), (8, 0.125)],
    );
    assert_row(&w, 5, &[(8, 0.125), (9, 0.25)]); // [8, 12] ∩ [7.5, 9.5]
    let y = AxisWeights::from_rows(1, [vec![(0, 1.0)]]);
    let run = |t: f64| {
        let mut out = vec![0.0f64; 6];
        apply(&y, &w, 0..1, 0..6, 0..1, 0..10, &[1.0; 10], t, &mut out);
        out
    };
    let out = run(0.5);
    assert!(out[0].is_nan() && out[1].is_nan() && out[2].is_nan());
    assert_eq!(out[4], 1.0);
    assert!(out[5].is_nan()); // valid 0.375 < 0.5
    let out = run(0.7);
    assert!(out[2].is_nan()); // valid 0.125 < 0.3
    assert_eq!(out[5], 1.0);
}

#[test]
fn pole_centred_cells_cover_the_sphere() {
    let source = regular(LAT, -90.0, 90.0, 0.5);
    assert_eq!(source.bounds()[360], [89.75, 90.0]);
    let target = regular(LAT, 90.0, -90.0, -1.0);
    let w = conservative(&source, &target);
    let full = sin(90.0) - sin(89.5);
    assert_row(
        &w,
        0,
        &[
            (359, (sin(89.75) - sin(89.5)) / full),
            (360, (sin(90.0) - sin(89.75)) / full),
        ],
    );
    for t in 0..w.len() {
        let total: f64 = w.row(t).iter().map(|e| e.1).sum();
        assert!((total - 1.0).abs() < 1e-12, "row {t}: {total}");
    }
}

/// Σ value × area over the sphere, areas from the axes' bounds.
fn integral(lat: &Axis, lon: &Axis, values: &[f64]) -> f64 {
    let mut total = 0.0;
    for (i, yb) in lat.bounds().iter().enumerate() {
        for (j, xb) in lon.bounds().iter().enumerate() {
            let area = (xb[1] - xb[0]).to_radians() * (sin(yb[1]) - sin(yb[0]));
            total += values[i * lon.len() + j] * area;
        }
    }
    total
}

#[test]
fn conservative_regridding_conserves_the_area_integral() {
    let mut rng = Rng(7);
    for case in 0..6 {
        let descending = case % 2 == 1;
        let lat = axis_from_edges(LAT, &random_edges(&mut rng, -90.0, 90.0, 37), descending);
        let lon = axis_from_edges(LON, &random_edges(&mut rng, 0.0, 360.0, 53), false);
        assert!(lon.is_periodic());
        let (tlat, tlon) = if case < 3 {
            (
                regular(LAT, -90.0, 90.0, 3.0),
                regular(LON, -180.0, 177.0, 3.0),
            )
        } else {
            let tlat = axis_from_edges(LAT, &random_edges(&mut rng, -90.0, 90.0, 11), !descending);
            let tlon = axis_from_edges(LON, &random_edges(&mut rng, -180.0, 180.0, 17), false);
            (tlat, tlon)
        };
        let field: Vec<f64> = (0..lat.len() * lon.len())
            .map(|_| rng.uniform(-5.0, 20.0))
            .collect();
        let y = conservative(&lat, &tlat);
        let x = conservative(&lon, &tlon);
        let out = apply_whole(&y, &x, &field, 0.5);
        let before = integral(&lat, &lon, &field);
        let after = integral(&tlat, &tlon, &out);
        assert!(
            ((after - before) / before).abs() < 1e-12,
            "case {case}: {before} -> {after}"
        );
    }
}

#[test]
fn bilinear_reproduces_a_plane() {
    let mut rng = Rng(3);
    let lat_edges = random_edges(&mut rng, -80.0, 80.0, 40);
    let lat = axis_from_edges(LAT, &lat_edges, true);
    let lon = Axis::from_centres(
        "lon",
        LON,
        (0..50)
            .map(|i| 100.0 + 2.0 * i as f64 + rng.uniform(0.0, 1.0))
            .collect(),
    )
    .unwrap();
    let plane = |y: f64, x: f64| 3.0 - 0.25 * y + 0.125 * x;
    let field: Vec<f64> = lat
        .centres()
        .iter()
        .flat_map(|&y| lon.centres().iter().map(move |&x| plane(y, x)))
        .collect();
    let tlat = regular(LAT, -85.0, 85.0, 0.7);
    // 101 to 199 east, written west of Greenwich: the weights compare modulo 360.
    let tlon = regular(LON, 101.0 - 360.0, 199.0 - 360.0, 0.3);
    let y = linear(&lat, &tlat);
    let x = linear(&lon, &tlon);
    let out = apply_whole(&y, &x, &field, 0.0);
    let sorted = lat.sorted_centres();
    let (lat_lo, lat_hi) = (sorted[0], sorted[sorted.len() - 1]);
    let (lon_lo, lon_hi) = (lon.centres()[0], lon.centres()[49]);
    let mut inside = 0;
    for (i, &ty) in tlat.centres().iter().enumerate() {
        for (j, &tx) in tlon.centres().iter().enumerate() {
            let got = out[i * tlon.len() + j];
            let tx = tx + 360.0;
            if ty < lat_lo || ty > lat_hi || tx < lon_lo || tx > lon_hi {
                assert!(got.is_nan(), "({ty}, {tx}) is outside: {got}");
            } else {
                inside += 1;
                assert!((got - plane(ty, tx)).abs() < 1e-12, "({ty}, {tx}): {got}");
            }
        }
    }
    assert!(inside > 10_000);
}

#[test]
fn linear_rows_at_ends_and_across_the_seam() {
    let source = Axis::from_centres("x", PLANAR, vec![0.0, 1.0, 3.0]).unwrap();
    let target = Axis::from_centres("x", PLANAR, vec![-0.5, 0.0, 2.5, 3.0, 3.5]).unwrap();
    let w = linear(&source, &target);
    assert!(w.row(0).is_empty());
    assert_row(&w, 1, &[(0, 1.0)]);
    assert_row(&w, 2, &[(1, 0.25), (2, 0.75)]);
    assert_row(&w, 3, &[(2, 1.0)]);
    assert!(w.row(4).is_empty());

    let periodic = regular(LON, 0.0, 359.0, 1.0);
    let target = Axis::from_centres("lon", LON, vec![-0.25, 0.0, 359.5, 540.5]).unwrap();
    let w = linear(&periodic, &target);
    assert_row(&w, 0, &[(0, 0.75), (359, 0.25)]);
    assert_row(&w, 1, &[(0, 1.0)]);
    assert_row(&w, 2, &[(0, 0.5), (359, 0.5)]);
    assert_row(&w, 3, &[(180, 0.5), (181, 0.5)]);

    // A half-turn source is not periodic: only its own span, in either convention.
    let west = regular(LON, -180.0, 0.0, 1.0);
    let target = Axis::from_centres("lon", LON, vec![90.0, 359.5]).unwrap();
    let w = linear(&west, &target);
    assert!(w.row(0).is_empty());
    assert_row(&w, 1, &[(179, 0.5), (180, 0.5)]);
}

#[test]
fn nearest_ties_take_the_lower_coordinate() {
    let target = Axis::from_centres("x", PLANAR, vec![-0.1, 0.5, 1.5, 1.6, 3.0, 3.1]).unwrap();
    let up = Axis::from_centres("x", PLANAR, vec![0.0, 1.0, 2.0, 3.0]).unwrap();
    let w = nearest(&up, &target);
    assert!(w.row(0).is_empty());
    assert_row(&w, 1, &[(0, 1.0)]);
    assert_row(&w, 2, &[(1, 1.0)]);
    assert_row(&w, 3, &[(2, 1.0)]);
    assert_row(&w, 4, &[(3, 1.0)]);
    assert!(w.row(5).is_empty());
    // A descending source: coordinate 0 is file index 3, and the tie still goes to it.
    let down = Axis::from_centres("x", PLANAR, vec![3.0, 2.0, 1.0, 0.0]).unwrap();
    let w = nearest(&down, &target);
    assert_row(&w, 1, &[(3, 1.0)]);
    assert_row(&w, 2, &[(2, 1.0)]);

    let periodic = regular(LON, 0.0, 359.0, 1.0);
    let target = Axis::from_centres("lon", LON, vec![-180.0, 359.5, 359.6]).unwrap();
    let w = nearest(&periodic, &target);
    assert_row(&w, 0, &[(180, 1.0)]);
    assert_row(&w, 1, &[(359, 1.0)]);
    assert_row(&w, 2, &[(0, 1.0)]);
}

/// The NaN rule straight from its definition, over the whole grid.
fn naive(y: &AxisWeights, x: &AxisWeights, source: &[f64], t: f64) -> Vec<f64> {
    let t = t.clamp(1e-6, 1.0 - 1e-6);
    let width = x.source_len();
    let mut out = Vec::new();
    for i in 0..y.len() {
        for j in 0..x.len() {
            let (mut sum, mut valid) = (0.0, 0.0);
            for &(r, wy) in y.row(i) {
                for &(c, wx) in x.row(j) {
                    let v = source[r as usize * width + c as usize];
                    if !v.is_nan() {
                        sum += wy * wx * v;
                        valid += wy * wx;
                    }
                }
            }
            let empty = y.row(i).is_empty() || x.row(j).is_empty();
            out.push(if empty || valid < 1.0 - t {
                f64::NAN
            } else {
                sum / valid
            });
        }
    }
    out
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * a.abs().max(1.0)
}

#[test]
fn chunked_application_with_nans_matches_the_definition() {
    let mut rng = Rng(11);
    let lat = axis_from_edges(LAT, &random_edges(&mut rng, -60.0, 70.0, 45), true);
    let lon = regular(LON, 0.0, 358.0, 2.0);
    let tlat = regular(LAT, -90.0, 90.0, 5.0);
    let tlon = regular(LON, -180.0, 175.0, 5.0);
    let field = noisy_field(&mut rng, lat.len() * lon.len(), 0.25, -1.0, 1.0);
    let methods: [fn(&Axis, &Axis) -> AxisWeights; 3] = [conservative, linear, nearest];
    for method in methods {
        let (y, x) = (method(&lat, &tlat), method(&lon, &tlon));
        for t in [0.0, 0.3, 0.5, 0.9, 1.0] {
            let expected = naive(&y, &x, &field, t);
            assert!(expected.iter().any(|v| v.is_nan()) && expected.iter().any(|v| !v.is_nan()));
            let whole = apply_whole(&y, &x, &field, t);
            for (a, b) in whole.iter().zip(&expected) {
                assert!(same(*a, *b), "{a} != {b} (t = {t})");
            }
            // Output chunks of 7 × 5 cells, each from its own source window.
            for ty0 in (0..y.len()).step_by(7) {
                for tx0 in (0..x.len()).step_by(5) {
                    let ty = ty0..(ty0 + 7).min(y.len());
                    let tx = tx0..(tx0 + 5).min(x.len());
                    let (ys, xs) = (y.source_span(ty.clone()), x.source_span(tx.clone()));
                    let window = window_of(&field, lon.len(), &ys, &xs);
                    let mut out = vec![0.0; ty.len() * tx.len()];
                    apply(&y, &x, ty.clone(), tx.clone(), ys, xs, &window, t, &mut out);
                    for (k, got) in out.iter().enumerate() {
                        let (i, j) = (ty.start + k / tx.len(), tx.start + k % tx.len());
                        let want = expected[i * x.len() + j];
                        assert!(same(*got, want), "({i}, {j}): {got} != {want}");
                    }
                }
            }
        }
    }
}

#[test]
fn thresholds_are_clipped() {
    // One target cell over two source cells, one of them NaN: valid = 0.5.
    let source = regular(PLANAR, 0.0, 1.0, 1.0);
    let target = regular(PLANAR, 0.5, 0.5, 2.0);
    let x = conservative(&source, &target);
    let y = AxisWeights::from_rows(1, [vec![(0, 1.0)]]);
    let run = |t: f64, values: [f32; 2]| {
        let mut out = [0.0f32];
        apply(&y, &x, 0..1, 0..1, 0..1, 0..2, &values, t, &mut out);
        out[0]
    };
    assert!(run(0.0, [f32::NAN, 4.0]).is_nan());
    assert!(run(f64::NAN, [f32::NAN, 4.0]).is_nan());
    assert!(run(0.49, [f32::NAN, 4.0]).is_nan());
    assert_eq!(run(0.5, [f32::NAN, 4.0]), 4.0);
    assert_eq!(run(1.0, [f32::NAN, 4.0]), 4.0);
    assert!(run(1.0, [f32::NAN, f32::NAN]).is_nan());
    assert_eq!(run(0.0, [2.0, 4.0]), 3.0);
}

#[test]
fn weights_round_trip_through_bytes() {
    let w = conservative(
        &regular(LAT, -90.0, 90.0, 0.5),
        &regular(LAT, -90.0, 90.0, 1.5),
    );
    let bytes = w.to_bytes();
    assert_eq!(AxisWeights::from_bytes(&bytes).unwrap(), w);
    assert!(matches!(
        AxisWeights::from_bytes(&bytes[..bytes.len() / 2]),
        Err(RegridError::Weights(_))
    ));
    let broken = AxisWeights {
        source_len: 2,
        offsets: vec![0, 1],
        entries: vec![(5, 1.0)],
    };
    assert!(AxisWeights::from_bytes(&broken.to_bytes()).is_err());
    let broken = AxisWeights {
        source_len: 2,
        offsets: vec![0, 3],
        entries: vec![(1, 1.0)],
    };
    assert!(AxisWeights::from_bytes(&broken.to_bytes()).is_err());
}
