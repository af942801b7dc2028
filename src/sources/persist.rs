//! The catalog's on-disk format: a magic, a format version, then the file entries and the
//! indexed Zarr stores encoded with postcard (varint integers, no field names). Written to a
//! temp file and renamed into place.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::catalog::Entry;
use super::zarr_store::ZarrStoreMeta;

const MAGIC: &[u8; 8] = b"ATLASCAT";
/// Bump whenever the model changes shape.
const FORMAT_VERSION: u32 = 4;

/// Source files by path.
pub(super) type Files = HashMap<String, Entry>;
/// Zarr stores by location.
pub(super) type Stores = HashMap<String, Arc<ZarrStoreMeta>>;

/// Loads a persisted catalog; `None` when absent, of another format version, or unreadable
/// (the caller then re-indexes from scratch).
pub(super) fn load(path: &Path) -> Option<(Files, Stores)> {
    let bytes = std::fs::read(path).ok()?;
    let body = bytes.strip_prefix(MAGIC.as_slice())?;
    let (version, body) = body.split_at_checked(4)?;
    if u32::from_le_bytes(version.try_into().ok()?) != FORMAT_VERSION {
        return None;
    }
    match postcard::from_bytes(body) {
        Ok(entries) => Some(entries),
        Err(e) => {
            tracing::warn!(
                "catalog {} is unreadable ({e}); re-indexing",
                path.display()
            );
            None
        }
    }
}

/// Writes the catalog atomically.
///
/// # Errors
/// The I/O error of writing or renaming.
pub(super) fn save(path: &Path, entries: &Files, stores: &Stores) -> std::io::Result<()> {
    let body = postcard::to_stdvec(&(entries, stores)).map_err(std::io::Error::other)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(MAGIC)?;
    file.write_all(&FORMAT_VERSION.to_le_bytes())?;
    file.write_all(&body)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
