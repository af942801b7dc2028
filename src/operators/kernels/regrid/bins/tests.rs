//! Unit tests of binning statistics: bins written out by hand for the edge rules, statistics
//! against a naive gather by the membership definition and the textbook formulas.

use super::*;
use crate::operators::kernels::regrid::separable::tests::{noisy_field, window_of};
use crate::operators::kernels::test_rng::Rng;

const LAT: AxisKind = AxisKind::Latitude;
const LON: AxisKind = AxisKind::Longitude;
const PLANAR: AxisKind = AxisKind::Planar;

fn regular(kind: AxisKind, start: f64, stop: f64, step: f64) -> Axis {
    Axis::regular("a", kind, start, stop, step).unwrap()
}

#[test]
fn a_centre_on_a_bound_belongs_to_the_cell_above() {
    let target = regular(PLANAR, 1.0, 9.0, 2.0); // [0, 2), [2, 4), ..., [8, 10)
    let up = regular(PLANAR, 0.0, 9.0, 1.0);
    assert_eq!(bins(&up, &target), vec![0..2, 2..4, 4..6, 6..8, 8..10]);
    let down = regular(PLANAR, 9.0, 0.0, -1.0); // coordinate c at file index 9 − c
    assert_eq!(bins(&down, &target), vec![8..10, 6..8, 4..6, 2..4, 0..2]);
    let beyond = regular(PLANAR, 11.0, 13.0, 2.0);
    assert_eq!(bins(&up, &beyond), vec![0..0, 0..0]);
}

#[test]
fn the_north_pole_centre_falls_in_the_last_cell() {
    let source = regular(LAT, -90.0, 90.0, 1.0);
    let target = regular(LAT, -89.0, 89.0, 2.0); // [-90, -88), ..., [88, 90]
    let b = bins(&source, &target);
    assert_eq!(b[0], 0..2);
    assert_eq!(b[89], 178..181);
    assert_eq!(b.iter().map(|r| r.len()).sum::<usize>(), 181);
}

#[test]
fn bins_across_the_seam_run_past_the_end() {
    let source = regular(LON, 0.0, 359.5, 0.5);
    let target = regular(LON, -180.0, 179.0, 1.0); // [c − 0.5, c + 0.5)
    let b = bins(&source, &target);
    assert_eq!(b[0], 359..361); // [179.5, 180.5)
    assert_eq!(b[180], 719..721); // [-0.5, 0.5): 359.5 and 0
    assert_eq!(b[181], 1..3);
    assert_eq!(bins_span(&b, 170..180, 720), 699..719);
    assert_eq!(bins_span(&b, 175..185, 720), 0..720);
    assert_eq!(bins_span(&b, 0..0, 720), 0..0);
}

/// The statistic of `values` (non-NaN only) from the textbook formulas.
fn textbook(stat: Statistic, values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if stat == Statistic::Count {
        return n;
    }
    if values.is_empty() {
        return f64::NAN;
    }
    let mean = values.iter().sum::<f64>() / n;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let half = sorted.len() / 2;
    match stat {
        Statistic::Mean => mean,
        Statistic::Min => sorted[0],
        Statistic::Max => sorted[sorted.len() - 1],
        Statistic::Std => (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt(),
        Statistic::Median if sorted.len() % 2 == 1 => sorted[half],
        Statistic::Median => (sorted[half - 1] + sorted[half]) / 2.0,
        Statistic::Count => n,
    }
}

/// Whether `c` lies in `[lower, upper)` (modulo 360 when `turn`).
fn member(c: f64, [lower, upper]: [f64; 2], turn: bool, pole: bool) -> bool {
    let offset = if turn {
        (c - lower).rem_euclid(360.0)
    } else {
        c - lower
    };
    offset >= 0.0 && (offset < upper - lower || (pole && offset == upper - lower))
}

#[test]
fn statistics_match_the_formulas_chunk_by_chunk() {
    let mut rng = Rng(5);
    let lat_centres: Vec<f64> = {
        let mut c: Vec<f64> = (0..60).map(|_| rng.uniform(-90.0, 90.0)).collect();
        c.push(90.0);
        c.sort_by(|a, b| b.total_cmp(a));
        c
    };
    let lat = Axis::from_centres("lat", LAT, lat_centres).unwrap();
    let lon = regular(LON, 0.0, 357.0, 3.0);
    let tlat = regular(LAT, -80.0, 90.0, 10.0);
    let tlon = regular(LON, -180.0, 170.0, 10.0);
    let field = noisy_field(&mut rng, lat.len() * lon.len(), 0.3, -3.0, 3.0);
    let (yb, xb) = (bins(&lat, &tlat), bins(&lon, &tlon));
    let stats = [
        Statistic::Mean,
        Statistic::Min,
        Statistic::Max,
        Statistic::Std,
        Statistic::Median,
        Statistic::Count,
    ];
    for stat in stats {
        let mut empty = 0;
        for ty0 in (0..tlat.len()).step_by(4) {
            for tx0 in (0..tlon.len()).step_by(6) {
                let ty = ty0..(ty0 + 4).min(tlat.len());
                let tx = tx0..(tx0 + 6).min(tlon.len());
                let ys = bins_span(&yb, ty.clone(), lat.len());
                let xs = bins_span(&xb, tx.clone(), lon.len());
                let window = window_of(&field, lon.len(), &ys, &xs);
                let mut out = vec![0.0; ty.len() * tx.len()];
                let (cy, cx) = (ty.clone(), tx.clone());
                apply_statistic(stat, &yb, &xb, cy, cx, ys, xs, &window, &mut out);
                for (k, got) in out.iter().enumerate() {
                    let (i, j) = (ty.start + k / tx.len(), tx.start + k % tx.len());
                    let pole = tlat.bounds()[i][1] == 90.0;
                    let values: Vec<f64> = (0..lat.len())
                        .filter(|&r| member(lat.centres()[r], tlat.bounds()[i], false, pole))
                        .flat_map(|r| {
                            (0..lon.len())
                                .filter(|&c| {
                                    member(lon.centres()[c], tlon.bounds()[j], true, false)
                                })
                                .map(move |c| (r, c))
                        })
                        .map(|(r, c)| field[r * lon.len() + c])
                        .filter(|v| !v.is_nan())
                        .collect();
                    empty += usize::from(values.is_empty());
                    let want = textbook(stat, &values);
                    let ok = (got.is_nan() && want.is_nan()) || (got - want).abs() < 1e-12;
                    assert!(ok, "{stat:?} ({i}, {j}): {got} != {want} from {values:?}");
                }
            }
        }
        assert!(
            empty > 0 && empty < tlat.len() * tlon.len() / 2,
            "{empty} empty cells"
        );
    }
}

#[test]
fn statistics_of_a_small_grid_by_hand() {
    // Source 2 × 4 (f32), target 1 × 2: columns {0, 1} and {2, 3}.
    let source = [1.0f32, 2.0, f32::NAN, 8.0, 3.0, 6.0, f32::NAN, f32::NAN];
    let yb = [Range { start: 0, end: 2 }];
    let xb = [0..2, 2..4];
    let run = |stat, source: &[f32; 8]| {
        let mut out = [0.0f32; 2];
        apply_statistic(stat, &yb, &xb, 0..1, 0..2, 0..2, 0..4, source, &mut out);
        out
    };
    assert_eq!(run(Statistic::Mean, &source), [3.0, 8.0]);
    assert_eq!(run(Statistic::Min, &source), [1.0, 8.0]);
    assert_eq!(run(Statistic::Max, &source), [6.0, 8.0]);
    assert_eq!(run(Statistic::Median, &source), [2.5, 8.0]);
    assert_eq!(run(Statistic::Count, &source), [4.0, 1.0]);
    // Population std of 1, 2, 3, 6: mean 3, squares 4 + 1 + 0 + 9 = 14, / 4.
    assert_eq!(run(Statistic::Std, &source), [(3.5f64).sqrt() as f32, 0.0]);
    // Only NaN: a count of 0, NaN for the others.
    let nothing = [f32::NAN; 8];
    assert_eq!(run(Statistic::Count, &nothing), [0.0, 0.0]);
    assert!(run(Statistic::Mean, &nothing).iter().all(|v| v.is_nan()));
}
