//! Where an HDF5 dataset's bytes live: reads the dataset's layout and filter-pipeline messages
//! and walks its chunk index (B-tree v1/v2, fixed/extensible array, single, implicit) into a
//! [`ChunkTable`] of absolute file offsets (HDF5 addresses are relative to the superblock,
//! which a user block moves). Reads metadata only, never chunk data; the chunk index's own
//! checksums are verified as it is walked.

use hdf5_reader::messages::filter_pipeline::{FILTER_DEFLATE, FILTER_FLETCHER32, FILTER_SHUFFLE};
use hdf5_reader::messages::layout::{ChunkIndexing, DataLayout};
use hdf5_reader::messages::HdfMessage;
use hdf5_reader::{ByteOrder, Datatype, Hdf5File};

use super::chunk_table::{ChunkRef, ChunkTable};
use hdf5_reader::chunk_index::ChunkEntry;

use super::hdf5_array_checksums::{verify_extensible_array, verify_fixed_array, Damage};
use super::hdf5_array_numbering::Numbering;
use super::hdf5_checks::misplaced_entry;
use super::model::{Endian, Filter, Storage};

/// The byte count the layout message of the contiguous dataset `dataset` gives its data, or
/// `None` when it is not contiguous (or its header cannot be read).
pub(crate) fn contiguous_size(file: &Hdf5File, dataset: &hdf5_reader::Dataset) -> Option<u64> {
    let header = file.get_or_parse_header(dataset.address()).ok()?;
    header.messages.iter().find_map(|m| match m {
        HdfMessage::DataLayout(l) => match l.layout {
            DataLayout::Contiguous { size, .. } => Some(size),
            _ => None,
        },
        _ => None,
    })
}

/// HDF5 stores a chunk's size in 32 bits: a chunk must be smaller than 4 GiB.
const MAX_CHUNK_BYTES: u64 = 1 << 32;

/// What the layout of one dataset turned out to be.
pub(super) enum Layout {
    /// Fully described storage.
    Storage(Storage),
    /// Compact storage: the values are in the object header; the caller inlines them.
    Compact,
}

/// Reads the storage layout of the dataset at `path` (e.g. `/group/var`).
///
/// # Errors
/// A message naming what could not be read; the caller reports it for this variable.
pub(super) fn read_layout(file: &Hdf5File, path: &str) -> Result<Layout, String> {
    let dataset = file.dataset(path).map_err(|e| e.to_string())?;
    let header = file
        .get_or_parse_header(dataset.address())
        .map_err(|e| e.to_string())?;
    let mut layout = None;
    let mut pipeline = None;
    for message in &header.messages {
        match message {
            HdfMessage::DataLayout(m) => layout = Some(m.layout.clone()),
            HdfMessage::FilterPipeline(m) => pipeline = Some(m.clone()),
            _ => {}
        }
    }
    let layout = layout.ok_or("no data layout message")?;
    let endian = match dataset.dtype() {
        Datatype::FixedPoint { byte_order, .. } | Datatype::FloatingPoint { byte_order, .. } => {
            match byte_order {
                ByteOrder::BigEndian => Endian::Big,
                ByteOrder::LittleEndian => Endian::Little,
            }
        }
        _ => Endian::Little,
    };
    let shape = dataset.shape().to_vec();
    // Every address in the file is relative to where the superblock was found.
    let base = file.superblock().base_address;
    match layout {
        DataLayout::Compact { .. } => Ok(Layout::Compact),
        DataLayout::Contiguous { address, .. } => {
            if address == u64::MAX {
                Ok(Layout::Storage(Storage::Unwritten))
            } else {
                Ok(Layout::Storage(Storage::Contiguous {
                    offset: address.saturating_add(base),
                    endian,
                    record_stride: None,
                }))
            }
        }
        DataLayout::Chunked {
            address,
            dims,
            element_size,
            chunk_indexing,
        } => {
            // Layout messages of version 4 and later leave the element size to the datatype;
            // earlier ones repeat it, and libhdf5 refuses a dataset where the two disagree.
            let type_size = dataset
                .raw_element_size()
                .ok()
                .and_then(|n| u32::try_from(n).ok());
            let element_size = match (element_size, type_size) {
                (0, Some(n)) => n,
                (0, None) => return Err("the element size is unknown".to_owned()),
                (n, Some(t)) if n != t => {
                    return Ok(Layout::Storage(Storage::Unsupported {
                        reason: format!(
                            "the layout's element size ({n} bytes) differs from the datatype's \
                             ({t} bytes)"
                        ),
                    }))
                }
                (n, _) => n,
            };
            let mut filters = Vec::new();
            for f in pipeline.iter().flat_map(|p| &p.filters) {
                filters.push(match f.id {
                    FILTER_DEFLATE => Filter::Deflate,
                    FILTER_SHUFFLE => Filter::Shuffle { element_size },
                    FILTER_FLETCHER32 => Filter::Fletcher32,
                    other => {
                        let name = f.name.clone().unwrap_or_else(|| format!("id {other}"));
                        return Ok(Layout::Storage(Storage::Unsupported {
                            reason: format!("unsupported HDF5 filter {name}"),
                        }));
                    }
                });
            }
            // Chunk dims carry an extra trailing element-size dimension in the message.
            let ndim = shape.len();
            let chunk_dims: Vec<u32> = dims.iter().take(ndim).copied().collect();
            if chunk_dims.len() != ndim || chunk_dims.contains(&0) {
                return Err(format!("chunk dims {dims:?} do not fit shape {shape:?}"));
            }
            let chunk_shape: Vec<u64> = chunk_dims.iter().map(|&c| c as u64).collect();
            if let Some(why) = oversized_chunk(&chunk_shape, element_size) {
                return Ok(Layout::Storage(Storage::Unsupported { reason: why }));
            }
            let grid: Vec<u64> = shape
                .iter()
                .zip(&chunk_shape)
                .map(|(&s, &c)| s.div_ceil(c))
                .collect();
            if address == u64::MAX {
                return Ok(Layout::Storage(Storage::Chunked {
                    chunk_shape,
                    filters,
                    endian,
                    chunks: ChunkTable::new(grid, Vec::new()),
                }));
            }
            let (entries, damaged) = match collect_entries(
                file,
                address,
                &shape,
                dataset.max_dims(),
                &chunk_dims,
                element_size as usize,
                chunk_indexing.as_ref(),
            ) {
                Ok(entries) => entries,
                Err(e) => {
                    return Ok(Layout::Storage(Storage::Unsupported {
                        reason: format!("chunk index is corrupt: {e}"),
                    }))
                }
            };
            // Unfiltered chunks of the newer indexes have no size field: they take the whole
            // chunk.
            let chunk_bytes = chunk_shape
                .iter()
                .product::<u64>()
                .saturating_mul(u64::from(element_size));
            if let Some(why) = misplaced_entry(&entries, &chunk_shape, &grid) {
                return Ok(Layout::Storage(Storage::Unsupported {
                    reason: format!("chunk index is corrupt: {why}"),
                }));
            }
            let refs = entries.into_iter().map(|e| {
                let index = e
                    .offsets
                    .iter()
                    .zip(&chunk_shape)
                    .map(|(&o, &c)| o / c)
                    .collect::<Vec<_>>();
                let r = ChunkRef {
                    offset: e.address.saturating_add(base),
                    len: if e.size == 0 && filters.is_empty() {
                        chunk_bytes
                    } else {
                        e.size
                    },
                    filter_mask: e.filter_mask,
                };
                (index, r)
            });
            let mut chunks = ChunkTable::new(grid, refs);
            chunks.mark_faulty(damaged);
            Ok(Layout::Storage(Storage::Chunked {
                chunk_shape,
                filters,
                endian,
                chunks,
            }))
        }
    }
}

/// A chunk (grid index) whose index entry lies in a block that failed its checksum, and why.
type DamagedChunk = (Vec<u64>, String);

/// The entries of a chunk index, and the chunks whose entries are damaged.
fn collect_entries(
    file: &Hdf5File,
    address: u64,
    shape: &[u64],
    max_dims: Option<&[u64]>,
    chunk_dims: &[u32],
    element_size: usize,
    indexing: Option<&ChunkIndexing>,
) -> Result<(Vec<ChunkEntry>, Vec<DamagedChunk>), String> {
    let storage = file.storage();
    let sb = file.superblock();
    let (os, ls) = (sb.offset_size, sb.length_size);
    let ndim = shape.len();
    match indexing {
        None => super::hdf5_btree_v1::collect_chunk_entries(storage, address, os, ls, ndim)
            .map(|entries| (entries, Vec::new())),
        Some(ChunkIndexing::SingleChunk {
            filtered_size,
            filters,
        }) => Ok((
            vec![hdf5_reader::chunk_index::single_chunk_entry(
                address,
                *filtered_size,
                *filters,
                ndim,
            )],
            Vec::new(),
        )),
        Some(ChunkIndexing::BTreeV2) => hdf5_reader::chunk_index::collect_v2_chunk_entries_storage(
            storage,
            address,
            os,
            ls,
            ndim as u32,
            chunk_dims,
            None,
        )
        .map(|entries| (entries, Vec::new()))
        .map_err(|e| e.to_string()),
        Some(ChunkIndexing::Implicit) => hdf5_reader::chunk_index::collect_implicit_chunk_entries(
            address,
            shape,
            chunk_dims,
            element_size,
            None,
            storage.len(),
        )
        .map(|entries| (entries, Vec::new()))
        .map_err(|e| e.to_string()),
        Some(ChunkIndexing::FixedArray { .. }) => {
            hdf5_reader::fixed_array::collect_fixed_array_chunk_entries_storage(
                storage, address, os, ls, shape, chunk_dims, None,
            )
            .map_err(|e| e.to_string())
            .and_then(|entries| {
                let damage = verify_fixed_array(storage, address, os, ls)?;
                let grid = chunk_grid(shape, chunk_dims);
                Ok((entries, damaged_chunks(damage, &Numbering::Fixed { grid })))
            })
        }
        Some(ChunkIndexing::ExtensibleArray { .. }) => {
            hdf5_reader::extensible_array::collect_extensible_array_chunk_entries_storage(
                storage, address, os, ls, shape, max_dims, chunk_dims, None,
            )
            .map_err(|e| e.to_string())
            .and_then(|entries| {
                let damage = verify_extensible_array(storage, address, os, ls)?;
                let grid = chunk_grid(shape, chunk_dims);
                let chunk_shape: Vec<u64> = chunk_dims.iter().map(|&c| u64::from(c)).collect();
                let numbering = Numbering::extensible(&grid, &chunk_shape, max_dims);
                Ok((entries, damaged_chunks(damage, &numbering)))
            })
        }
    }
}

/// Why a chunk of `chunk_shape` elements of `element_size` bytes cannot be one libhdf5 wrote:
/// HDF5 limits a chunk to less than 4 GiB, and refuses to read a larger one.
fn oversized_chunk(chunk_shape: &[u64], element_size: u32) -> Option<String> {
    let bytes = chunk_shape
        .iter()
        .try_fold(u64::from(element_size), |n, &c| n.checked_mul(c));
    match bytes {
        Some(n) if n < MAX_CHUNK_BYTES => None,
        _ => Some(format!(
            "chunk shape {chunk_shape:?} of {element_size}-byte elements reaches HDF5's limit \
             of {MAX_CHUNK_BYTES} bytes per chunk"
        )),
    }
}

/// Chunks per dimension of `shape` in chunks of `chunk_dims`.
fn chunk_grid(shape: &[u64], chunk_dims: &[u32]) -> Vec<u64> {
    shape
        .iter()
        .zip(chunk_dims)
        .map(|(&s, &c)| s.div_ceil(u64::from(c).max(1)))
        .collect()
}

/// The chunks (grid index, reason) whose index entries lie in damaged blocks.
fn damaged_chunks(damage: Vec<Damage>, numbering: &Numbering) -> Vec<DamagedChunk> {
    let end = numbering.end();
    let mut out = Vec::new();
    for d in damage {
        let reason = format!("its chunk index entry is corrupt: {}", d.reason);
        for element in d.elements.start..d.elements.end.min(end) {
            if let Some(index) = numbering.chunk(element) {
                out.push((index, reason.clone()));
            }
        }
    }
    out
}
