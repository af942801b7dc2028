//! What a picture request asks for: the query string's parameters, checked against the array
//! they name — its two picture dimensions, the index of every other dimension, the region and
//! the colour scale — before anything is read.

use std::ops::Range;
use std::sync::Arc;

use super::colormap::Colormap;
use super::error::PreviewError;
use crate::sources::model::DType;
use crate::tree::{ArrayNode, NodeRef, Tree};

/// A query string's parameters, percent-decoded, in order.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// The parameters of `query` (`a=1&b=x%20y`; `+` is a space).
    pub(crate) fn parse(query: Option<&str>) -> Query {
        let pairs = query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (name, value) = p.split_once('=').unwrap_or((p, ""));
                (unescape(name), unescape(value))
            })
            .collect();
        Query(pairs)
    }

    /// The first value of `name`; an empty value counts as absent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// `text` with `+` as space and `%XX` as the byte it encodes (a broken escape stays as is).
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (b, escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A 2-D slice of an array to draw.
#[derive(Debug)]
pub(crate) struct Selection {
    /// The array.
    pub(crate) array: Arc<ArrayNode>,
    /// The axis drawn down the picture.
    pub(crate) y: usize,
    /// The axis drawn across the picture.
    pub(crate) x: usize,
    /// Per axis: the rows (`y`) and columns (`x`) drawn, one index of every other axis.
    pub(crate) ranges: Vec<Range<u64>>,
    /// The colour map.
    pub(crate) colormap: Colormap,
    /// The value of the first colour; the slice's finite minimum when `None`.
    pub(crate) vmin: Option<f64>,
    /// The value of the last colour; the slice's finite maximum when `None`.
    pub(crate) vmax: Option<f64>,
}

impl Selection {
    /// The slice `query` asks for in `tree`: `array=PATH` (needed), `y=DIM&x=DIM` (the last two
    /// dimensions by default), `index=DIM:i,…` (0 for dimensions not named),
    /// `region=y0:y1,x0:x1` (the whole plane by default), `cmap`, `vmin`, `vmax`.
    ///
    /// # Errors
    /// [`PreviewError`] naming the parameter that does not fit the array (a 400), or the array
    /// that does not exist (a 404).
    pub(crate) fn parse(tree: &Tree, query: &Query) -> Result<Selection, PreviewError> {
        let path = query.get("array").ok_or(PreviewError::Missing("array"))?;
        let path = path.trim_matches('/');
        let Some(NodeRef::Array(array)) = tree.node(path) else {
            return Err(PreviewError::NoNode {
                kind: "array",
                path: path.to_owned(),
            });
        };
        let not_drawable = |why: String| PreviewError::NotDrawable {
            array: array.path.clone(),
            why,
        };
        let rank = array.dims.len();
        if rank < 2 || array.geometry.shape.len() != rank {
            return Err(not_drawable(format!(
                "it has {rank} dimension(s), a picture needs two"
            )));
        }
        if matches!(array.geometry.dtype, DType::Char | DType::String) {
            return Err(not_drawable("its values are text".into()));
        }
        let axis = |param: &'static str, dim: &str| {
            array
                .dims
                .iter()
                .position(|d| d == dim)
                .ok_or_else(|| PreviewError::NoDimension {
                    param,
                    dim: dim.to_owned(),
                    array: array.path.clone(),
                    dims: array.dims.join(", "),
                })
        };
        let y = query.get("y").map_or(Ok(rank - 2), |d| axis("y", d))?;
        let x = query.get("x").map_or(Ok(rank - 1), |d| axis("x", d))?;
        if y == x {
            return Err(PreviewError::bad(
                "x",
                &array.dims[x],
                "x and y must be different dimensions",
            ));
        }
        let shape = &array.geometry.shape;
        let mut ranges: Vec<Range<u64>> = shape.iter().map(|_| 0..1).collect();
        for entry in query.get("index").unwrap_or_default().split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let bad = |why: &str| PreviewError::bad("index", entry, why);
            let (dim, i) = entry.split_once(':').ok_or_else(|| bad("not DIM:i"))?;
            let a = axis("index", dim)?;
            if a == y || a == x {
                return Err(bad("the picture's own dimensions take no index"));
            }
            let i: u64 = i.trim().parse().map_err(|_| bad("not an index"))?;
            if i >= shape[a] {
                return Err(bad(&format!("{dim} has indices 0..{}", shape[a])));
            }
            ranges[a] = i..i + 1;
        }
        if let Some(empty) = shape.iter().position(|&n| n == 0) {
            return Err(not_drawable(format!("{} has length 0", array.dims[empty])));
        }
        let (rows, cols) = match query.get("region") {
            None => (0..shape[y], 0..shape[x]),
            Some(region) => parse_region(region, shape[y], shape[x])?,
        };
        ranges[y] = rows;
        ranges[x] = cols;
        let colormap = match query.get("cmap") {
            None => Colormap::Viridis,
            Some(name) => Colormap::named(name).ok_or_else(|| {
                PreviewError::bad(
                    "cmap",
                    name,
                    format!("not a colour map ({})", Colormap::NAMES),
                )
            })?,
        };
        Ok(Selection {
            y,
            x,
            ranges,
            colormap,
            vmin: number(query, "vmin")?,
            vmax: number(query, "vmax")?,
            array: array.clone(),
        })
    }

    /// Rows and columns of the slice.
    pub(crate) fn size(&self) -> (u64, u64) {
        let len = |r: &Range<u64>| r.end - r.start;
        (len(&self.ranges[self.y]), len(&self.ranges[self.x]))
    }
}

/// `y0:y1,x0:x1` within a plane of `ny` rows and `nx` columns.
fn parse_region(region: &str, ny: u64, nx: u64) -> Result<(Range<u64>, Range<u64>), PreviewError> {
    let bad = |why: String| PreviewError::bad("region", region, why);
    let range = |text: &str, len: u64| -> Result<Range<u64>, PreviewError> {
        let (a, b) = text
            .split_once(':')
            .ok_or_else(|| bad("not y0:y1,x0:x1".into()))?;
        let (a, b): (u64, u64) = match (a.trim().parse(), b.trim().parse()) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return Err(bad("not y0:y1,x0:x1".into())),
        };
        if a >= b || b > len {
            return Err(bad(format!(
                "{a}:{b} is not a non-empty range within 0:{len}"
            )));
        }
        Ok(a..b)
    };
    let (rows, cols) = region
        .split_once(',')
        .ok_or_else(|| bad("not y0:y1,x0:x1".into()))?;
    Ok((range(rows, ny)?, range(cols, nx)?))
}

/// The finite number `name` gives, if any.
fn number(query: &Query, name: &'static str) -> Result<Option<f64>, PreviewError> {
    query
        .get(name)
        .map(|text| {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| PreviewError::bad(name, text, "not a finite number"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_escapes_and_plus() {
        let q = Query::parse(Some("array=a%2Fb&y=my+dim&empty=&index=t%3A3"));
        assert_eq!(q.get("array"), Some("a/b"));
        assert_eq!(q.get("y"), Some("my dim"));
        assert_eq!(q.get("empty"), None);
        assert_eq!(q.get("index"), Some("t:3"));
        assert_eq!(unescape("100%"), "100%");
    }

    #[test]
    fn regions_lie_within_the_plane() {
        assert_eq!(parse_region("0:2,3:5", 4, 5).unwrap(), (0..2, 3..5));
        assert!(parse_region("0:5,0:1", 4, 5).is_err());
        assert!(parse_region("2:2,0:1", 4, 5).is_err());
        assert!(parse_region("0:2", 4, 5).is_err());
    }
}
