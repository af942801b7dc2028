//! Unit tests of the sparse weights: rows and windows by hand, the NaN rule by hand, and the
//! outer product of two 1-D weight sets against the separable application.

use super::*;
use crate::operators::kernels::regrid::axis::{Axis, AxisKind};
use crate::operators::kernels::regrid::separable;
use crate::operators::kernels::regrid::separable::tests::{noisy_field, window_of};
use crate::operators::kernels::test_rng::Rng;

#[test]
fn triplets_become_sorted_merged_rows() {
    let w = SparseWeights::from_triplets(
        3,
        vec![
            (2, 7, 0.5),
            (0, 9, 0.25),
            (0, 1, 0.5),
            (0, 9, 0.25),
            (1, 4, 0.0),
            (5, 0, 1.0),
            (2, 3, 0.5),
        ],
    );
    assert_eq!(w.len(), 3);
    assert_eq!(w.row(0), (&[1u32, 9][..], &[0.5, 0.5][..]));
    assert_eq!(w.row(1), (&[][..], &[][..]));
    assert_eq!(w.row(2), (&[3u32, 7][..], &[0.5, 0.5][..]));
    assert_eq!(w.row(3), (&[][..], &[][..]));
    // Sources 1, 3, 7, 9 of a 3 × 4 grid: (0, 1), (0, 3), (1, 3), (2, 1).
    assert_eq!(w.source_window([3, 4]), (0..3, 1..4));
    assert_eq!(
        SparseWeights::from_triplets(2, vec![]).source_window([3, 4]),
        (0..0, 0..0)
    );
}

#[test]
fn the_nan_rule_by_hand() {
    // Source 2 × 3; the window is its right 2 × 2 block.
    // Target 0 = 0.25 · (0, 1) + 0.75 · (1, 2); target 1 = (0, 0), outside the window.
    let w = SparseWeights::from_triplets(3, vec![(0, 1, 0.25), (0, 5, 0.75), (1, 0, 1.0)]);
    assert_eq!(w.source_window([2, 3]), (0..2, 0..3));
    let window = (0..2, 1..3);
    let run = |values: [f64; 4], t: f64| {
        let mut out = [0.0; 3];
        w.apply([2, 3], window.clone(), &values, t, &mut out);
        out
    };
    let out = run([4.0, 0.0, 0.0, 8.0], 0.0);
    assert_eq!(out[0], 0.25 * 4.0 + 0.75 * 8.0);
    assert!(out[1].is_nan() && out[2].is_nan());
    assert!(run([4.0, 0.0, 0.0, f64::NAN], 0.7)[0].is_nan()); // valid 0.25 < 0.3
    assert_eq!(run([4.0, 0.0, 0.0, f64::NAN], 0.8)[0], 4.0); // valid 0.25 ≥ 0.2
    assert_eq!(run([f64::NAN, 0.0, 0.0, 8.0], 0.25)[0], 8.0);
}

#[test]
fn the_outer_product_of_axis_weights_applies_like_the_separable_kernel() {
    let mut rng = Rng(9);
    let lat = Axis::regular("lat", AxisKind::Latitude, 89.5, -89.5, -1.0).unwrap();
    let lon = Axis::regular("lon", AxisKind::Longitude, 0.5, 359.5, 1.0).unwrap();
    let tlat = Axis::regular("lat", AxisKind::Latitude, -88.0, 88.0, 4.0).unwrap();
    let tlon = Axis::regular("lon", AxisKind::Longitude, -180.0, 176.0, 4.0).unwrap();
    let y = separable::conservative(&lat, &tlat);
    let x = separable::conservative(&lon, &tlon);
    let field: Vec<f32> = noisy_field(&mut rng, lat.len() * lon.len(), 0.2, 0.0, 10.0)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let shape = [lat.len(), lon.len()];
    // One output chunk: target rows 10..16, columns 40..50 (which cross the source's seam).
    let (ty, tx) = (10..16, 40..50);
    let mut triplets = Vec::new();
    for (a, i) in ty.clone().enumerate() {
        for (b, j) in tx.clone().enumerate() {
            for &(r, wy) in y.row(i) {
                for &(c, wx) in x.row(j) {
                    let target = (a * tx.len() + b) as u32;
                    triplets.push((target, r * lon.len() as u32 + c, wy * wx));
                }
            }
        }
    }
    let w = SparseWeights::from_triplets(ty.len() * tx.len(), triplets);
    let w = SparseWeights::from_bytes(&w.to_bytes()).unwrap();
    let window = w.source_window(shape);
    let (ys, xs) = (y.source_span(ty.clone()), x.source_span(tx.clone()));
    assert_eq!(window, (ys.clone(), xs.clone()));
    let values = window_of(&field, lon.len(), &ys, &xs);
    for t in [0.0, 0.5, 1.0] {
        let mut sparse = vec![0.0f32; ty.len() * tx.len()];
        w.apply(shape, window.clone(), &values, t, &mut sparse);
        let mut dense = vec![0.0f32; ty.len() * tx.len()];
        let (cy, cx, cys, cxs) = (ty.clone(), tx.clone(), ys.clone(), xs.clone());
        separable::apply(&y, &x, cy, cx, cys, cxs, &values, t, &mut dense);
        assert!(sparse.iter().any(|v| v.is_nan()) || t > 0.0);
        for (a, b) in sparse.iter().zip(&dense) {
            let ok = (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-5 * b.abs().max(1.0);
            assert!(ok, "t = {t}: {a} != {b}");
        }
    }
}

#[test]
fn bytes_that_do_not_describe_weights_are_refused() {
    let w = SparseWeights::from_triplets(4, vec![(0, 3, 1.0), (3, 1, 0.5)]);
    assert_eq!(SparseWeights::from_bytes(&w.to_bytes()).unwrap(), w);
    assert!(matches!(
        SparseWeights::from_bytes(&[1, 2, 3]),
        Err(RegridError::Weights(_))
    ));
    let mismatched = SparseWeights {
        offsets: vec![0, 1],
        sources: vec![0],
        weights: vec![],
    };
    assert!(SparseWeights::from_bytes(&mismatched.to_bytes()).is_err());
    let backwards = SparseWeights {
        offsets: vec![0, 2, 1],
        sources: vec![0],
        weights: vec![1.0],
    };
    assert!(SparseWeights::from_bytes(&backwards.to_bytes()).is_err());
}
