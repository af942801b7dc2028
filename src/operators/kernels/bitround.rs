//! Bit-rounding of float mantissas, bit for bit as numcodecs' `BitRound(keepbits)` encodes
//! finite values: keep `keepbits` explicit mantissa bits and round the dropped ones half to
//! even, so the values compress well and lose at most half a unit in the last kept place.
//!
//! The integer arithmetic is that of numcodecs 0.16 (`numcodecs/bitround.py`): on the value's
//! bits as an integer, add `lsb + (2^(drop−1) − 1)`, where `lsb` is the lowest kept bit, then
//! clear the `drop` low bits. A carry out of the mantissa moves into the exponent, so a value
//! rounds up to the next binade and the largest finite values round up to infinity, as in
//! numcodecs. Two deliberate differences:
//! - NaN is returned unchanged. numcodecs runs NaN through the same addition, which can carry
//!   a payload through the exponent into the sign bit (`BitRound(0)` turns the quiet NaN
//!   `0x7fc00000` into `-0.0`): a missing value must stay missing.
//! - One `keepbits` applies to every variable of a view, so `keepbits` of at least the type's
//!   mantissa bits (23 for `f32`, 52 for `f64`) is the identity, where numcodecs raises for more
//!   than the type has; more than 52 is an error for every type.

use super::Float;

/// A validated number of mantissa bits to keep: `0..=52`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct KeepBits(u32);

/// A `keepbits` no float type can hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "keepbits = {keepbits} is out of range: a float mantissa has at most 52 bits (23 for float32)"
)]
pub struct KeepBitsError {
    /// The value asked for.
    pub keepbits: u32,
}

impl KeepBits {
    /// Most mantissa bits of any supported type (`f64`).
    pub const MAX: u32 = 52;

    /// Validates `keepbits`.
    ///
    /// # Errors
    /// [`KeepBitsError`] when `keepbits` exceeds 52.
    pub fn new(keepbits: u32) -> Result<Self, KeepBitsError> {
        if keepbits > Self::MAX {
            return Err(KeepBitsError { keepbits });
        }
        Ok(KeepBits(keepbits))
    }

    /// The number of mantissa bits kept.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// `value` with its mantissa rounded half to even to `keepbits` bits; NaN and ±Inf unchanged.
pub fn round<T: Float>(value: T, keepbits: KeepBits) -> T {
    let Some(drop) = T::MANTISSA_BITS.checked_sub(keepbits.0).filter(|&d| d > 0) else {
        return value;
    };
    if value.is_nan() {
        return value;
    }
    let width_mask = match T::MANTISSA_BITS {
        23 => u64::from(u32::MAX),
        _ => u64::MAX,
    };
    let bits = value.to_bits_u64();
    let lsb = (bits >> drop) & 1;
    let half_minus_one = (1u64 << (drop - 1)) - 1;
    let mask = (u64::MAX << drop) & width_mask;
    T::from_bits_u64(bits.wrapping_add(lsb + half_minus_one) & mask)
}

/// Rounds every element of `values` in place (see [`round`]).
pub fn round_slice<T: Float>(values: &mut [T], keepbits: KeepBits) {
    if keepbits.0 >= T::MANTISSA_BITS {
        return;
    }
    for v in values {
        *v = round(*v, keepbits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(bits: u32) -> KeepBits {
        KeepBits::new(bits).unwrap()
    }

    fn r32(bits: u32, keep: u32) -> u32 {
        round(f32::from_bits(bits), k(keep)).to_bits()
    }

    fn r64(bits: u64, keep: u32) -> u64 {
        round(f64::from_bits(bits), k(keep)).to_bits()
    }

    #[test]
    fn ties_round_to_even_both_ways() {
        // 1.25 = 1.01b: with one kept bit the tie goes down to the even 1.0.
        assert_eq!(round(1.25f32, k(1)), 1.0);
        // 1.375 = 1.011b: with two kept bits, 1.01|1 is a tie and the odd 1.01 goes up to 1.10.
        assert_eq!(round(1.375f32, k(2)), 1.5);
        // 1.125 = 1.001b: 1.00|1 ties down.
        assert_eq!(round(1.125f32, k(2)), 1.0);
        assert_eq!(round(1.125f64, k(2)), 1.0);
        assert_eq!(round(1.375f64, k(2)), 1.5);
        // One ulp above 1.0 with 51 bits kept: the dropped bit is exactly half, kept lsb 0.
        assert_eq!(r64(0x3ff0_0000_0000_0001, 51), 0x3ff0_0000_0000_0000);
        assert_eq!(r64(0x3ff0_0000_0000_0003, 51), 0x3ff0_0000_0000_0004);
    }

    #[test]
    fn above_and_below_half() {
        // 1.3 lies between 1.0, 1.5 and 2.0 (one kept bit); 1.5 is nearest.
        assert_eq!(round(1.3f32, k(1)), 1.5);
        assert_eq!(round(1.2f32, k(1)), 1.0);
        assert_eq!(round(1.2f64, k(1)), 1.0);
        // Keeping 10 bits of 1/3 = 1.0101…b × 2^-2: the first dropped bit of 0101010101|0101… is
        // 0, so the result is 1.0101010101b × 2^-2.
        let expected = (1.0 + (0b01_0101_0101 as f64) / 1024.0) / 4.0;
        assert_eq!(round(1.0f64 / 3.0, k(10)), expected);
        assert_eq!(round(1.0f32 / 3.0, k(10)), expected as f32);
    }

    #[test]
    fn carries_into_the_exponent() {
        // 1.75 = 1.11b with one kept bit: a tie with odd lsb, up to 10.0b = 2.0.
        assert_eq!(r32(0x3fe0_0000, 1), 0x4000_0000);
        assert_eq!(round(1.75f64, k(1)), 2.0);
        // 1.9999999 (all mantissa bits set) with no kept bit rounds up to 2.0.
        assert_eq!(r32(0x3fff_ffff, 0), 0x4000_0000);
        // The largest finite value rounds up to infinity, as numcodecs.
        assert_eq!(round(f32::MAX, k(10)), f32::INFINITY);
        assert_eq!(round(f64::MAX, k(10)), f64::INFINITY);
    }

    #[test]
    fn negative_numbers_round_symmetrically() {
        assert_eq!(round(-1.75f32, k(1)), -2.0);
        assert_eq!(round(-1.25f32, k(1)), -1.0);
        assert_eq!(round(-1.375f64, k(2)), -1.5);
        assert_eq!(round(-1.3f64, k(1)), -1.5);
        assert_eq!(r32(0xbfff_ffff, 0), 0xc000_0000);
        assert_eq!(round(-0.0f32, k(3)).to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn subnormals() {
        // The smallest subnormal rounds to zero with no kept bit (less than half of 2^-126).
        assert_eq!(r32(0x0000_0001, 0), 0);
        // 0.5 × 2^-126 is a tie between 0 (even) and 2^-126: down.
        assert_eq!(r32(0x0040_0000, 0), 0);
        // Just above the tie: up to the smallest normal.
        assert_eq!(r32(0x0040_0001, 0), 0x0080_0000);
        // 0.75 × 2^-126 with one kept bit: tie between 0.5 (odd) and 1.0 × 2^-126: up.
        assert_eq!(r32(0x0060_0000, 1), 0x0080_0000);
        assert_eq!(r64(0x0000_0000_0000_0003, 51), 0x0000_0000_0000_0004);
    }

    #[test]
    fn nan_and_infinity_unchanged() {
        for bits in [
            0x7fc0_0000u32,
            0x7fff_ffff,
            0x7f80_0001,
            0xffc0_0000,
            0xffff_ffff,
        ] {
            for keep in [0, 1, 10, 22] {
                assert_eq!(r32(bits, keep), bits, "{bits:#x} keep {keep}");
            }
        }
        for bits in [
            0x7ff8_0000_0000_0000u64,
            0x7fff_ffff_ffff_ffff,
            0xfff0_0000_0000_0001,
        ] {
            for keep in [0, 7, 51] {
                assert_eq!(r64(bits, keep), bits);
            }
        }
        for keep in [0, 5, 22] {
            assert_eq!(round(f32::INFINITY, k(keep)), f32::INFINITY);
            assert_eq!(round(f32::NEG_INFINITY, k(keep)), f32::NEG_INFINITY);
            assert_eq!(round(f64::INFINITY, k(keep)), f64::INFINITY);
            assert_eq!(round(f64::NEG_INFINITY, k(keep)), f64::NEG_INFINITY);
        }
    }

    #[test]
    fn full_mantissa_is_identity_and_too_many_bits_an_error() {
        let x = 0.1f32;
        for keep in [23, 30, 52] {
            assert_eq!(round(x, k(keep)).to_bits(), x.to_bits());
        }
        assert_eq!(round(0.1f64, k(52)).to_bits(), 0.1f64.to_bits());
        assert_eq!(r64(0x3fb9_9999_9999_999b, 51), 0x3fb9_9999_9999_999c);
        assert_eq!(KeepBits::new(53), Err(KeepBitsError { keepbits: 53 }));
        assert!(KeepBits::new(52).is_ok());
    }

    #[test]
    fn agrees_with_numcodecs_vectors() {
        // (input bits, keepbits, output bits) from numcodecs 0.16.6 `BitRound(k).encode` on
        // random finite values.
        let f32_cases = [
            (0xf1e5_4a8bu32, 14, 0xf1e5_4a00u32),
            (0xaf26_6a95, 20, 0xaf26_6a98),
            (0x940a_f962, 17, 0x940a_f980),
            (0xd56a_2742, 5, 0xd56c_0000),
            (0x0e37_5145, 6, 0x0e38_0000),
            (0x48fa_2734, 20, 0x48fa_2730),
            (0xe9a1_ac70, 0, 0xe980_0000),
            (0xd23c_068f, 3, 0xd240_0000),
        ];
        for (input, keep, output) in f32_cases {
            assert_eq!(r32(input, keep), output, "{input:#x} keep {keep}");
        }
        let f64_cases = [
            (0x77ca_95c7_1e7c_3921u64, 41, 0x77ca_95c7_1e7c_3800u64),
            (0x4d93_887a_d103_dc48, 17, 0x4d93_8878_0000_0000),
            (0x413f_221f_b82f_3ef0, 14, 0x413f_2200_0000_0000),
            (0x71f0_8551_fd8e_c592, 24, 0x71f0_8552_0000_0000),
            (0x8db2_00a1_9521_888d, 26, 0x8db2_00a1_9400_0000),
            (0xfed9_1b48_826b_236b, 41, 0xfed9_1b48_826b_2000),
            (0x9f47_2352_b345_2fb7, 41, 0x9f47_2352_b345_3000),
            (0xfd2c_7e03_574d_796e, 24, 0xfd2c_7e03_5000_0000),
        ];
        for (input, keep, output) in f64_cases {
            assert_eq!(r64(input, keep), output, "{input:#x} keep {keep}");
        }
    }

    #[test]
    fn slices_round_in_place() {
        let mut v = [1.25f32, 1.75, f32::NAN, -1.3];
        round_slice(&mut v, k(1));
        assert_eq!(&v[..2], &[1.0, 2.0]);
        assert!(v[2].is_nan());
        assert_eq!(v[3], -1.5);
    }
}
