//! Data ranges of one HDF5 file that overlap. No two chunks or contiguous variables of a valid
//! file share a byte, so where two do, an index entry is corrupt — and which one cannot be told:
//! both are marked (a chunk faulty, a contiguous variable unusable) with the reason, so neither
//! serves the other's bytes. A dataset reached under two names (the same storage twice) counts
//! once.

use std::collections::HashMap;

use super::model::{GroupMeta, Storage, VarMeta};

/// One stored range: its bytes, its variable (position in the walk) and chunk, if chunked.
struct Item {
    start: u64,
    end: u64,
    var: usize,
    chunk: Option<Vec<u64>>,
}

/// Marks every stored range of the file whose root is `root` that overlaps another; names the
/// variables concerned in `warnings`.
pub(crate) fn mark_overlaps(root: &mut GroupMeta, warnings: &mut Vec<String>) {
    let mut vars = Vec::new();
    all_vars(root, "", &mut vars);
    let (items, canonical) = stored_ranges(&vars);
    let marks = overlapping(&items);
    if marks.is_empty() {
        return;
    }
    let describe = |item: &Item| match &item.chunk {
        Some(index) => format!("chunk {index:?} of variable {}", vars[item.var].0),
        None => format!("the data of variable {}", vars[item.var].0),
    };
    // Per variable: the reason of each marked chunk (or of its contiguous data).
    let mut reasons: HashMap<usize, HashMap<Option<Vec<u64>>, String>> = HashMap::new();
    for (&k, &partner) in &marks {
        let (item, other) = (&items[k], &items[partner]);
        let reason = format!(
            "bytes {}..{} overlap {}",
            item.start,
            item.end,
            describe(other)
        );
        reasons
            .entry(item.var)
            .or_default()
            .insert(item.chunk.clone(), reason);
    }
    for (i, (path, var)) in vars.into_iter().enumerate() {
        let Some(mut reasons) = reasons.get(&canonical[i]).cloned() else {
            continue;
        };
        match &mut var.storage {
            Storage::Chunked { chunks, .. } => {
                let count = reasons.len();
                let mut first = None;
                chunks.retain_valid(|index, _| {
                    let why = reasons.remove(&Some(index.to_vec()))?;
                    first.get_or_insert_with(|| format!("chunk {index:?}: {why}"));
                    Some(why)
                });
                let first = first.unwrap_or_default();
                warnings.push(format!(
                    "variable {path}: {count} chunk(s) overlap other data and fail to read \
                     (first: {first})"
                ));
            }
            storage => {
                if let Some(why) = reasons.remove(&None) {
                    let reason = format!("contiguous data: {why}");
                    warnings.push(format!("variable {path}: {reason}"));
                    *storage = Storage::Unsupported { reason };
                }
            }
        }
    }
}

/// Every variable of `group` and below, with its path.
fn all_vars<'a>(group: &'a mut GroupMeta, prefix: &str, out: &mut Vec<(String, &'a mut VarMeta)>) {
    for var in group.vars.iter_mut() {
        out.push((format!("{prefix}/{}", var.name), var));
    }
    for child in group.groups.iter_mut() {
        let path = format!("{prefix}/{}", child.name);
        all_vars(child, &path, out);
    }
}

/// The stored ranges of `vars`, each dataset's once, and for each variable the first with
/// the same storage (itself, unless it is a second name of a dataset).
fn stored_ranges(vars: &[(String, &mut VarMeta)]) -> (Vec<Item>, Vec<usize>) {
    let mut items = Vec::new();
    let mut canonical = Vec::with_capacity(vars.len());
    for (i, (_, var)) in vars.iter().enumerate() {
        let first = vars[..i]
            .iter()
            .position(|(_, v)| v.storage == var.storage)
            .unwrap_or(i);
        canonical.push(first);
        match &var.storage {
            _ if first != i => {}
            Storage::Contiguous { offset, .. } if var.nbytes() > 0 => items.push(Item {
                start: *offset,
                end: offset.saturating_add(var.nbytes()),
                var: i,
                chunk: None,
            }),
            Storage::Chunked { chunks, .. } => {
                items.extend(chunks.entries().map(|(index, r)| Item {
                    start: r.offset,
                    end: r.offset.saturating_add(r.len),
                    var: i,
                    chunk: Some(index),
                }))
            }
            _ => {}
        }
    }
    (items, canonical)
}

/// The items that overlap another, each with one item it overlaps.
fn overlapping(items: &[Item]) -> HashMap<usize, usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&k| (items[k].start, items[k].end));
    let mut marks = HashMap::new();
    // The item reaching furthest among those already passed.
    let mut reach: Option<usize> = None;
    for k in order {
        if let Some(h) = reach {
            if items[k].start < items[h].end {
                marks.entry(k).or_insert(h);
                marks.entry(h).or_insert(k);
            }
        }
        if reach.is_none_or(|h| items[k].end > items[h].end) {
            reach = Some(k);
        }
    }
    marks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::chunk_table::{ChunkRef, ChunkSlot, ChunkTable};
    use crate::sources::model::{DType, Endian};

    fn var(name: &str, storage: Storage) -> VarMeta {
        VarMeta {
            name: name.to_owned(),
            dims: vec!["x".to_owned()],
            shape: vec![100],
            dtype: DType::F32,
            attrs: Vec::new(),
            fill: vec![0; 4],
            storage,
        }
    }

    fn chunked(offsets: &[u64]) -> Storage {
        let refs = offsets.iter().enumerate().map(|(i, &offset)| {
            let r = ChunkRef {
                offset,
                len: 100,
                filter_mask: 0,
            };
            (vec![i as u64], r)
        });
        Storage::Chunked {
            chunk_shape: vec![25],
            filters: Vec::new(),
            endian: Endian::Little,
            chunks: ChunkTable::new(vec![4], refs),
        }
    }

    fn contiguous(offset: u64) -> Storage {
        Storage::Contiguous {
            offset,
            endian: Endian::Little,
            record_stride: None,
        }
    }

    fn slot(group: &GroupMeta, var: usize, index: u64) -> ChunkSlot<'_> {
        match &group.vars[var].storage {
            Storage::Chunked { chunks, .. } => chunks.lookup(&[index]),
            other => panic!("not chunked: {other:?}"),
        }
    }

    #[test]
    fn a_chunk_pointing_into_other_data_fails_with_what_it_overlaps() {
        let mut root = GroupMeta {
            // `a` chunk 2 points into `c`'s data (1000..1400); `b` has the same storage as `a`.
            vars: vec![
                var("a", chunked(&[100, 200, 1050, 300])),
                var("c", contiguous(1000)),
                var("b", chunked(&[100, 200, 1050, 300])),
            ],
            ..GroupMeta::default()
        };
        let mut warnings = Vec::new();
        mark_overlaps(&mut root, &mut warnings);
        assert_eq!(
            slot(&root, 0, 0),
            ChunkSlot::Stored(ChunkRef {
                offset: 100,
                len: 100,
                filter_mask: 0
            })
        );
        assert!(matches!(slot(&root, 0, 1), ChunkSlot::Stored(_)));
        assert!(matches!(slot(&root, 0, 3), ChunkSlot::Stored(_)));
        assert_eq!(
            slot(&root, 0, 2),
            ChunkSlot::Faulty("bytes 1050..1150 overlap the data of variable /c")
        );
        assert_eq!(
            root.vars[1].storage,
            Storage::Unsupported {
                reason: "contiguous data: bytes 1000..1400 overlap chunk [2] of variable /a"
                    .to_owned()
            }
        );
        assert_eq!(
            slot(&root, 2, 2),
            slot(&root, 0, 2),
            "the second name of `a` too"
        );
        assert_eq!(warnings.len(), 3, "{warnings:?}");
    }

    #[test]
    fn adjacent_ranges_do_not_overlap() {
        let mut root = GroupMeta {
            vars: vec![
                var("a", chunked(&[100, 200, 300, 400])),
                var("c", contiguous(500)),
            ],
            ..GroupMeta::default()
        };
        let before = root.clone();
        let mut warnings = Vec::new();
        mark_overlaps(&mut root, &mut warnings);
        assert_eq!(root, before);
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_range_inside_a_long_one_is_found_past_shorter_ones() {
        let items: Vec<Item> = [(0u64, 1000u64), (10, 20), (30, 40), (50, 60)]
            .iter()
            .enumerate()
            .map(|(var, &(start, end))| Item {
                start,
                end,
                var,
                chunk: None,
            })
            .collect();
        let marks = overlapping(&items);
        assert_eq!(marks.len(), 4, "each short range overlaps the long one");
        assert_eq!(marks[&3], 0);
    }
}
