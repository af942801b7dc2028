//! Separable regridding between rectilinear grids: 1-D weights per axis ([`AxisWeights`]) and
//! their application to one 2-D slice ([`apply`]) with the NaN rule shared by every method.
//!
//! Conventions (matching xarray / xarray-regrid, see each builder):
//! - conservative: exact overlap lengths, `sin φ2 − sin φ1` along latitude (latitude circles,
//!   as xarray-regrid and CDO; not ESMF's great-circle edges), normalised by the target cell;
//! - linear: `np.interp` at the target centre between the sorted source centres (what
//!   `xarray.interp(method="linear")` calls per axis), NaN outside the source centres;
//! - nearest: scipy `interp1d(kind="nearest")`, which xarray calls per axis: a target exactly
//!   half-way between two source centres takes the lower coordinate, NaN outside the centres.
//!
//! Longitudes compare modulo 360 (source and target may use 0..360 or −180..180); a periodic
//! source interpolates across the seam.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::axis::{Axis, AxisKind, TURN};
use super::RegridError;
use crate::operators::kernels::Float;

#[cfg(test)]
pub(crate) mod tests;

/// Per target cell, the source cells that contribute and their weights (sparse rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AxisWeights {
    /// Number of source cells the indices refer to.
    source_len: usize,
    /// Row `t` is `entries[offsets[t]..offsets[t + 1]]`.
    offsets: Vec<usize>,
    /// `(source index in file order, weight)`, sorted by source index within a row.
    entries: Vec<(u32, f64)>,
}

impl AxisWeights {
    /// Weights from rows of `(source index, weight)` in any order; repeated sources are summed
    /// and zero weights dropped.
    pub(crate) fn from_rows(
        source_len: usize,
        rows: impl IntoIterator<Item = Vec<(u32, f64)>>,
    ) -> AxisWeights {
        let mut offsets = vec![0];
        let mut entries = Vec::new();
        for mut row in rows {
            row.sort_by_key(|e| e.0);
            let mut merged: Vec<(u32, f64)> = Vec::with_capacity(row.len());
            for (source, weight) in row {
                match merged.last_mut() {
                    Some(last) if last.0 == source => last.1 += weight,
                    _ => merged.push((source, weight)),
                }
            }
            entries.extend(merged.into_iter().filter(|e| e.1 != 0.0));
            offsets.push(entries.len());
        }
        AxisWeights {
            source_len,
            offsets,
            entries,
        }
    }

    #[cfg(test)]
    /// Number of target cells.
    pub(crate) fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    #[cfg(test)]
    /// Number of source cells.
    pub(crate) fn source_len(&self) -> usize {
        self.source_len
    }

    /// The `(source index, weight)` pairs of target cell `target`, sorted by source index
    /// (empty beyond the last target).
    pub(crate) fn row(&self, target: usize) -> &[(u32, f64)] {
        match (self.offsets.get(target), self.offsets.get(target + 1)) {
            (Some(&a), Some(&b)) => self.entries.get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The smallest source index range every row in `targets` uses (for a periodic axis whose
    /// rows wrap, the whole axis): the window of source cells an output chunk must read.
    /// Empty (`0..0`) when every row is empty.
    pub(crate) fn source_span(&self, targets: Range<usize>) -> Range<usize> {
        let mut low = usize::MAX;
        let mut high = 0;
        for t in targets {
            let row = self.row(t);
            if let (Some(first), Some(last)) = (row.first(), row.last()) {
                low = low.min(first.0 as usize);
                high = high.max(last.0 as usize + 1);
            }
        }
        if low >= high {
            0..0
        } else {
            low..high
        }
    }

    /// Serialised form for the weights cache.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Reads [`AxisWeights::to_bytes`]'s output.
    ///
    /// # Errors
    /// [`RegridError::Weights`] when the bytes do not decode or describe inconsistent rows.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<AxisWeights, RegridError> {
        let weights: AxisWeights = postcard::from_bytes(bytes)
            .map_err(|e| RegridError::Weights(format!("axis weights: {e}")))?;
        check_csr(&weights.offsets, weights.entries.len())?;
        let valid = weights
            .entries
            .iter()
            .all(|&(s, w)| (s as usize) < weights.source_len && w.is_finite());
        if !valid {
            return Err(RegridError::Weights(
                "axis weights: a source index or weight out of range".into(),
            ));
        }
        Ok(weights)
    }
}

/// Checks compressed-row offsets: start at 0, never decrease, end at `entries`.
pub(crate) fn check_csr(offsets: &[usize], entries: usize) -> Result<(), RegridError> {
    let ok = offsets.first() == Some(&0)
        && offsets.last() == Some(&entries)
        && offsets.windows(2).all(|w| w[0] <= w[1]);
    if ok {
        Ok(())
    } else {
        Err(RegridError::Weights("row offsets are inconsistent".into()))
    }
}

/// Conservative: weight = overlap length / target cell length, where length along latitude is
/// sin(φ2) − sin(φ1) (exact spherical, latitude circles), along longitude/planar the plain length
/// (longitude modulo 360). Rows of target cells partly outside the source sum to < 1; wholly
/// outside: empty row.
pub(crate) fn conservative(source: &Axis, target: &Axis) -> AxisWeights {
    let kind = source.kind();
    let wraps = source.wraps() || target.wraps();
    let measure = |lo: f64, hi: f64| match kind {
        AxisKind::Latitude => hi.to_radians().sin() - lo.to_radians().sin(),
        AxisKind::Longitude | AxisKind::Planar => hi - lo,
    };
    let cells = source.sorted_bounds();
    let (lowest, highest) = match (cells.first(), cells.last()) {
        (Some(first), Some(last)) => (first[0], last[1]),
        _ => return AxisWeights::from_rows(0, target.bounds().iter().map(|_| Vec::new())),
    };
    let rows = target.bounds().iter().map(|&[lower, upper]| {
        let full = measure(lower, upper);
        let mut row = Vec::new();
        for shift in shifts(wraps, lower, upper, lowest, highest) {
            let (lo, hi) = (lower + shift, upper + shift);
            let first = cells.partition_point(|c| c[1] <= lo);
            let last = cells.partition_point(|c| c[0] < hi);
            for (k, cell) in cells.iter().enumerate().take(last).skip(first) {
                let (a, b) = (cell[0].max(lo), cell[1].min(hi));
                if b > a && full > 0.0 {
                    row.push((source.file_index(k) as u32, measure(a, b) / full));
                }
            }
        }
        row
    });
    AxisWeights::from_rows(source.len(), rows)
}

/// The multiples of 360 by which `[lower, upper]` must move to meet `[lowest, highest]`
/// (only 0 for an axis that does not wrap).
pub(crate) fn shifts(wraps: bool, lower: f64, upper: f64, lowest: f64, highest: f64) -> Vec<f64> {
    if !wraps {
        return vec![0.0];
    }
    let first = ((lowest - upper) / TURN).ceil() as i64;
    let last = ((highest - lower) / TURN).floor() as i64;
    (first..=last).map(|k| k as f64 * TURN).collect()
}

/// `x` moved by whole turns into `[base, base + 360)` (unchanged when the axis does not wrap).
pub(crate) fn normalise(wraps: bool, x: f64, base: f64) -> f64 {
    if !wraps {
        return x;
    }
    let offset = (x - base).rem_euclid(TURN);
    // rem_euclid of a tiny negative number rounds up to a full turn.
    if offset >= TURN {
        base
    } else {
        base + offset
    }
}

/// Rows built per target centre: `row(x, centres)` gets the centre (moved by whole turns into
/// `[first source centre, + 360)` when longitudes are involved) and the ascending source
/// centres, and returns `(ascending position, weight)` pairs, mapped here to file indices.
fn rows_at_centres(
    source: &Axis,
    target: &Axis,
    row: impl FnMut(f64, &[f64]) -> Vec<(usize, f64)>,
) -> AxisWeights {
    let wraps = source.wraps() || target.wraps();
    let rows = rows_at_points(source, target.centres(), wraps, row);
    AxisWeights::from_rows(source.len(), rows)
}

/// One row per point of `points` (in `source`'s coordinate, longitudes compared modulo 360
/// when `wraps`), as [`rows_at_centres`] builds them.
fn rows_at_points(
    source: &Axis,
    points: &[f64],
    wraps: bool,
    mut row: impl FnMut(f64, &[f64]) -> Vec<(usize, f64)>,
) -> Vec<Vec<(u32, f64)>> {
    let centres = source.sorted_centres();
    let first = centres.first().copied().unwrap_or(0.0);
    points
        .iter()
        .map(|&x| {
            row(normalise(wraps, x, first), &centres)
                .into_iter()
                .map(|(k, w)| (source.file_index(k) as u32, w))
                .collect()
        })
        .collect()
}

/// Linear weights at scattered `points` along `source` (each row as [`linear`]'s), for targets
/// that are not a product of axes in the source's coordinates (another projection).
pub(crate) fn linear_points(source: &Axis, points: &[f64]) -> Vec<Vec<(u32, f64)>> {
    let wraps = source.wraps() || source.kind() == AxisKind::Longitude;
    rows_at_points(source, points, wraps, linear_row(source.is_periodic()))
}

/// Nearest weights at scattered `points` along `source` (each row as [`nearest`]'s).
pub(crate) fn nearest_points(source: &Axis, points: &[f64]) -> Vec<Vec<(u32, f64)>> {
    let wraps = source.wraps() || source.kind() == AxisKind::Longitude;
    rows_at_points(source, points, wraps, nearest_row(source))
}

/// Linear interpolation at target centres between source centres, as `xarray.interp(method="linear")`
/// (index space on this axis); outside [first, last] source centre -> empty row (NaN), except a
/// periodic longitude which interpolates across the seam.
pub(crate) fn linear(source: &Axis, target: &Axis) -> AxisWeights {
    rows_at_centres(source, target, linear_row(source.is_periodic()))
}

/// The row of one position `x` among ascending `centres` for [`linear`].
fn linear_row(periodic: bool) -> impl FnMut(f64, &[f64]) -> Vec<(usize, f64)> {
    move |x, centres| {
        let (Some(&first), Some(&last)) = (centres.first(), centres.last()) else {
            return Vec::new();
        };
        let n = centres.len();
        if x > last && periodic {
            let t = (x - last) / (first + TURN - last);
            return vec![(n - 1, 1.0 - t), (0, t)];
        }
        if x < first || x > last {
            return Vec::new();
        }
        // np.interp: the interval [c_j, c_j+1) holding x; the last centre itself has weight 1.
        let j = centres.partition_point(|&c| c <= x).saturating_sub(1);
        if j + 1 >= n {
            return vec![(n - 1, 1.0)];
        }
        let t = (x - centres[j]) / (centres[j + 1] - centres[j]);
        vec![(j, 1.0 - t), (j + 1, t)]
    }
}

/// Nearest source centre, as `xarray.interp(method="nearest")` (scipy `interp1d`, which rounds a
/// tie down: the lower coordinate wins); outside the source centres' range -> empty row,
/// periodic longitude wraps (a tie across the seam takes the last centre, the lower one).
pub(crate) fn nearest(source: &Axis, target: &Axis) -> AxisWeights {
    rows_at_centres(source, target, nearest_row(source))
}

/// The row of one position among the ascending centres of `source` for [`nearest`].
fn nearest_row(source: &Axis) -> impl FnMut(f64, &[f64]) -> Vec<(usize, f64)> {
    let periodic = source.is_periodic();
    // scipy: x_bds = x / 2; x_bds = x_bds[1:] + x_bds[:-1]; searchsorted(x_bds, side="left").
    let mids: Vec<f64> = source
        .sorted_centres()
        .windows(2)
        .map(|w| w[1] / 2.0 + w[0] / 2.0)
        .collect();
    move |x, centres| {
        let (Some(&first), Some(&last)) = (centres.first(), centres.last()) else {
            return Vec::new();
        };
        if x > last && periodic {
            let k = if x - last <= first + TURN - x {
                centres.len() - 1
            } else {
                0
            };
            return vec![(k, 1.0)];
        }
        if x < first || x > last {
            return Vec::new();
        }
        vec![(mids.partition_point(|&m| m < x), 1.0)]
    }
}

/// The least valid weight an output cell needs: `1 − clip(nan_threshold, 1e-6, 1 − 1e-6)`
/// (a NaN threshold counts as the strictest).
pub(crate) fn min_valid(nan_threshold: f64) -> f64 {
    let t = if nan_threshold.is_nan() {
        1e-6
    } else {
        nan_threshold.clamp(1e-6, 1.0 - 1e-6)
    };
    1.0 - t
}

/// The NaN rule: NaN when the valid weight is below `min_valid`, else the normalised sum.
#[inline]
pub(crate) fn finish(sum: f64, valid: f64, min_valid: f64) -> f64 {
    if valid < min_valid || valid <= 0.0 {
        f64::NAN
    } else {
        sum / valid
    }
}

/// A flattened copy of rows `targets` of `weights` with source indices made relative to
/// `window`; entries outside the window are dropped.
fn local_rows(
    weights: &AxisWeights,
    targets: Range<usize>,
    window: &Range<usize>,
) -> (Vec<usize>, Vec<(usize, f64)>) {
    let mut offsets = vec![0];
    let mut entries = Vec::new();
    for t in targets {
        entries.extend(
            weights
                .row(t)
                .iter()
                .filter(|e| window.contains(&(e.0 as usize)))
                .map(|&(s, w)| (s as usize - window.start, w)),
        );
        offsets.push(entries.len());
    }
    (offsets, entries)
}

/// Regrid one 2-D slice (y, x) with separable weights and the NaN rule.
/// `source` holds the source window rows `ys` × columns `xs` (C order, len = ys.len()*xs.len()),
/// where ys/xs are the spans returned by source_span for the target ranges `ty`, `tx`.
/// Output: ty.len() * tx.len() values (C order). NaN rule (DESIGN): with W the combined weights,
/// valid = W·(not NaN); output NaN when valid < 1 − clip(nan_threshold, 1e-6, 1 − 1e-6) (and when
/// the row is empty), else W·(x with NaN→0) / valid. For a periodic x span that wraps, take a
/// window = whole axis.
///
/// Weights that point outside the window count as missing values. Lengths that do not match
/// the ranges fill `out` with NaN.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply<T: Float>(
    y: &AxisWeights,
    x: &AxisWeights,
    ty: Range<usize>,
    tx: Range<usize>,
    ys: Range<usize>,
    xs: Range<usize>,
    source: &[T],
    nan_threshold: f64,
    out: &mut [T],
) {
    let (nty, ntx, nsy, nsx) = (ty.len(), tx.len(), ys.len(), xs.len());
    if source.len() != nsy * nsx || out.len() != nty * ntx {
        debug_assert!(false, "regrid apply: lengths do not match the ranges");
        out.fill(T::from_f64(f64::NAN));
        return;
    }
    let threshold = min_valid(nan_threshold);
    let (x_offsets, x_entries) = local_rows(x, tx, &xs);
    let (y_offsets, y_entries) = local_rows(y, ty, &ys);
    // Sum of weights per target column: the valid weight of a row without NaN.
    let x_total: Vec<f64> = x_offsets
        .windows(2)
        .map(|o| x_entries[o[0]..o[1]].iter().map(|e| e.1).sum())
        .collect();
    // Which source rows hold a NaN (only rows some target row uses are looked at).
    let mut has_nan = vec![false; nsy];
    let mut seen = vec![false; nsy];
    for &(r, _) in &y_entries {
        if !seen[r] {
            seen[r] = true;
            has_nan[r] = source[r * nsx..(r + 1) * nsx].iter().any(|v| v.is_nan());
        }
    }

    // Per target row: the y pass combines whole source rows (contiguous, vectorised) into one
    // row of the source's width, then the x pass gathers it onto the target columns. Doing y
    // first leaves the gathers to the target's rows only, and needs no per-slice buffers.
    let mut acc = vec![0.0f64; nsx];
    let mut ok = vec![0.0f64; nsx];
    for (i, out_row) in out.chunks_exact_mut(ntx.max(1)).take(nty).enumerate() {
        let rows = &y_entries[y_offsets[i]..y_offsets[i + 1]];
        acc.fill(0.0);
        let clean = rows.iter().all(|&(r, _)| !has_nan[r]);
        if !clean {
            ok.fill(0.0);
        }
        for &(r, w) in rows {
            let row = &source[r * nsx..(r + 1) * nsx];
            if clean {
                add_row(&mut acc, w, row);
            } else if has_nan[r] {
                add_valid_row(&mut acc, &mut ok, w, row);
            } else {
                add_row(&mut acc, w, row);
                ok.iter_mut().for_each(|o| *o += w);
            }
        }
        let row_weight: f64 = rows.iter().map(|e| e.1).sum();
        for (j, o) in out_row.iter_mut().enumerate() {
            let entries = &x_entries[x_offsets[j]..x_offsets[j + 1]];
            let sum: f64 = entries.iter().map(|&(c, w)| w * acc[c]).sum();
            let valid = if clean {
                row_weight * x_total[j]
            } else {
                entries.iter().map(|&(c, w)| w * ok[c]).sum()
            };
            *o = T::from_f64(finish(sum, valid, threshold));
        }
    }
}

/// `acc += weight × row` over a source row without NaN.
#[inline]
fn add_row<T: Float>(acc: &mut [f64], weight: f64, row: &[T]) {
    for (a, v) in acc.iter_mut().zip(row) {
        *a += weight * v.to_f64();
    }
}

/// `acc += weight × value` and `ok += weight` where the row's value is not NaN.
#[inline]
fn add_valid_row<T: Float>(acc: &mut [f64], ok: &mut [f64], weight: f64, row: &[T]) {
    for ((a, o), v) in acc.iter_mut().zip(ok.iter_mut()).zip(row) {
        let value = v.to_f64();
        let valid = !value.is_nan();
        *a += if valid { weight * value } else { 0.0 };
        *o += if valid { weight } else { 0.0 };
    }
}
