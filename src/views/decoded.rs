//! Values of an input array as xarray decodes them: `_FillValue` and `missing_value` become NaN,
//! `scale_factor` / `add_offset` are applied, and the result is `float32` or `float64` as
//! xarray's CF decoder chooses it. Every view operates on decoded values.

use crate::operators::kernels::avx2::has_avx2;
use crate::operators::{element_f64, ChunkError, ChunkErrorKind, Region, RegionBytes};
use crate::sources::model::{Attr, AttrValue, DType};
use crate::tree::ArrayNode;

/// How to decode the raw values of one array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoding {
    raw: DType,
    missing: Vec<f64>,
    scale: Option<(f64, f64)>,
    /// The decoded type: [`DType::F32`] or [`DType::F64`].
    pub(crate) float: DType,
}

/// The numeric value of attribute `name`, when it has exactly one.
pub(crate) fn attr_f64(attrs: &[Attr], name: &str) -> Option<f64> {
    let values = attrs.iter().find(|a| a.name == name)?.value.as_f64s()?;
    (values.len() == 1).then(|| values[0])
}

impl Decoding {
    /// The decoding of `array`, or `None` for text.
    pub(crate) fn of(array: &ArrayNode) -> Option<Decoding> {
        let raw = array.geometry.dtype;
        if matches!(raw, DType::String | DType::Char) {
            return None;
        }
        let attrs = &array.attrs;
        let mut missing = Vec::new();
        for name in ["_FillValue", "missing_value"] {
            if let Some(values) = attrs
                .iter()
                .find(|a| a.name == name)
                .and_then(|a| a.value.as_f64s())
            {
                missing.extend(values.into_iter().filter(|v| !v.is_nan()));
            }
        }
        let scale_factor = attr_f64(attrs, "scale_factor");
        let add_offset = attr_f64(attrs, "add_offset");
        let scale = (scale_factor.is_some() || add_offset.is_some())
            .then(|| (scale_factor.unwrap_or(1.0), add_offset.unwrap_or(0.0)));
        let attr_is_f32 = |name: &str| {
            attrs
                .iter()
                .find(|a| a.name == name)
                .is_none_or(|a| matches!(a.value, AttrValue::F32(_)))
        };
        let small = raw.size().is_some_and(|s| s <= 2);
        let float = match raw {
            DType::F32 if scale.is_none() => DType::F32,
            DType::F64 => DType::F64,
            _ if scale.is_some()
                && small
                && attr_is_f32("scale_factor")
                && attr_is_f32("add_offset") =>
            {
                DType::F32
            }
            _ if scale.is_none() && (small || raw == DType::F32) => DType::F32,
            _ => DType::F64,
        };
        Some(Decoding {
            raw,
            missing,
            scale,
            float,
        })
    }

    /// This decoding, giving values of `float` (`F32` or `F64`) instead.
    pub(crate) fn served_as(self, float: DType) -> Decoding {
        Decoding { float, ..self }
    }

    /// Whether xarray decodes the values as floats with meaning of their own: float types,
    /// and integers packed with `scale_factor`/`add_offset`.
    pub(crate) fn is_float(&self) -> bool {
        matches!(self.raw, DType::F32 | DType::F64) || self.scale.is_some()
    }

    /// Whether xarray keeps the values as they are stored: integers with no fill, missing value
    /// or scaling.
    pub(crate) fn is_exact_integer(&self) -> bool {
        !matches!(self.raw, DType::F32 | DType::F64)
            && self.scale.is_none()
            && self.missing.is_empty()
    }

    /// The stored type.
    pub(crate) fn raw(&self) -> DType {
        self.raw
    }

    /// What enters cache keys: the decoding's parameters.
    pub(crate) fn identity(&self) -> (String, Vec<u64>, Option<(u64, u64)>) {
        (
            format!("{:?}>{:?}", self.raw, self.float),
            self.missing.iter().map(|v| v.to_bits()).collect(),
            self.scale.map(|(s, o)| (s.to_bits(), o.to_bits())),
        )
    }

    /// One decoded value from a raw value.
    pub(crate) fn value(&self, raw: f64) -> f64 {
        let (m0, m1) = self.missing_pair();
        self.decode_one(raw, m0, m1)
    }

    /// The first two missing values (NaN when absent; no value equals NaN).
    fn missing_pair(&self) -> (f64, f64) {
        let first = self.missing.first().copied().unwrap_or(f64::NAN);
        let second = self.missing.get(1).copied().unwrap_or(f64::NAN);
        (first, second)
    }

    #[inline(always)]
    fn decode_one(&self, raw: f64, m0: f64, m1: f64) -> f64 {
        if raw.is_nan()
            || raw == m0
            || raw == m1
            || self.missing.get(2..).is_some_and(|m| m.contains(&raw))
        {
            return f64::NAN;
        }
        match self.scale {
            Some((scale, offset)) if self.float == DType::F32 => {
                f64::from((raw * scale + offset) as f32)
            }
            Some((scale, offset)) => raw * scale + offset,
            None => raw,
        }
    }

    /// Decodes little-endian raw values, `N` bytes each, read with `read`.
    fn decode_with<const N: usize>(
        &self,
        raw: &[u8],
        read: impl Fn([u8; N]) -> f64 + Copy,
    ) -> Vec<f64> {
        let (m0, m1) = self.missing_pair();
        if self.scale.is_none() && self.missing.len() <= 2 {
            let mut out = vec![0.0; raw.len() / N];
            #[cfg(target_arch = "x86_64")]
            if has_avx2() {
                // SAFETY: the CPU has AVX2, checked just above.
                unsafe { missing_as_nan_avx2(raw, read, [m0, m1], &mut out) };
                return out;
            }
            missing_as_nan(raw, read, [m0, m1], &mut out);
            return out;
        }
        raw.chunks_exact(N)
            .map(|b| {
                let mut bytes = [0u8; N];
                bytes.copy_from_slice(b);
                self.decode_one(read(bytes), m0, m1)
            })
            .collect()
    }

    /// The missing values of `float32` data stored without scaling (whose decoding is only
    /// "missing → NaN"); `None` for any other type.
    pub(crate) fn plain_f32_missing(&self) -> Option<Vec<f32>> {
        (self.raw == DType::F32 && self.float == DType::F32 && self.scale.is_none())
            .then(|| self.missing.iter().map(|&m| m as f32).collect())
    }

    /// Decoded `float32` values as little-endian bytes, for `float32` stored without scaling:
    /// the raw bytes with missing values replaced by NaN, in place (bytes shared with the cache
    /// are copied first, unless there is no missing value to replace); other types get their
    /// bytes back as the error.
    pub(crate) fn decode_f32_bytes(&self, raw: RegionBytes) -> Result<RegionBytes, RegionBytes> {
        if self.raw != DType::F32 || self.float != DType::F32 || self.scale.is_some() {
            return Err(raw);
        }
        if self.missing.is_empty() {
            return Ok(raw);
        }
        let mut raw = raw.into_vec();
        let missing: Vec<f32> = self.missing.iter().map(|&m| m as f32).collect();
        let nan = f32::NAN.to_le_bytes();
        let value = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        match missing.as_slice() {
            &[m] => raw
                .chunks_exact_mut(4)
                .filter(|b| value(b) == m)
                .for_each(|b| b.copy_from_slice(&nan)),
            _ => raw
                .chunks_exact_mut(4)
                .filter(|b| missing.contains(&value(b)))
                .for_each(|b| b.copy_from_slice(&nan)),
        }
        Ok(RegionBytes::Owned(raw))
    }

    /// Decodes little-endian raw values.
    pub(crate) fn decode(&self, raw: &[u8]) -> Vec<f64> {
        match self.raw {
            DType::F32 => self.decode_with(raw, |b: [u8; 4]| f64::from(f32::from_le_bytes(b))),
            DType::F64 => self.decode_with(raw, f64::from_le_bytes),
            DType::I16 => self.decode_with(raw, |b: [u8; 2]| f64::from(i16::from_le_bytes(b))),
            DType::U16 => self.decode_with(raw, |b: [u8; 2]| f64::from(u16::from_le_bytes(b))),
            DType::I8 => self.decode_with(raw, |b: [u8; 1]| f64::from(b[0] as i8)),
            DType::U8 => self.decode_with(raw, |b: [u8; 1]| f64::from(b[0])),
            DType::I32 => self.decode_with(raw, |b: [u8; 4]| f64::from(i32::from_le_bytes(b))),
            DType::U32 => self.decode_with(raw, |b: [u8; 4]| f64::from(u32::from_le_bytes(b))),
            _ => {
                let size = self.raw.size().unwrap_or(1).max(1);
                let (m0, m1) = self.missing_pair();
                raw.chunks_exact(size)
                    .map(|b| self.decode_one(element_f64(b, self.raw), m0, m1))
                    .collect()
            }
        }
    }

    /// The decoded values of `region` of `array`, read through `context`'s region reader.
    ///
    /// # Errors
    /// The input chunk's [`ChunkError`].
    pub(crate) fn read(
        &self,
        context: &crate::operators::OperatorContext<'_>,
        array: &ArrayNode,
        region: &Region,
    ) -> Result<Vec<f64>, ChunkError> {
        let raw = context.regions.read_region(array, region)?;
        let values = self.decode(&raw);
        let expected: u64 = region.count.iter().product();
        if values.len() as u64 != expected {
            return Err(ChunkError::new(
                ChunkErrorKind::Encoding,
                None,
                format!(
                    "{} gave {} values for a region of {expected}",
                    array.path,
                    values.len()
                ),
            ));
        }
        Ok(values)
    }
}

/// The decoded values of a region: `float32` bytes as they were read when decoding them changes
/// nothing (`float32` with no missing value or scaling, as a pyramid level's), else `float64`.
pub(crate) enum DecodedRegion {
    /// Little-endian `float32` values, aligned for reading in place.
    F32(RegionBytes),
    /// Values decoded to `float64`.
    F64(Vec<f64>),
}

impl DecodedRegion {
    /// The values as `float32`, when they are.
    pub(crate) fn as_f32(&self) -> Option<&[f32]> {
        match self {
            DecodedRegion::F32(bytes) => bytemuck::try_cast_slice(bytes).ok(),
            DecodedRegion::F64(_) => None,
        }
    }

    /// The values as `float64`, widened when they are `float32`.
    pub(crate) fn to_f64(&self) -> std::borrow::Cow<'_, [f64]> {
        match (self, self.as_f32()) {
            (DecodedRegion::F64(values), _) => values.into(),
            (_, Some(values)) => values.iter().map(|&v| f64::from(v)).collect(),
            (_, None) => std::borrow::Cow::Borrowed(&[]),
        }
    }
}

impl Decoding {
    /// [`Decoding::read`], keeping `float32` values that decoding would not change as they are
    /// read (shared with the cache when the region is one whole chunk).
    ///
    /// # Errors
    /// The input chunk's [`ChunkError`].
    pub(crate) fn read_floats(
        &self,
        context: &crate::operators::OperatorContext<'_>,
        array: &ArrayNode,
        region: &Region,
    ) -> Result<DecodedRegion, ChunkError> {
        let as_is = cfg!(target_endian = "little")
            && self.plain_f32_missing().is_some_and(|m| m.is_empty());
        if !as_is {
            return self.read(context, array, region).map(DecodedRegion::F64);
        }
        let raw = context.regions.read_region(array, region)?;
        let expected: u64 = region.count.iter().product();
        if raw.len() as u64 != expected * 4 {
            return Err(ChunkError::new(
                ChunkErrorKind::Encoding,
                None,
                format!(
                    "{} gave {} bytes for a region of {expected} float32 values",
                    array.path,
                    raw.len()
                ),
            ));
        }
        if bytemuck::try_cast_slice::<u8, f32>(&raw).is_ok() {
            return Ok(DecodedRegion::F32(raw));
        }
        // Not aligned for float32 (no allocator here gives such buffers): decoded the long way.
        Ok(DecodedRegion::F64(self.decode(&raw)))
    }
}

/// [`Decoding::decode_one`] without scaling and with at most two missing values, as a loop
/// without branches over whole values (an AVX2 twin below, see
/// [`crate::operators::kernels::avx2`]).
#[inline(always)]
fn missing_as_nan<const N: usize>(
    raw: &[u8],
    read: impl Fn([u8; N]) -> f64,
    [m0, m1]: [f64; 2],
    out: &mut [f64],
) {
    for (value, b) in out.iter_mut().zip(raw.chunks_exact(N)) {
        let mut bytes = [0u8; N];
        bytes.copy_from_slice(b);
        let v = read(bytes);
        *value = if v.is_nan() | (v == m0) | (v == m1) {
            f64::NAN
        } else {
            v
        };
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn missing_as_nan_avx2<const N: usize>(
    raw: &[u8],
    read: impl Fn([u8; N]) -> f64,
    missing: [f64; 2],
    out: &mut [f64],
) {
    missing_as_nan(raw, read, missing, out);
}

/// Writes `values` (the shape of `region`, C order) into a whole chunk of shape `chunks`,
/// each element with `push`; elements past the array's edge get `fill`.
pub(crate) fn into_chunk(values: Vec<u8>, region: &Region, chunks: &[u64], fill: &[u8]) -> Vec<u8> {
    let elem = fill.len().max(1);
    if region.count.as_slice() == chunks {
        return values;
    }
    let total: u64 = chunks.iter().product();
    let mut out = fill.repeat(total as usize);
    let origin = vec![0; chunks.len()];
    crate::operators::copy_box(
        &values,
        &region.count,
        &origin,
        &mut out,
        chunks,
        &origin,
        &region.count,
        elem,
    );
    out
}

/// Little-endian bytes of `values` as `dtype` (`F32` or `F64`).
pub(crate) fn float_bytes(values: &[f64], dtype: DType) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * dtype.size().unwrap_or(8));
    if dtype == DType::F32 {
        // Into slots made first: a loop that vectorizes, where pushing value by value does not.
        out.resize(values.len() * 4, 0);
        for (slot, &v) in out.chunks_exact_mut(4).zip(values) {
            slot.copy_from_slice(&(v as f32).to_le_bytes());
        }
    } else {
        for &v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// `attrs` without those that describe how values are stored (fill and missing values,
/// scaling, valid ranges, `_Unsigned`): what a view keeps of its input's attributes before
/// describing its own encoding.
pub(crate) fn without_encoding_attrs(attrs: &[Attr]) -> Vec<Attr> {
    attrs
        .iter()
        .filter(|a| {
            !matches!(
                a.name.as_str(),
                "_FillValue"
                    | "missing_value"
                    | "scale_factor"
                    | "add_offset"
                    | "valid_min"
                    | "valid_max"
                    | "valid_range"
                    | "_Unsigned"
            )
        })
        .cloned()
        .collect()
}

/// The `_FillValue` attribute of computed values of `dtype`: NaN for floats, none for
/// integers (which have no missing value).
pub(crate) fn nan_fill_attr(dtype: DType) -> Vec<Attr> {
    let value = match dtype {
        DType::F32 => AttrValue::F32(vec![f32::NAN]),
        DType::F64 => AttrValue::F64(vec![f64::NAN]),
        _ => return Vec::new(),
    };
    vec![Attr {
        name: "_FillValue".into(),
        value,
    }]
}

/// The fill bytes of one element of `dtype`: NaN for floats, 0 for integers.
pub(crate) fn nan_fill_bytes(dtype: DType) -> Vec<u8> {
    match dtype {
        DType::F32 | DType::F64 => float_bytes(&[f64::NAN], dtype),
        d => vec![0; d.size().unwrap_or(8)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_f32(missing: &[f64]) -> Decoding {
        Decoding {
            raw: DType::F32,
            missing: missing.to_vec(),
            scale: None,
            float: DType::F32,
        }
    }

    /// The in-place float32 decoding agrees with the general decoding, with no, one and
    /// several missing values.
    #[test]
    fn float32_fast_paths_decode_as_the_general_path() {
        let values = [1.5f32, -999.0, 2.25, 1024.0, f32::NAN, 0.0, -999.0];
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        for (missing, nans) in [(&[][..], 1), (&[-999.0], 3), (&[-999.0, 1024.0], 4)] {
            let decoding = plain_f32(missing);
            let general: Vec<f64> = decoding.decode(&raw);
            let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
            let bytes = decoding.decode_f32_bytes(raw.clone().into()).unwrap();
            let from_bytes = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            assert!(
                from_bytes
                    .zip(&general)
                    .all(|(a, &b)| same(f64::from(a), b)),
                "{missing:?}"
            );
            assert_eq!(general.iter().filter(|v| v.is_nan()).count(), nans);
        }
        let scaled = Decoding {
            scale: Some((2.0, 0.0)),
            ..plain_f32(&[])
        };
        assert!(scaled.decode_f32_bytes(raw.into()).is_err());
    }
}
