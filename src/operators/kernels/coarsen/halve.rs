//! The pyramid's common step as one pass: a level already reduced (values and, for the mean,
//! counts of valid source values) halved along its last two axes. Equal to
//! [`Partials::from_level`](super::Partials::from_level) followed by `combine` with factor 2 on
//! those axes and `finish`, without the intermediate partials.

use super::super::avx2::has_avx2;
use super::Reduction;

/// `values` (C order, `shape`, NaN where missing; `float32` or `float64`, summed as `float64`
/// either way) halved along the last two axes, trailing odd rows and columns trimmed; with each
/// output's count of valid source values (`counts`, or 1 per non-NaN value when `None`).
/// `shape` must have rank ≥ 2 and match the lengths.
pub fn halve_last_two<T: Copy + Into<f64>>(
    values: &[T],
    counts: Option<&[u32]>,
    shape: &[usize],
    method: Reduction,
) -> Option<(Vec<f64>, Vec<u32>)> {
    let rank = shape.len();
    if rank < 2 {
        return None;
    }
    let (ny, nx) = (shape[rank - 2], shape[rank - 1]);
    let outer: usize = shape[..rank - 2].iter().product();
    if outer.checked_mul(ny)?.checked_mul(nx)? != values.len()
        || counts.is_some_and(|c| c.len() != values.len())
    {
        return None;
    }
    let (oy, ox) = (ny / 2, nx / 2);
    if matches!(method, Reduction::Mean | Reduction::Sum) {
        return Some(sum_pairs_of_rows(values, counts, [outer, ny, nx], method));
    }
    let mut out = Vec::with_capacity(outer * oy * ox);
    let mut out_counts = Vec::with_capacity(outer * oy * ox);
    let count_at = |i: usize, v: f64| -> u32 {
        if v.is_nan() {
            0
        } else {
            counts.map_or(1, |c| c[i])
        }
    };
    for o in 0..outer {
        for y in 0..oy {
            let row = (o * ny + 2 * y) * nx;
            for x in 0..ox {
                let at = [
                    row + 2 * x,
                    row + 2 * x + 1,
                    row + nx + 2 * x,
                    row + nx + 2 * x + 1,
                ];
                // The mean and the sum returned above: the nearest, or the min or max.
                let (value, n) = if method == Reduction::Nearest {
                    let v = values[at[0]].into();
                    (v, count_at(at[0], v))
                } else {
                    let (mut best, mut n) = (f64::NAN, 0u32);
                    for i in at {
                        let v = values[i].into();
                        let c = count_at(i, v);
                        if c == 0 {
                            continue;
                        }
                        let better = n == 0
                            || (method == Reduction::Min && v < best)
                            || (method == Reduction::Max && v > best);
                        if better {
                            best = v;
                        }
                        n = n.saturating_add(c);
                    }
                    (best, n)
                };
                out.push(value);
                out_counts.push(n);
            }
        }
    }
    Some((out, out_counts))
}

/// [`halve_last_two`] for the mean and the sum, a pair of input rows at a time in a loop
/// without branches, with an AVX2 twin (see [`super::super::avx2`]). The
/// additions are the general loop's, in its order (a skipped value adds +0.0, which leaves
/// a sum that starts at +0.0 as it is), so the results are bit for bit the same.
fn sum_pairs_of_rows<T: Copy + Into<f64>>(
    values: &[T],
    counts: Option<&[u32]>,
    [outer, ny, nx]: [usize; 3],
    method: Reduction,
) -> (Vec<f64>, Vec<u32>) {
    let (oy, ox) = (ny / 2, nx / 2);
    let mut out = vec![0.0; outer * oy * ox];
    let mut out_counts = vec![0u32; outer * oy * ox];
    let ones = vec![1u32; if counts.is_none() { nx } else { 0 }];
    let mean = method == Reduction::Mean;
    for (k, (out_row, counts_row)) in out
        .chunks_exact_mut(ox.max(1))
        .zip(out_counts.chunks_exact_mut(ox.max(1)))
        .enumerate()
    {
        let (o, y) = (k / oy, k % oy);
        let top = (o * ny + 2 * y) * nx;
        let rows = [&values[top..top + nx], &values[top + nx..top + 2 * nx]];
        let weights = match counts {
            Some(c) => [&c[top..top + nx], &c[top + nx..top + 2 * nx]],
            None => [&ones[..], &ones[..]],
        };
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe { sum_pair_avx2(rows, weights, mean, out_row, counts_row) };
            continue;
        }
        sum_pair(rows, weights, mean, out_row, counts_row);
    }
    (out, out_counts)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_pair_avx2<T: Copy + Into<f64>>(
    rows: [&[T]; 2],
    weights: [&[u32]; 2],
    mean: bool,
    out: &mut [f64],
    n: &mut [u32],
) {
    sum_pair(rows, weights, mean, out, n);
}

#[inline(always)]
fn sum_pair<T: Copy + Into<f64>>(
    [top, bottom]: [&[T]; 2],
    [top_w, bottom_w]: [&[u32]; 2],
    mean: bool,
    out: &mut [f64],
    n: &mut [u32],
) {
    let ox = out.len().min(n.len());
    let (top, bottom) = (&top[..2 * ox], &bottom[..2 * ox]);
    let (top_w, bottom_w) = (&top_w[..2 * ox], &bottom_w[..2 * ox]);
    for x in 0..ox {
        let at = [2 * x, 2 * x + 1];
        let cells: [(f64, u32); 4] = [
            (top[at[0]].into(), top_w[at[0]]),
            (top[at[1]].into(), top_w[at[1]]),
            (bottom[at[0]].into(), bottom_w[at[0]]),
            (bottom[at[1]].into(), bottom_w[at[1]]),
        ];
        let (mut sum, mut total) = (0.0f64, 0u64);
        for (v, w) in cells {
            let w = if v.is_nan() { 0 } else { w };
            let term = if mean { v * f64::from(w) } else { v };
            sum += if w > 0 { term } else { 0.0 };
            total += u64::from(w);
        }
        let total = total.min(u64::from(u32::MAX)) as u32;
        out[x] = match (mean, total) {
            (true, 0) => f64::NAN,
            (true, _) => sum / f64::from(total),
            (false, _) => sum,
        };
        n[x] = total;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Blocks, Partials};
    use super::*;

    /// The mean and the sum of each 2×2 block written from the formula: the valid values (not
    /// NaN, count > 0) weighted by their counts, added in row order.
    #[test]
    fn mean_and_sum_are_the_formula_bit_for_bit() {
        let (ny, nx) = (6usize, 11usize);
        let values: Vec<f64> = (0..2 * ny * nx)
            .map(|i| match i % 7 {
                3 => f64::NAN,
                k => (i as f64 * 0.731).sin() * 300.0 + k as f64,
            })
            .collect();
        let counts: Vec<u32> = (0..values.len()).map(|i| (i % 5) as u32).collect();
        for method in [Reduction::Mean, Reduction::Sum] {
            let (got, got_counts) =
                halve_last_two(&values, Some(&counts), &[2, ny, nx], method).unwrap();
            let mut k = 0;
            for o in 0..2 {
                for y in 0..ny / 2 {
                    for x in 0..nx / 2 {
                        let row = (o * ny + 2 * y) * nx + 2 * x;
                        let (mut sum, mut n) = (0.0f64, 0u32);
                        for i in [row, row + 1, row + nx, row + nx + 1] {
                            if !values[i].is_nan() && counts[i] > 0 {
                                sum += match method {
                                    Reduction::Mean => values[i] * f64::from(counts[i]),
                                    _ => values[i],
                                };
                                n += counts[i];
                            }
                        }
                        let want = match method {
                            Reduction::Mean if n == 0 => f64::NAN,
                            Reduction::Mean => sum / f64::from(n),
                            _ => sum,
                        };
                        assert_eq!(got[k].to_bits(), want.to_bits(), "{method:?} at {k}");
                        assert_eq!(got_counts[k], n);
                        k += 1;
                    }
                }
            }
            assert_eq!(k, got.len());
        }
    }

    #[test]
    fn halving_equals_the_general_partials() {
        let shape = [3usize, 7, 9];
        let len: usize = shape.iter().product();
        let values: Vec<f64> = (0..len)
            .map(|i| match i % 11 {
                0 | 5 => f64::NAN,
                k => (i * 37 % 101) as f64 * 0.5 - k as f64,
            })
            .collect();
        let counts: Vec<u32> = (0..len).map(|i| (i % 4) as u32 + 1).collect();
        for method in [
            Reduction::Mean,
            Reduction::Sum,
            Reduction::Min,
            Reduction::Max,
            Reduction::Nearest,
        ] {
            for given in [None, Some(counts.as_slice())] {
                let (fast, fast_counts) = halve_last_two(&values, given, &shape, method).unwrap();
                let blocks = Blocks {
                    axes: [1, 2],
                    factor: 2,
                };
                let general = Partials::from_level(&values, given, &shape, method)
                    .and_then(|p| p.combine(blocks))
                    .unwrap();
                let expected: Vec<f64> = general.finish();
                assert_eq!(fast.len(), expected.len());
                for (a, b) in fast.iter().zip(&expected) {
                    assert!(
                        (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                        "{method:?} {given:?}: {a} vs {b}"
                    );
                }
                let general_counts: Vec<u32> = general.counts().iter().map(|&n| n as u32).collect();
                assert_eq!(fast_counts, general_counts, "{method:?}");
            }
        }
        assert!(halve_last_two(&values, None, &[len], Reduction::Mean).is_none());
    }

    /// `float32` values halve exactly as the same values widened to `float64` first.
    #[test]
    fn float32_values_halve_as_their_float64_widening() {
        let shape = [2usize, 5, 8];
        let narrow: Vec<f32> = (0..80)
            .map(|i| match i % 9 {
                4 => f32::NAN,
                k => (i as f32 * 0.377).cos() * 41.0 + k as f32,
            })
            .collect();
        let wide: Vec<f64> = narrow.iter().map(|&v| f64::from(v)).collect();
        let counts: Vec<u32> = (0..80).map(|i| (i % 3) as u32).collect();
        for method in [Reduction::Mean, Reduction::Sum, Reduction::Min] {
            for given in [None, Some(counts.as_slice())] {
                let (a, a_counts) = halve_last_two(&narrow, given, &shape, method).unwrap();
                let (b, b_counts) = halve_last_two(&wide, given, &shape, method).unwrap();
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{method:?} {given:?}");
                assert_eq!(a_counts, b_counts);
            }
        }
    }
}
