//! The one mapping of key-space errors to HTTP statuses. Every kind of chunk failure is named,
//! so a new kind must be placed here; a failed chunk is never a 404, which Zarr readers would
//! turn into the fill value.

use axum::http::StatusCode;

use crate::keyspace::KeyError;
use crate::operators::ChunkErrorKind;

/// The status a failed key read answers with: 404 for a key that does not exist, 503 for an
/// object store that kept failing, 502 for one that refused access, 500 for a source that is
/// gone, changed, corrupt or unreadable.
pub(super) fn status(error: &KeyError) -> StatusCode {
    match error {
        KeyError::NotFound(_) => StatusCode::NOT_FOUND,
        KeyError::Chunk { source, .. } => match source.kind {
            ChunkErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ChunkErrorKind::Denied => StatusCode::BAD_GATEWAY,
            ChunkErrorKind::Gone
            | ChunkErrorKind::Changed
            | ChunkErrorKind::Io
            | ChunkErrorKind::Corrupt
            | ChunkErrorKind::Unsupported
            | ChunkErrorKind::Encoding => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::ChunkError;

    fn chunk(kind: ChunkErrorKind) -> KeyError {
        KeyError::Chunk {
            array: "ds/v".into(),
            key: "c/0".into(),
            source: ChunkError::new(kind, Some("/d/a.nc"), "failed"),
        }
    }

    #[test]
    fn missing_keys_are_404_stores_down_503_and_bad_sources_500() {
        assert_eq!(
            status(&KeyError::NotFound("x".into())),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(&chunk(ChunkErrorKind::Unavailable)),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(&chunk(ChunkErrorKind::Denied)),
            StatusCode::BAD_GATEWAY
        );
        for kind in [
            ChunkErrorKind::Gone,
            ChunkErrorKind::Changed,
            ChunkErrorKind::Io,
            ChunkErrorKind::Corrupt,
            ChunkErrorKind::Unsupported,
            ChunkErrorKind::Encoding,
        ] {
            assert_eq!(status(&chunk(kind)), StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
}
