//! General sparse weights: from any source grid (flattened in C order over its two spatial
//! dims) to the target cells of one output chunk (flattened in C order over the chunk's two
//! spatial dims), stored by target row (CSR), applied with the NaN rule of
//! [`separable::apply`](super::separable::apply) and serialised for the weights cache.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::bins::{reduce, Statistic};
use super::separable::{check_csr, finish, min_valid};
use super::RegridError;
use crate::operators::kernels::Float;

/// Weights from any source grid (flattened, C order over its two spatial dims) to target cells of
/// one output chunk (flattened, C order over the chunk's two spatial dims).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SparseWeights {
    /// Row `t` is `sources[offsets[t]..offsets[t + 1]]` with `weights` alike.
    offsets: Vec<usize>,
    /// Flattened source indices, ascending within a row.
    sources: Vec<u32>,
    weights: Vec<f64>,
}

impl SparseWeights {
    /// Weights from `(target, source, weight)` triplets in any order: repeated pairs are summed,
    /// zero weights dropped, triplets naming a target `>= targets` ignored.
    pub(crate) fn from_triplets(
        targets: usize,
        mut triplets: Vec<(u32 /*target*/, u32 /*source*/, f64)>,
    ) -> SparseWeights {
        triplets.retain(|t| (t.0 as usize) < targets);
        triplets.sort_unstable_by_key(|t| (t.0, t.1));
        let mut merged: Vec<(u32, u32, f64)> = Vec::with_capacity(triplets.len());
        for (t, s, w) in triplets {
            match merged.last_mut() {
                Some(last) if last.0 == t && last.1 == s => last.2 += w,
                _ => merged.push((t, s, w)),
            }
        }
        merged.retain(|t| t.2 != 0.0);
        let mut offsets = vec![0usize; targets + 1];
        for &(t, _, _) in &merged {
            offsets[t as usize + 1] += 1;
        }
        for t in 0..targets {
            offsets[t + 1] += offsets[t];
        }
        SparseWeights {
            offsets,
            sources: merged.iter().map(|t| t.1).collect(),
            weights: merged.iter().map(|t| t.2).collect(),
        }
    }

    /// Number of target cells.
    pub(crate) fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The source indices and weights of target cell `target` (empty beyond the last).
    pub(crate) fn row(&self, target: usize) -> (&[u32], &[f64]) {
        match (self.offsets.get(target), self.offsets.get(target + 1)) {
            (Some(&a), Some(&b)) => (
                self.sources.get(a..b).unwrap_or(&[]),
                self.weights.get(a..b).unwrap_or(&[]),
            ),
            _ => (&[], &[]),
        }
    }

    /// The bounding window of source (row, col) indices used, given the source's 2-D shape
    /// (`(0..0, 0..0)` when no weight falls inside the shape).
    pub(crate) fn source_window(&self, source_shape: [usize; 2]) -> (Range<usize>, Range<usize>) {
        let [ny, nx] = source_shape;
        let (mut rows, mut cols) = ((usize::MAX, 0), (usize::MAX, 0));
        for &s in &self.sources {
            let s = s as usize;
            if nx == 0 || s >= ny * nx {
                continue;
            }
            let (r, c) = (s / nx, s % nx);
            rows = (rows.0.min(r), rows.1.max(r + 1));
            cols = (cols.0.min(c), cols.1.max(c + 1));
        }
        if rows.0 >= rows.1 {
            (0..0, 0..0)
        } else {
            (rows.0..rows.1, cols.0..cols.1)
        }
    }

    /// Apply with the same NaN rule as separable::apply; `source` is the window returned above
    /// (C order, `window.0.len() * window.1.len()` values). Weights outside the window count as
    /// missing values; lengths that do not match fill `out` with NaN.
    pub(crate) fn apply<T: Float>(
        &self,
        source_shape: [usize; 2],
        window: (Range<usize>, Range<usize>),
        source: &[T],
        nan_threshold: f64,
        out: &mut [T],
    ) {
        let nx = source_shape[1];
        let (wy, wx) = window;
        let width = wx.len();
        if source.len() != wy.len() * width || out.len() != self.len() || nx == 0 {
            debug_assert!(
                out.len() == self.len() && source.len() == wy.len() * width,
                "sparse apply: lengths do not match"
            );
            out.fill(T::from_f64(f64::NAN));
            return;
        }
        let threshold = min_valid(nan_threshold);
        for (t, cell) in out.iter_mut().enumerate() {
            let (sources, weights) = self.row(t);
            let (mut sum, mut valid) = (0.0, 0.0);
            for (&s, &w) in sources.iter().zip(weights) {
                let (r, c) = (s as usize / nx, s as usize % nx);
                if !(wy.contains(&r) && wx.contains(&c)) {
                    continue;
                }
                let value = source[(r - wy.start) * width + (c - wx.start)].to_f64();
                if !value.is_nan() {
                    sum += w * value;
                    valid += w;
                }
            }
            *cell = T::from_f64(finish(sum, valid, threshold));
        }
    }

    /// Applies `stat` to the non-NaN source values of each row (weights are ignored: a row
    /// lists the sources binned in its cell); sources outside the window are skipped and
    /// lengths that do not match fill `out` with NaN.
    pub(crate) fn apply_statistic<T: Float>(
        &self,
        stat: Statistic,
        source_shape: [usize; 2],
        window: (Range<usize>, Range<usize>),
        source: &[T],
        out: &mut [T],
    ) {
        let nx = source_shape[1];
        let (wy, wx) = window;
        let width = wx.len();
        if source.len() != wy.len() * width || out.len() != self.len() || nx == 0 {
            out.fill(T::from_f64(f64::NAN));
            return;
        }
        let mut values = Vec::new();
        for (t, cell) in out.iter_mut().enumerate() {
            values.clear();
            for &s in self.row(t).0 {
                let (r, c) = (s as usize / nx, s as usize % nx);
                if !(wy.contains(&r) && wx.contains(&c)) {
                    continue;
                }
                let value = source[(r - wy.start) * width + (c - wx.start)].to_f64();
                if !value.is_nan() {
                    values.push(value);
                }
            }
            *cell = T::from_f64(reduce(stat, &mut values));
        }
    }

    /// Serialise/deserialise (postcard is a dependency; serde derive is available) for the weights cache.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Reads [`SparseWeights::to_bytes`]'s output.
    ///
    /// # Errors
    /// [`RegridError::Weights`] when the bytes do not decode or describe inconsistent rows.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<SparseWeights, RegridError> {
        let weights: SparseWeights = postcard::from_bytes(bytes)
            .map_err(|e| RegridError::Weights(format!("sparse weights: {e}")))?;
        check_csr(&weights.offsets, weights.sources.len())?;
        if weights.weights.len() != weights.sources.len()
            || weights.weights.iter().any(|w| !w.is_finite())
        {
            return Err(RegridError::Weights(
                "sparse weights: weights do not match their sources".into(),
            ));
        }
        Ok(weights)
    }
}

#[cfg(test)]
mod tests;
