//! The pyramid's common step as one pass: a level already reduced (values and, for the mean,
//! counts of valid source values) halved along its last two axes. Equal to
//! [`Partials::from_level`](super::Partials::from_level) followed by `combine` with factor 2 on
//! those axes and `finish`, without the intermediate partials.

use super::Reduction;

/// `values` (C order, `shape`, NaN where missing) halved along the last two axes, trailing odd
/// rows and columns trimmed; with each output's count of valid source values (`counts`, or 1
/// per non-NaN value when `None`). `shape` must have rank ≥ 2 and match the lengths.
pub fn halve_last_two(
    values: &[f64],
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
                let (value, n) = match method {
                    Reduction::Nearest => {
                        let v = values[at[0]];
                        (v, count_at(at[0], v))
                    }
                    Reduction::Mean | Reduction::Sum => {
                        let (mut sum, mut n) = (0.0, 0u32);
                        for i in at {
                            let v = values[i];
                            let c = count_at(i, v);
                            if c > 0 {
                                sum += if method == Reduction::Mean {
                                    v * f64::from(c)
                                } else {
                                    v
                                };
                                n = n.saturating_add(c);
                            }
                        }
                        match method {
                            Reduction::Mean if n == 0 => (f64::NAN, 0),
                            Reduction::Mean => (sum / f64::from(n), n),
                            _ => (sum, n),
                        }
                    }
                    Reduction::Min | Reduction::Max => {
                        let (mut best, mut n) = (f64::NAN, 0u32);
                        for i in at {
                            let v = values[i];
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
                    }
                };
                out.push(value);
                out_counts.push(n);
            }
        }
    }
    Some((out, out_counts))
}

#[cfg(test)]
mod tests {
    use super::super::{Blocks, Partials};
    use super::*;

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
}
