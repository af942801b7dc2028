//! Where a group's grid is: which two dimensions are spatial, which arrays hold their
//! coordinates (1-d latitude/longitude, 1-d projected x/y with a CRS, or 2-d latitude/longitude
//! of a curvilinear grid), found from CF attributes as cf-xarray finds them. Values are read
//! later, when the first chunk needs weights.

use std::sync::Arc;

use super::super::arrays_of;
use crate::sources::model::Attr;
use crate::tree::{ArrayNode, GroupNode};

/// What kind of coordinates a grid has.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GridKind {
    /// 1-d latitude along the first dimension, 1-d longitude along the second.
    LatLon,
    /// 1-d projected y and x (metres of `crs`, given as an EPSG code or CF attributes).
    Projected(CrsSource),
    /// 2-d latitude and longitude over both dimensions.
    Curvilinear,
}

/// Where a projected grid's CRS comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CrsSource {
    /// `EPSG:<code>`.
    Epsg(String),
    /// A CF `grid_mapping` variable's attributes.
    Cf(Vec<Attr>),
}

/// The grid of one group: its two dimensions (y first) and the arrays of its coordinates.
#[derive(Debug, Clone)]
pub(crate) struct SourceGrid {
    /// What kind of grid.
    pub(crate) kind: GridKind,
    /// The y (latitude) and x (longitude) dimension names.
    pub(crate) dims: [String; 2],
    /// The coordinate arrays: y (or 2-d latitude) and x (or 2-d longitude).
    pub(crate) coords: [Arc<ArrayNode>; 2],
    /// Their CF bounds arrays, when present.
    pub(crate) bounds: [Option<Arc<ArrayNode>>; 2],
    /// Multiplier from the coordinates' units to metres (projected) or 1.
    pub(crate) scale: f64,
}

fn text<'a>(array: &'a ArrayNode, name: &str) -> Option<&'a str> {
    array
        .attrs
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| a.value.as_text())
}

/// Which spatial role a coordinate array plays, from its CF attributes and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Latitude,
    Longitude,
    ProjectedY,
    ProjectedX,
}

fn role(name: &str, array: &ArrayNode) -> Option<Role> {
    let standard = text(array, "standard_name").unwrap_or("");
    let units = text(array, "units").unwrap_or("").to_ascii_lowercase();
    let axis = text(array, "axis").unwrap_or("");
    let lower = name.to_ascii_lowercase();
    if standard == "latitude"
        || standard == "grid_latitude"
        || matches!(
            units.as_str(),
            "degrees_north" | "degree_north" | "degree_n" | "degrees_n" | "degreen" | "degreesn"
        )
        || matches!(
            lower.as_str(),
            "lat" | "latitude" | "nav_lat" | "tlat" | "ulat"
        )
    {
        return Some(Role::Latitude);
    }
    if standard == "longitude"
        || standard == "grid_longitude"
        || matches!(
            units.as_str(),
            "degrees_east" | "degree_east" | "degree_e" | "degrees_e" | "degreee" | "degreese"
        )
        || matches!(
            lower.as_str(),
            "lon" | "longitude" | "nav_lon" | "tlong" | "ulong"
        )
    {
        return Some(Role::Longitude);
    }
    if standard == "projection_y_coordinate" || (axis == "Y" && lower != "lat") || lower == "y" {
        return Some(Role::ProjectedY);
    }
    if standard == "projection_x_coordinate" || (axis == "X" && lower != "lon") || lower == "x" {
        return Some(Role::ProjectedX);
    }
    None
}

fn bounds_of(group: &GroupNode, coord: &ArrayNode) -> Option<Arc<ArrayNode>> {
    let name = text(coord, "bounds")?;
    arrays_of(group)
        .into_iter()
        .find(|(n, _)| n.as_str() == name)
        .map(|(_, a)| a.clone())
}

fn metres_per_unit(array: &ArrayNode) -> Result<f64, String> {
    match text(array, "units").unwrap_or("m").trim() {
        "m" | "metre" | "meter" | "metres" | "meters" | "" => Ok(1.0),
        "km" | "kilometre" | "kilometer" | "kilometres" | "kilometers" => Ok(1000.0),
        other => Err(format!(
            "{} has units {other:?}; projected coordinates need m or km",
            array.path
        )),
    }
}

/// The grid `data` lies on in `group`: its `coordinates` naming 2-d latitude/longitude
/// (curvilinear), or 1-d coordinates of two of its dimensions. `source_crs` is the config's CRS
/// for projected coordinates without a `grid_mapping`.
///
/// # Errors
/// Why `data` has no grid a regrid can read (naming what is missing).
pub(crate) fn find(
    group: &GroupNode,
    data: &ArrayNode,
    source_crs: Option<&str>,
) -> Result<SourceGrid, String> {
    let arrays = arrays_of(group);
    let named = |name: &str| {
        arrays
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, a)| (*a).clone())
    };
    // Curvilinear: 2-d latitude and longitude named by `coordinates`, over two of data's dims.
    let listed: Vec<Arc<ArrayNode>> = text(data, "coordinates")
        .unwrap_or("")
        .split_whitespace()
        .filter_map(named)
        .filter(|a| a.dims.len() == 2 && a.dims.iter().all(|d| data.dims.contains(d)))
        .collect();
    let two_d = |want: Role| {
        listed
            .iter()
            .find(|a| role(a.path.rsplit('/').next().unwrap_or(""), a) == Some(want))
            .cloned()
    };
    if let (Some(lat), Some(lon)) = (two_d(Role::Latitude), two_d(Role::Longitude)) {
        if lat.dims != lon.dims || lat.geometry.shape != lon.geometry.shape {
            return Err(format!(
                "its 2-d coordinates {} {:?} and {} {:?} disagree",
                lat.path, lat.dims, lon.path, lon.dims
            ));
        }
        let dims = [lat.dims[0].clone(), lat.dims[1].clone()];
        let bounds = [bounds_of(group, &lat), bounds_of(group, &lon)];
        return Ok(SourceGrid {
            kind: GridKind::Curvilinear,
            dims,
            coords: [lat, lon],
            bounds,
            scale: 1.0,
        });
    }
    // Rectilinear: a 1-d coordinate variable for two of data's dimensions.
    let mut found: [Option<(String, Arc<ArrayNode>, Role)>; 2] = [None, None];
    for dim in &data.dims {
        let Some(coord) = named(dim).filter(|a| a.dims.len() == 1 && &a.dims[0] == dim) else {
            continue;
        };
        match role(dim, &coord) {
            Some(r @ (Role::Latitude | Role::ProjectedY)) if found[0].is_none() => {
                found[0] = Some((dim.clone(), coord, r));
            }
            Some(r @ (Role::Longitude | Role::ProjectedX)) if found[1].is_none() => {
                found[1] = Some((dim.clone(), coord, r));
            }
            _ => {}
        }
    }
    let [Some((ydim, y, yrole)), Some((xdim, x, xrole))] = found else {
        return Err(format!(
            "{} {:?} has no latitude/longitude or projected x/y coordinates along two of its dimensions",
            data.path, data.dims
        ));
    };
    let yaxis = data.dims.iter().position(|d| *d == ydim);
    let xaxis = data.dims.iter().position(|d| *d == xdim);
    if yaxis > xaxis {
        return Err(format!(
            "{} has its dimensions in ({xdim}, {ydim}) order; a regrid reads (y, x) order",
            data.path
        ));
    }
    let bounds = [bounds_of(group, &y), bounds_of(group, &x)];
    let kind = match (yrole, xrole) {
        (Role::Latitude, Role::Longitude) => GridKind::LatLon,
        (Role::ProjectedY, Role::ProjectedX) => {
            let mapping = text(data, "grid_mapping")
                .and_then(|m| named(m.split(':').next().unwrap_or(m).trim()));
            match (mapping, source_crs) {
                (_, Some(crs)) => GridKind::Projected(CrsSource::Epsg(crs.to_owned())),
                (Some(m), None) => GridKind::Projected(CrsSource::Cf(m.attrs.clone())),
                (None, None) => {
                    return Err(format!(
                        "{} has projected coordinates {ydim}, {xdim} but no grid_mapping; set source_crs",
                        data.path
                    ))
                }
            }
        }
        _ => {
            return Err(format!(
                "{} mixes geographic and projected coordinates ({ydim}, {xdim})",
                data.path
            ))
        }
    };
    let scale = match kind {
        GridKind::Projected(_) => metres_per_unit(&y)?,
        _ => 1.0,
    };
    Ok(SourceGrid {
        kind,
        dims: [ydim, xdim],
        coords: [y, x],
        bounds,
        scale,
    })
}
