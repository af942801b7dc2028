//! The target grid of a regrid: its dimensions, lengths and coordinate arrays as served, and
//! its cells expressed in the source's coordinates — lat/lon cells for a lat/lon source (a Web
//! Mercator target becomes latitude and longitude cells, since its x is linear in longitude and
//! its y a function of latitude alone), metres for a source in the target's own projection.

use std::sync::Arc;

use super::grid::{CrsSource, GridKind, SourceGrid};
use super::operator::Centres;
use super::pair::TargetAxes;
use crate::config::{AxisRange, TargetGrid};
use crate::operators::kernels::regrid::axis::{Axis, AxisKind};
use crate::operators::kernels::regrid::projection::{CfValue, Projection};
use crate::operators::{Encoding, Geometry, Recipe};
use crate::sources::model::{Attr, AttrValue, DType};
use crate::tree::ArrayNode;
use crate::views::decoded::nan_fill_bytes;
use crate::views::Builder;

/// The target's dimension names, lengths, coordinate arrays and cells.
pub(crate) struct Target {
    /// Its grid dimensions: y and x, or one `cell` dimension for HEALPix.
    pub(crate) dims: Vec<String>,
    pub(crate) lens: Vec<u64>,
    /// Coordinate (and grid mapping) arrays by name.
    pub(crate) arrays: Vec<(String, Arc<ArrayNode>)>,
    pub(crate) axes: TargetAxes,
    /// The grid mapping variable's name, for a projected target.
    pub(crate) grid_mapping: Option<String>,
}

fn text(name: &str, value: &str) -> Attr {
    Attr {
        name: name.into(),
        value: AttrValue::Text(value.into()),
    }
}

/// The projection of a projected source grid.
pub(crate) fn source_projection(grid: &SourceGrid) -> Result<Option<Projection>, String> {
    let GridKind::Projected(crs) = &grid.kind else {
        return Ok(None);
    };
    let projection = match crs {
        CrsSource::Epsg(code) => Projection::from_epsg(code),
        CrsSource::Cf(attrs) => {
            let name = attrs
                .iter()
                .find(|a| a.name == "grid_mapping_name")
                .and_then(|a| a.value.as_text())
                .unwrap_or("");
            let values = |key: &str| -> Option<Vec<f64>> {
                attrs.iter().find(|a| a.name == key)?.value.as_f64s()
            };
            Projection::from_cf(name, &values)
        }
    };
    projection.map(Some).map_err(|e| e.to_string())
}

/// Whether two projections map the same points to the same metres (within a millimetre).
fn same_projection(a: &Projection, b: &Projection) -> bool {
    if a == b {
        return true;
    }
    let points = [
        (0.0, -75.0),
        (45.0, -60.0),
        (-120.0, 70.0),
        (10.0, 80.0),
        (100.0, 20.0),
    ];
    points.iter().all(|&(lon, lat)| {
        let (pa, pb) = (a.forward(lon, lat), b.forward(lon, lat));
        let finite = pa.0.is_finite() && pa.1.is_finite();
        finite == (pb.0.is_finite() && pb.1.is_finite())
            && (!finite || ((pa.0 - pb.0).abs() < 1e-3 && (pa.1 - pb.1).abs() < 1e-3))
    })
}

/// Spherical Web Mercator's radius.
const MERCATOR_RADIUS: f64 = 6_378_137.0;

fn mercator_lat(y: f64) -> f64 {
    (y / MERCATOR_RADIUS).sinh().atan().to_degrees()
}

fn mercator_lon(x: f64) -> f64 {
    (x / MERCATOR_RADIUS).to_degrees()
}

/// A regular axis's cells mapped through `f` (monotonic increasing) into another coordinate.
fn mapped(
    name: &str,
    kind: AxisKind,
    range: &AxisRange,
    f: fn(f64) -> f64,
) -> Result<Axis, String> {
    let regular = Axis::regular(name, AxisKind::Planar, range.start, range.stop, range.step)
        .map_err(|e| e.to_string())?;
    let centres = regular.centres().iter().map(|&c| f(c)).collect();
    let bounds = regular
        .bounds()
        .iter()
        .map(|b| [f(b[0]), f(b[1])])
        .collect();
    Axis::with_bounds(name, kind, centres, bounds).map_err(|e| e.to_string())
}

fn regular(name: &str, kind: AxisKind, range: &AxisRange) -> Result<Axis, String> {
    Axis::regular(name, kind, range.start, range.stop, range.step).map_err(|e| e.to_string())
}

/// The target cells for a grid given by ranges: in the source's coordinates when the two are
/// separable (lat/lon to lat/lon or Web Mercator, a projection to itself), else in the
/// target's own coordinates for weights from cell polygons.
fn cells(source: &SourceGrid, grid: &TargetGrid) -> Result<TargetAxes, String> {
    let (lat, lon, planar) = (AxisKind::Latitude, AxisKind::Longitude, AxisKind::Planar);
    let (target, y, x) = match grid {
        TargetGrid::LatLon { lat: y, lon: x } => (Projection::LonLat, y, x),
        TargetGrid::Projected { crs, x, y } => {
            (Projection::from_epsg(crs).map_err(|e| e.to_string())?, y, x)
        }
        TargetGrid::Like { .. } | TargetGrid::Healpix { .. } => {
            return Err("this grid has no ranges".into())
        }
    };
    let own = source_projection(source)?;
    let separable = match (&source.kind, &target) {
        (GridKind::LatLon, Projection::LonLat) => {
            Some((regular("lat", lat, y)?, regular("lon", lon, x)?))
        }
        (GridKind::LatLon, Projection::WebMercator) => Some((
            mapped("y", lat, y, mercator_lat)?,
            mapped("x", lon, x, mercator_lon)?,
        )),
        (GridKind::Projected(_), _)
            if own.as_ref().is_some_and(|p| same_projection(p, &target)) =>
        {
            Some((regular("y", planar, y)?, regular("x", planar, x)?))
        }
        _ => None,
    };
    if let Some((y, x)) = separable {
        return Ok(TargetAxes::Given(y, x));
    }
    let (ky, kx) = match target.is_angular() {
        true => (lat, lon),
        false => (planar, planar),
    };
    Ok(TargetAxes::Cells {
        y: regular("y", ky, y)?,
        x: regular("x", kx, x)?,
        projection: target,
    })
}

fn describe_kind(kind: &GridKind) -> &'static str {
    match kind {
        GridKind::LatLon => "latitude/longitude",
        GridKind::Projected(_) => "projected",
        GridKind::Curvilinear => "curvilinear",
    }
}

fn centres_array(
    builder: &mut Builder<'_>,
    path: &str,
    name: &str,
    values: Vec<f64>,
    attrs: Vec<Attr>,
) -> (String, Arc<ArrayNode>) {
    let n = values.len() as u64;
    let array = builder.array(
        format!("{path}/{name}"),
        vec![name.to_owned()],
        Geometry {
            shape: vec![n],
            chunks: vec![n.max(1)],
            dtype: DType::F64,
            fill: nan_fill_bytes(DType::F64),
        },
        attrs,
        Recipe::new(Arc::new(Centres { values }), Encoding::Bytes),
    );
    (name.to_owned(), array)
}

/// The grid mapping variable of a projected target: a scalar whose attributes describe it.
fn grid_mapping(builder: &mut Builder<'_>, path: &str, projection: &Projection) -> Arc<ArrayNode> {
    let mut attrs: Vec<Attr> = projection
        .cf_attributes()
        .into_iter()
        .map(|(name, value)| Attr {
            name,
            value: match value {
                CfValue::Number(v) => AttrValue::F64(vec![v]),
                CfValue::Numbers(v) => AttrValue::F64(v),
                CfValue::Text(t) => AttrValue::Text(t),
            },
        })
        .collect();
    if let Some(code) = projection.epsg() {
        attrs.push(text("crs", &format!("EPSG:{code}")));
    }
    builder.array(
        format!("{path}/spatial_ref"),
        Vec::new(),
        Geometry {
            shape: Vec::new(),
            chunks: Vec::new(),
            dtype: DType::I32,
            fill: vec![0; 4],
        },
        attrs,
        Recipe::new(Arc::new(Centres { values: vec![0.0] }), Encoding::Bytes),
    )
}

/// The target of a regrid of `source` to `grid`, its arrays built at `path` (chunked by
/// `chunk` cells along a HEALPix target's `cell`).
pub(crate) fn target(
    builder: &mut Builder<'_>,
    grid: &TargetGrid,
    source: &SourceGrid,
    path: &str,
    chunk: u64,
) -> Result<Target, String> {
    match grid {
        TargetGrid::Healpix { healpix: grid } => {
            let level = grid
                .depth()
                .ok_or_else(|| format!("grid healpix level {} must be within 0-20", grid.level))?;
            Ok(Target {
                dims: vec![super::healpix::CELL_DIM.into()],
                lens: vec![crate::operators::kernels::regrid::healpix::cell_count(
                    level,
                )],
                arrays: super::healpix::coordinates(builder, path, level, chunk),
                axes: TargetAxes::Healpix { level },
                grid_mapping: None,
            })
        }
        TargetGrid::LatLon { lat, lon } => {
            let axes = cells(source, grid)?;
            let arrays = vec![
                centres_array(
                    builder,
                    path,
                    "lat",
                    lat.centres(),
                    vec![
                        text("standard_name", "latitude"),
                        text("long_name", "latitude"),
                        text("units", "degrees_north"),
                        text("axis", "Y"),
                    ],
                ),
                centres_array(
                    builder,
                    path,
                    "lon",
                    lon.centres(),
                    vec![
                        text("standard_name", "longitude"),
                        text("long_name", "longitude"),
                        text("units", "degrees_east"),
                        text("axis", "X"),
                    ],
                ),
            ];
            Ok(Target {
                dims: vec!["lat".into(), "lon".into()],
                lens: vec![lat.len()? as u64, lon.len()? as u64],
                arrays,
                axes,
                grid_mapping: None,
            })
        }
        TargetGrid::Projected { crs, x, y } => {
            let axes = cells(source, grid)?;
            let projection = Projection::from_epsg(crs).map_err(|e| e.to_string())?;
            let mut arrays = vec![
                centres_array(
                    builder,
                    path,
                    "y",
                    y.centres(),
                    vec![
                        text("standard_name", "projection_y_coordinate"),
                        text("units", "m"),
                        text("axis", "Y"),
                    ],
                ),
                centres_array(
                    builder,
                    path,
                    "x",
                    x.centres(),
                    vec![
                        text("standard_name", "projection_x_coordinate"),
                        text("units", "m"),
                        text("axis", "X"),
                    ],
                ),
            ];
            let mapping = grid_mapping(builder, path, &projection);
            arrays.push(("spatial_ref".into(), mapping));
            Ok(Target {
                dims: vec!["y".into(), "x".into()],
                lens: vec![y.len()? as u64, x.len()? as u64],
                arrays,
                axes,
                grid_mapping: Some("spatial_ref".into()),
            })
        }
        TargetGrid::Like { like } => {
            let Some(grid) = builder.like.clone() else {
                return Err(format!("grid like {like:?} has no grid"));
            };
            if grid.coords.iter().any(|c| c.dims.len() != 1) {
                return Err(format!(
                    "grid like {like:?} is curvilinear; a target grid needs 1-d coordinates"
                ));
            }
            if grid.kind != source.kind {
                return Err(format!(
                    "grid like {like:?} is {} and the source is {}",
                    describe_kind(&grid.kind),
                    describe_kind(&source.kind)
                ));
            }
            let lens = vec![
                grid.coords[0].geometry.shape[0],
                grid.coords[1].geometry.shape[0],
            ];
            let mut arrays = Vec::new();
            for (dim, coord) in grid.dims.iter().zip(&grid.coords) {
                let alias = builder.alias(coord, format!("{path}/{dim}"));
                arrays.push((dim.clone(), alias));
            }
            Ok(Target {
                dims: grid.dims.to_vec(),
                lens,
                arrays,
                axes: TargetAxes::Like(grid),
                grid_mapping: None,
            })
        }
    }
}
