//! A 2-D slice of an array as values to colour: read with zarrs through the key space
//! ([`KeyStore`]), decoded as xarray decodes CF data (`_FillValue`, `missing_value` and a float
//! array's fill value are missing, then `scale_factor` and `add_offset` apply), and reduced to
//! at most [`MAX_SIDE`] pixels on a side by the **mean** of square blocks of `step × step`
//! values (missing values left out; a block with none is missing). The slice is read in bands
//! of whole chunk rows, so memory stays bounded whatever the slice's size. Blocking.

use std::ops::Range;
use std::sync::Arc;

use zarrs::array::{Array, ArrayError, ElementOwned};

use super::error::PreviewError;
use super::query::Selection;
use super::store::KeyStore;
use crate::keyspace::KeySpace;
use crate::sources::model::DType;
use crate::sources::zarr_store::array::served_dtype;

/// The longest side of a picture, in pixels.
pub(crate) const MAX_SIDE: u64 = 1024;

/// Values read at once (a band of rows), at most, unless one block row needs more.
const BAND_VALUES: u64 = 1 << 24;

/// The values of a picture, row-major, NaN where missing.
#[derive(Debug)]
pub(crate) struct Plane {
    /// Pixel rows.
    pub(crate) rows: usize,
    /// Pixel columns.
    pub(crate) cols: usize,
    /// `rows × cols` values.
    pub(crate) values: Vec<f64>,
    /// Slice rows and columns per pixel side.
    pub(crate) step: u64,
    /// The slice's finite minimum and maximum (before reduction), if it has a finite value.
    pub(crate) range: Option<(f64, f64)>,
}

/// Reads and reduces the slice `selection` of `keys`.
///
/// # Errors
/// [`PreviewError::Key`] when a chunk fails to compute (with the key space's own error),
/// [`PreviewError::Decode`] when zarrs cannot open or decode the array,
/// [`PreviewError::NotDrawable`] for a type that has no colour.
pub(crate) fn read_plane(
    keys: Arc<KeySpace>,
    selection: &Selection,
) -> Result<Plane, PreviewError> {
    let store = Arc::new(KeyStore::new(keys));
    let node = &selection.array;
    let failed = |message: String| match store.take_failure() {
        Some(e) => PreviewError::Key(e),
        None => PreviewError::Decode {
            array: node.path.clone(),
            message,
        },
    };
    let array = Array::open(store.clone(), &format!("/{}", node.path))
        .map_err(|e| failed(e.to_string()))?;
    let decoding = Decoding::of(selection, &array)?;
    let (h, w) = selection.size();
    let step = h.max(w).div_ceil(MAX_SIDE).max(1);
    let mut blocks = Blocks::new(h, w, step);
    let chunk_rows = node.geometry.chunks.get(selection.y).copied().unwrap_or(1);
    let band = band_rows(step, chunk_rows, w);
    let y0 = selection.ranges[selection.y].start;
    let mut r0 = 0;
    while r0 < h {
        let r1 = (r0 + band).min(h);
        let mut ranges = selection.ranges.clone();
        ranges[selection.y] = y0 + r0..y0 + r1;
        let values = read_f64(&array, decoding.dtype, ranges).map_err(|e| failed(e.to_string()))?;
        let rows = r1 - r0;
        for r in 0..rows {
            for c in 0..w {
                // Values come in the array's axis order: rows first when y comes before x.
                let i = if selection.y < selection.x {
                    r * w + c
                } else {
                    c * rows + r
                };
                let raw = usize::try_from(i)
                    .ok()
                    .and_then(|i| values.get(i))
                    .copied()
                    .unwrap_or(f64::NAN);
                blocks.add(r0 + r, c, decoding.value(raw));
            }
        }
        r0 = r1;
    }
    Ok(blocks.finish())
}

/// Slice rows per band: whole blocks of `step` rows, covering a chunk row when that fits in
/// [`BAND_VALUES`].
fn band_rows(step: u64, chunk_rows: u64, cols: u64) -> u64 {
    let chunk_blocks = chunk_rows.max(1).div_ceil(step);
    let fitting_blocks = BAND_VALUES / (step * cols.max(1));
    step * chunk_blocks.min(fitting_blocks).max(1)
}

/// How raw values become the values drawn.
struct Decoding {
    dtype: DType,
    missing: Vec<f64>,
    scale: Option<f64>,
    offset: Option<f64>,
}

impl Decoding {
    fn of(selection: &Selection, array: &Array<KeyStore>) -> Result<Decoding, PreviewError> {
        let node = &selection.array;
        let dtype = served_dtype(array.data_type()).ok_or_else(|| PreviewError::NotDrawable {
            array: node.path.clone(),
            why: "its values are not numbers".into(),
        })?;
        let attr = |name: &str| {
            node.attrs
                .iter()
                .find(|a| a.name == name)
                .and_then(|a| a.value.as_f64s())
                .unwrap_or_default()
        };
        let mut missing = attr("_FillValue");
        missing.extend(attr("missing_value"));
        if dtype.is_float() {
            missing.extend(element_f64(array.fill_value().as_ne_bytes(), dtype));
        }
        missing.retain(|v| !v.is_nan());
        Ok(Decoding {
            dtype,
            missing,
            scale: attr("scale_factor").first().copied(),
            offset: attr("add_offset").first().copied(),
        })
    }

    /// The value drawn for `raw`: NaN when missing, else scaled and offset.
    fn value(&self, raw: f64) -> f64 {
        if raw.is_nan() || self.missing.contains(&raw) {
            return f64::NAN;
        }
        let scaled = self.scale.map_or(raw, |s| raw * s);
        self.offset.map_or(scaled, |o| scaled + o)
    }
}

/// One native-endian element of `dtype` as a float.
fn element_f64(bytes: &[u8], dtype: DType) -> Option<f64> {
    fn take<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
        bytes.get(..N)?.try_into().ok()
    }
    Some(match dtype {
        DType::I8 => f64::from(i8::from_ne_bytes(take(bytes)?)),
        DType::U8 => f64::from(u8::from_ne_bytes(take(bytes)?)),
        DType::I16 => f64::from(i16::from_ne_bytes(take(bytes)?)),
        DType::U16 => f64::from(u16::from_ne_bytes(take(bytes)?)),
        DType::I32 => f64::from(i32::from_ne_bytes(take(bytes)?)),
        DType::U32 => f64::from(u32::from_ne_bytes(take(bytes)?)),
        DType::I64 => i64::from_ne_bytes(take(bytes)?) as f64,
        DType::U64 => u64::from_ne_bytes(take(bytes)?) as f64,
        DType::F32 => f64::from(f32::from_ne_bytes(take(bytes)?)),
        DType::F64 => f64::from_ne_bytes(take(bytes)?),
        DType::Char | DType::String => return None,
    })
}

/// A number type zarrs decodes, as a float.
trait AsF64: ElementOwned + Copy {
    fn as_f64(self) -> f64;
}

macro_rules! as_f64 {
    ($($t:ty),*) => {$(
        impl AsF64 for $t {
            #[allow(clippy::cast_lossless, clippy::cast_precision_loss)]
            fn as_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
as_f64!(i8, u8, i16, u16, i32, u32, i64, u64, f32, f64);

/// The elements of `ranges` of `array` as floats, in the array's axis order.
fn read_f64(
    array: &Array<KeyStore>,
    dtype: DType,
    ranges: Vec<Range<u64>>,
) -> Result<Vec<f64>, ArrayError> {
    fn read<T: AsF64>(
        array: &Array<KeyStore>,
        ranges: Vec<Range<u64>>,
    ) -> Result<Vec<f64>, ArrayError> {
        let values: Vec<T> = array.retrieve_array_subset(&ranges)?;
        Ok(values.into_iter().map(AsF64::as_f64).collect())
    }
    match dtype {
        DType::I8 => read::<i8>(array, ranges),
        DType::U8 => read::<u8>(array, ranges),
        DType::I16 => read::<i16>(array, ranges),
        DType::U16 => read::<u16>(array, ranges),
        DType::I32 => read::<i32>(array, ranges),
        DType::U32 => read::<u32>(array, ranges),
        DType::I64 => read::<i64>(array, ranges),
        DType::U64 => read::<u64>(array, ranges),
        DType::F32 => read::<f32>(array, ranges),
        DType::F64 => read::<f64>(array, ranges),
        // Not served as numbers (see `Decoding::of`): nothing to draw.
        DType::Char | DType::String => Ok(Vec::new()),
    }
}

/// Means of `step × step` blocks of a slice, and its finite range.
struct Blocks {
    cols: usize,
    rows: usize,
    step: u64,
    sums: Vec<f64>,
    counts: Vec<u32>,
    range: Option<(f64, f64)>,
}

impl Blocks {
    fn new(h: u64, w: u64, step: u64) -> Blocks {
        let rows = usize::try_from(h.div_ceil(step)).unwrap_or(0);
        let cols = usize::try_from(w.div_ceil(step)).unwrap_or(0);
        Blocks {
            cols,
            rows,
            step,
            sums: vec![0.0; rows * cols],
            counts: vec![0; rows * cols],
            range: None,
        }
    }

    /// Value `v` at slice row `r`, column `c`; NaN is left out.
    fn add(&mut self, r: u64, c: u64, v: f64) {
        if v.is_nan() {
            return;
        }
        if v.is_finite() {
            self.range = Some(match self.range {
                Some((lo, hi)) => (lo.min(v), hi.max(v)),
                None => (v, v),
            });
        }
        let cell = usize::try_from((r / self.step) * self.cols as u64 + c / self.step).ok();
        if let Some(cell) = cell.filter(|&i| i < self.sums.len()) {
            self.sums[cell] += v;
            self.counts[cell] += 1;
        }
    }

    fn finish(self) -> Plane {
        let values = self
            .sums
            .iter()
            .zip(&self.counts)
            .map(|(&s, &n)| if n == 0 { f64::NAN } else { s / f64::from(n) })
            .collect();
        Plane {
            rows: self.rows,
            cols: self.cols,
            values,
            step: self.step,
            range: self.range,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reduce(h: u64, w: u64, step: u64, value: impl Fn(u64, u64) -> f64) -> Plane {
        let mut blocks = Blocks::new(h, w, step);
        for r in 0..h {
            for c in 0..w {
                blocks.add(r, c, value(r, c));
            }
        }
        blocks.finish()
    }

    #[test]
    fn blocks_are_means_of_their_values_without_nan() {
        // 5 x 4 values r*10 + c, blocks of 2: the last row of blocks has one slice row.
        let plane = reduce(5, 4, 2, |r, c| {
            if (r, c) == (0, 0) {
                f64::NAN
            } else {
                (r * 10 + c) as f64
            }
        });
        assert_eq!((plane.rows, plane.cols), (3, 2));
        assert_eq!(plane.values[0], (1.0 + 10.0 + 11.0) / 3.0);
        assert_eq!(plane.values[1], (2.0 + 3.0 + 12.0 + 13.0) / 4.0);
        assert_eq!(plane.values[4], (40.0 + 41.0) / 2.0);
        assert_eq!(plane.range, Some((1.0, 43.0)));
    }

    #[test]
    fn blocks_without_values_are_missing() {
        let plane = reduce(4, 4, 2, |r, _| if r < 2 { f64::NAN } else { 1.0 });
        assert!(plane.values[0].is_nan() && plane.values[1].is_nan());
        assert_eq!(&plane.values[2..], &[1.0, 1.0]);
        let empty = reduce(2, 2, 1, |_, _| f64::NAN);
        assert_eq!(empty.range, None);
    }

    #[test]
    fn large_slices_shrink_to_the_longest_side() {
        let (h, w) = (3000u64, 700u64);
        let step = h.max(w).div_ceil(MAX_SIDE).max(1);
        assert_eq!(step, 3);
        let plane = reduce(h, w, step, |r, c| (r + c) as f64);
        assert_eq!((plane.rows, plane.cols), (1000, 234));
        assert!(plane.rows as u64 <= MAX_SIDE && plane.cols as u64 <= MAX_SIDE);
        // the first block: the mean of r + c over 0..3 x 0..3
        assert_eq!(plane.values[0], 2.0);
    }

    #[test]
    fn bands_are_whole_blocks_and_bounded() {
        assert_eq!(band_rows(1, 16, 75), 16);
        assert_eq!(band_rows(3, 16, 700), 18);
        assert_eq!(band_rows(4, 1, 1000), 4);
        assert_eq!(band_rows(1, 1 << 20, 1 << 20), 16);
        assert_eq!(band_rows(2, 1, 1 << 30), 2);
    }

    #[test]
    fn cf_decoding_masks_then_scales() {
        let decoding = Decoding {
            dtype: DType::I16,
            missing: vec![-32768.0],
            scale: Some(0.5),
            offset: Some(10.0),
        };
        assert!(decoding.value(-32768.0).is_nan());
        assert_eq!(decoding.value(4.0), 12.0);
        assert_eq!(element_f64(&(-3i16).to_ne_bytes(), DType::I16), Some(-3.0));
        assert_eq!(element_f64(&[1], DType::I16), None);
    }
}
