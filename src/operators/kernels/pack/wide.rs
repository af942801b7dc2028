//! The codes of little-endian `float32` bytes in one branch-free loop per code width, with an
//! AVX2 twin (see [`super::super::avx2`]).
//!
//! The arithmetic is [`Packing::code`]'s, value for value: the `f64` division that matches
//! xarray's encoding bit for bit is most of a code's cost, and AVX2 divides four values at a
//! time where the baseline x86-64 target divides one or two.

use super::super::avx2::has_avx2;
use super::{Packing, ROUNDING_SHIFT};

/// What the loop needs of a packing, as plain numbers.
#[derive(Clone, Copy)]
struct Codes {
    offset: f64,
    scale: f64,
    lo: f64,
    hi: f64,
    fill: i32,
    /// The source's fill value, or NaN (equal to nothing) when it has none.
    missing: f32,
}

/// Writes the codes of the whole `float32` values in `raw` into `slots` (little-endian, of
/// the packed type's width), as many as both hold.
pub(super) fn codes_le(packing: &Packing, raw: &[u8], missing: Option<f32>, slots: &mut [u8]) {
    let (lo, hi) = packing.dtype.codes();
    let codes = Codes {
        offset: packing.add_offset,
        scale: packing.scale_factor,
        lo: f64::from(lo),
        hi: f64::from(hi),
        fill: packing.dtype.fill(),
        missing: missing.unwrap_or(f32::NAN),
    };
    let two_bytes = packing.dtype.size() == 2;
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe {
            match two_bytes {
                true => codes_avx2::<2>(codes, raw, slots),
                false => codes_avx2::<1>(codes, raw, slots),
            }
        }
        return;
    }
    match two_bytes {
        true => codes_portable::<2>(codes, raw, slots),
        false => codes_portable::<1>(codes, raw, slots),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn codes_avx2<const WIDTH: usize>(codes: Codes, raw: &[u8], slots: &mut [u8]) {
    codes_portable::<WIDTH>(codes, raw, slots);
}

/// The loop, for codes of `WIDTH` bytes: the low bytes of the `i32` code are the packed
/// integer's, for signed and unsigned types alike.
#[inline(always)]
fn codes_portable<const WIDTH: usize>(codes: Codes, raw: &[u8], slots: &mut [u8]) {
    for (slot, b) in slots.chunks_exact_mut(WIDTH).zip(raw.chunks_exact(4)) {
        let value = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let scaled = (f64::from(value) - codes.offset) / codes.scale;
        // Rounded as `round_half_even` rounds, by adding 1.5·2^52; the sum's low 32 bits are
        // then the code in two's complement, which vectorizes where a float-to-int cast does
        // not. NaN stays NaN through the clamp; the select below replaces its bits.
        let shifted = scaled.clamp(codes.lo, codes.hi) + ROUNDING_SHIFT;
        let code = shifted.to_bits() as i32;
        let is_missing = value.is_nan() | (value == codes.missing);
        let code = if is_missing { codes.fill } else { code };
        slot.copy_from_slice(&code.to_le_bytes()[..WIDTH]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::PackedType;
    use super::*;

    /// Values that exercise every branch of a code: ties, the clip at both ends, ±∞, NaN, the
    /// source's fill, and a spread of ordinary values.
    fn values(packing: &Packing) -> Vec<f32> {
        let step = packing.scale_factor;
        let mut v = vec![
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -9999.0,
            1e30,
            -1e30,
        ];
        for k in -40_000..40_000 {
            let x = packing.add_offset + (f64::from(k) + 0.5) * step;
            v.push(x as f32);
            v.push((packing.add_offset + f64::from(k) * step * 0.37) as f32);
        }
        v
    }

    #[test]
    fn codes_are_those_of_the_scalar_code() {
        for (dtype, vmin, vmax) in [
            (PackedType::Int16, 271.5, 305.25),
            (PackedType::Uint16, -3.0, 7.0),
            (PackedType::Int16, 0.0, 1e-3),
            (PackedType::Int8, -1.0, 1.0),
            (PackedType::Uint8, 10.0, 35.5),
        ] {
            let packing = Packing::new(dtype, vmin, vmax).unwrap();
            let values = values(&packing);
            let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            for missing in [None, Some(-9999.0f32)] {
                let width = dtype.size();
                let mut slots = vec![0u8; values.len() * width];
                codes_le(&packing, &raw, missing, &mut slots);
                for (v, slot) in values.iter().zip(slots.chunks_exact(width)) {
                    let want = packing.code(*v, missing).to_le_bytes();
                    assert_eq!(slot, &want[..width], "{dtype:?} {v} missing {missing:?}");
                }
            }
        }
    }
}
