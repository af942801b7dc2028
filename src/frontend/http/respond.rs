//! The responses of the HTTP front end: a key's whole value, a byte range of it, a 304, or an
//! error, each with its exact `Content-Length`, entity tag, caching and CORS headers. Values are
//! computed whole before any header is sent, so a body is never partial.

use std::io::Write;

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;

use super::range::{none_match, ranged, Ranged};
use crate::keyspace::{KeyError, Slice};

/// Content-addressed chunks never change under their key.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A key's value, computed whole.
pub(super) struct Value {
    /// The bytes.
    pub(super) bytes: Slice,
    /// The quoted entity tag: the chunk's cache key, or a hash of a document's bytes.
    pub(super) etag: String,
    /// A chunk (immutable, binary) rather than a metadata document (JSON, revalidated).
    pub(super) chunk: bool,
}

/// 304 for a chunk whose entity tag `etag` the request's `If-None-Match` names, before the
/// chunk is computed; `None` otherwise.
pub(super) fn chunk_not_modified(
    etag: &str,
    method: &Method,
    request: &HeaderMap,
) -> Option<Response> {
    let matched = request
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| none_match(h, &[etag]));
    matched.then(|| {
        let mut headers = HeaderMap::new();
        put(&mut headers, header::ETAG, etag);
        put(&mut headers, header::CACHE_CONTROL, IMMUTABLE);
        build(StatusCode::NOT_MODIFIED, headers, Bytes::new(), method)
    })
}

/// The response to GET or HEAD of `value`, honouring `Range`, `If-None-Match` and
/// `Accept-Encoding: gzip` (metadata documents only) in `request`.
pub(super) fn value(value: Value, method: &Method, request: &HeaderMap) -> Response {
    let range = request
        .get(header::RANGE)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let gzip = !value.chunk && range.is_none() && accepts_gzip(request);
    let etag = if gzip {
        format!("{}-gzip\"", value.etag.trim_end_matches('"'))
    } else {
        value.etag.clone()
    };
    let mut headers = HeaderMap::new();
    put(&mut headers, header::ETAG, &etag);
    put(
        &mut headers,
        header::CACHE_CONTROL,
        if value.chunk { IMMUTABLE } else { "no-cache" },
    );
    if !value.chunk {
        put(&mut headers, header::VARY, "Accept-Encoding");
    }
    let matched = request
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| none_match(h, &[&etag, &value.etag]));
    if matched {
        return build(StatusCode::NOT_MODIFIED, headers, Bytes::new(), method);
    }
    put(
        &mut headers,
        header::CONTENT_TYPE,
        if value.chunk {
            "application/octet-stream"
        } else {
            "application/json"
        },
    );
    put(&mut headers, header::ACCEPT_RANGES, "bytes");
    let bytes = Bytes::from_owner(value.bytes);
    if gzip {
        if let Some(compressed) = gzipped(&bytes) {
            put(&mut headers, header::CONTENT_ENCODING, "gzip");
            return build(StatusCode::OK, headers, compressed, method);
        }
        // Not compressed after all: the identity's tag.
        put(&mut headers, header::ETAG, &value.etag);
    }
    let len = bytes.len() as u64;
    match range.map_or(Ranged::Whole, |h| ranged(&h, len)) {
        Ranged::Whole => build(StatusCode::OK, headers, bytes, method),
        Ranged::Part(start, end) => {
            put(
                &mut headers,
                header::CONTENT_RANGE,
                &format!("bytes {start}-{end}/{len}"),
            );
            // Both ends are within the value (see `ranged`).
            let part = bytes.slice(start as usize..=end as usize);
            build(StatusCode::PARTIAL_CONTENT, headers, part, method)
        }
        Ranged::Unsatisfiable => {
            put(
                &mut headers,
                header::CONTENT_RANGE,
                &format!("bytes */{len}"),
            );
            build(
                StatusCode::RANGE_NOT_SATISFIABLE,
                headers,
                Bytes::new(),
                method,
            )
        }
    }
}

/// The response to a key that could not be read: its status and the error's text, which names
/// the array, the chunk and the source file.
pub(super) fn error(error: &KeyError, method: &Method) -> Response {
    let status = super::status::status(error);
    if status.is_server_error() {
        tracing::warn!("{status}: {error}");
    }
    plain(status, &format!("{error}\n"), method)
}

/// A plain-text response that is not cached.
pub(super) fn plain(status: StatusCode, text: &str, method: &Method) -> Response {
    let mut headers = HeaderMap::new();
    put(
        &mut headers,
        header::CONTENT_TYPE,
        "text/plain; charset=utf-8",
    );
    put(&mut headers, header::CACHE_CONTROL, "no-store");
    build(status, headers, Bytes::from(text.to_owned()), method)
}

/// The answer to a CORS preflight.
pub(super) fn preflight() -> Response {
    let mut headers = HeaderMap::new();
    put(
        &mut headers,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        "GET, HEAD, OPTIONS",
    );
    put(
        &mut headers,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "Range, If-None-Match, Authorization",
    );
    put(&mut headers, header::ACCESS_CONTROL_MAX_AGE, "86400");
    build(
        StatusCode::NO_CONTENT,
        headers,
        Bytes::new(),
        &Method::OPTIONS,
    )
}

/// Lets browser viewers on any origin read every response and its length, tag and range.
pub(super) fn cors(headers: &mut HeaderMap) {
    put(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    put(
        headers,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        "ETag, Content-Range, Content-Length, Content-Encoding, Accept-Ranges",
    );
}

/// `status` with `headers` and `body`: its length always, the body itself only for GET.
fn build(status: StatusCode, mut headers: HeaderMap, body: Bytes, method: &Method) -> Response {
    if status != StatusCode::NOT_MODIFIED && status != StatusCode::NO_CONTENT {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn put(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(','))
        .any(|coding| {
            let name = coding.split(';').next().unwrap_or_default().trim();
            name.eq_ignore_ascii_case("gzip") && !quality_zero(coding)
        })
}

/// Whether a coding's quality is zero (`gzip;q=0`, `gzip;q=0.0`).
fn quality_zero(coding: &str) -> bool {
    coding
        .split(';')
        .skip(1)
        .filter_map(|p| p.trim().strip_prefix("q="))
        .any(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
}

fn gzipped(bytes: &[u8]) -> Option<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok().map(Bytes::from)
}
