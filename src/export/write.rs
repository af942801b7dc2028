//! Writing an export: one chunk at a time (its served bytes, verbatim), the check that every
//! chunk is present, and the metadata written last, the root's documents at the very end with
//! the provenance in their attributes (and, for Zarr v2, consolidated metadata of the store).

use rayon::prelude::*;
use serde_json::{Map, Value};

use super::plan::Unit;
use super::{sharding, Destination, ExportError, ExportPlan, Provenance};
use crate::config::ZarrFormat;
use crate::keyspace::warm::Shard;
use crate::keyspace::{KeyError, KeySpace, Kind};

/// What writing one chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Written; its size in bytes.
    Wrote(u64),
    /// Already present with the served size (`--resume`); not rewritten.
    Skipped,
}

/// Writes `unit` to `dest`: a chunk's served bytes, or a shard assembled from its chunks'
/// (computed in parallel). With `resume`, a chunk already there with the served size, or a
/// shard already there whole (its index intact and matching its chunks), is left alone.
///
/// # Errors
/// [`ExportError::Key`] when a chunk cannot be computed, [`ExportError::Store`] when the
/// destination cannot be read or written.
pub fn write_unit(
    keys: &KeySpace,
    plan: &ExportPlan,
    dest: &Destination,
    unit: &Unit,
    resume: bool,
) -> Result<Written, ExportError> {
    let (full, relative) = plan.chunk_keys(keys, &unit.array, &unit.index);
    let Some(grid) = &unit.shards else {
        if resume {
            if let Some(size) = dest.size_of(&relative)? {
                if keys.stat(&full) == Some(Kind::File(size)) {
                    return Ok(Written::Skipped);
                }
            }
        }
        let bytes = keys.read(&full, 0, usize::MAX)?.to_vec();
        let len = bytes.len() as u64;
        dest.put(&relative, bytes)?;
        return Ok(Written::Wrote(len));
    };
    let positions = grid.chunks_of(&unit.index);
    if resume {
        let present: Vec<bool> = positions.iter().map(Option::is_some).collect();
        if let Some((size, tail)) = dest.tail(&relative, sharding::index_len(present.len()))? {
            if sharding::verify_index(&tail, size, &present) {
                return Ok(Written::Skipped);
            }
        }
    }
    let chunks = positions
        .par_iter()
        .map(|position| {
            position
                .as_ref()
                .map(|index| {
                    let (full, _) = plan.chunk_keys(keys, &unit.array, index);
                    Ok(keys.read(&full, 0, usize::MAX)?.to_vec())
                })
                .transpose()
        })
        .collect::<Result<Vec<_>, KeyError>>()?;
    let bytes = sharding::assemble(chunks);
    let len = bytes.len() as u64;
    dest.put(&relative, bytes)?;
    Ok(Written::Wrote(len))
}

/// How many units (chunks, shards) of the export are not at `dest` yet, and the first of them.
///
/// # Errors
/// [`ExportError::Store`] when the destination cannot be listed.
pub fn missing_chunks(
    keys: &KeySpace,
    plan: &ExportPlan,
    dest: &Destination,
) -> Result<(u64, Option<String>), ExportError> {
    let present = dest.present()?;
    let mut missing = 0;
    let mut first = None;
    for i in 0..plan.total() {
        let Some(unit) = plan.unit(Shard::ALL, i) else {
            continue;
        };
        let (_, relative) = plan.chunk_keys(keys, &unit.array, &unit.index);
        if !present.contains_key(&relative) {
            missing += 1;
            first.get_or_insert(relative);
        }
    }
    Ok((missing, first))
}

/// Writes every metadata document of the export, the root's last and stamped with
/// `provenance`, once every chunk is present.
///
/// # Errors
/// [`ExportError::Incomplete`] when chunks are missing; otherwise as the reads and writes.
pub fn finalize(
    keys: &KeySpace,
    plan: &ExportPlan,
    dest: &Destination,
    provenance: &Provenance,
) -> Result<usize, ExportError> {
    if let (missing @ 1.., first) = missing_chunks(keys, plan, dest)? {
        return Err(ExportError::Incomplete {
            missing,
            total: plan.total(),
            first: first.unwrap_or_default(),
        });
    }
    let staging = dest.remove_staging_files()?;
    if staging > 0 {
        tracing::info!("removed {staging} staging file(s) a stopped writer left at {dest}");
    }
    let v2 = keys.format() == ZarrFormat::V2;
    let grids = plan.shard_grids();
    let mut root = Vec::new();
    let mut consolidated = Map::new();
    let mut written = 0;
    for full in plan.documents() {
        let relative = plan.relative(full);
        let mut bytes = keys.read(full, 0, usize::MAX)?.to_vec();
        if let Some(sharded) =
            sharding::rewrite_document(full, &bytes, &grids).map_err(|e| ExportError::Metadata {
                key: full.clone(),
                reason: e.to_string(),
            })?
        {
            bytes = sharded;
        }
        let name = relative.rsplit('/').next().unwrap_or(&relative);
        if v2 && name == ".zmetadata" && !relative.contains('/') {
            continue; // rebuilt below from what is written
        }
        if relative == "zarr.json" || (v2 && relative == ".zattrs") {
            bytes = provenance.stamp(&relative, &bytes)?;
        }
        if v2 && matches!(name, ".zgroup" | ".zarray" | ".zattrs") {
            consolidated.insert(relative.clone(), parse(&relative, &bytes)?);
        }
        if relative.contains('/') {
            dest.put(&relative, bytes)?;
            written += 1;
        } else {
            root.push((relative, bytes));
        }
    }
    if v2 {
        if !consolidated.contains_key(".zattrs") {
            let bytes = provenance.stamp(".zattrs", b"{}")?;
            consolidated.insert(".zattrs".to_owned(), parse(".zattrs", &bytes)?);
            root.push((".zattrs".to_owned(), bytes));
        }
        let document = serde_json::json!({
            "metadata": consolidated,
            "zarr_consolidated_format": 1,
        });
        let bytes = serde_json::to_vec_pretty(&document).map_err(|e| ExportError::Metadata {
            key: ".zmetadata".to_owned(),
            reason: e.to_string(),
        })?;
        root.push((".zmetadata".to_owned(), bytes));
    }
    for (relative, bytes) in root {
        dest.put(&relative, bytes)?;
        written += 1;
    }
    Ok(written)
}

fn parse(key: &str, bytes: &[u8]) -> Result<Value, ExportError> {
    serde_json::from_slice(bytes).map_err(|e| ExportError::Metadata {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}
