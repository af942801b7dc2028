//! CF packing of floats into 8- and 16-bit integers (`scale_factor`, `add_offset`,
//! `_FillValue`), and the data range it is computed from.
//!
//! The fill value is reserved at one end of the integer type and the valid codes are the rest:
//! int16 packs into [−32767, 32767] with fill −32768, uint16 into [0, 65534] with 65535, int8
//! into [−127, 127] with −128, uint8 into [0, 254] with 255. For a range [vmin, vmax] of the
//! valid codes [lo, hi]: `scale_factor = (vmax − vmin)/(hi − lo)`,
//! `add_offset = vmin − lo·scale_factor`, and
//! `packed = clip(round_half_even((x − add_offset)/scale_factor), lo, hi)`, in `f64`; NaN and
//! the source's own fill value become the fill. For x in the range,
//! `|packed·scale_factor + add_offset − x| ≤ scale_factor/2` up to one `f64` rounding of the
//! decoded value. A constant range (vmin = vmax) packs every valid value to code 0 with
//! `scale_factor = 1` and `add_offset = vmin`, which decodes exactly.
//!
//! [`ValueRange`] (in `range.rs`) is the data range as a mergeable accumulator: each chunk is scanned into its
//! own range and the ranges merge in any order, so one scan of a source gives one range and
//! every chunk of the view is packed with the same encoding.

use serde::{Deserialize, Serialize};

use super::Float;

mod range;
mod wide;
pub use range::ValueRange;

/// The integer type values are packed into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackedType {
    /// `int16`: codes [−32767, 32767], fill −32768.
    Int16,
    /// `uint16`: codes [0, 65534], fill 65535.
    Uint16,
    /// `int8`: codes [−127, 127], fill −128.
    Int8,
    /// `uint8`: codes [0, 254], fill 255.
    Uint8,
}

impl PackedType {
    /// Smallest and largest valid code.
    pub fn codes(self) -> (i32, i32) {
        match self {
            PackedType::Int16 => (-32767, 32767),
            PackedType::Uint16 => (0, 65534),
            PackedType::Int8 => (-127, 127),
            PackedType::Uint8 => (0, 254),
        }
    }

    /// The reserved fill code (`_FillValue`).
    pub fn fill(self) -> i32 {
        match self {
            PackedType::Int16 => -32768,
            PackedType::Uint16 => 65535,
            PackedType::Int8 => -128,
            PackedType::Uint8 => 255,
        }
    }

    /// Bytes per packed element.
    pub fn size(self) -> usize {
        match self {
            PackedType::Int16 | PackedType::Uint16 => 2,
            PackedType::Int8 | PackedType::Uint8 => 1,
        }
    }
}

/// Why a range cannot be packed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PackError {
    /// The range has no finite bounds, or they are reversed.
    #[error("cannot pack the range [{vmin}, {vmax}]: it must be finite with min <= max")]
    BadRange {
        /// Lower bound given.
        vmin: f64,
        /// Upper bound given.
        vmax: f64,
    },
    /// The scale factor would not be finite and positive (a range as wide as the type).
    #[error("the range [{vmin}, {vmax}] is too wide to pack")]
    TooWide {
        /// Lower bound given.
        vmin: f64,
        /// Upper bound given.
        vmax: f64,
    },
    /// A typed output asked for another integer type than the packing's.
    #[error("the packing is {packing:?}, not {asked:?}")]
    WrongType {
        /// The packing's type.
        packing: PackedType,
        /// The type asked for.
        asked: PackedType,
    },
}

/// One packing: the integer type and the CF attributes that decode it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Packing {
    /// The integer type.
    pub dtype: PackedType,
    /// CF `scale_factor`.
    pub scale_factor: f64,
    /// CF `add_offset`.
    pub add_offset: f64,
}

impl Packing {
    /// The packing of values in [vmin, vmax] into `dtype`.
    ///
    /// # Errors
    /// [`PackError::BadRange`] for a non-finite or reversed range, [`PackError::TooWide`] when
    /// `vmax − vmin` overflows.
    pub fn new(dtype: PackedType, vmin: f64, vmax: f64) -> Result<Self, PackError> {
        if !(vmin.is_finite() && vmax.is_finite() && vmin <= vmax) {
            return Err(PackError::BadRange { vmin, vmax });
        }
        if vmin == vmax {
            return Ok(Packing {
                dtype,
                scale_factor: 1.0,
                add_offset: vmin,
            });
        }
        let (lo, hi) = dtype.codes();
        let scale_factor = (vmax - vmin) / f64::from(hi - lo);
        let add_offset = vmin - f64::from(lo) * scale_factor;
        if !(scale_factor.is_finite() && scale_factor > 0.0 && add_offset.is_finite()) {
            return Err(PackError::TooWide { vmin, vmax });
        }
        Ok(Packing {
            dtype,
            scale_factor,
            add_offset,
        })
    }

    /// The code of one value: the fill for NaN and for `missing` (the source's fill value).
    pub fn code<T: Float>(&self, value: T, missing: Option<T>) -> i32 {
        if value.is_nan() || missing.is_some_and(|m| m == value) {
            return self.dtype.fill();
        }
        let (lo, hi) = self.dtype.codes();
        let scaled = (value.to_f64() - self.add_offset) / self.scale_factor;
        // Clamp in f64 first (±Inf and huge values saturate instead of wrapping), then round:
        // the same as rounding first, the bounds being integers.
        round_half_even(scaled.clamp(f64::from(lo), f64::from(hi))) as i32
    }

    /// Appends the codes of `values` to `out` as little-endian integers of the packed type.
    pub fn pack_bytes<T: Float>(&self, values: &[T], missing: Option<T>, out: &mut Vec<u8>) {
        self.write_codes(values.iter().copied(), values.len(), missing, out);
    }

    /// [`Packing::pack_bytes`] of `float32` values given as their little-endian bytes (whole
    /// values; a trailing partial one is ignored), without decoding them into a buffer first.
    pub fn pack_f32_le_bytes(&self, raw: &[u8], missing: Option<f32>, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + raw.len() / 4 * self.dtype.size(), 0);
        wide::codes_le(self, raw, missing, &mut out[start..]);
    }

    /// Writes the codes of `n` values into `n` slots appended to `out`, one loop per width so
    /// the per-value work is only the code's (and the loop vectorizes).
    fn write_codes<T: Float>(
        &self,
        values: impl Iterator<Item = T>,
        n: usize,
        missing: Option<T>,
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        out.resize(start + n * self.dtype.size(), 0);
        let slots = &mut out[start..];
        if self.dtype.size() == 2 {
            for (slot, v) in slots.chunks_exact_mut(2).zip(values) {
                slot.copy_from_slice(&(self.code(v, missing) as u16).to_le_bytes());
            }
        } else {
            for (slot, v) in slots.iter_mut().zip(values) {
                *slot = self.code(v, missing) as u8;
            }
        }
    }

    /// The codes of `values` as a vector of the packed integer type `P`.
    ///
    /// # Errors
    /// [`PackError::WrongType`] when `P` is not the packing's type.
    pub fn pack_typed<T: Float, P: PackedInt>(
        &self,
        values: &[T],
        missing: Option<T>,
    ) -> Result<Vec<P>, PackError> {
        if P::TYPE != self.dtype {
            return Err(PackError::WrongType {
                packing: self.dtype,
                asked: P::TYPE,
            });
        }
        Ok(values
            .iter()
            .map(|&v| P::from_code(self.code(v, missing)))
            .collect())
    }

    /// The value a code decodes to, as a CF reader computes it; NaN for the fill.
    pub fn decode(&self, code: i32) -> f64 {
        if code == self.dtype.fill() {
            return f64::NAN;
        }
        f64::from(code) * self.scale_factor + self.add_offset
    }
}

/// `x` rounded to the nearest integer, ties to even, for |x| ≤ 2^51 (every packed code range):
/// adding and subtracting 1.5·2^52 leaves no fraction bits, and IEEE round-to-nearest-even
/// decides the tie. `f64::round_ties_even` is the same but a library call per value on CPUs
/// without SSE4.1's `roundsd`, a fifth of the packing's time.
#[inline]
fn round_half_even(x: f64) -> f64 {
    (x + ROUNDING_SHIFT) - ROUNDING_SHIFT
}

/// 1.5 · 2^52: added to an `f64` of magnitude ≤ 2^51, leaves no fraction bits.
const ROUNDING_SHIFT: f64 = 6_755_399_441_055_744.0;

/// The integer element types a packing can be written as.
pub trait PackedInt: Copy {
    /// The matching packed type.
    const TYPE: PackedType;
    /// The element holding `code` (a valid code or the fill of [`Self::TYPE`]).
    fn from_code(code: i32) -> Self;
}

macro_rules! packed_int {
    ($t:ty, $variant:ident) => {
        impl PackedInt for $t {
            const TYPE: PackedType = PackedType::$variant;
            fn from_code(code: i32) -> Self {
                code as $t
            }
        }
    };
}
packed_int!(i16, Int16);
packed_int!(u16, Uint16);
packed_int!(i8, Int8);
packed_int!(u8, Uint8);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::kernels::test_rng::Rng;

    const TYPES: [PackedType; 4] = [
        PackedType::Int16,
        PackedType::Uint16,
        PackedType::Int8,
        PackedType::Uint8,
    ];

    #[test]
    fn rounding_matches_round_ties_even() {
        let mut rng = Rng(11);
        let ties = (-70_000..70_000).map(|k| f64::from(k) + 0.5);
        let near = (-2000..2000).flat_map(|k| {
            let x = f64::from(k) * 0.5;
            [x.next_down(), x, x.next_up()]
        });
        let random = (0..100_000).map(|_| rng.uniform(-65_535.0, 65_535.0));
        for x in ties
            .chain(near)
            .chain(random)
            .chain([0.0, -0.0, 65_534.0, -32_767.0])
        {
            assert_eq!(round_half_even(x), x.round_ties_even(), "{x:e}");
        }
    }

    #[test]
    fn fill_is_reserved_outside_the_codes() {
        assert_eq!(PackedType::Int16.codes(), (-32767, 32767));
        assert_eq!(PackedType::Int16.fill(), i32::from(i16::MIN));
        assert_eq!(PackedType::Uint16.codes(), (0, 65534));
        assert_eq!(PackedType::Uint16.fill(), i32::from(u16::MAX));
        assert_eq!(PackedType::Int8.codes(), (-127, 127));
        assert_eq!(PackedType::Int8.fill(), i32::from(i8::MIN));
        assert_eq!(PackedType::Uint8.codes(), (0, 254));
        assert_eq!(PackedType::Uint8.fill(), i32::from(u8::MAX));
    }

    #[test]
    fn attributes_follow_the_formula() {
        let p = Packing::new(PackedType::Int16, -1.0, 1.0).unwrap();
        assert_eq!(p.scale_factor, 2.0 / 65534.0);
        assert_eq!(p.add_offset, -1.0 + 32767.0 * (2.0 / 65534.0));
        assert_eq!(p.code(-1.0f64, None), -32767);
        assert_eq!(p.code(1.0f64, None), 32767);
        assert_eq!(p.code(0.0f32, None), 0);
        assert_eq!(p.code(f32::NAN, None), -32768);
        let p = Packing::new(PackedType::Uint8, 10.0, 264.0).unwrap();
        assert_eq!((p.scale_factor, p.add_offset), (1.0, 10.0));
        assert_eq!(p.code(20.0f64, None), 10);
    }

    #[test]
    fn rounds_half_to_even_and_clips() {
        // Scale 1, offset 0: the code is the value rounded as numpy's np.round.
        let p = Packing::new(PackedType::Uint8, 0.0, 254.0).unwrap();
        let cases = [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (3.5, 4),
            (3.4999, 3),
            (253.5, 254),
        ];
        for (x, code) in cases {
            assert_eq!(p.code(x, None), code, "{x}");
        }
        for (x, code) in [(300.0, 254), (-5.0, 0), (f64::INFINITY, 254), (-1e300, 0)] {
            assert_eq!(p.code(x, None), code, "{x}");
        }
        let p = Packing::new(PackedType::Int8, -127.0, 127.0).unwrap();
        assert_eq!(p.code(-0.5f32, None), 0);
        assert_eq!(p.code(-1.5f32, None), -2);
        assert_eq!(p.code(f32::NEG_INFINITY, None), -127);
    }

    #[test]
    fn source_fill_becomes_the_packed_fill() {
        let p = Packing::new(PackedType::Int16, -10.0, 10.0).unwrap();
        let values = [1.0f32, -9999.0, f32::NAN, -10.0];
        let codes: Vec<i16> = p.pack_typed(&values, Some(-9999.0)).unwrap();
        assert_eq!(codes, [3277, -32768, -32768, -32767]);
        assert!(p.decode(-32768).is_nan());
    }

    #[test]
    fn constant_range_decodes_exactly() {
        for dtype in TYPES {
            let p = Packing::new(dtype, 1e20, 1e20).unwrap();
            assert_eq!(p.code(1e20f64, None), 0);
            assert_eq!(p.decode(0), 1e20);
            assert!(p.code(f64::NAN, None) == dtype.fill());
        }
    }

    #[test]
    fn bad_ranges_are_errors() {
        let bad = [(f64::NAN, 1.0), (2.0, 1.0), (0.0, f64::INFINITY)];
        for (vmin, vmax) in bad {
            assert!(matches!(
                Packing::new(PackedType::Int16, vmin, vmax),
                Err(PackError::BadRange { .. })
            ));
        }
        assert!(matches!(
            Packing::new(PackedType::Int8, -f64::MAX, f64::MAX),
            Err(PackError::TooWide { .. })
        ));
        let p = Packing::new(PackedType::Int8, 0.0, 1.0).unwrap();
        assert_eq!(
            p.pack_typed::<f32, i16>(&[0.5], None),
            Err(PackError::WrongType {
                packing: PackedType::Int8,
                asked: PackedType::Int16
            })
        );
    }

    #[test]
    fn bytes_are_little_endian_codes() {
        let p = Packing::new(PackedType::Int16, -32767.0, 32767.0).unwrap();
        let mut out = Vec::new();
        p.pack_bytes(&[-2.0f64, 258.0, f64::NAN], None, &mut out);
        assert_eq!(out, [0xfe, 0xff, 0x02, 0x01, 0x00, 0x80]);
        let p = Packing::new(PackedType::Uint16, 0.0, 65534.0).unwrap();
        out.clear();
        p.pack_bytes(&[65534.0f32, f32::NAN], None, &mut out);
        assert_eq!(out, [0xfe, 0xff, 0xff, 0xff]);
        let p = Packing::new(PackedType::Uint8, 0.0, 254.0).unwrap();
        out.clear();
        p.pack_bytes(&[7.0f32, f32::NAN], None, &mut out);
        assert_eq!(out, [7, 255]);
    }

    #[test]
    fn float32_bytes_pack_as_their_values() {
        let mut rng = Rng(7);
        let fill = -999.0f32;
        let values: Vec<f32> = (0..10_001)
            .map(|i| match i % 13 {
                0 => f32::NAN,
                1 => fill,
                2 => f32::INFINITY,
                _ => rng.uniform(-50.0, 50.0) as f32,
            })
            .collect();
        let mut raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        raw.push(0xab); // a partial trailing value is ignored
        for dtype in TYPES {
            let p = Packing::new(dtype, -40.0, 40.0).unwrap();
            for missing in [None, Some(fill)] {
                let (mut want, mut got) = (vec![1u8], vec![1u8]);
                p.pack_bytes(&values, missing, &mut want);
                p.pack_f32_le_bytes(&raw, missing, &mut got);
                assert_eq!(got, want, "{dtype:?} {missing:?}");
            }
        }
    }

    fn check_error_bound<T: Float>(rng: &mut Rng, dtype: PackedType) {
        let vmin = rng.uniform(-1e4, 1e4);
        let vmax = vmin + rng.uniform(1e-3, 1e5);
        let values: Vec<T> = (0..4000)
            .map(|i| match i % 17 {
                0 => T::from_f64(f64::NAN),
                1 => T::from_f64(vmin),
                2 => T::from_f64(vmax),
                _ => T::from_f64(rng.uniform(vmin, vmax)),
            })
            .collect();
        // The range as scanned from the data, in three chunks merged out of order.
        let (a, rest) = values.split_at(1000);
        let (b, c) = rest.split_at(1500);
        let range = ValueRange::scan(c, None)
            .merge(ValueRange::scan(a, None))
            .merge(ValueRange::scan(b, None));
        let (lo, hi) = range.bounds().unwrap();
        let p = Packing::new(dtype, lo, hi).unwrap();
        for &x in &values {
            let decoded = p.decode(p.code(x, None));
            assert_eq!(decoded.is_nan(), x.is_nan(), "{dtype:?}");
            if x.is_nan() {
                continue;
            }
            let x = x.to_f64();
            // scale/2 exactly, plus the f64 rounding of the decoded value.
            let bound = p.scale_factor / 2.0 + 4.0 * f64::EPSILON * x.abs().max(p.add_offset.abs());
            assert!(
                (decoded - x).abs() <= bound,
                "{dtype:?} {x} {decoded} {p:?}"
            );
        }
    }

    #[test]
    fn decoding_is_within_half_a_step() {
        let mut rng = Rng(11);
        for _ in 0..20 {
            for dtype in TYPES {
                check_error_bound::<f32>(&mut rng, dtype);
                check_error_bound::<f64>(&mut rng, dtype);
            }
        }
    }
}
