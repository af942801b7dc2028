//! Typed chunk errors: what failed computing a chunk (a source gone, changed, refused or
//! unreadable, corrupt data, an unsupported layout, an input array's chunk), which source file
//! and, for a view, which input array chunk. The key space adds the array and chunk served;
//! front ends map [`ChunkErrorKind`] to an errno or a status in one place.

use std::fmt;

use crate::sources::bytes::SourceError;

/// What kind of failure a chunk met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkErrorKind {
    /// A source file or object no longer exists.
    Gone,
    /// A source changed since it was indexed.
    Changed,
    /// An object store refused access.
    Denied,
    /// An object store kept failing (unreachable, throttled).
    Unavailable,
    /// Any other I/O failure reading a source.
    Io,
    /// The source's bytes or metadata are not what they claim (checksums, lengths, layouts).
    Corrupt,
    /// The data is valid but uses something atlasfs does not read.
    Unsupported,
    /// The computed chunk could not be encoded, or a cached input chunk decoded.
    Encoding,
}

/// One chunk of an input array a view read, named in the view's errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputChunk {
    /// The input array's path.
    pub array: String,
    /// The input chunk's index.
    pub index: Vec<u64>,
}

/// A chunk that could not be computed.
#[derive(Debug)]
pub struct ChunkError {
    /// What kind of failure.
    pub kind: ChunkErrorKind,
    /// The source file involved, when one is.
    pub source_path: Option<String>,
    /// The input array chunk whose read failed, for a view.
    pub input: Option<Box<InputChunk>>,
    /// What went wrong.
    pub reason: String,
}

impl ChunkError {
    /// A failure of `kind` involving `path`.
    pub fn new(kind: ChunkErrorKind, path: Option<&str>, reason: impl Into<String>) -> Self {
        ChunkError {
            kind,
            source_path: path.map(str::to_owned),
            input: None,
            reason: reason.into(),
        }
    }

    /// Corrupt data in `path`.
    pub fn corrupt(path: Option<&str>, reason: impl Into<String>) -> Self {
        Self::new(ChunkErrorKind::Corrupt, path, reason)
    }

    /// This error, met reading chunk `index` of input array `array`.
    pub fn in_input(mut self, array: &str, index: &[u64]) -> Self {
        // The innermost input is the one that failed.
        if self.input.is_none() {
            self.input = Some(Box::new(InputChunk {
                array: array.to_owned(),
                index: index.to_vec(),
            }));
        }
        self
    }
}

impl From<SourceError> for ChunkError {
    fn from(e: SourceError) -> Self {
        let (kind, path) = match &e {
            SourceError::NotFound { path } => (ChunkErrorKind::Gone, path),
            SourceError::Changed { path, .. } => (ChunkErrorKind::Changed, path),
            SourceError::Denied { path, .. } => (ChunkErrorKind::Denied, path),
            SourceError::Remote { path, .. } => (ChunkErrorKind::Unavailable, path),
            SourceError::Io { path, .. } => (ChunkErrorKind::Io, path),
        };
        ChunkError::new(kind, Some(&path.clone()), e.to_string())
    }
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(input) = &self.input {
            write!(f, "input {} chunk {:?}: ", input.array, input.index)?;
        }
        match &self.source_path {
            // A source error's own message already names its source.
            Some(path) if !self.reason.contains(path.as_str()) => {
                write!(f, "{path}: {}", self.reason)
            }
            _ => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for ChunkError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_error_keeps_its_kind_and_path_and_names_the_path_once() {
        let e = ChunkError::from(SourceError::NotFound {
            path: "/d/a.nc".into(),
        });
        assert_eq!(e.kind, ChunkErrorKind::Gone);
        assert_eq!(e.source_path.as_deref(), Some("/d/a.nc"));
        assert_eq!(e.to_string().matches("/d/a.nc").count(), 1, "{e}");
    }

    #[test]
    fn an_input_chunk_is_named_before_the_source() {
        let e = ChunkError::corrupt(Some("/d/a.nc"), "bad checksum")
            .in_input("ds/v", &[3, 0])
            .in_input("ds/outer", &[1, 0]);
        assert_eq!(
            e.to_string(),
            "input ds/v chunk [3, 0]: /d/a.nc: bad checksum"
        );
    }
}
