//! Named n-d arrays (dims, shape, typed values in C order), the casts between element types,
//! and broadcasting by dimension name.

use super::dtype::{DType, IntType};

/// Typed values in C order. Integers of every width are held as `i64` (a `uint64` as its
/// two's-complement bits), each always within its type's range.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Comparison results.
    Bool(Vec<bool>),
    /// Integers of the given type.
    Int(IntType, Vec<i64>),
    /// `float32` values.
    F32(Vec<f32>),
    /// `float64` values.
    F64(Vec<f64>),
}

impl Data {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::Bool(v) => v.len(),
            Data::Int(_, v) => v.len(),
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Data::Bool(_) => DType::Bool,
            Data::Int(t, _) => DType::Int(*t),
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
        }
    }

    /// The values as `to` (numpy's `astype`: integers wrap, floats round to nearest; `Bool`
    /// is only ever cast to itself by the evaluator, and casts as 0/1).
    pub(crate) fn cast(self, to: DType) -> Data {
        if self.dtype() == to {
            return self;
        }
        match (self, to) {
            (Data::Int(t, v), DType::F64) => {
                Data::F64(v.into_iter().map(|x| int_f64(t, x)).collect())
            }
            (Data::Int(t, v), DType::F32) => {
                Data::F32(v.into_iter().map(|x| int_f32(t, x)).collect())
            }
            (Data::Int(_, v), DType::Int(u)) => {
                Data::Int(u, v.into_iter().map(|x| u.wrap(x)).collect())
            }
            (Data::F32(v), DType::F64) => Data::F64(v.into_iter().map(f64::from).collect()),
            (Data::F64(v), DType::F32) => Data::F32(v.into_iter().map(|x| x as f32).collect()),
            (Data::F32(v), DType::Int(u)) => {
                Data::Int(u, v.into_iter().map(|x| u.wrap(x as i64)).collect())
            }
            (Data::F64(v), DType::Int(u)) => {
                Data::Int(u, v.into_iter().map(|x| u.wrap(x as i64)).collect())
            }
            (Data::Bool(v), t) => {
                Data::Int(IntType::U8, v.into_iter().map(i64::from).collect()).cast(t)
            }
            (data, DType::Bool) => Data::Bool(data.truthy()),
            (data, _) => data,
        }
    }

    /// numpy's truth value of each element: non-zero (NaN is true).
    pub(crate) fn truthy(&self) -> Vec<bool> {
        match self {
            Data::Bool(v) => v.clone(),
            Data::Int(_, v) => v.iter().map(|&x| x != 0).collect(),
            Data::F32(v) => v.iter().map(|&x| x != 0.0).collect(),
            Data::F64(v) => v.iter().map(|&x| x != 0.0).collect(),
        }
    }
}

/// An integer as `float64` (a `uint64` from its bits).
pub(crate) fn int_f64(t: IntType, x: i64) -> f64 {
    match t {
        IntType::U64 => x as u64 as f64,
        _ => x as f64,
    }
}

/// An integer as `float32`, rounded once.
pub(crate) fn int_f32(t: IntType, x: i64) -> f32 {
    match t {
        IntType::U64 => x as u64 as f32,
        _ => x as f32,
    }
}

/// An input array that is not self-consistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArrayError {
    /// Dims and shape differ in length, or the values do not fill the shape.
    #[error("an array with dims {dims:?} and shape {shape:?} cannot hold {len} values")]
    Shape {
        /// Dims given.
        dims: Vec<String>,
        /// Shape given.
        shape: Vec<usize>,
        /// Number of values given.
        len: usize,
    },
    /// A dim named twice.
    #[error("dimension `{dim}` appears twice in {dims:?}")]
    RepeatedDim {
        /// The repeated name.
        dim: String,
        /// Dims given.
        dims: Vec<String>,
    },
}

/// Dims and shape of an array: the C-order layout its values follow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Layout {
    /// Dimension names, outermost first.
    pub dims: Vec<String>,
    /// Size of each dimension.
    pub shape: Vec<usize>,
}

impl Layout {
    fn size(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |a, &n| a.checked_mul(n))
    }

    fn size_of(&self, dim: &str) -> Option<usize> {
        let i = self.dims.iter().position(|d| d == dim)?;
        self.shape.get(i).copied()
    }
}

/// A named n-d array: the input and output of expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedArray {
    layout: Layout,
    data: Data,
}

impl NamedArray {
    /// An array with these dims, shape and C-order values.
    ///
    /// # Errors
    /// [`ArrayError`] when dims and shape differ in length, the values do not fill the shape,
    /// or a dim is repeated.
    pub fn new(dims: Vec<String>, shape: Vec<usize>, data: Data) -> Result<Self, ArrayError> {
        let layout = Layout { dims, shape };
        if layout.dims.len() != layout.shape.len() || layout.size() != Some(data.len()) {
            return Err(ArrayError::Shape {
                dims: layout.dims,
                shape: layout.shape,
                len: data.len(),
            });
        }
        for (i, dim) in layout.dims.iter().enumerate() {
            if layout.dims[..i].contains(dim) {
                return Err(ArrayError::RepeatedDim {
                    dim: dim.clone(),
                    dims: layout.dims.clone(),
                });
            }
        }
        Ok(NamedArray { layout, data })
    }

    /// An array from a layout and values the caller knows fit it.
    pub(crate) fn from_parts(layout: Layout, data: Data) -> Self {
        NamedArray { layout, data }
    }

    /// A 0-d array holding one value.
    pub(crate) fn scalar(data: Data) -> Self {
        NamedArray {
            layout: Layout::default(),
            data,
        }
    }

    /// Dimension names.
    pub fn dims(&self) -> &[String] {
        &self.layout.dims
    }

    /// Shape.
    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    /// The values, C order.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// The values, C order, by value.
    pub fn into_data(self) -> Data {
        self.data
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Consumes the array: the values cast to `to`, laid out as `target` (which contains every
    /// dim of this array with the same size), repeated along the dims it lacks.
    pub(crate) fn expand(self, target: &Layout, to: DType) -> Data {
        let data = self.data.cast(to);
        if self.layout == *target {
            return data;
        }
        let strides = strides_in(&self.layout, target);
        match data {
            Data::Bool(v) => Data::Bool(gather(&v, &strides, &target.shape)),
            Data::Int(t, v) => Data::Int(t, gather(&v, &strides, &target.shape)),
            Data::F32(v) => Data::F32(gather(&v, &strides, &target.shape)),
            Data::F64(v) => Data::F64(gather(&v, &strides, &target.shape)),
        }
    }
}

/// The layout of arrays broadcast together by dim name: dims in order of first appearance.
///
/// Returns the first dim whose sizes differ, with both sizes, as `Err((dim, a, b))`.
pub(crate) fn broadcast<'a>(
    layouts: impl IntoIterator<Item = &'a Layout>,
) -> Result<Layout, (String, usize, usize)> {
    let mut out = Layout::default();
    for layout in layouts {
        for (dim, &n) in layout.dims.iter().zip(&layout.shape) {
            match out.size_of(dim) {
                Some(m) if m != n => return Err((dim.clone(), m, n)),
                Some(_) => {}
                None => {
                    out.dims.push(dim.clone());
                    out.shape.push(n);
                }
            }
        }
    }
    Ok(out)
}

/// For each dim of `target`, the stride of `source` along it (0 where `source` lacks it).
fn strides_in(source: &Layout, target: &Layout) -> Vec<usize> {
    let mut own = vec![0usize; source.dims.len()];
    let mut stride = 1;
    for (s, &n) in own.iter_mut().zip(&source.shape).rev() {
        *s = stride;
        stride *= n;
    }
    target
        .dims
        .iter()
        .map(|d| {
            source
                .dims
                .iter()
                .position(|s| s == d)
                .and_then(|i| own.get(i).copied())
                .unwrap_or(0)
        })
        .collect()
}

/// `values` read at the offsets `strides` give for every index of `shape`, C order.
fn gather<T: Copy>(values: &[T], strides: &[usize], shape: &[usize]) -> Vec<T> {
    let total: usize = shape.iter().product();
    let mut out = Vec::with_capacity(total);
    if total == 0 {
        return out;
    }
    let mut index = vec![0usize; shape.len()];
    let mut offset = 0usize;
    for _ in 0..total {
        // Every offset is within `values`: `NamedArray` and `broadcast` guarantee the sizes.
        out.extend(values.get(offset).copied());
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            offset += strides[d];
            if index[d] < shape[d] {
                break;
            }
            offset -= strides[d] * shape[d];
            index[d] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dims: &[&str], shape: &[usize]) -> Layout {
        Layout {
            dims: dims.iter().map(|d| d.to_string()).collect(),
            shape: shape.to_vec(),
        }
    }

    #[test]
    fn broadcast_orders_dims_by_first_appearance() {
        let a = layout(&["y", "x"], &[2, 3]);
        let b = layout(&["time", "x"], &[4, 3]);
        assert_eq!(
            broadcast([&a, &b]).unwrap(),
            layout(&["y", "x", "time"], &[2, 3, 4])
        );
        let c = layout(&["x"], &[5]);
        assert_eq!(broadcast([&a, &c]).unwrap_err(), ("x".into(), 3, 5));
    }

    #[test]
    fn expand_repeats_and_transposes() {
        // a(x, y) = 10·x + y with x = 2, y = 3, expanded to (y, t, x) with t = 2.
        let a = NamedArray::new(
            vec!["x".into(), "y".into()],
            vec![2, 3],
            Data::Int(IntType::I32, vec![0, 1, 2, 10, 11, 12]),
        )
        .unwrap();
        let target = layout(&["y", "t", "x"], &[3, 2, 2]);
        let Data::Int(_, v) = a.expand(&target, DType::Int(IntType::I32)) else {
            panic!("type changed")
        };
        let want: Vec<i64> = (0..3)
            .flat_map(|y| (0..2).flat_map(move |_t| (0..2).map(move |x| 10 * x + y)))
            .collect();
        assert_eq!(v, want);
    }

    #[test]
    fn arrays_must_be_consistent() {
        let bad = NamedArray::new(vec!["x".into()], vec![3], Data::F64(vec![1.0]));
        assert!(matches!(bad, Err(ArrayError::Shape { len: 1, .. })));
        let bad = NamedArray::new(
            vec!["x".into(), "x".into()],
            vec![1, 1],
            Data::F64(vec![1.0]),
        );
        assert!(matches!(bad, Err(ArrayError::RepeatedDim { .. })));
    }

    #[test]
    fn casts_follow_numpy_astype() {
        assert_eq!(
            Data::Int(IntType::U64, vec![-1]).cast(DType::F64),
            Data::F64(vec![u64::MAX as f64])
        );
        assert_eq!(
            Data::Int(IntType::I16, vec![-3]).cast(DType::F32),
            Data::F32(vec![-3.0])
        );
        // 2^24 + 1 is not a float32: it rounds once, to even.
        assert_eq!(
            Data::Int(IntType::I64, vec![(1 << 24) + 1]).cast(DType::F32),
            Data::F32(vec![16777216.0])
        );
        assert_eq!(
            Data::F64(vec![0.1]).cast(DType::F32),
            Data::F32(vec![0.1f32])
        );
        assert_eq!(Data::F64(vec![0.0, f64::NAN]).truthy(), [false, true]);
    }
}
