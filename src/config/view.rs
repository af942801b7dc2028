//! `[[view]]` tables: a derived directory computed per chunk from another node of the tree.
//! A view has a `name` (its path, `/` allowed), a `from` (a dataset, a group of a DataTree or
//! another view), optional `variables`, and exactly one operation table, parsed here into the
//! typed [`ViewOperation`]; [`order`] checks what every `from` names and returns the views in
//! dependency order (a cycle is an error naming the chain).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::operators::kernels::coarsen::Reduction;
use crate::operators::kernels::expr::Expression;
use crate::operators::kernels::pack::PackedType;

use super::regrid::RegridParams;

/// One `[[view]]` table, validated.
#[derive(Debug, Clone)]
pub struct ViewConfig {
    /// Its path under the mount root.
    pub name: String,
    /// The tree path it reads: a dataset, a group of a DataTree or another view.
    pub from: String,
    /// The data variables the operation applies to (`None`: every one it applies to).
    pub variables: Option<Vec<String>>,
    /// What it does.
    pub operation: ViewOperation,
}

/// The operation of a view: one variant per kind of view.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ViewOperation {
    /// `[view.pack]`: floats packed into 8- or 16-bit integers with CF scale and offset.
    Pack(PackParams),
    /// `[view.pyramid]`: a multiscale pyramid on the native grid.
    Pyramid(PyramidParams),
    /// `[view.expr]`: new variables from expressions over the source's variables.
    Expr(ExprParams),
    /// `[view.regrid]`: every data variable on another grid.
    Regrid(RegridParams),
}

impl ViewOperation {
    /// The operation's name, as in its table (`pack`, `pyramid`, `expr`).
    pub fn kind(&self) -> &'static str {
        match self {
            ViewOperation::Pack(_) => "pack",
            ViewOperation::Pyramid(_) => "pyramid",
            ViewOperation::Expr(_) => "expr",
            ViewOperation::Regrid(_) => "regrid",
        }
    }
}

/// The codec a view's arrays are compressed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Codec {
    /// zstd.
    #[serde(rename = "zstd")]
    Zstd,
    /// blosc with zstd inside and byte shuffle.
    #[serde(rename = "blosc-zstd")]
    BloscZstd,
    /// gzip.
    #[serde(rename = "gzip")]
    Gzip,
    /// Uncompressed.
    #[serde(rename = "none")]
    None,
}

/// Where a pack view's range comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PackRange {
    /// One scan of the source's values (ignoring NaN and fill), persisted with its versions.
    Data,
    /// The source's `valid_min`/`valid_max` or `valid_range` attributes.
    Attrs,
    /// Given bounds.
    Fixed(f64, f64),
}

impl<'de> Deserialize<'de> for PackRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Bounds(Vec<f64>),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "data" => Ok(PackRange::Data),
            Raw::Word(w) if w == "attrs" => Ok(PackRange::Attrs),
            Raw::Bounds(b)
                if b.len() == 2 && b[0].is_finite() && b[1].is_finite() && b[0] <= b[1] =>
            {
                Ok(PackRange::Fixed(b[0], b[1]))
            }
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "range {w:?} must be \"data\", \"attrs\" or [min, max] with finite min <= max"
            ))),
            Raw::Bounds(b) => Err(serde::de::Error::custom(format!(
                "range {b:?} must be \"data\", \"attrs\" or [min, max] with finite min <= max"
            ))),
        }
    }
}

/// `[view.pack]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackParams {
    /// The integer type.
    pub dtype: PackedType,
    /// Where the range comes from.
    pub range: PackRange,
    /// Mantissa bits kept by bit-rounding before packing.
    #[serde(default)]
    pub keepbits: Option<u32>,
    /// The codec (default zstd).
    #[serde(default = "zstd")]
    pub codec: Codec,
    /// The codec's level (default: 3 for zstd, 5 for gzip and blosc).
    #[serde(default)]
    pub level: Option<i32>,
}

fn zstd() -> Codec {
    Codec::Zstd
}

pub(super) fn no_codec() -> Codec {
    Codec::None
}

fn mean() -> Reduction {
    Reduction::Mean
}

pub(super) fn tile() -> u64 {
    256
}

/// `[view.pyramid]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PyramidParams {
    /// Number of levels, the last at the source's resolution.
    pub levels: u32,
    /// How a block becomes one value.
    #[serde(default = "mean")]
    pub method: Reduction,
    /// The two dimensions coarsened (default: the last two of each variable).
    #[serde(default)]
    pub dims: Option<Vec<String>>,
    /// Side of the square chunks along those dimensions.
    #[serde(default = "tile")]
    pub chunk: u64,
    /// Chunk lengths by dimension name, overriding `chunk` and the one element per chunk along
    /// the other dimensions, e.g. `{ time = 30 }` (a `crs` pyramid's tiles stay
    /// `pixels_per_tile` along `x` and `y`: ndpyramid's `other_chunks`).
    #[serde(default)]
    pub chunks: BTreeMap<String, u64>,
    /// The codec (default none; gzip for a `crs` pyramid, which map viewers read).
    #[serde(default)]
    pub codec: Option<Codec>,
    /// The codec's level.
    #[serde(default)]
    pub level: Option<i32>,
    /// A map projection for the levels (`EPSG:3857` Web Mercator tiles, or `EPSG:4326`), as
    /// ndpyramid's `pyramid_reproject`; none: the native grid coarsened 2x per level.
    #[serde(default)]
    pub crs: Option<String>,
    /// Pixels along each side of a tile of a `crs` pyramid (default 128).
    #[serde(default)]
    pub pixels_per_tile: Option<u64>,
}

/// `[view.expr]`: named expressions, and optionally one variable with a `band` dimension.
#[derive(Debug, Clone)]
pub struct ExprParams {
    /// New variables by name, in name order.
    pub variables: Vec<(String, Expression, String)>,
    /// Bands by label (in label order), as (label, expression, text).
    pub bands: Vec<(String, Expression, String)>,
    /// The name of the band variable.
    pub band_variable: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawView {
    name: String,
    from: String,
    #[serde(default)]
    variables: Option<Vec<String>>,
    #[serde(default)]
    pack: Option<PackParams>,
    #[serde(default)]
    pyramid: Option<PyramidParams>,
    #[serde(default)]
    expr: Option<BTreeMap<String, toml::Value>>,
    #[serde(default)]
    regrid: Option<RegridParams>,
}

impl<'de> Deserialize<'de> for ViewConfig {
    /// Reads the table whole first, so every error names the view.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let table = toml::Table::deserialize(d)?;
        let name = table
            .get("name")
            .and_then(toml::Value::as_str)
            .unwrap_or("(unnamed)")
            .to_owned();
        let raw: RawView = table.try_into().map_err(|e: toml::de::Error| {
            D::Error::custom(format!("view {name:?}: {}", e.message()))
        })?;
        ViewConfig::try_from(raw).map_err(D::Error::custom)
    }
}

impl TryFrom<RawView> for ViewConfig {
    type Error = String;

    fn try_from(raw: RawView) -> Result<Self, String> {
        let view = &raw.name;
        if !valid_path(view) {
            return Err(format!(
                "view name {view:?} must be a path of non-empty segments without '.' prefixes or control characters"
            ));
        }
        let from = raw.from.trim_matches('/').to_owned();
        if from.split('/').any(|s| s.is_empty() || s.starts_with('.')) {
            return Err(format!(
                "view {view:?}: `from` {:?} is not a tree path",
                raw.from
            ));
        }
        let mut operations = Vec::new();
        if let Some(pack) = raw.pack {
            check_pack(view, &pack)?;
            operations.push(ViewOperation::Pack(pack));
        }
        if let Some(pyramid) = raw.pyramid {
            check_pyramid(view, &pyramid)?;
            operations.push(ViewOperation::Pyramid(pyramid));
        }
        if let Some(expr) = raw.expr {
            operations.push(ViewOperation::Expr(expr_params(view, expr)?));
        }
        if let Some(regrid) = raw.regrid {
            super::regrid::check(view, &regrid)?;
            operations.push(ViewOperation::Regrid(regrid));
        }
        if operations.len() != 1 {
            return Err(format!(
                "view {view:?} needs exactly one operation table ([view.pack], [view.pyramid], [view.expr] or [view.regrid]); it has {}",
                operations.len()
            ));
        }
        Ok(ViewConfig {
            name: raw.name.trim_matches('/').to_owned(),
            from,
            variables: raw.variables,
            operation: operations.remove(0),
        })
    }
}

fn check_pack(view: &str, pack: &PackParams) -> Result<(), String> {
    if let Some(bits) = pack.keepbits {
        if bits > 52 {
            return Err(format!(
                "view {view:?}: keepbits {bits} must be within 0-52"
            ));
        }
    }
    check_level(view, pack.codec, pack.level)
}

/// Checks a view's `chunks` lengths (their names are checked when the tree is built).
pub(crate) fn check_chunks(view: &str, chunks: &BTreeMap<String, u64>) -> Result<(), String> {
    match chunks.iter().find(|(_, &n)| n == 0) {
        Some((dim, _)) => Err(format!("view {view:?}: chunks: {dim:?} must be at least 1")),
        None => Ok(()),
    }
}

fn check_pyramid(view: &str, pyramid: &PyramidParams) -> Result<(), String> {
    if !(1..=16).contains(&pyramid.levels) {
        return Err(format!(
            "view {view:?}: levels {} must be within 1-16",
            pyramid.levels
        ));
    }
    if pyramid.chunk == 0 {
        return Err(format!("view {view:?}: chunk must be at least 1"));
    }
    check_chunks(view, &pyramid.chunks)?;
    if let Some(tile_dim) = pyramid
        .crs
        .as_ref()
        .and_then(|_| pyramid.chunks.keys().find(|d| *d == "x" || *d == "y"))
    {
        return Err(format!(
            "view {view:?}: chunks: {tile_dim:?} is a tile axis; a crs pyramid's chunks along x \
             and y are tiles of pixels_per_tile, and chunks sets the other dimensions \
             (e.g. {{ time = 16 }})"
        ));
    }
    if let Some(dims) = &pyramid.dims {
        if dims.len() != 2 || dims[0] == dims[1] {
            return Err(format!(
                "view {view:?}: dims must name two different dimensions, not {dims:?}"
            ));
        }
    }
    match (&pyramid.crs, pyramid.pixels_per_tile) {
        (Some(crs), ppt) => {
            if !["EPSG:3857", "EPSG:4326"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(crs))
            {
                return Err(format!(
                    "view {view:?}: crs {crs:?} must be \"EPSG:3857\" (Web Mercator) or \"EPSG:4326\""
                ));
            }
            if ppt.is_some_and(|p| !(1..=4096).contains(&p)) {
                return Err(format!(
                    "view {view:?}: pixels_per_tile {} must be within 1-4096",
                    ppt.unwrap_or(0)
                ));
            }
            if pyramid.method == Reduction::Sum {
                return Err(format!(
                    "view {view:?}: method sum has no reprojection; use mean, nearest, min or max with crs"
                ));
            }
            if pyramid.dims.is_some() {
                return Err(format!(
                    "view {view:?}: dims is for native pyramids; a crs pyramid finds the grid from the coordinates"
                ));
            }
        }
        (None, Some(_)) => {
            return Err(format!(
                "view {view:?}: pixels_per_tile needs crs = \"EPSG:3857\""
            ))
        }
        (None, None) => {}
    }
    check_level(view, pyramid.codec.unwrap_or(Codec::None), pyramid.level)
}

pub(super) fn check_level(view: &str, codec: Codec, level: Option<i32>) -> Result<(), String> {
    let range = match codec {
        Codec::Zstd => -7..=22,
        Codec::Gzip | Codec::BloscZstd => 0..=9,
        Codec::None => return Ok(()),
    };
    match level {
        Some(level) if !range.contains(&level) => Err(format!(
            "view {view:?}: level {level} is outside {range:?} for this codec"
        )),
        _ => Ok(()),
    }
}

fn expr_params(view: &str, table: BTreeMap<String, toml::Value>) -> Result<ExprParams, String> {
    let parse = |name: &str, text: &str| {
        Expression::parse(text)
            .map_err(|e| format!("view {view:?}: expression {name} = {text:?}: {e}"))
    };
    let mut params = ExprParams {
        variables: Vec::new(),
        bands: Vec::new(),
        band_variable: "band_data".to_owned(),
    };
    for (key, value) in table {
        match (key.as_str(), value) {
            ("band", toml::Value::Table(bands)) => {
                for (label, text) in bands {
                    let Some(text) = text.as_str() else {
                        return Err(format!(
                            "view {view:?}: band {label} must be an expression string"
                        ));
                    };
                    params
                        .bands
                        .push((label.clone(), parse(&label, text)?, text.to_owned()));
                }
                if params.bands.is_empty() {
                    return Err(format!(
                        "view {view:?}: band needs at least one label = expression"
                    ));
                }
            }
            ("band_variable", toml::Value::String(name)) => params.band_variable = name,
            (_, toml::Value::String(text)) => {
                if key.is_empty() || key.contains('/') || key.starts_with('.') {
                    return Err(format!("view {view:?}: {key:?} is not a variable name"));
                }
                let parsed = parse(&key, &text)?;
                params.variables.push((key, parsed, text));
            }
            (_, other) => {
                return Err(format!(
                    "view {view:?}: [view.expr] {key} must be an expression string, not {}",
                    other.type_str()
                ))
            }
        }
    }
    if params.variables.is_empty() && params.bands.is_empty() {
        return Err(format!(
            "view {view:?}: [view.expr] defines no variable (NAME = \"expression\" or band = {{ … }})"
        ));
    }
    Ok(params)
}

/// Whether `name` is a tree path: `/`-separated non-empty segments, none starting with '.'.
fn valid_path(name: &str) -> bool {
    let name = name.trim_matches('/');
    !name.is_empty()
        && name
            .split('/')
            .all(|s| !s.is_empty() && !s.starts_with('.') && !s.chars().any(char::is_control))
}

/// What a tree path is made by: a dataset or a view, by index into the config's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Producer {
    /// `datasets[i]`.
    Dataset(usize),
    /// `views[i]`.
    View(usize),
}

/// The dataset or view whose name is the longest prefix of `path` (whole segments).
pub fn producer(path: &str, datasets: &[&str], views: &[&str]) -> Option<Producer> {
    let covers = |name: &str| path == name || path.starts_with(&format!("{name}/"));
    let mut best: Option<(usize, Producer)> = None;
    let candidates = datasets
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, Producer::Dataset(i)))
        .chain(
            views
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, Producer::View(i))),
        );
    for (name, producer) in candidates {
        if covers(name) && best.is_none_or(|(len, _)| name.len() > len) {
            best = Some((name.len(), producer));
        }
    }
    best.map(|(_, p)| p)
}

/// The views in dependency order (each after the view its `from` reads).
///
/// # Errors
/// A message naming the view whose `from` names nothing, or the chain of a cycle.
pub fn order(datasets: &[&str], views: &[ViewConfig]) -> Result<Vec<usize>, String> {
    let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    let mut depends = Vec::with_capacity(views.len());
    for view in views {
        match producer(&view.from, datasets, &names) {
            None => {
                return Err(format!(
                    "view {:?}: `from` {:?} names no dataset or view (datasets: {}; views: {})",
                    view.name,
                    view.from,
                    datasets.join(", "),
                    names.join(", ")
                ))
            }
            Some(Producer::View(i)) => depends.push(Some(i)),
            Some(Producer::Dataset(_)) => depends.push(None),
        }
    }
    let mut order = Vec::with_capacity(views.len());
    let mut placed = vec![false; views.len()];
    for start in 0..views.len() {
        let mut chain = vec![start];
        let mut at = start;
        while let Some(next) = depends[at] {
            if placed[next] {
                break;
            }
            if let Some(pos) = chain.iter().position(|&c| c == next) {
                let cycle: Vec<&str> = chain[pos..]
                    .iter()
                    .chain(std::iter::once(&next))
                    .map(|&i| names[i])
                    .collect();
                return Err(format!("views form a cycle: {}", cycle.join(" -> ")));
            }
            chain.push(next);
            at = next;
        }
        for &i in chain.iter().rev() {
            if !placed[i] {
                placed[i] = true;
                order.push(i);
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, from: &str) -> ViewConfig {
        ViewConfig {
            name: name.into(),
            from: from.into(),
            variables: None,
            operation: ViewOperation::Pyramid(PyramidParams {
                levels: 2,
                method: Reduction::Mean,
                dims: None,
                chunk: 8,
                chunks: BTreeMap::new(),
                codec: None,
                level: None,
                crs: None,
                pixels_per_tile: None,
            }),
        }
    }

    #[test]
    fn views_are_ordered_after_what_they_read() {
        let views = [view("c", "b/x"), view("b", "a"), view("a", "sst/group")];
        let order = order(&["sst"], &views).unwrap();
        assert_eq!(order, vec![2, 1, 0]);
    }

    #[test]
    fn unknown_from_and_cycles_name_the_views() {
        let err = order(&["sst"], &[view("a", "nothing")]).unwrap_err();
        assert!(err.contains("\"a\"") && err.contains("nothing"), "{err}");
        let err = order(&["sst"], &[view("a", "b"), view("b", "c"), view("c", "a")]).unwrap_err();
        assert!(err.contains("a -> b -> c -> a"), "{err}");
        // A prefix is a producer only by whole segments.
        assert!(order(&["sst"], &[view("a", "sstx")]).is_err());
    }

    #[test]
    fn the_longest_name_produces_a_path() {
        assert_eq!(
            producer("sst/pyr/0", &["sst"], &["sst/pyr"]),
            Some(Producer::View(0))
        );
        assert_eq!(
            producer("sst/x", &["sst"], &["sst/pyr"]),
            Some(Producer::Dataset(0))
        );
    }

    #[test]
    fn a_view_needs_exactly_one_operation() {
        let parse = |text: &str| toml::from_str::<ViewConfig>(text).map_err(|e| e.to_string());
        let two = "name = \"v\"\nfrom = \"sst\"\n[pack]\ndtype = \"int16\"\nrange = \"data\"\n[pyramid]\nlevels = 2\n";
        assert!(parse(two).unwrap_err().contains("exactly one operation"));
        let none = "name = \"v\"\nfrom = \"sst\"\n";
        assert!(parse(none).unwrap_err().contains("exactly one operation"));
        let bad = "name = \"v\"\nfrom = \"sst\"\n[expr]\nd = \"a - \"\n";
        assert!(parse(bad).unwrap_err().contains("d = \"a - \""));
        let bands = "name = \"v\"\nfrom = \"s\"\n[expr]\nband = { experimental = \"DIC\", delta = \"DIC - ALT\" }\n";
        let ViewOperation::Expr(expr) = parse(bands).unwrap().operation else {
            panic!("not an expression view");
        };
        let labels: Vec<&str> = expr.bands.iter().map(|b| b.0.as_str()).collect();
        assert_eq!(labels, ["delta", "experimental"]);
        let range = "name = \"v\"\nfrom = \"s\"\n[pack]\ndtype = \"int8\"\nrange = [3.0, 1.0]\n";
        let err = parse(range).unwrap_err();
        assert!(
            err.contains("range [3.0, 1.0] must be") && err.contains("view \"v\""),
            "{err}"
        );
    }
}
