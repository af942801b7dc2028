//! Unit tests of the block reduction, against a naive reference written out per block.

use super::*;
use crate::operators::kernels::test_rng::Rng;

const METHODS: [Reduction; 5] = [
    Reduction::Mean,
    Reduction::Min,
    Reduction::Max,
    Reduction::Sum,
    Reduction::Nearest,
];

fn blocks(a: usize, b: usize, factor: usize) -> Blocks {
    Blocks {
        axes: [a, b],
        factor,
    }
}

/// The reduction of one block's values, straight from the definitions.
fn reference_of(block: &[f64], method: Reduction) -> f64 {
    let valid: Vec<f64> = block.iter().copied().filter(|v| !v.is_nan()).collect();
    match method {
        Reduction::Nearest => block[0],
        Reduction::Sum => valid.iter().sum(),
        _ if valid.is_empty() => f64::NAN,
        Reduction::Mean => valid.iter().sum::<f64>() / valid.len() as f64,
        Reduction::Min => valid.iter().copied().fold(f64::INFINITY, f64::min),
        Reduction::Max => valid.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Naive coarsening: for each output index, gather its block by explicit index arithmetic.
fn reference(values: &[f64], shape: &[usize], b: Blocks, method: Reduction) -> Vec<f64> {
    let rank = shape.len();
    let out: Vec<usize> = (0..rank)
        .map(|d| {
            if b.axes.contains(&d) {
                shape[d] / b.factor
            } else {
                shape[d]
            }
        })
        .collect();
    let flat = |idx: &[usize]| idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i);
    let mut result = Vec::new();
    let total: usize = out.iter().product();
    for k in 0..total {
        let mut o = vec![0; rank];
        let mut rest = k;
        for d in (0..rank).rev() {
            o[d] = rest % out[d];
            rest /= out[d];
        }
        let mut block = Vec::new();
        for i in 0..b.factor {
            for j in 0..b.factor {
                let mut idx = o.clone();
                idx[b.axes[0]] = o[b.axes[0]] * b.factor + i;
                idx[b.axes[1]] = o[b.axes[1]] * b.factor + j;
                block.push(values[flat(&idx)]);
            }
        }
        result.push(reference_of(&block, method));
    }
    result
}

fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

/// Random multiples of 1/1024 in [-512, 512] (their f64 sums are exact), about 20% NaN.
fn dyadic(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| match rng.next_u64() % 5 {
            0 => f64::NAN,
            _ => (rng.next_u64() % (1 << 20)) as f64 / 1024.0 - 512.0,
        })
        .collect()
}

#[test]
fn two_by_two_by_hand() {
    // 4×5 values v = 10·i + j, factor 2: the last column is trimmed.
    let values: Vec<f64> = (0..4)
        .flat_map(|i| (0..5).map(move |j| f64::from(10 * i + j)))
        .collect();
    let b = blocks(0, 1, 2);
    let (mean, shape) = coarsen(&values, &[4, 5], b, Reduction::Mean).unwrap();
    assert_eq!(shape, [2, 2]);
    assert_eq!(mean, [5.5, 7.5, 25.5, 27.5]);
    let (sum, _) = coarsen(&values, &[4, 5], b, Reduction::Sum).unwrap();
    assert_eq!(sum, [22.0, 30.0, 102.0, 110.0]);
    let (min, _) = coarsen(&values, &[4, 5], b, Reduction::Min).unwrap();
    assert_eq!(min, [0.0, 2.0, 20.0, 22.0]);
    let (max, _) = coarsen(&values, &[4, 5], b, Reduction::Max).unwrap();
    assert_eq!(max, [11.0, 13.0, 31.0, 33.0]);
    let (nearest, _) = coarsen(&values, &[4, 5], b, Reduction::Nearest).unwrap();
    assert_eq!(nearest, [0.0, 2.0, 20.0, 22.0]);
}

#[test]
fn nan_is_skipped_and_all_nan_blocks_follow_xarray() {
    let nan = f32::NAN;
    // Blocks: [1, NaN, 3, NaN] and [NaN; 4].
    let values = [1.0, nan, nan, nan, 3.0, nan, nan, nan];
    let shape = [2, 4];
    let b = blocks(1, 0, 2);
    let get = |m| coarsen(&values, &shape, b, m).unwrap().0;
    assert_eq!(get(Reduction::Mean)[0], 2.0);
    assert!(get(Reduction::Mean)[1].is_nan());
    assert_eq!(get(Reduction::Sum), [4.0, 0.0]);
    assert_eq!(get(Reduction::Min)[0], 1.0);
    assert!(get(Reduction::Min)[1].is_nan());
    assert_eq!(get(Reduction::Max)[0], 3.0);
    assert!(get(Reduction::Max)[1].is_nan());
    // Nearest samples the first element even when it is NaN.
    let shifted = [nan, 1.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
    let (nearest, _) = coarsen(&shifted, &shape, b, Reduction::Nearest).unwrap();
    assert!(nearest[0].is_nan());
    assert_eq!(nearest[1], 5.0);
}

#[test]
fn any_two_axes_of_an_nd_array() {
    let mut rng = Rng(3);
    let shape = [3, 7, 2, 9];
    let values = dyadic(&mut rng, shape.iter().product());
    for axes in [[1, 3], [3, 1], [0, 2], [0, 3]] {
        for factor in [1, 2, 3] {
            let b = Blocks { axes, factor };
            for method in METHODS {
                let (got, _) = coarsen(&values, &shape, b, method).unwrap();
                let want = reference(&values, &shape, b, method);
                assert!(same(&got, &want), "{axes:?} {factor} {method:?}");
            }
        }
    }
    let (_, out) = coarsen(&values, &shape, blocks(1, 3, 3), Reduction::Mean).unwrap();
    assert_eq!(out, [3, 2, 2, 3]);
}

#[test]
fn coarser_levels_from_finer_partials_equal_the_direct_reduction() {
    let mut rng = Rng(5);
    let shape = [2, 37, 29];
    let values = dyadic(&mut rng, shape.iter().product());
    let values32: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    for method in METHODS {
        let level1 = Partials::reduce(&values, &shape, blocks(1, 2, 2), method).unwrap();
        let level2 = level1.combine(blocks(1, 2, 2)).unwrap();
        let level3 = level2.combine(blocks(1, 2, 2)).unwrap();
        let direct4 = Partials::reduce(&values, &shape, blocks(1, 2, 4), method).unwrap();
        let direct8 = Partials::reduce(&values, &shape, blocks(1, 2, 8), method).unwrap();
        assert_eq!(level2.shape(), [2, 9, 7]);
        assert!(
            same(&level2.finish::<f64>(), &direct4.finish::<f64>()),
            "{method:?}"
        );
        assert!(
            same(&level3.finish::<f64>(), &direct8.finish::<f64>()),
            "{method:?}"
        );
        let want = reference(&values, &shape, blocks(1, 2, 8), method);
        assert!(same(&level3.finish::<f64>(), &want), "{method:?}");
        // float32: the same, the f64 sums of f32 values being exact here.
        let l2 = Partials::reduce(&values32, &shape, blocks(1, 2, 2), method)
            .unwrap()
            .combine(blocks(1, 2, 2))
            .unwrap();
        let d4 = Partials::reduce(&values32, &shape, blocks(1, 2, 4), method).unwrap();
        let (a, b) = (l2.finish::<f32>(), d4.finish::<f32>());
        assert!(a
            .iter()
            .zip(&b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan())));
    }
}

#[test]
fn composed_mean_of_arbitrary_values_agrees_to_rounding() {
    // Non-dyadic values: the sums are rounded, differently in each order.
    let mut rng = Rng(9);
    let shape = [64, 48];
    let values: Vec<f64> = (0..64 * 48).map(|_| rng.uniform(-1e3, 1e3)).collect();
    let composed = Partials::reduce(&values, &shape, blocks(0, 1, 2), Reduction::Mean)
        .unwrap()
        .combine(blocks(0, 1, 2))
        .unwrap()
        .finish::<f64>();
    let direct = reference(&values, &shape, blocks(0, 1, 4), Reduction::Mean);
    for (c, d) in composed.iter().zip(&direct) {
        assert!((c - d).abs() <= 1e-12 * d.abs().max(1.0), "{c} {d}");
    }
}

#[test]
fn float32_rounds_once_from_f64() {
    let values = [0.1f32, 0.2, 0.3, 0.7];
    let (mean, _) = coarsen(&values, &[2, 2], blocks(0, 1, 2), Reduction::Mean).unwrap();
    let exact: f64 = values.iter().map(|&v| f64::from(v)).sum::<f64>() / 4.0;
    assert_eq!(mean[0], exact as f32);
}

#[test]
fn blocks_wider_than_the_array_give_an_empty_level() {
    let (values, shape) = coarsen(&[1.0f64; 6], &[2, 3], blocks(0, 1, 4), Reduction::Mean).unwrap();
    assert!(values.is_empty());
    assert_eq!(shape, [0, 0]);
}

#[test]
fn bad_arguments_are_errors() {
    let v = [0.0f64; 6];
    for axes in [[0, 0], [0, 2], [5, 1]] {
        let b = Blocks { axes, factor: 2 };
        assert_eq!(
            coarsen(&v, &[2, 3], b, Reduction::Mean).unwrap_err(),
            CoarsenError::Axes { axes, rank: 2 }
        );
    }
    assert_eq!(
        coarsen(&v, &[2, 3], blocks(0, 1, 0), Reduction::Sum).unwrap_err(),
        CoarsenError::ZeroFactor
    );
    assert_eq!(
        coarsen(&v, &[2, 4], blocks(0, 1, 2), Reduction::Sum).unwrap_err(),
        CoarsenError::Length {
            len: 6,
            shape: vec![2, 4]
        }
    );
    assert!(coarsen(&v, &[6], blocks(0, 1, 2), Reduction::Sum).is_err());
}
