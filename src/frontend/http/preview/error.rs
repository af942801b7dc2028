//! What a preview request can fail with, and the HTTP status of each: a request that names no
//! array is a 404, one that names a dimension, index, region or colour map that does not fit
//! the array a 400, a chunk that failed to compute the key space's status for it.

use axum::http::StatusCode;

use crate::keyspace::KeyError;

/// A preview request that cannot be answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PreviewError {
    /// A parameter the request must give.
    #[error("the parameter {0}= is needed")]
    Missing(&'static str),
    /// No node at the path.
    #[error("no {kind} {path:?} in the tree")]
    NoNode {
        /// `array` or `group`.
        kind: &'static str,
        /// The path asked for.
        path: String,
    },
    /// The array cannot be drawn as a picture.
    #[error("{array} cannot be drawn: {why}")]
    NotDrawable {
        /// The array's path.
        array: String,
        /// Why (too few dimensions, not numeric).
        why: String,
    },
    /// A dimension the array does not have.
    #[error("{param}: {dim:?} is not a dimension of {array} ({dims})")]
    NoDimension {
        /// The parameter that named it.
        param: &'static str,
        /// The name given.
        dim: String,
        /// The array's path.
        array: String,
        /// Its dimensions, comma-separated.
        dims: String,
    },
    /// A parameter whose value does not fit.
    #[error("{param}={value:?}: {why}")]
    Bad {
        /// The parameter.
        param: &'static str,
        /// Its value as given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A chunk of the slice failed to compute.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// zarrs could not open or decode the array.
    #[error("{array}: {message}")]
    Decode {
        /// The array's path.
        array: String,
        /// What zarrs said.
        message: String,
    },
    /// The picture could not be encoded.
    #[error("encoding the picture: {0}")]
    Encode(String),
}

impl PreviewError {
    /// A parameter value that does not fit, and why.
    pub(crate) fn bad(param: &'static str, value: &str, why: impl Into<String>) -> PreviewError {
        PreviewError::Bad {
            param,
            value: value.to_owned(),
            why: why.into(),
        }
    }

    /// The status the request answers with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            PreviewError::NoNode { .. } => StatusCode::NOT_FOUND,
            PreviewError::Missing(_)
            | PreviewError::NotDrawable { .. }
            | PreviewError::NoDimension { .. }
            | PreviewError::Bad { .. } => StatusCode::BAD_REQUEST,
            PreviewError::Key(e) => super::super::status::status(e),
            PreviewError::Decode { .. } | PreviewError::Encode(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_that_do_not_fit_are_400_and_missing_arrays_404() {
        let missing = PreviewError::NoNode {
            kind: "array",
            path: "a/b".into(),
        };
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            PreviewError::bad("index", "t:9", "outside 0..3").status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            PreviewError::Key(KeyError::NotFound("k".into())).status(),
            StatusCode::NOT_FOUND
        );
    }
}
