//! Map-tile pyramids (`[view.pyramid]` with `crs`): level L is a regrid of the source to the
//! `2^L · pixels_per_tile` square grid of the whole Web Mercator (or lon/lat) world, exactly
//! ndpyramid's `pyramid_reproject` geometry — the affine transform
//! `translation(−X, Y) · scale(2X/dim, −2Y/dim)` with y running north to south — with tile-sized
//! chunks (one element along the other dimensions, or `chunks` there: ndpyramid's
//! `other_chunks`) and the `multiscales` metadata map viewers read.

use super::super::{provenance, Builder};
use crate::config::{AxisRange, Codec, PyramidParams, RegridMethod, RegridParams, TargetGrid};
use crate::operators::kernels::coarsen::Reduction;
use crate::sources::model::{Attr, AttrValue};
use crate::tree::{GroupNode, Node, TreeError};

/// Half the width and height of the Web Mercator world, as ndpyramid's transform writes them.
const MERCATOR_X: f64 = 20_037_508.342_789_244;
const MERCATOR_Y: f64 = 20_037_508.342_789_248;

/// The x and y axes of level `level`: pixel centres of the level's affine transform.
fn level_axes(crs: &str, level: u32, pixels_per_tile: u64) -> (AxisRange, AxisRange) {
    let dim = (1u64 << level) as f64 * pixels_per_tile as f64;
    let (half_x, half_y) = if crs.eq_ignore_ascii_case("EPSG:4326") {
        (180.0, 90.0)
    } else {
        (MERCATOR_X, MERCATOR_Y)
    };
    let (sx, sy) = (2.0 * half_x / dim, 2.0 * half_y / dim);
    let x = AxisRange {
        start: -half_x + sx / 2.0,
        stop: half_x - sx / 2.0,
        step: sx,
    };
    let y = AxisRange {
        start: half_y - sy / 2.0,
        stop: -half_y + sy / 2.0,
        step: -sy,
    };
    (x, y)
}

/// The regrid method behind a pyramid method: GDAL's `average` is the area-weighted mean.
fn method(reduction: Reduction) -> (RegridMethod, &'static str) {
    match reduction {
        Reduction::Nearest => (RegridMethod::Nearest, "nearest"),
        Reduction::Min => (RegridMethod::Min, "min"),
        Reduction::Max => (RegridMethod::Max, "max"),
        Reduction::Mean | Reduction::Sum => (RegridMethod::Conservative, "average"),
    }
}

fn json_attr(name: &str, value: serde_json::Value) -> Attr {
    Attr {
        name: name.into(),
        value: AttrValue::Json(value.to_string()),
    }
}

/// The `multiscales` attribute: `datasets` and ndpyramid's metadata for these parameters, of
/// the whole pyramid or (`level`) of one level.
fn multiscales(
    datasets: serde_json::Value,
    params: &PyramidParams,
    crs: &str,
    level: Option<u32>,
) -> Attr {
    let ppt = params.pixels_per_tile.unwrap_or(128);
    let projection = if crs.eq_ignore_ascii_case("EPSG:4326") {
        "equidistant-cylindrical"
    } else {
        "web-mercator"
    };
    let resampling = method(params.method).1;
    let other_chunks = if params.chunks.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(params.chunks)
    };
    let kwargs = match level {
        Some(level) => serde_json::json!({
            "level": level,
            "pixels_per_tile": ppt,
            "projection": projection,
            "resampling": resampling,
            "extra_dim": null,
            "clear_attrs": false,
        }),
        None => serde_json::json!({
            "levels": params.levels,
            "pixels_per_tile": ppt,
            "projection": projection,
            "other_chunks": other_chunks,
            "resampling": resampling,
            "extra_dim": null,
            "clear_attrs": false,
        }),
    };
    json_attr(
        "multiscales",
        serde_json::json!([{
            "datasets": datasets,
            "type": "reduce",
            "metadata": {
                "method": "pyramid_reproject",
                "version": concat!("atlasfs ", env!("CARGO_PKG_VERSION")),
                "args": [],
                "kwargs": kwargs,
            },
        }]),
    )
}

/// Adds `_ARRAY_DIMENSIONS` to every array of `group` (map viewers read it in Zarr v3 too).
fn with_array_dimensions(group: &mut GroupNode, builder: &mut Builder<'_>) {
    for node in group.children.values_mut() {
        if let Node::Array(array) = node {
            let mut attrs = array.attrs.clone();
            attrs.retain(|a| a.name != "_ARRAY_DIMENSIONS");
            attrs.push(json_attr(
                "_ARRAY_DIMENSIONS",
                serde_json::json!(array.dims),
            ));
            *array = builder.array(
                array.path.clone(),
                array.dims.clone(),
                array.geometry.clone(),
                attrs,
                array.recipe.clone(),
            );
        }
    }
}

/// The tile pyramid of one group.
pub(crate) fn apply(
    builder: &mut Builder<'_>,
    params: &PyramidParams,
    source: &GroupNode,
    path: &str,
) -> Result<GroupNode, TreeError> {
    let crs = params.crs.clone().unwrap_or_else(|| "EPSG:3857".into());
    let ppt = params.pixels_per_tile.unwrap_or(128);
    let (regrid_method, resampling) = method(params.method);
    let mut out = GroupNode {
        attrs: provenance(
            &source.attrs,
            builder.view,
            &format!(
                "{} levels of {crs} tiles of {ppt} pixels, {resampling}",
                params.levels
            ),
        ),
        children: Default::default(),
    };
    for level in 0..params.levels {
        let (x, y) = level_axes(&crs, level, ppt);
        let regrid = RegridParams {
            method: regrid_method,
            grid: TargetGrid::Projected {
                crs: crs.clone(),
                x,
                y,
            },
            nan_threshold: 1.0,
            source_crs: None,
            chunk: Some(ppt),
            chunks: params.chunks.clone(),
            codec: params.codec.unwrap_or(Codec::Gzip),
            level: params.level.or(Some(1)),
        };
        let mut group = super::apply(builder, &regrid, source, &format!("{path}/{level}"))?;
        with_array_dimensions(&mut group, builder);
        group.attrs = out.attrs.clone();
        group.attrs.push(multiscales(
            serde_json::json!([{"path": ".", "level": level, "crs": crs}]),
            params,
            &crs,
            Some(level),
        ));
        out.children.insert(level.to_string(), Node::Group(group));
    }
    let datasets: Vec<serde_json::Value> = (0..params.levels)
        .map(|k| {
            serde_json::json!({"path": k.to_string(), "level": k, "crs": crs, "pixels_per_tile": ppt})
        })
        .collect();
    out.attrs.push(multiscales(
        serde_json::Value::Array(datasets),
        params,
        &crs,
        None,
    ));
    out.attrs.push(Attr {
        name: "title".into(),
        value: AttrValue::Text("multiscale data pyramid".into()),
    });
    Ok(out)
}
