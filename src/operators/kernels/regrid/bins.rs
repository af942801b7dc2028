//! Statistics by binning source cell centres into target cells (mean, min, max, std, median,
//! count), as `xarray_regrid`'s `stat` (flox `xarray_reduce` over `pd.IntervalIndex` bins),
//! plus `count`, which it lacks.
//!
//! Edge rule: a target cell takes the source centres `lower <= c < upper` — closed on the low
//! side, like xarray-regrid's `IntervalIndex.from_breaks(..., closed="left")` on the ascending
//! target — except that a latitude cell ending at the north pole also takes a centre at +90
//! (xarray-regrid's last interval extends half a step past the last target centre, so it holds
//! a pole centre too). Bounds are the target cells' own bounds (xarray-regrid rebuilds them from
//! the median target spacing; the two agree on regular targets). Unweighted; NaN skipped; `std`
//! is the population standard deviation (ddof = 0); the median of an even count is the mean of
//! the two middle values (`np.nanmedian`). An empty cell (no centre, or only NaN) is NaN, and
//! 0 for `count`.
//!
//! Longitudes compare modulo 360. The centres of one target cell are contiguous in file order,
//! or contiguous cyclically when the cell straddles the source's seam: such a bin is returned
//! as a range that runs past the source's length, index `i >= n` standing for `i − n` (e.g.
//! `719..721` for cells 719 and 0 of a 720-cell axis). Reading such a bin needs the whole axis
//! as the window (`bins_span` returns it).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::axis::{Axis, AxisKind};
use super::separable::shifts;
use crate::operators::kernels::Float;

/// How the values binned into a target cell become one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Statistic {
    /// Mean of the non-NaN values.
    Mean,
    /// Smallest non-NaN value.
    Min,
    /// Largest non-NaN value.
    Max,
    /// Population standard deviation (ddof = 0) of the non-NaN values.
    Std,
    /// Median of the non-NaN values.
    Median,
    /// Number of non-NaN values.
    Count,
}

/// For each target cell, the contiguous source index range whose centres fall in it (empty if
/// none); a bin straddling a longitude seam runs past the source's length (see the module doc).
pub(crate) fn bins(source: &Axis, target: &Axis) -> Vec<Range<usize>> {
    let centres = source.sorted_centres();
    let n = centres.len();
    let wraps = source.wraps() || target.wraps();
    let (first, last) = match (centres.first(), centres.last()) {
        (Some(&f), Some(&l)) => (f, l),
        _ => return vec![0..0; target.len()],
    };
    let mut members = Vec::new();
    target
        .bounds()
        .iter()
        .map(|&[lower, upper]| {
            let pole = target.kind() == AxisKind::Latitude && upper >= 90.0;
            members.clear();
            for shift in shifts(wraps, lower, upper, first, last) {
                let (lo, hi) = (lower + shift, upper + shift);
                let a = centres.partition_point(|&c| c < lo);
                let b = if pole {
                    centres.partition_point(|&c| c <= hi)
                } else {
                    centres.partition_point(|&c| c < hi)
                };
                members.extend((a..b.max(a)).map(|k| source.file_index(k)));
            }
            members.sort_unstable();
            members.dedup();
            cyclic_range(&members, n)
        })
        .collect()
}

/// Sorted distinct indices as one range, cyclic ones (`0..a` and `b..n`) as `b..n + a`.
/// Indices that are neither (only for a target cell wider than a turn) give their hull.
fn cyclic_range(members: &[usize], n: usize) -> Range<usize> {
    let (first, last) = match (members.first(), members.last()) {
        (Some(&f), Some(&l)) => (f, l),
        _ => return 0..0,
    };
    if last - first + 1 == members.len() {
        return first..last + 1;
    }
    let gaps: Vec<usize> = (1..members.len())
        .filter(|&i| members[i] != members[i - 1] + 1)
        .collect();
    match gaps.as_slice() {
        [gap] if first == 0 && last == n - 1 => members[*gap]..n + members[gap - 1] + 1,
        _ => first..last + 1,
    }
}

/// The source window the bins of `targets` read: their hull, or the whole axis (`0..n`) when a
/// bin wraps past the end.
pub(crate) fn bins_span(
    bins: &[Range<usize>],
    targets: Range<usize>,
    source_len: usize,
) -> Range<usize> {
    let used = bins
        .get(targets)
        .unwrap_or(&[])
        .iter()
        .filter(|b| !b.is_empty());
    let (mut low, mut high) = (usize::MAX, 0);
    for b in used {
        low = low.min(b.start);
        high = high.max(b.end);
    }
    if low >= high {
        0..0
    } else if high > source_len {
        0..source_len
    } else {
        low..high
    }
}

/// The position inside `window` of source index `i`, where `i` past the window's end stands for
/// `i − window.end` when the window is the whole axis (a wrapped bin).
fn local(i: usize, window: &Range<usize>) -> Option<usize> {
    if window.contains(&i) {
        Some(i - window.start)
    } else if window.start == 0 && i >= window.end && i - window.end < window.end {
        Some(i - window.end)
    } else {
        None
    }
}

/// Computes `stat` for target rows `ty` × columns `tx` from the source window `ys` × `xs`
/// (C order), with the bins of [`bins`] (indexed by target index). Bins reaching outside the
/// window count as empty there. Lengths that do not match the ranges fill `out` with NaN.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply_statistic<T: Float>(
    stat: Statistic,
    ybins: &[Range<usize>],
    xbins: &[Range<usize>],
    ty: Range<usize>,
    tx: Range<usize>,
    ys: Range<usize>,
    xs: Range<usize>,
    source: &[T],
    out: &mut [T],
) {
    let (nty, ntx, nsx) = (ty.len(), tx.len(), xs.len());
    if source.len() != ys.len() * nsx || out.len() != nty * ntx {
        debug_assert!(false, "regrid statistic: lengths do not match the ranges");
        out.fill(T::from_f64(f64::NAN));
        return;
    }
    // Per target column, the local source columns it reads.
    let columns: Vec<Vec<usize>> = tx
        .clone()
        .map(|j| {
            let bin = xbins.get(j).cloned().unwrap_or(0..0);
            bin.filter_map(|c| local(c, &xs)).collect()
        })
        .collect();
    let mut values: Vec<f64> = Vec::new();
    let mut cells = out.iter_mut();
    for i in ty {
        let rows: Vec<usize> = ybins
            .get(i)
            .cloned()
            .unwrap_or(0..0)
            .filter_map(|r| local(r, &ys))
            .collect();
        for cols in &columns {
            values.clear();
            for &r in &rows {
                let row = &source[r * nsx..(r + 1) * nsx];
                values.extend(
                    cols.iter()
                        .map(|&c| row[c].to_f64())
                        .filter(|v| !v.is_nan()),
                );
            }
            if let Some(cell) = cells.next() {
                *cell = T::from_f64(reduce(stat, &mut values));
            }
        }
    }
}

/// One statistic of non-NaN `values` (reordered by the median).
pub(crate) fn reduce(stat: Statistic, values: &mut [f64]) -> f64 {
    let n = values.len();
    if stat == Statistic::Count {
        return n as f64;
    }
    if n == 0 {
        return f64::NAN;
    }
    let mean = || values.iter().sum::<f64>() / n as f64;
    match stat {
        Statistic::Count => n as f64,
        Statistic::Mean => mean(),
        Statistic::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Statistic::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Statistic::Std => {
            let m = mean();
            (values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64).sqrt()
        }
        Statistic::Median => {
            let (_, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
            if n % 2 == 1 {
                upper
            } else {
                let lower = values[..n / 2]
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max);
                (lower + upper) / 2.0
            }
        }
    }
}

#[cfg(test)]
mod tests;
