//! Index-time validation of where a NetCDF-4 file says its variables' bytes are: every stored
//! chunk and contiguous variable must lie after the superblock, inside the file, clear of the
//! metadata the indexer read, with a stored length that fits its chunk. What fails is kept in
//! the catalog as faulty (a chunk) or unusable (a contiguous variable) with the reason, so
//! reading it fails with that reason instead of serving whatever bytes lie there.

use std::collections::HashMap;

use hdf5_reader::chunk_index::ChunkEntry;

use super::chunk_table::ChunkRef;
use super::hdf5_extents::FileExtents;
use super::hdf5_overlaps::mark_overlaps;
use super::model::{Filter, GroupMeta, Storage, VarMeta};

/// Stored lengths of compressed chunks above this many bytes per uncompressed byte, plus
/// [`DEFLATE_SLACK`], are corrupt: zlib grows incompressible data by far less.
const DEFLATE_GROWTH_DIVISOR: u64 = 8;
/// Fixed allowance of a compressed chunk's length over its uncompressed size.
const DEFLATE_SLACK: u64 = 1024;

/// Validates every variable of the file whose root is `root`, including the layout of those
/// whose values were read into the catalog (`inlined`: their paths and layouts): such a
/// variable whose layout fails keeps the validated layout, so the values read through it are
/// never served. Names what it found corrupt in `warnings`.
pub(crate) fn validate_file(
    root: &mut GroupMeta,
    inlined: Vec<(String, Storage)>,
    extents: &FileExtents,
    warnings: &mut Vec<String>,
) {
    let mut values = Vec::new();
    for (path, layout) in inlined {
        if let Some(var) = var_mut(root, &path) {
            let inline = std::mem::replace(&mut var.storage, layout.clone());
            values.push((path, layout, inline));
        }
    }
    validate_group(root, "", extents, warnings);
    mark_overlaps(root, warnings);
    for (path, layout, inline) in values {
        match var_mut(root, &path) {
            Some(var) if var.storage == layout => var.storage = inline,
            _ => {}
        }
    }
}

/// The variable at `path` (`/group/name`) below `root`.
fn var_mut<'a>(root: &'a mut GroupMeta, path: &str) -> Option<&'a mut VarMeta> {
    let path = path.trim_start_matches('/');
    let (groups, name) = path.rsplit_once('/').unwrap_or(("", path));
    let mut group = root;
    for part in groups.split('/').filter(|p| !p.is_empty()) {
        group = group.groups.iter_mut().find(|g| g.name == part)?;
    }
    group.vars.iter_mut().find(|v| v.name == name)
}

/// Validates every variable of `group` and its subgroups (whose path starts with `prefix`);
/// names what it found corrupt in `warnings`.
fn validate_group(
    group: &mut GroupMeta,
    prefix: &str,
    extents: &FileExtents,
    warnings: &mut Vec<String>,
) {
    for var in &mut group.vars {
        let path = format!("{prefix}/{}", var.name);
        if let Some(warning) = validate_var(var, extents) {
            warnings.push(format!("variable {path}: {warning}"));
        }
    }
    for child in &mut group.groups {
        let path = format!("{prefix}/{}", child.name);
        validate_group(child, &path, extents, warnings);
    }
}

/// Validates one variable's storage; a summary of what it marked corrupt, if anything.
fn validate_var(var: &mut VarMeta, extents: &FileExtents) -> Option<String> {
    let elem = var.dtype.size().unwrap_or(1) as u64;
    let nbytes = var.nbytes();
    match &mut var.storage {
        Storage::Contiguous { offset, .. } if nbytes > 0 => {
            let reason = format!("contiguous data: {}", extents.check_data(*offset, nbytes)?);
            var.storage = Storage::Unsupported {
                reason: reason.clone(),
            };
            Some(reason)
        }
        Storage::Chunked {
            chunk_shape,
            filters,
            chunks,
            ..
        } => {
            let expected = chunk_shape.iter().product::<u64>().saturating_mul(elem);
            let mut first = None;
            chunks.retain_valid(|index, chunk| {
                let why = extents
                    .check_data(chunk.offset, chunk.len)
                    .or_else(|| check_len(chunk, filters, expected))?;
                first.get_or_insert_with(|| format!("chunk {index:?}: {why}"));
                Some(why)
            });
            let first = first?;
            Some(format!(
                "{} chunk(s) with a corrupt index entry fail to read (first: {first})",
                chunks.faults()
            ))
        }
        _ => None,
    }
}

/// Why a chunk index's entries cannot all be right, if they cannot: an entry's element offsets
/// off the chunk grid (or a non-zero trailing element offset) or outside `grid`, or two entries
/// for one chunk. Such an entry's own chunk cannot be told (its key is what is corrupt), so the
/// whole index is untrustworthy, as libhdf5 also refuses it.
pub(crate) fn misplaced_entry(
    entries: &[ChunkEntry],
    chunk_shape: &[u64],
    grid: &[u64],
) -> Option<String> {
    let mut seen = HashMap::new();
    for e in entries {
        let index: Vec<u64> = e
            .offsets
            .iter()
            .zip(chunk_shape)
            .map(|(&o, &c)| o / c)
            .collect();
        let off_grid = e.offsets.iter().zip(chunk_shape).any(|(&o, &c)| o % c != 0)
            || e.offsets.iter().skip(chunk_shape.len()).any(|&o| o != 0)
            || index.iter().zip(grid).any(|(&i, &g)| i >= g);
        if off_grid {
            return Some(format!(
                "an entry at address {} has element offsets {:?}, off the chunk grid",
                e.address, e.offsets
            ));
        }
        if let Some(other) = seen.insert(index.clone(), e.address) {
            return Some(format!(
                "two entries claim chunk {index:?} (at addresses {other} and {})",
                e.address
            ));
        }
    }
    None
}

/// Why a chunk's stored length cannot be right for a chunk of `expected` uncompressed bytes
/// through the filters its mask leaves on, or `None`.
fn check_len(chunk: ChunkRef, filters: &[Filter], expected: u64) -> Option<String> {
    let active = |f: &Filter| {
        filters
            .iter()
            .position(|g| g == f)
            .is_some_and(|i| i >= 32 || chunk.filter_mask & (1 << i) == 0)
    };
    let checksum = if active(&Filter::Fletcher32) { 4 } else { 0 };
    let len = chunk.len;
    if active(&Filter::Deflate) {
        let bound = expected
            .saturating_add(expected / DEFLATE_GROWTH_DIVISOR)
            .saturating_add(DEFLATE_SLACK + checksum);
        return (len > bound)
            .then(|| format!("stored length {len} is impossible for a chunk of {expected} bytes"));
    }
    let exact = expected.saturating_add(checksum);
    (len != exact)
        .then(|| format!("stored length {len}, but this uncompressed chunk takes {exact} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(len: u64, filter_mask: u32) -> ChunkRef {
        ChunkRef {
            offset: 4096,
            len,
            filter_mask,
        }
    }

    #[test]
    fn entries_off_the_grid_or_claiming_one_chunk_twice_are_named() {
        let entry = |offsets: &[u64], address| ChunkEntry {
            address,
            size: 10,
            filter_mask: 0,
            offsets: offsets.to_vec(),
        };
        let good = [entry(&[0, 0, 0], 100), entry(&[0, 15, 0], 200)];
        let why = |last| {
            let mut entries = good.to_vec();
            entries.push(last);
            misplaced_entry(&entries, &[10, 15], &[3, 2]).unwrap_or_default()
        };
        assert_eq!(misplaced_entry(&good, &[10, 15], &[3, 2]), None);
        assert!(why(entry(&[10, 0, 4], 300)).contains("[10, 0, 4], off the chunk grid"));
        assert!(why(entry(&[10, 17], 300)).contains("off the chunk grid"));
        assert!(why(entry(&[30, 0], 300)).contains("off the chunk grid"));
        assert!(why(entry(&[0, 15], 300)).contains("chunk [0, 1] (at addresses 200 and 300)"));
    }

    #[test]
    fn uncompressed_chunks_must_have_their_exact_size() {
        assert_eq!(check_len(chunk(800, 0), &[], 800), None);
        assert!(check_len(chunk(799, 0), &[], 800).is_some());
        assert!(check_len(chunk(1 << 40, 0), &[], 800).is_some());
        let shuffled = [Filter::Shuffle { element_size: 4 }, Filter::Fletcher32];
        assert_eq!(check_len(chunk(804, 0), &shuffled, 800), None);
        assert!(check_len(chunk(800, 0), &shuffled, 800).is_some());
    }

    #[test]
    fn compressed_chunks_are_bounded_and_masks_count() {
        let filters = [Filter::Shuffle { element_size: 8 }, Filter::Deflate];
        assert_eq!(check_len(chunk(17, 0), &filters, 8000), None);
        assert_eq!(
            check_len(chunk(8000 + 1000 + 1024, 0), &filters, 8000),
            None
        );
        assert!(check_len(chunk(8000 + 1000 + 1025, 0), &filters, 8000).is_some());
        // Deflate skipped for this chunk (bit 1): it is stored raw.
        assert_eq!(check_len(chunk(8000, 0b10), &filters, 8000), None);
        assert!(check_len(chunk(17, 0b10), &filters, 8000).is_some());
    }
}
