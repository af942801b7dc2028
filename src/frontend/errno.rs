//! The one mapping of key-space errors to errno for the FUSE front end. Every kind of chunk
//! failure is named, so a new kind must be placed here.

use fuser::Errno;

use crate::keyspace::KeyError;
use crate::operators::ChunkErrorKind;

/// The errno a failed key read replies with: `ENOENT` for a key that does not exist, `EIO` for
/// a chunk that cannot be served whatever the cause (a reader must not mistake a failed chunk
/// for a missing one, which Zarr readers turn into the fill value).
pub(crate) fn errno(error: &KeyError) -> Errno {
    match error {
        KeyError::NotFound(_) => Errno::ENOENT,
        KeyError::Chunk { source, .. } => match source.kind {
            ChunkErrorKind::Gone
            | ChunkErrorKind::Changed
            | ChunkErrorKind::Denied
            | ChunkErrorKind::Unavailable
            | ChunkErrorKind::Io
            | ChunkErrorKind::Corrupt
            | ChunkErrorKind::Unsupported
            | ChunkErrorKind::Encoding => Errno::EIO,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::ChunkError;

    #[test]
    fn missing_keys_are_enoent_and_failed_chunks_eio() {
        assert_eq!(errno(&KeyError::NotFound("x".into())), Errno::ENOENT);
        let chunk = KeyError::Chunk {
            array: "ds/v".into(),
            key: "c/0".into(),
            source: ChunkError::corrupt(Some("/d/a.nc"), "bad checksum"),
        };
        assert_eq!(errno(&chunk), Errno::EIO);
    }
}
