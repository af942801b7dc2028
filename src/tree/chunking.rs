//! Chooses each served array's regular chunk grid: the native chunking where there is one,
//! contiguous data split to a few MiB, small chunks coalesced toward a few MiB (along the concat
//! axis of joined files, along the leading dimension not yet whole of a single file), and
//! per-dimension overrides from the config.

use crate::sources::model::{DType, Storage, VarMeta};

/// Served chunks aim at about this many bytes.
const TARGET_BYTES: u64 = 4 << 20;
/// Coalescing joins at most this many native chunks, so that reading one small step of a long
/// archive of tiny chunks does not decode thousands of source chunks.
const MAX_COALESCED: u64 = 256;

/// The served chunk shape of an array of `shape` whose first part is `first` (the config's
/// per-dimension overrides are applied by the caller).
pub(super) fn choose(
    first: &VarMeta,
    shape: &[u64],
    dtype: DType,
    concat_axis: Option<usize>,
) -> Vec<u64> {
    let ndim = shape.len();
    if ndim == 0 {
        return Vec::new();
    }
    let elem = dtype.size().unwrap_or(8) as u64;
    let mut chunks: Vec<u64> = match (&first.storage, dtype) {
        (_, DType::String) => shape.to_vec(),
        (Storage::Chunked { chunk_shape, .. }, _) => chunk_shape.clone(),
        _ => {
            let mut c = first.shape.clone();
            for d in 0..ndim {
                while c.iter().product::<u64>() * elem > TARGET_BYTES && c[d] > 1 {
                    c[d] = c[d].div_ceil(2);
                }
            }
            c
        }
    };
    for (c, &n) in chunks.iter_mut().zip(shape) {
        *c = (*c).min(n).max(1);
    }
    // Joined files coalesce along the concat axis; a single file's chunks along the leading
    // dimension they do not yet cover whole (the record dimension, as a rule).
    let axis = concat_axis.or_else(|| (0..ndim).find(|&d| chunks[d] < shape[d]));
    if let Some(axis) = axis.filter(|_| dtype != DType::String) {
        let bytes = chunks.iter().product::<u64>() * elem;
        if bytes * 2 <= TARGET_BYTES {
            let factor = (TARGET_BYTES / bytes.max(1)).min(MAX_COALESCED);
            chunks[axis] = (chunks[axis] * factor).min(shape[axis]).max(1);
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::chunk_table::ChunkTable;
    use crate::sources::model::Endian;

    fn var(shape: Vec<u64>, storage: Storage) -> VarMeta {
        VarMeta {
            name: "v".into(),
            dims: vec![],
            shape,
            dtype: DType::F32,
            attrs: vec![],
            fill: vec![0; 4],
            storage,
        }
    }

    fn chunked(chunk_shape: Vec<u64>) -> Storage {
        Storage::Chunked {
            chunk_shape,
            filters: vec![],
            endian: Endian::Little,
            chunks: ChunkTable::default(),
        }
    }

    #[test]
    fn small_native_chunks_coalesce_along_the_concat_axis() {
        let first = var(vec![1, 360, 720], chunked(vec![1, 180, 360]));
        assert_eq!(
            choose(&first, &[365, 360, 720], DType::F32, Some(0)),
            vec![16, 180, 360]
        );
        // A single file's chunks coalesce along the leading dimension.
        assert_eq!(
            choose(&first, &[365, 360, 720], DType::F32, None),
            vec![16, 180, 360]
        );
        // Along the first dimension they do not cover whole.
        let whole_time = var(vec![4, 360, 720], chunked(vec![4, 1, 720]));
        assert_eq!(
            choose(&whole_time, &[4, 360, 720], DType::F32, None),
            vec![4, 256, 720]
        );
    }

    #[test]
    fn a_single_files_tiny_chunks_coalesce() {
        let series = var(vec![1776], chunked(vec![1]));
        assert_eq!(
            choose(&series, &[1776], DType::F32, None),
            vec![MAX_COALESCED]
        );
        // Chunks already large stay native.
        let large = var(vec![100, 1000, 1000], chunked(vec![1, 1000, 1000]));
        assert_eq!(
            choose(&large, &[100, 1000, 1000], DType::F32, None),
            vec![1, 1000, 1000]
        );
    }

    #[test]
    fn coalescing_of_tiny_chunks_is_capped() {
        let first = var(vec![1, 10, 20], chunked(vec![1, 10, 20]));
        assert_eq!(
            choose(&first, &[5000, 10, 20], DType::F32, Some(0)),
            vec![MAX_COALESCED, 10, 20]
        );
    }

    #[test]
    fn large_contiguous_arrays_split_along_leading_dimensions() {
        let storage = Storage::Contiguous {
            offset: 0,
            endian: Endian::Big,
            record_stride: None,
        };
        let first = var(vec![100, 1000, 1000], storage);
        assert_eq!(
            choose(&first, &[100, 1000, 1000], DType::F32, None),
            vec![1, 1000, 1000]
        );
    }
}
