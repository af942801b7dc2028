//! Block reduction of an n-d array along two axes by an integer factor: the pyramid kernel.
//!
//! Matches `da.coarsen({a: f, b: f}, boundary="trim")` followed by the reducer of the same
//! name with xarray's defaults (`skipna=True`, `min_count=None`): trailing partial blocks are
//! trimmed, NaN is skipped, an all-NaN block gives NaN for mean / min / max and 0 for sum.
//! `nearest` is a sample, not a reduction: the block's first element (lowest index along both
//! axes, NaN or not), which is what `ds.isel(x=slice(0, None, f))` picks — ndpyramid's
//! `sel_coarsen` (its `pyramid_coarsen` itself only offers the mean) — here with trailing
//! partial blocks trimmed like the other methods, so every method gives the same shape.
//!
//! Levels compose: [`Partials`] keeps per output element what a coarser level needs (the sum
//! and count of valid values for the mean; the extreme for min / max; the first value for
//! nearest), and [`Partials::combine`] reduces partials further, so a pyramid level is computed
//! from the next finer level's partials and equals the direct reduction of the source (exactly
//! whenever the `f64` sums involved are exact, e.g. `f32` data of a moderate exponent range).
//!
//! Precision: values accumulate in `f64` and round once to the element type at the end, so a
//! `float32` mean is at least as accurate as numpy's float32 pairwise summation (xarray's
//! result may differ from it in the last bits).

use serde::{Deserialize, Serialize};

mod halve;
pub use halve::halve_last_two;

use super::Float;

/// How a block becomes one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reduction {
    /// Mean of the non-NaN values; NaN when there is none.
    Mean,
    /// Smallest non-NaN value; NaN when there is none.
    Min,
    /// Largest non-NaN value; NaN when there is none.
    Max,
    /// Sum of the non-NaN values; 0 when there is none.
    Sum,
    /// The block's first element.
    Nearest,
}

/// Which two axes to coarsen, and by how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Blocks {
    /// The two (distinct) axes reduced, e.g. the `y` and `x` axes of `(time, y, x)`.
    pub axes: [usize; 2],
    /// Block side along both axes.
    pub factor: usize,
}

/// An array the kernel cannot reduce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoarsenError {
    /// The axes are equal or beyond the array's rank.
    #[error(
        "cannot coarsen axes {axes:?} of an array of rank {rank}: two distinct axes are needed"
    )]
    Axes {
        /// Axes asked for.
        axes: [usize; 2],
        /// The array's rank.
        rank: usize,
    },
    /// A factor of 0.
    #[error("the coarsening factor must be at least 1")]
    ZeroFactor,
    /// The values do not fill the shape.
    #[error("{len} values do not make an array of shape {shape:?}")]
    Length {
        /// Number of values given.
        len: usize,
        /// Shape given.
        shape: Vec<usize>,
    },
}

/// Per output element, the partial result of a block reduction (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct Partials {
    method: Reduction,
    shape: Vec<usize>,
    /// Sum (mean, sum), extreme (min, max; NaN when `count` is 0) or first value (nearest).
    value: Vec<f64>,
    /// Number of non-NaN values the element covers (for nearest: 1 when `value` is not NaN).
    count: Vec<u64>,
}

impl Partials {
    /// Reduces `values` (C order, `shape`) by `blocks` with `method`.
    ///
    /// # Errors
    /// [`CoarsenError`] when the axes, factor or length do not fit `shape`.
    pub fn reduce<T: Float>(
        values: &[T],
        shape: &[usize],
        blocks: Blocks,
        method: Reduction,
    ) -> Result<Partials, CoarsenError> {
        check(values.len(), shape, blocks)?;
        let item = |i: usize| {
            let v = values.get(i).map_or(f64::NAN, |v| v.to_f64());
            (v, u64::from(!v.is_nan()))
        };
        Ok(accumulate(shape, blocks, method, item))
    }

    /// The next coarser level: these partials reduced again by `blocks`.
    ///
    /// # Errors
    /// [`CoarsenError`] when the axes or factor do not fit this level's shape.
    pub fn combine(&self, blocks: Blocks) -> Result<Partials, CoarsenError> {
        check(self.value.len(), &self.shape, blocks)?;
        let item = |i: usize| {
            let v = self.value.get(i).copied().unwrap_or(f64::NAN);
            (v, self.count.get(i).copied().unwrap_or(0))
        };
        Ok(accumulate(&self.shape, blocks, self.method, item))
    }

    /// The partials of a level already reduced, to reduce further with
    /// [`Partials::combine`]: its values (NaN where no valid value) and, for the mean, how many
    /// valid source values each stands for (`None`: one per non-NaN value).
    ///
    /// # Errors
    /// [`CoarsenError::Length`] when the values or counts do not fill `shape`.
    pub fn from_level<T: Float>(
        values: &[T],
        counts: Option<&[u32]>,
        shape: &[usize],
        method: Reduction,
    ) -> Result<Partials, CoarsenError> {
        let len = shape.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
        if len != Some(values.len()) || counts.is_some_and(|c| c.len() != values.len()) {
            return Err(CoarsenError::Length {
                len: values.len(),
                shape: shape.to_vec(),
            });
        }
        let (value, count) = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let v = v.to_f64();
                let n = match (v.is_nan(), counts) {
                    (true, _) => 0,
                    (false, Some(c)) => c.get(i).map_or(0, |&n| u64::from(n)),
                    (false, None) => 1,
                };
                match method {
                    Reduction::Mean if n == 0 => (0.0, 0),
                    Reduction::Mean => (v * n as f64, n),
                    _ => (v, n),
                }
            })
            .unzip();
        Ok(Partials {
            method,
            shape: shape.to_vec(),
            value,
            count,
        })
    }

    /// How many valid source values each reduced element stands for.
    pub fn counts(&self) -> &[u64] {
        &self.count
    }

    /// The shape of the reduced array.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The reduced values, C order, rounded once to `T`.
    pub fn finish<T: Float>(&self) -> Vec<T> {
        self.value
            .iter()
            .zip(&self.count)
            .map(|(&v, &n)| {
                T::from_f64(match self.method {
                    Reduction::Mean if n == 0 => f64::NAN,
                    Reduction::Mean => v / n as f64,
                    _ => v,
                })
            })
            .collect()
    }
}

/// Reduces `values` (C order, `shape`) by `blocks` with `method`; returns the values and shape.
///
/// # Errors
/// [`CoarsenError`] when the axes, factor or length do not fit `shape`.
pub fn coarsen<T: Float>(
    values: &[T],
    shape: &[usize],
    blocks: Blocks,
    method: Reduction,
) -> Result<(Vec<T>, Vec<usize>), CoarsenError> {
    let partials = Partials::reduce(values, shape, blocks, method)?;
    Ok((partials.finish(), partials.shape))
}

fn check(len: usize, shape: &[usize], blocks: Blocks) -> Result<(), CoarsenError> {
    let [a, b] = blocks.axes;
    if a == b || a >= shape.len() || b >= shape.len() {
        return Err(CoarsenError::Axes {
            axes: blocks.axes,
            rank: shape.len(),
        });
    }
    if blocks.factor == 0 {
        return Err(CoarsenError::ZeroFactor);
    }
    let product = shape.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
    if product != Some(len) {
        return Err(CoarsenError::Length {
            len,
            shape: shape.to_vec(),
        });
    }
    Ok(())
}

/// Folds every kept input item `(value, count)` into its output element.
fn accumulate(
    shape: &[usize],
    blocks: Blocks,
    method: Reduction,
    item: impl Fn(usize) -> (f64, u64),
) -> Partials {
    let out_shape: Vec<usize> = (0..shape.len())
        .map(|d| match blocks.axes.contains(&d) {
            true => shape[d] / blocks.factor,
            false => shape[d],
        })
        .collect();
    let len = out_shape.iter().product();
    let init = match method {
        Reduction::Mean | Reduction::Sum => 0.0,
        _ => f64::NAN,
    };
    let mut value = vec![init; len];
    let mut count = vec![0u64; len];
    walk(shape, &out_shape, blocks, |input, out, first| {
        let (v, n) = item(input);
        let (Some(acc), Some(c)) = (value.get_mut(out), count.get_mut(out)) else {
            return;
        };
        match method {
            Reduction::Nearest if first => (*acc, *c) = (v, n),
            Reduction::Nearest => {}
            _ if n == 0 => {}
            Reduction::Mean | Reduction::Sum => (*acc, *c) = (*acc + v, *c + n),
            Reduction::Min if *c == 0 || v < *acc => (*acc, *c) = (v, *c + n),
            Reduction::Max if *c == 0 || v > *acc => (*acc, *c) = (v, *c + n),
            Reduction::Min | Reduction::Max => *c += n,
        }
    });
    Partials {
        method,
        shape: out_shape,
        value,
        count,
    }
}

/// Calls `visit(input index, output index, first of its block)` for every input element that
/// falls in a whole block, in C order. `shape` has rank ≥ 2 (checked by the caller).
fn walk(
    shape: &[usize],
    out_shape: &[usize],
    blocks: Blocks,
    mut visit: impl FnMut(usize, usize, bool),
) {
    if shape.contains(&0) || out_shape.contains(&0) {
        return;
    }
    let mut stride = 1;
    let mut maps: Vec<Vec<(Option<usize>, bool)>> = vec![Vec::new(); shape.len()];
    for d in (0..shape.len()).rev() {
        let coarsened = blocks.axes.contains(&d);
        let f = if coarsened { blocks.factor } else { 1 };
        maps[d] = (0..shape[d])
            .map(|i| {
                let o = i / f;
                ((o < out_shape[d]).then_some(o * stride), i % f == 0)
            })
            .collect();
        stride *= out_shape[d];
    }
    let Some((inner, outer)) = maps.split_last() else {
        return;
    };
    let mut index = vec![0usize; outer.len()];
    let mut row_start = 0;
    loop {
        let mut base = Some(0);
        let mut first = true;
        for (map, &i) in outer.iter().zip(&index) {
            let (o, f) = map[i];
            base = base.zip(o).map(|(b, o)| b + o);
            first &= f;
        }
        if let Some(base) = base {
            for (i, &(o, f)) in inner.iter().enumerate() {
                if let Some(o) = o {
                    visit(row_start + i, base + o, first && f);
                }
            }
        }
        row_start += inner.len();
        // Advance the outer odometer; done when it wraps.
        let mut d = outer.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            if index[d] < outer[d].len() {
                break;
            }
            index[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests;
