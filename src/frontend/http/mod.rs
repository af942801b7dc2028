//! The HTTP front end: every key of the key space over GET and HEAD, with axum. A URL path is a
//! key; the handler translates it into a [`KeySpace::read`] on a blocking thread
//! (`spawn_blocking`: the key space drives its own runtime) and answers with the whole value,
//! a byte range of it or a 304 (`respond`), or the status of its typed error (`status`).
//! At most [`HttpOptions::concurrency`] requests compute at once. The front end is told of each
//! key space a reload of the service puts in place ([`FrontEnd`]).

mod preview;
mod range;
mod respond;
mod status;

use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use tokio::sync::Semaphore;

use crate::cache::ChunkKey;
use crate::config::ZarrFormat;
use crate::keyspace::{KeyError, KeySpace};
use crate::service::FrontEnd;
use respond::Value;

/// How the HTTP front end serves.
#[derive(Clone)]
pub struct HttpOptions {
    /// A bearer token every request must present (`Authorization: Bearer …`); `None`: open.
    pub token: Option<String>,
    /// Requests computing at once; more wait their turn.
    pub concurrency: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            token: None,
            concurrency: 64,
        }
    }
}

/// The key space served over HTTP, replaced on each reload; in a fixed Zarr format when asked.
pub struct HttpFront {
    keys: ArcSwap<KeySpace>,
    format: Option<ZarrFormat>,
}

impl HttpFront {
    /// Serves `keys`, in `format` when given (whatever the config of a reload says).
    pub fn new(keys: Arc<KeySpace>, format: Option<ZarrFormat>) -> Self {
        HttpFront {
            keys: ArcSwap::new(in_format(keys, format)),
            format,
        }
    }

    /// The key space served now.
    pub fn current(&self) -> Arc<KeySpace> {
        self.keys.load_full()
    }
}

impl FrontEnd for HttpFront {
    fn swap(&self, next: Arc<KeySpace>) -> usize {
        self.keys.store(in_format(next, self.format));
        0
    }
}

/// `keys`, or its successor over the same tree in `format`.
fn in_format(keys: Arc<KeySpace>, format: Option<ZarrFormat>) -> Arc<KeySpace> {
    match format {
        Some(format) if format != keys.format() => {
            Arc::new(keys.successor(keys.tree().clone(), format))
        }
        _ => keys,
    }
}

#[derive(Clone)]
struct Served {
    front: Arc<HttpFront>,
    token: Option<Arc<str>>,
    permits: Arc<Semaphore>,
}

/// Serves `front` on `listener` until `shutdown` completes, then finishes the requests in
/// flight.
///
/// # Errors
/// The I/O error that ended serving.
pub async fn serve(
    listener: tokio::net::TcpListener,
    front: Arc<HttpFront>,
    options: &HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let served = Served {
        front,
        token: options.token.as_deref().map(Arc::from),
        permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
    };
    let router = Router::new().fallback(handle).with_state(served);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn handle(
    State(served): State<Served>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut response = answer(&served, &method, &uri, &headers).await;
    respond::cors(response.headers_mut());
    response
}

async fn answer(served: &Served, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    if method == Method::OPTIONS {
        return respond::preflight();
    }
    if method != Method::GET && method != Method::HEAD {
        let mut response = respond::plain(StatusCode::METHOD_NOT_ALLOWED, "read only\n", method);
        response.headers_mut().insert(
            header::ALLOW,
            header::HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        return response;
    }
    if let Some(token) = &served.token {
        if !authorized(headers, token) {
            let mut response = respond::plain(
                StatusCode::UNAUTHORIZED,
                "a bearer token is needed\n",
                method,
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    if preview::claims(uri.path()) {
        return preview::answer(served, method, uri).await;
    }
    let Some(key) = decode(uri.path()) else {
        return respond::plain(StatusCode::BAD_REQUEST, "bad path\n", method);
    };
    let keys = served.front.current();
    // A chunk's entity tag is its cache key, known without computing it: a client that holds
    // the chunk is answered at once.
    if headers.contains_key(header::IF_NONE_MATCH) {
        if let Some(chunk) = keys.chunk_key_of(&key) {
            if let Some(response) = respond::chunk_not_modified(&chunk_etag(chunk), method, headers)
            {
                return response;
            }
        }
    }
    let Ok(permit) = served.permits.clone().acquire_owned().await else {
        return respond::plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n", method);
    };
    // The permit goes with the computation, which goes on if the client leaves.
    let computed = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        fetch(&keys, &key)
    });
    match computed.await {
        Ok(Ok(value)) => respond::value(value, method, headers),
        Ok(Err(e)) => respond::error(&e, method),
        Err(e) => {
            tracing::error!("a read of {} failed: {e}", uri.path());
            respond::plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error\n",
                method,
            )
        }
    }
}

/// The whole value of `key` and its entity tag (blocking).
fn fetch(keys: &KeySpace, key: &str) -> Result<Value, KeyError> {
    let bytes = keys.read(key, 0, usize::MAX)?;
    Ok(match keys.chunk_key_of(key) {
        Some(chunk) => Value {
            bytes,
            etag: chunk_etag(chunk),
            chunk: true,
        },
        None => Value {
            etag: format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&bytes)),
            bytes,
            chunk: false,
        },
    })
}

/// The quoted entity tag of a chunk: its cache key.
fn chunk_etag(chunk: ChunkKey) -> String {
    format!("\"{:032x}\"", chunk.0)
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|given| constant_time_eq(given.trim().as_bytes(), token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The key a URL path names: percent-decoded, without the leading `/`; `None` when it does not
/// decode to UTF-8.
fn decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    let key = String::from_utf8(out).ok()?;
    Some(key.trim_start_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_decode_to_keys() {
        assert_eq!(decode("/sst/zarr.json").as_deref(), Some("sst/zarr.json"));
        assert_eq!(decode("/a%20b/c/0").as_deref(), Some("a b/c/0"));
        assert_eq!(decode("/bad%2"), None);
        assert_eq!(decode("/bad%zz"), None);
    }

    #[test]
    fn only_the_token_authorizes() {
        let mut headers = HeaderMap::new();
        assert!(!authorized(&headers, "s3cret"));
        headers.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(authorized(&headers, "s3cret"));
        headers.insert(header::AUTHORIZATION, "Bearer s3cres".parse().unwrap());
        assert!(!authorized(&headers, "s3cret"));
    }
}
