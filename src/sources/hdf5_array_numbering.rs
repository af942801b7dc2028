//! How HDF5's fixed- and extensible-array chunk indexes number a dataset's chunks, mapped back
//! to chunk grid indices, so damage to some of an index's entries (see
//! [`super::hdf5_array_checksums::Damage`]) can be pinned on the chunks they locate.

/// The numbering of one chunk index.
pub(crate) enum Numbering {
    /// Fixed array: C order over the chunk grid.
    Fixed {
        /// Chunks per dimension.
        grid: Vec<u64>,
    },
    /// Extensible array (`H5D__earray_idx_get_addr`): C order over the chunk counts at the
    /// maximum dimensions, with the unlimited dimension moved to the front.
    Extensible {
        /// Dimensions in numbering order.
        order: Vec<usize>,
        /// Weight of each position of `order`.
        weights: Vec<u64>,
        /// Chunk count at the maximum size, per position of `order`.
        max_counts: Vec<u64>,
        /// Chunks per dimension now.
        grid: Vec<u64>,
    },
}

impl Numbering {
    /// An extensible array's numbering for a chunk grid `grid` of chunks `chunk_shape` under
    /// maximum dimensions `max_dims` (`u64::MAX`: unlimited).
    pub(crate) fn extensible(grid: &[u64], chunk_shape: &[u64], max_dims: Option<&[u64]>) -> Self {
        let ndim = grid.len();
        let max_dims = max_dims.filter(|m| m.len() == ndim);
        let unlimited = max_dims
            .and_then(|m| m.iter().position(|&d| d == u64::MAX))
            .unwrap_or(0);
        let order: Vec<usize> = std::iter::once(unlimited)
            .chain((0..ndim).filter(|&d| d != unlimited))
            .take(ndim)
            .collect();
        let max_counts: Vec<u64> = order
            .iter()
            .map(|&d| match max_dims {
                Some(m) if m[d] != u64::MAX => m[d].div_ceil(chunk_shape[d].max(1)).max(grid[d]),
                _ => grid[d],
            })
            .collect();
        let mut weights = vec![1u64; ndim];
        for pos in (0..ndim.saturating_sub(1)).rev() {
            weights[pos] = weights[pos + 1].saturating_mul(max_counts[pos + 1]);
        }
        Numbering::Extensible {
            order,
            weights,
            max_counts,
            grid: grid.to_vec(),
        }
    }

    /// One past the largest number a chunk inside the grid can have.
    pub(crate) fn end(&self) -> u64 {
        match self {
            Numbering::Fixed { grid } => grid.iter().fold(1u64, |n, &g| n.saturating_mul(g)),
            Numbering::Extensible {
                order,
                weights,
                grid,
                ..
            } => match (order.first(), weights.first()) {
                (Some(&dim), Some(&w)) => w.saturating_mul(grid[dim]),
                _ => 1,
            },
        }
    }

    /// The grid index of the chunk numbered `element`, or `None` outside the grid.
    pub(crate) fn chunk(&self, element: u64) -> Option<Vec<u64>> {
        match self {
            Numbering::Fixed { grid } => {
                let mut rest = element;
                let mut index = vec![0u64; grid.len()];
                for (i, &g) in index.iter_mut().zip(grid).rev() {
                    *i = rest % g.max(1);
                    rest /= g.max(1);
                }
                (rest == 0 && index.iter().zip(grid).all(|(i, g)| i < g)).then_some(index)
            }
            Numbering::Extensible {
                order,
                weights,
                max_counts,
                grid,
            } => {
                let mut index = vec![0u64; order.len()];
                for (pos, &dim) in order.iter().enumerate() {
                    let mut i = element / weights[pos].max(1);
                    if pos > 0 {
                        i %= max_counts[pos].max(1);
                    }
                    if i >= grid[dim] {
                        return None;
                    }
                    index[dim] = i;
                }
                Some(index)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_arrays_number_in_c_order() {
        let n = Numbering::Fixed { grid: vec![4, 3] };
        assert_eq!(n.chunk(0), Some(vec![0, 0]));
        assert_eq!(n.chunk(5), Some(vec![1, 2]));
        assert_eq!(n.chunk(11), Some(vec![3, 2]));
        assert_eq!(n.chunk(12), None);
        assert_eq!(n.end(), 12);
    }

    #[test]
    fn extensible_arrays_number_the_unlimited_dimension_first_over_maximum_counts() {
        // Shape (40, 30) in chunks (2, 10), maximum (unlimited, 30): plain C order.
        let n = Numbering::extensible(&[20, 3], &[2, 10], Some(&[u64::MAX, 30]));
        assert_eq!(n.chunk(4), Some(vec![1, 1]));
        assert_eq!(n.chunk(59), Some(vec![19, 2]));
        assert_eq!(n.chunk(60), None);
        assert_eq!(n.end(), 60);
        // Unlimited second dimension, first dimension up to 6 chunks, 4 now.
        let n = Numbering::extensible(&[4, 5], &[10, 10], Some(&[60, u64::MAX]));
        assert_eq!(n.chunk(6 + 1), Some(vec![1, 1]));
        assert_eq!(n.chunk(5), None, "beyond the current first dimension");
    }
}
