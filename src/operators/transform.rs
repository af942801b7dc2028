//! Per-part value transforms applied after reading a source variable: axis flips, masking of
//! fill values to NaN, `x * scale + offset`, and a cast to the served type. They carry declared
//! fixes and per-file unpacking into a common encoding. Pure functions over byte buffers.

use serde::{Deserialize, Serialize};

use super::boxes::strides;
use crate::sources::model::DType;

/// What to do to a part's values, in this order: flip, mask, scale and offset, cast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    /// Axes of the source variable to reverse.
    pub flip: Vec<usize>,
    /// Source values that become NaN (fill and missing values being unpacked).
    pub mask: Vec<f64>,
    /// Multiplier.
    pub scale: f64,
    /// Added after scaling.
    pub offset: f64,
    /// Type of the values produced.
    pub output: DType,
}

impl Transform {
    /// A transform that only changes the type to `output` (identity values).
    pub fn identity(output: DType) -> Transform {
        Transform {
            flip: Vec::new(),
            mask: Vec::new(),
            scale: 1.0,
            offset: 0.0,
            output,
        }
    }

    fn changes_values(&self, input: DType) -> bool {
        !self.mask.is_empty() || self.scale != 1.0 || self.offset != 0.0 || self.output != input
    }

    /// Applies the transform to `data` (values of `input` type, C order, shape `shape`),
    /// returning values of the output type.
    pub fn apply(&self, mut data: Vec<u8>, input: DType, shape: &[u64]) -> Vec<u8> {
        let elem = input.size().unwrap_or(1);
        for &axis in &self.flip {
            reverse_axis(&mut data, shape, axis, elem);
        }
        if !self.changes_values(input) {
            return data;
        }
        let out_size = self.output.size().unwrap_or(8);
        let mut out = Vec::with_capacity(data.len() / elem * out_size);
        for raw in data.chunks_exact(elem) {
            let mut v = to_f64(raw, input);
            if self
                .mask
                .iter()
                .any(|&m| m == v || (m.is_nan() && v.is_nan()))
            {
                v = f64::NAN;
            }
            v = v * self.scale + self.offset;
            push_value(&mut out, v, self.output);
        }
        out
    }
}

/// Reverses a C-ordered array along `axis` in place.
fn reverse_axis(data: &mut [u8], shape: &[u64], axis: usize, elem: usize) {
    let Some(&n) = shape.get(axis) else {
        return;
    };
    let n = n as usize;
    let stride = strides(shape)[axis] as usize * elem;
    let block = stride * n;
    if block == 0 {
        return;
    }
    for outer in data.chunks_exact_mut(block) {
        for i in 0..n / 2 {
            let (a, b) = (i * stride, (n - 1 - i) * stride);
            let (left, right) = outer.split_at_mut(b);
            left[a..a + stride].swap_with_slice(&mut right[..stride]);
        }
    }
}

/// One little-endian element as f64.
pub fn to_f64(b: &[u8], dtype: DType) -> f64 {
    match dtype {
        DType::I8 => b[0] as i8 as f64,
        DType::U8 | DType::Char => b[0] as f64,
        DType::I16 => i16::from_le_bytes([b[0], b[1]]) as f64,
        DType::U16 => u16::from_le_bytes([b[0], b[1]]) as f64,
        DType::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        DType::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        DType::I64 => i64::from_le_bytes(b[..8].try_into().expect("8 bytes")) as f64,
        DType::U64 => u64::from_le_bytes(b[..8].try_into().expect("8 bytes")) as f64,
        DType::F64 => f64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
        DType::String => f64::NAN,
    }
}

/// Appends `v` as a little-endian element of `dtype` (integers rounded and saturated).
pub fn push_value(out: &mut Vec<u8>, v: f64, dtype: DType) {
    match dtype {
        DType::I8 => out.extend((v.round() as i8).to_le_bytes()),
        DType::U8 | DType::Char => out.extend((v.round() as u8).to_le_bytes()),
        DType::I16 => out.extend((v.round() as i16).to_le_bytes()),
        DType::U16 => out.extend((v.round() as u16).to_le_bytes()),
        DType::I32 => out.extend((v.round() as i32).to_le_bytes()),
        DType::U32 => out.extend((v.round() as u32).to_le_bytes()),
        DType::I64 => out.extend((v.round() as i64).to_le_bytes()),
        DType::U64 => out.extend((v.round() as u64).to_le_bytes()),
        DType::F32 => out.extend((v as f32).to_le_bytes()),
        DType::F64 | DType::String => out.extend(v.to_le_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn flips_the_named_axis() {
        let t = Transform {
            flip: vec![0],
            ..Transform::identity(DType::F32)
        };
        let out = t.apply(f32s(&[1., 2., 3., 4., 5., 6.]), DType::F32, &[3, 2]);
        assert_eq!(out, f32s(&[5., 6., 3., 4., 1., 2.]));
        let t = Transform {
            flip: vec![1],
            ..Transform::identity(DType::F32)
        };
        let out = t.apply(f32s(&[1., 2., 3., 4., 5., 6.]), DType::F32, &[2, 3]);
        assert_eq!(out, f32s(&[3., 2., 1., 6., 5., 4.]));
    }

    #[test]
    fn unpacks_with_mask_scale_and_offset() {
        let t = Transform {
            mask: vec![-1.0],
            scale: 0.5,
            offset: 10.0,
            ..Transform::identity(DType::F64)
        };
        let input: Vec<u8> = [-1i16, 4].iter().flat_map(|x| x.to_le_bytes()).collect();
        let out = t.apply(input, DType::I16, &[2]);
        let got: Vec<f64> = out
            .chunks(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert!(got[0].is_nan());
        assert_eq!(got[1], 12.0);
    }
}
