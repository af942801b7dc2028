//! The string read as an operator: chunks of variable-length string arrays, as numcodecs'
//! vlen-utf8 (a u32 item count, then a u32 length and the UTF-8 bytes of each item). Strings
//! are always kept in the catalog, so a chunk is computed without reading any file and its
//! length is known by computing it.

use super::boxes::copy_box;
use super::parts::{self, FromParts};
use super::{ChunkError, ChunkErrorKind, Geometry, Part};
use crate::sources::bytes::ByteSource;
use crate::sources::model::{InlineData, Storage};

/// Chunks of a string array, from string variables kept in the catalog.
#[derive(Debug, Clone)]
pub struct StringRead {
    /// Contributing source variables.
    pub parts: Vec<Part>,
}

impl FromParts for StringRead {
    const NAME: &'static str = "strings";
    const VERSION: u32 = 1;

    fn parts(&self) -> &[Part] {
        &self.parts
    }

    fn values(
        &self,
        geometry: &Geometry,
        index: &[u64],
        _: &dyn ByteSource,
    ) -> Result<Vec<u8>, ChunkError> {
        compute(&self.parts, geometry, index)
    }

    /// Computed in memory from the catalog (no file is read), so cheap to ask.
    fn values_len(&self, geometry: &Geometry, index: &[u64]) -> Option<u64> {
        Some(
            compute(&self.parts, geometry, index)
                .map(|b| b.len() as u64)
                .unwrap_or(0),
        )
    }
}

const MISSING: u64 = u64::MAX;

/// Encodes chunk `index` of a string array; elements outside every part are empty strings.
fn compute(parts: &[Part], geometry: &Geometry, index: &[u64]) -> Result<Vec<u8>, ChunkError> {
    let region = geometry.chunk_region(index);
    let chunk_len: u64 = geometry.chunks.iter().product();
    // Copy element indices with the box machinery, then look the strings up.
    let mut picked: Vec<u8> = MISSING.to_le_bytes().repeat(chunk_len as usize);
    let mut sources: Vec<&[String]> = Vec::new();
    for (part, local, in_chunk) in parts::overlaps(parts, &region) {
        let Storage::Inline(InlineData::Strings(values)) = &part.var.storage else {
            return Err(ChunkError::new(
                ChunkErrorKind::Unsupported,
                Some(&part.path),
                format!(
                    "string variable {} was not kept in the catalog",
                    part.var.name
                ),
            ));
        };
        let tag = (sources.len() as u64) << 40;
        sources.push(values);
        let ids: Vec<u8> = (0..values.len() as u64)
            .flat_map(|i| (tag | i).to_le_bytes())
            .collect();
        let lead = part.lead();
        let extend = |head: u64, v: &[u64]| {
            let mut out = vec![head; lead];
            out.extend_from_slice(v);
            out
        };
        copy_box(
            &ids,
            &extend(1, &part.var.shape),
            &extend(0, &local.start),
            &mut picked,
            &geometry.chunks,
            &in_chunk,
            &extend(1, &local.count),
            8,
        );
    }
    let mut out = Vec::with_capacity(4 + chunk_len as usize * 8);
    out.extend_from_slice(&(chunk_len as u32).to_le_bytes());
    for id in picked.chunks_exact(8) {
        let id = u64::from_le_bytes(id.try_into().expect("8 bytes"));
        let text = if id == MISSING {
            ""
        } else {
            sources[(id >> 40) as usize][(id & ((1 << 40) - 1)) as usize].as_str()
        };
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    Ok(out)
}
