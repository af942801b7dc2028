//! The preview page of `atlasfs serve`: `GET /` is a page (static HTML, JS and CSS embedded in
//! the binary, no build step) that browses the tree and draws any 2-D slice of an array, and
//! pans and zooms through a pyramid view's levels. Its API lives under [`API`], a prefix no key
//! can have (dataset, view and sample-set names never start with a dot):
//!
//! - `/.atlas/tree?path=P`: the node at `P` and its descendants as JSON ([`tree`]);
//! - `/.atlas/render.png?array=P&y=DIM&x=DIM&index=DIM:i,…&region=y0:y1,x0:x1&vmin&vmax&cmap`:
//!   a colour-mapped PNG of the slice ([`query`], [`render`], [`image`]), its colour range in
//!   `X-Atlas-Vmin`/`X-Atlas-Vmax`, the slice values per pixel side in `X-Atlas-Step`;
//! - `/.atlas/colorbar.png?cmap=NAME`: the colour map's 256 entries.
//!
//! Slices are decoded by zarrs over the key space ([`store`]) on a blocking thread, under the
//! same concurrency permits as key reads. This module touches nothing of the key routes.

mod colormap;
mod error;
mod image;
mod query;
mod render;
mod store;
mod tree;

use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;

use super::{respond, Served};
use crate::keyspace::KeySpace;
use colormap::Colormap;
use error::PreviewError;
use query::{Query, Selection};

/// The prefix of the page's own resources and API.
const API: &str = "/.atlas/";

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");

/// Whether the URL path `path` is the preview's rather than a key's.
pub(super) fn claims(path: &str) -> bool {
    path == "/" || path == "/index.html" || path.starts_with(API)
}

/// The answer to a GET or HEAD of one of the preview's paths ([`claims`]).
pub(super) async fn answer(served: &Served, method: &Method, uri: &Uri) -> Response {
    let query = Query::parse(uri.query());
    let text = |body: &'static str, kind: &'static str| {
        reply(StatusCode::OK, kind, body.as_bytes().to_vec(), &[], method)
    };
    match uri.path() {
        "/" | "/index.html" => text(INDEX_HTML, "text/html; charset=utf-8"),
        "/.atlas/app.js" => text(APP_JS, "text/javascript; charset=utf-8"),
        "/.atlas/style.css" => text(STYLE_CSS, "text/css; charset=utf-8"),
        "/.atlas/tree" => {
            let keys = served.front.current();
            match tree::describe(keys.tree(), query.get("path").unwrap_or_default()) {
                Ok(json) => reply(StatusCode::OK, "application/json", json, &[], method),
                Err(e) => failure(&e, method),
            }
        }
        "/.atlas/colorbar.png" => {
            let name = query.get("cmap").unwrap_or("viridis");
            let drawn = Colormap::named(name)
                .ok_or_else(|| {
                    PreviewError::bad(
                        "cmap",
                        name,
                        format!("not a colour map ({})", Colormap::NAMES),
                    )
                })
                .and_then(|map| {
                    image::colour_bar(map).map_err(|e| PreviewError::Encode(e.to_string()))
                });
            match drawn {
                Ok(png) => reply(StatusCode::OK, "image/png", png, &[], method),
                Err(e) => failure(&e, method),
            }
        }
        "/.atlas/render.png" => render(served, method, &query).await,
        _ => respond::plain(StatusCode::NOT_FOUND, "no such page\n", method),
    }
}

/// A drawn slice and what the page needs to label it.
struct Picture {
    png: Vec<u8>,
    vmin: f64,
    vmax: f64,
    step: u64,
    region: String,
}

async fn render(served: &Served, method: &Method, query: &Query) -> Response {
    let keys = served.front.current();
    let selection = match Selection::parse(keys.tree(), query) {
        Ok(selection) => selection,
        Err(e) => return failure(&e, method),
    };
    let Ok(permit) = served.permits.clone().acquire_owned().await else {
        return respond::plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n", method);
    };
    // The permit goes with the computation, which goes on if the client leaves.
    let computed = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        draw(keys, &selection)
    });
    match computed.await {
        Ok(Ok(picture)) => {
            let headers = [
                ("x-atlas-vmin", picture.vmin.to_string()),
                ("x-atlas-vmax", picture.vmax.to_string()),
                ("x-atlas-step", picture.step.to_string()),
                ("x-atlas-region", picture.region),
            ];
            reply(StatusCode::OK, "image/png", picture.png, &headers, method)
        }
        Ok(Err(e)) => failure(&e, method),
        Err(e) => {
            tracing::error!("a preview picture failed: {e}");
            respond::plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error\n",
                method,
            )
        }
    }
}

/// Reads, colours and encodes `selection` (blocking).
fn draw(keys: Arc<KeySpace>, selection: &Selection) -> Result<Picture, PreviewError> {
    let plane = render::read_plane(keys, selection)?;
    let (lo, hi) = plane.range.unwrap_or((f64::NAN, f64::NAN));
    let vmin = selection.vmin.unwrap_or(lo);
    let vmax = selection.vmax.unwrap_or(hi);
    let png = image::picture(&plane, selection.colormap, vmin, vmax)
        .map_err(|e| PreviewError::Encode(e.to_string()))?;
    let (rows, cols) = (
        &selection.ranges[selection.y],
        &selection.ranges[selection.x],
    );
    Ok(Picture {
        png,
        vmin,
        vmax,
        step: plane.step,
        region: format!("{}:{},{}:{}", rows.start, rows.end, cols.start, cols.end),
    })
}

/// The plain-text answer to a request that failed, naming what was wrong.
fn failure(error: &PreviewError, method: &Method) -> Response {
    let status = error.status();
    if status.is_server_error() {
        tracing::warn!("preview: {status}: {error}");
    }
    respond::plain(status, &format!("{error}\n"), method)
}

/// A response of `kind` that is revalidated on every use, with `extra` headers.
fn reply(
    status: StatusCode,
    kind: &'static str,
    body: Vec<u8>,
    extra: &[(&'static str, String)],
    method: &Method,
) -> Response {
    let len = body.len();
    let mut response = Response::new(if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MountConfig;

    #[test]
    fn the_page_and_its_api_are_not_keys() {
        assert!(claims("/") && claims("/index.html") && claims("/.atlas/tree"));
        assert!(!claims("/sst/zarr.json") && !claims("/.zmetadata"));
    }

    #[test]
    fn no_dataset_or_view_can_be_named_like_the_api() {
        let dir = std::path::Path::new("/");
        let dataset = "[[dataset]]\nname = \".atlas\"\nfiles = \"a/*.nc\"\n";
        assert!(MountConfig::parse(dataset, &dir.join("c.toml")).is_err());
        let view = "[[dataset]]\nname = \"d\"\nfiles = \"a/*.nc\"\n\
                    [[view]]\nname = \".atlas\"\nfrom = \"d\"\n[view.pyramid]\nlevels = 2\n";
        assert!(MountConfig::parse(view, &dir.join("c.toml")).is_err());
        let fine = "[[dataset]]\nname = \"d\"\nfiles = \"a/*.nc\"\n\
                    [[view]]\nname = \"p\"\nfrom = \"d\"\n[view.pyramid]\nlevels = 2\n";
        assert!(MountConfig::parse(fine, &dir.join("c.toml")).is_ok());
    }
}
