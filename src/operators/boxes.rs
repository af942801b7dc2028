//! N-dimensional box geometry over C-ordered byte buffers: intersecting boxes and copying a box
//! between arrays of different shapes. The only place that does index arithmetic on buffers.

/// A box: start and count per dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// First index per dimension.
    pub start: Vec<u64>,
    /// Extent per dimension.
    pub count: Vec<u64>,
}

impl Region {
    /// The end (exclusive) per dimension.
    pub fn end(&self) -> Vec<u64> {
        self.start
            .iter()
            .zip(&self.count)
            .map(|(s, c)| s + c)
            .collect()
    }

    /// Number of elements.
    pub fn len(&self) -> u64 {
        self.count.iter().product()
    }

    /// Whether the box holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The overlap of two boxes, or `None` if they do not overlap.
    pub fn intersect(&self, other: &Region) -> Option<Region> {
        let mut start = Vec::with_capacity(self.start.len());
        let mut count = Vec::with_capacity(self.start.len());
        for d in 0..self.start.len() {
            let lo = self.start[d].max(other.start[d]);
            let hi = (self.start[d] + self.count[d]).min(other.start[d] + other.count[d]);
            if hi <= lo {
                return None;
            }
            start.push(lo);
            count.push(hi - lo);
        }
        Some(Region { start, count })
    }
}

/// Copies `count` elements of `elem` bytes from `src` (shape `src_shape`, at `src_start`) into
/// `dst` (shape `dst_shape`, at `dst_start`). Callers guarantee the boxes fit their arrays.
#[allow(clippy::too_many_arguments)]
pub fn copy_box(
    src: &[u8],
    src_shape: &[u64],
    src_start: &[u64],
    dst: &mut [u8],
    dst_shape: &[u64],
    dst_start: &[u64],
    count: &[u64],
    elem: usize,
) {
    let ndim = count.len();
    if ndim == 0 {
        dst[..elem].copy_from_slice(&src[..elem]);
        return;
    }
    if count.contains(&0) {
        return;
    }
    let src_strides = strides(src_shape);
    let dst_strides = strides(dst_shape);
    let row = count[ndim - 1] as usize * elem;
    let mut index = vec![0u64; ndim - 1];
    loop {
        let mut s = src_start[ndim - 1] * src_strides[ndim - 1];
        let mut d = dst_start[ndim - 1] * dst_strides[ndim - 1];
        for k in 0..ndim - 1 {
            s += (src_start[k] + index[k]) * src_strides[k];
            d += (dst_start[k] + index[k]) * dst_strides[k];
        }
        let (s, d) = (s as usize * elem, d as usize * elem);
        dst[d..d + row].copy_from_slice(&src[s..s + row]);
        // Odometer over all but the last dimension.
        let mut k = ndim - 1;
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            index[k] += 1;
            if index[k] < count[k] {
                break;
            }
            index[k] = 0;
        }
    }
}

/// Steps a multi-index through the box `first..=last`; false when done.
pub fn advance(index: &mut [u64], first: &[u64], last: &[u64]) -> bool {
    for d in (0..index.len()).rev() {
        if index[d] < last[d] {
            index[d] += 1;
            return true;
        }
        index[d] = first[d];
    }
    false
}

/// Element strides of a C-ordered array.
pub(crate) fn strides(shape: &[u64]) -> Vec<u64> {
    let mut out = vec![1u64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        out[d] = out[d + 1] * shape[d + 1];
    }
    out
}

/// Fills `buf` with copies of the element `fill` (whole elements; a trailing partial one is
/// left as it is). The filled prefix is copied onto what follows it, doubling each time: a
/// few large copies instead of one small copy per element.
pub(super) fn fill_with(buf: &mut [u8], fill: &[u8]) {
    if fill.iter().all(|&b| b == 0) {
        buf.fill(0);
        return;
    }
    let whole = buf.len() / fill.len() * fill.len();
    if whole == 0 {
        return;
    }
    buf[..fill.len()].copy_from_slice(fill);
    let mut done = fill.len();
    while done < whole {
        let take = done.min(whole - done);
        buf.copy_within(..take, done);
        done += take;
    }
}

/// Reverses the bytes of every element (big-endian <-> little-endian).
pub(super) fn swap_bytes(buf: &mut [u8], elem: usize) {
    if elem > 1 {
        for element in buf.chunks_exact_mut(elem) {
            element.reverse();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fill_repeats_the_element_over_whole_elements() {
        for (len, fill) in [
            (0, &[1u8, 2, 3][..]),
            (2, &[1, 2, 3]),
            (3, &[7]),
            (10, &[1, 2, 3]),
            (1000, &[9, 8, 7, 6]),
        ] {
            let mut buf = vec![0xeeu8; len];
            super::fill_with(&mut buf, fill);
            let whole = len / fill.len() * fill.len();
            let want: Vec<u8> = fill.iter().copied().cycle().take(whole).collect();
            assert_eq!(&buf[..whole], &want[..], "{len} {fill:?}");
            assert!(buf[whole..].iter().all(|&b| b == 0xee), "{len} {fill:?}");
        }
    }

    use super::*;

    #[test]
    fn copies_an_inner_box_between_shapes() {
        // src 3x4 holding 0..12; copy the 2x2 box at (1,1) into dst 2x3 at (0,1).
        let src: Vec<u8> = (0..12).collect();
        let mut dst = vec![99u8; 6];
        copy_box(
            &src,
            &[3, 4],
            &[1, 1],
            &mut dst,
            &[2, 3],
            &[0, 1],
            &[2, 2],
            1,
        );
        assert_eq!(dst, vec![99, 5, 6, 99, 9, 10]);
    }

    #[test]
    fn copies_multibyte_elements_in_three_dimensions() {
        let src: Vec<u8> = (0u16..24).flat_map(|v| v.to_le_bytes()).collect();
        let mut dst = vec![0u8; 2 * 2 * 2 * 2];
        copy_box(
            &src,
            &[2, 3, 4],
            &[0, 1, 2],
            &mut dst,
            &[2, 2, 2],
            &[0, 0, 0],
            &[2, 2, 2],
            2,
        );
        let got: Vec<u16> = dst
            .chunks(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(got, vec![6, 7, 10, 11, 18, 19, 22, 23]);
    }

    #[test]
    fn intersections() {
        let a = Region {
            start: vec![0, 0],
            count: vec![4, 4],
        };
        let b = Region {
            start: vec![2, 3],
            count: vec![5, 5],
        };
        assert_eq!(
            a.intersect(&b),
            Some(Region {
                start: vec![2, 3],
                count: vec![2, 1]
            })
        );
        let c = Region {
            start: vec![4, 0],
            count: vec![1, 1],
        };
        assert_eq!(a.intersect(&c), None);
    }
}
