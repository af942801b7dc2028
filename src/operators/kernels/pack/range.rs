//! The data range a packing is computed from: min and max of a source's values ignoring NaN
//! and the fill value, accumulated chunk by chunk and merged.

use serde::{Deserialize, Serialize};

use crate::operators::kernels::Float;

/// The range of a source's values: min and max ignoring NaN and the fill value, as a
/// commutative, associative accumulator (scan chunks independently, then merge).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValueRange {
    /// Smallest value seen (`+inf` when none).
    pub min: f64,
    /// Largest value seen (`−inf` when none).
    pub max: f64,
    /// Number of values counted.
    pub count: u64,
}

impl Default for ValueRange {
    fn default() -> Self {
        ValueRange {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            count: 0,
        }
    }
}

impl ValueRange {
    /// The range of one chunk's values, skipping NaN and `missing`.
    pub fn scan<T: Float>(values: &[T], missing: Option<T>) -> Self {
        let mut range = ValueRange::default();
        for &v in values {
            if v.is_nan() || missing.is_some_and(|m| m == v) {
                continue;
            }
            let v = v.to_f64();
            range.min = range.min.min(v);
            range.max = range.max.max(v);
            range.count += 1;
        }
        range
    }

    /// Both ranges together.
    pub fn merge(self, other: ValueRange) -> ValueRange {
        ValueRange {
            min: self.min.min(other.min),
            max: self.max.max(other.max),
            count: self.count + other.count,
        }
    }

    /// `(min, max)`, or `None` when no value was counted.
    pub fn bounds(&self) -> Option<(f64, f64)> {
        (self.count > 0).then_some((self.min, self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_skips_nan_and_fill_and_merges() {
        let r = ValueRange::scan(&[f32::NAN, -9999.0, 3.0, -2.0], Some(-9999.0));
        assert_eq!(r.bounds(), Some((-2.0, 3.0)));
        assert_eq!(r.count, 2);
        let empty = ValueRange::scan(&[f64::NAN], None);
        assert_eq!(empty.bounds(), None);
        assert_eq!(empty.merge(r), r);
        assert_eq!(r.merge(empty), r);
        let other = ValueRange::scan(&[10.0f64], None);
        assert_eq!(r.merge(other).bounds(), Some((-2.0, 10.0)));
        assert_eq!(r.merge(other), other.merge(r));
    }
}
