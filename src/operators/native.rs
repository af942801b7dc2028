//! The native read: a chunk assembled from the source variables that overlap it — HDF5 chunks
//! read and decoded (in parallel), contiguous and NetCDF-3 record data read as coalesced row
//! ranges, inline values copied — into a buffer pre-filled with the fill value.

use std::ops::Range;

use rayon::prelude::*;

use super::boxes::{advance, copy_box, fill_with, swap_bytes, Region};
use super::decode::decode_chunk;
use super::{ChunkError, Geometry, Part, Transform};
use crate::sources::bytes::{ByteSource, RangeRead, SourceError};
use crate::sources::chunk_table::ChunkSlot;
use crate::sources::model::{Endian, Filter, InlineData, Storage};

/// Rows closer than this in a file are read as one range.
const COALESCE_GAP: u64 = 256 << 10;

/// Where a part's values land: a C-ordered box of `shape` starting `offset` bytes into the
/// output buffer, at `start` within that box.
struct Target {
    offset: usize,
    shape: Vec<u64>,
    start: Vec<u64>,
}

impl Target {
    /// The slab of a chunk buffer (shape `chunks`) that a part with `lead` leading new
    /// dimensions writes to, given its position `in_chunk` (one index per array dimension).
    fn in_chunk(chunks: &[u64], in_chunk: &[u64], lead: usize, elem: usize) -> Target {
        let slab: u64 = chunks[lead..].iter().product();
        let lead_strides = super::boxes::strides(&chunks[..lead]);
        let slab_index: u64 = in_chunk[..lead]
            .iter()
            .zip(&lead_strides)
            .map(|(i, s)| i * s)
            .sum();
        Target {
            offset: (slab_index * slab) as usize * elem,
            shape: chunks[lead..].to_vec(),
            start: in_chunk[lead..].to_vec(),
        }
    }
}

/// One read from one source, and where its bytes go.
enum Task<'a> {
    /// An HDF5 chunk: decode, then copy a box of it.
    Chunk {
        part: &'a Part,
        /// The chunk's index in the source variable's chunk grid, for messages.
        index: Vec<u64>,
        range: Range<u64>,
        filters: &'a [Filter],
        filter_mask: u32,
        chunk_shape: &'a [u64],
        src_start: Vec<u64>,
        dst_offset: usize,
        dst_shape: Vec<u64>,
        dst_start: Vec<u64>,
        count: Vec<u64>,
        endian: Endian,
    },
    /// A run of uncompressed rows: `(offset in range, offset in output, length)` each.
    Rows {
        part: &'a Part,
        range: Range<u64>,
        rows: Vec<(usize, usize, usize)>,
        endian: Endian,
    },
}

pub(super) fn compute(
    parts: &[Part],
    geometry: &Geometry,
    index: &[u64],
    source: &dyn ByteSource,
) -> Result<Vec<u8>, ChunkError> {
    let elem = geometry.dtype.size().unwrap_or(1);
    let region = geometry.chunk_region(index);
    let chunk_len = geometry.chunks.iter().product::<u64>() as usize;
    let mut out = vec![0u8; chunk_len * elem];
    fill_with(&mut out, &geometry.fill);
    let mut tasks = Vec::new();
    let mut transformed = Vec::new();
    for (part, local, in_chunk) in super::parts::overlaps(parts, &region) {
        if part.transform.is_some() || part.var.dtype != geometry.dtype {
            transformed.push((part, local, in_chunk));
            continue;
        }
        let target = Target::in_chunk(&geometry.chunks, &in_chunk, part.lead(), elem);
        plan_part(
            part,
            &local,
            &target,
            &geometry.fill,
            elem,
            &mut out,
            &mut tasks,
        )?;
    }
    execute(&tasks, &mut out, source, elem)?;
    for (part, local, in_chunk) in transformed {
        let values = read_transformed(part, &local, geometry, source)?;
        let mut count = vec![1u64; part.lead()];
        count.extend_from_slice(&local.count);
        let origin = vec![0u64; count.len()];
        copy_box(
            &values,
            &count,
            &origin,
            &mut out,
            &geometry.chunks,
            &in_chunk,
            &count,
            elem,
        );
    }
    Ok(out)
}

/// Reads `local` of a part in its own type and applies its transform, giving values of the
/// array's type in a buffer of shape `local.count`.
fn read_transformed(
    part: &Part,
    local: &Region,
    geometry: &Geometry,
    source: &dyn ByteSource,
) -> Result<Vec<u8>, ChunkError> {
    let identity = Transform::identity(geometry.dtype);
    let transform = part.transform.as_deref().unwrap_or(&identity);
    let mut read = local.clone();
    for &axis in &transform.flip {
        if let (Some(&n), Some(start)) = (part.var.shape.get(axis), read.start.get_mut(axis)) {
            *start = n - (local.start[axis] + local.count[axis]);
        }
    }
    let elem = part.var.dtype.size().unwrap_or(1);
    let mut buf = vec![0u8; read.len() as usize * elem];
    fill_with(&mut buf, &part.var.fill);
    let target = Target {
        offset: 0,
        shape: read.count.clone(),
        start: vec![0; read.count.len()],
    };
    let mut tasks = Vec::new();
    plan_part(
        part,
        &read,
        &target,
        &part.var.fill,
        elem,
        &mut buf,
        &mut tasks,
    )?;
    execute(&tasks, &mut buf, source, elem)?;
    Ok(transform.apply(buf, part.var.dtype, &read.count))
}

/// Runs the reads (in parallel when there are several) and copies their bytes into `out`.
fn execute(
    tasks: &[Task],
    out: &mut [u8],
    source: &dyn ByteSource,
    elem: usize,
) -> Result<(), ChunkError> {
    let remote = tasks.len() > 1 && tasks.iter().any(|t| source.is_remote(&t.part().path));
    let reads = || -> Vec<RangeRead> {
        tasks
            .iter()
            .map(|t| RangeRead {
                path: &t.part().path,
                version: t.part().version,
                range: t.range().clone(),
            })
            .collect()
    };
    let results: Vec<Result<(Vec<u8>, &Task), ChunkError>> = if remote {
        // Network reads: all requests in flight at once, then decode in parallel.
        let fetched = source.read_batch(&reads());
        tasks
            .par_iter()
            .zip(fetched)
            .map(|(t, bytes)| finish(t, bytes.map_err(source_error)?, elem))
            .collect()
    } else if tasks.len() > 1 {
        // Local reads: the disk is asked for every range at once, then each task reads and
        // decodes its own, in parallel.
        source.will_read(&reads());
        tasks.par_iter().map(|t| run(t, source, elem)).collect()
    } else {
        tasks.iter().map(|t| run(t, source, elem)).collect()
    };
    for result in results {
        let (bytes, task) = result?;
        match task {
            Task::Chunk {
                chunk_shape,
                src_start,
                dst_offset,
                dst_shape,
                dst_start,
                count,
                ..
            } => copy_box(
                &bytes,
                chunk_shape,
                src_start,
                &mut out[*dst_offset..],
                dst_shape,
                dst_start,
                count,
                elem,
            ),
            Task::Rows { rows, endian, .. } => {
                for &(from, to, len) in rows {
                    let row = &mut out[to..to + len];
                    row.copy_from_slice(&bytes[from..from + len]);
                    if *endian == Endian::Big {
                        swap_bytes(row, elem);
                    }
                }
            }
        }
    }
    Ok(())
}

fn error(part: &Part, reason: impl Into<String>) -> ChunkError {
    ChunkError::corrupt(Some(&part.path), reason)
}

/// Plans the reads of one part's overlap `local` (in the variable's coordinates) into
/// `target`; copies inline and fill data right away. `base_fill` is what `out` starts as.
fn plan_part<'a>(
    part: &'a Part,
    local: &Region,
    target: &Target,
    base_fill: &[u8],
    elem: usize,
    out: &mut [u8],
    tasks: &mut Vec<Task<'a>>,
) -> Result<(), ChunkError> {
    let var = &part.var;
    let dst = &mut out[target.offset..];
    match &var.storage {
        Storage::Inline(InlineData::Bytes(bytes)) => {
            if bytes.len() as u64 != var.len() * elem as u64 {
                return Err(error(
                    part,
                    format!("inline data of {} has the wrong size", var.name),
                ));
            }
            copy_box(
                bytes,
                &var.shape,
                &local.start,
                dst,
                &target.shape,
                &target.start,
                &local.count,
                elem,
            );
        }
        Storage::Inline(InlineData::Strings(_)) => {
            return Err(error(
                part,
                format!("{} holds strings, not numbers", var.name),
            ))
        }
        Storage::Unwritten => fill_region(
            dst,
            &target.shape,
            &target.start,
            &local.count,
            &var.fill,
            base_fill,
            elem,
        ),
        Storage::Unsupported { reason } => {
            return Err(error(part, format!("variable {}: {reason}", var.name)))
        }
        Storage::Contiguous {
            offset,
            endian,
            record_stride,
        } => plan_rows(
            part,
            local,
            target,
            elem,
            *offset,
            *endian,
            *record_stride,
            tasks,
        )?,
        Storage::Chunked {
            chunk_shape,
            filters,
            endian,
            chunks,
        } => {
            let first: Vec<u64> = local
                .start
                .iter()
                .zip(chunk_shape)
                .map(|(s, c)| s / c)
                .collect();
            let last: Vec<u64> = local
                .end()
                .iter()
                .zip(chunk_shape)
                .map(|(e, c)| (e - 1) / c)
                .collect();
            let mut index = first.clone();
            loop {
                let native = Region {
                    start: index.iter().zip(chunk_shape).map(|(i, c)| i * c).collect(),
                    count: chunk_shape.clone(),
                };
                if let Some(overlap) = native.intersect(local) {
                    let src_start: Vec<u64> = overlap
                        .start
                        .iter()
                        .zip(&native.start)
                        .map(|(a, b)| a - b)
                        .collect();
                    let dst_start: Vec<u64> = overlap
                        .start
                        .iter()
                        .zip(&local.start)
                        .zip(&target.start)
                        .map(|((a, b), c)| a - b + c)
                        .collect();
                    match chunks.lookup(&index) {
                        ChunkSlot::Absent => fill_region(
                            dst,
                            &target.shape,
                            &dst_start,
                            &overlap.count,
                            &var.fill,
                            base_fill,
                            elem,
                        ),
                        ChunkSlot::Faulty(reason) => {
                            return Err(error(
                                part,
                                format!("variable {} chunk {index:?}: {reason}", var.name),
                            ))
                        }
                        ChunkSlot::Stored(r) => tasks.push(Task::Chunk {
                            part,
                            index: index.clone(),
                            range: within_file(part, r.offset, r.len, &format!("chunk {index:?}"))?,
                            filters,
                            filter_mask: r.filter_mask,
                            chunk_shape,
                            src_start,
                            dst_offset: target.offset,
                            dst_shape: target.shape.clone(),
                            dst_start,
                            count: overlap.count,
                            endian: *endian,
                        }),
                    }
                }
                if !advance(&mut index, &first, &last) {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// The byte range `offset..offset + len` of a part's file, checked to lie inside the file as
/// indexed (reads check that the file is still that version), so a corrupt address is an error
/// naming the variable and `what` of it, never a read of whatever lies there.
fn within_file(part: &Part, offset: u64, len: u64, what: &str) -> Result<Range<u64>, ChunkError> {
    let size = part.version.size;
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(offset..end),
        _ => Err(error(
            part,
            format!(
                "variable {} {what}: {len} bytes at byte {offset} run past the end of the file \
                 ({size} bytes)",
                part.var.name
            ),
        )),
    }
}

/// Writes `fill` over a box of `dst` unless the buffer already starts out as `fill`.
fn fill_region(
    dst: &mut [u8],
    shape: &[u64],
    start: &[u64],
    count: &[u64],
    fill: &[u8],
    base_fill: &[u8],
    elem: usize,
) {
    if fill == base_fill || fill.len() != elem {
        return;
    }
    let n: u64 = count.iter().product();
    let mut block = vec![0u8; n as usize * elem];
    fill_with(&mut block, fill);
    let origin = vec![0u64; count.len()];
    copy_box(&block, count, &origin, dst, shape, start, count, elem);
}

/// Plans row reads of contiguous C-order data, merging rows that lie close in the file.
#[allow(clippy::too_many_arguments)]
fn plan_rows<'a>(
    part: &'a Part,
    local: &Region,
    target: &Target,
    elem: usize,
    offset: u64,
    endian: Endian,
    record_stride: Option<u64>,
    tasks: &mut Vec<Task<'a>>,
) -> Result<(), ChunkError> {
    let shape = &part.var.shape;
    let ndim = shape.len();
    let e = elem as u64;
    // File offset of an element; the record dimension (if any) jumps by the record stride.
    // Checked: a corrupt header must fail the read, never wrap around to other bytes.
    let linear = |idx: &[u64], strides: &[u64]| -> Option<u64> {
        idx.iter()
            .zip(strides)
            .try_fold(0u64, |acc, (i, s)| acc.checked_add(i.checked_mul(*s)?))
    };
    let file_offset = |idx: &[u64]| -> Result<u64, ChunkError> {
        let at = match record_stride {
            Some(stride) if ndim > 0 => {
                let inner = super::boxes::strides(&shape[1..]);
                linear(&idx[1..], &inner)
                    .and_then(|within| within.checked_mul(e))
                    .and_then(|within| idx[0].checked_mul(stride)?.checked_add(within))
            }
            _ => linear(idx, &super::boxes::strides(shape)).and_then(|n| n.checked_mul(e)),
        };
        at.and_then(|at| offset.checked_add(at)).ok_or_else(|| {
            error(
                part,
                format!(
                    "variable {}: the byte offset of element {idx:?} overflows",
                    part.var.name
                ),
            )
        })
    };
    let out_strides = super::boxes::strides(&target.shape);
    let row_len = if ndim == 0 { 1 } else { local.count[ndim - 1] } as usize * elem;
    let mut rows: Vec<(u64, usize)> = Vec::new(); // (file offset, output offset)
    let mut idx = vec![0u64; ndim.saturating_sub(1)];
    loop {
        let mut full: Vec<u64> = idx.iter().zip(&local.start).map(|(i, s)| i + s).collect();
        let mut out_idx: Vec<u64> = idx.iter().zip(&target.start).map(|(i, s)| i + s).collect();
        if ndim > 0 {
            full.push(local.start[ndim - 1]);
            out_idx.push(target.start[ndim - 1]);
        }
        let out_off: u64 = out_idx.iter().zip(&out_strides).map(|(i, s)| i * s).sum();
        rows.push((file_offset(&full)?, target.offset + out_off as usize * elem));
        let first = vec![0u64; idx.len()];
        let last: Vec<u64> = local.count[..idx.len()].iter().map(|c| c - 1).collect();
        if !advance(&mut idx, &first, &last) {
            break;
        }
    }
    let mut i = 0;
    while i < rows.len() {
        let start = rows[i].0;
        let mut j = i + 1;
        while j < rows.len()
            && rows[j].0 >= rows[j - 1].0
            && rows[j].0.saturating_sub(rows[j - 1].0) <= row_len as u64 + COALESCE_GAP
        {
            j += 1;
        }
        // Rows of one group ascend, so the group spans from its first row to its last row's end.
        let span = rows[j - 1].0 - start;
        tasks.push(Task::Rows {
            part,
            range: within_file(part, start, span.saturating_add(row_len as u64), "data")?,
            rows: rows[i..j]
                .iter()
                .map(|&(f, o)| ((f - start) as usize, o, row_len))
                .collect(),
            endian,
        });
        i = j;
    }
    Ok(())
}

impl<'a> Task<'a> {
    fn part(&self) -> &'a Part {
        match self {
            Task::Chunk { part, .. } | Task::Rows { part, .. } => part,
        }
    }

    fn range(&self) -> &Range<u64> {
        match self {
            Task::Chunk { range, .. } | Task::Rows { range, .. } => range,
        }
    }
}

/// A failed read; the source error names the source.
fn source_error(e: SourceError) -> ChunkError {
    ChunkError::from(e)
}

/// Reads a task's bytes and decodes them.
fn run<'t, 'a>(
    task: &'t Task<'a>,
    source: &dyn ByteSource,
    elem: usize,
) -> Result<(Vec<u8>, &'t Task<'a>), ChunkError> {
    let part = task.part();
    let bytes = source
        .read_ranges(&part.path, part.version, std::slice::from_ref(task.range()))
        .map_err(source_error)?
        .pop()
        .unwrap_or_default();
    finish(task, bytes, elem)
}

/// Decodes a task's bytes (filters, byte order) into the values it copies.
fn finish<'t, 'a>(
    task: &'t Task<'a>,
    mut bytes: Vec<u8>,
    elem: usize,
) -> Result<(Vec<u8>, &'t Task<'a>), ChunkError> {
    let part = task.part();
    let range = task.range();
    if let Task::Chunk {
        index,
        filters,
        filter_mask,
        chunk_shape,
        endian,
        ..
    } = task
    {
        let expected = chunk_shape
            .iter()
            .try_fold(elem as u64, |n, &c| n.checked_mul(c))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                error(
                    part,
                    format!(
                        "variable {} chunk {index:?}: chunk shape {chunk_shape:?} is too large",
                        part.var.name
                    ),
                )
            })?;
        bytes = decode_chunk(bytes, filters, *filter_mask, expected).map_err(|reason| {
            error(
                part,
                format!(
                    "variable {} chunk {index:?} at byte {}: {reason}",
                    part.var.name, range.start
                ),
            )
        })?;
        if bytes.len() < expected {
            return Err(error(
                part,
                format!(
                    "variable {} chunk {index:?} at byte {} decodes to {} bytes, expected {expected}",
                    part.var.name,
                    range.start,
                    bytes.len()
                ),
            ));
        }
        if *endian == Endian::Big {
            swap_bytes(&mut bytes, elem);
        }
    }
    Ok((bytes, task))
}
