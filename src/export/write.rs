//! Writing an export: one chunk at a time (its served bytes, verbatim), the check that every
//! chunk is present, and the metadata written last, the root's documents at the very end with
//! the provenance in their attributes (and, for Zarr v2, consolidated metadata of the store).

use serde_json::{Map, Value};

use super::{Destination, ExportError, ExportPlan, Provenance};
use crate::config::ZarrFormat;
use crate::keyspace::warm::Shard;
use crate::keyspace::{KeySpace, Kind};
use crate::tree::ArrayNode;

/// What writing one chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Written; its size in bytes.
    Wrote(u64),
    /// Already present with the served size (`--resume`); not rewritten.
    Skipped,
}

/// Writes chunk `index` of `array` to `dest`; with `resume`, a chunk already there with the
/// served size is left alone.
///
/// # Errors
/// [`ExportError::Key`] when the chunk cannot be computed, [`ExportError::Store`] when it
/// cannot be written.
pub fn write_chunk(
    keys: &KeySpace,
    plan: &ExportPlan,
    dest: &Destination,
    array: &ArrayNode,
    index: &[u64],
    resume: bool,
) -> Result<Written, ExportError> {
    let (full, relative) = plan.chunk_keys(keys, array, index);
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
    Ok(Written::Wrote(len))
}

/// How many chunks of the export are not at `dest` yet, and the first of them.
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
        let Some((array, index)) = plan.chunk(Shard::ALL, i) else {
            continue;
        };
        let (_, relative) = plan.chunk_keys(keys, &array, &index);
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
    let v2 = keys.format() == ZarrFormat::V2;
    let mut root = Vec::new();
    let mut consolidated = Map::new();
    let mut written = 0;
    for full in plan.documents() {
        let relative = plan.relative(full);
        let mut bytes = keys.read(full, 0, usize::MAX)?.to_vec();
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
