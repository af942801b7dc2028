//! Sparse weights between grids that are not separable: another projection, or curvilinear
//! (2-D lat/lon) grids. Both grids are described as cells (a centre and 4 corners each) in one
//! common space — the target's plane for a projected target, lon/lat for a lon/lat target; the
//! caller brings the source there with [`CellGrid::reproject`] (for bilinear and nearest, the
//! target's centres are brought to the source's space instead).
//!
//! - conservative: overlap area / target cell area, polygons clipped in the plane, or on the
//!   sphere in a local equal-area frame (see [`super::polygon`] for the frames and their error);
//! - bilinear: inverse bilinear interpolation on the quadrilateral of the 4 source centres
//!   around the target point (pyresample's approach for curvilinear grids); on a rectilinear
//!   source this is exactly `xarray.interp`'s linear interpolation, and it reproduces any
//!   field linear in the plane exactly; points outside the hull of the source centres get none
//!   (a grid whose last column of centres is next to its first closes across that seam);
//! - nearest: the nearest source centre (planar or great-circle distance), only within the
//!   source domain: a target point farther from it than 1.1 × that cell's circumradius (centre
//!   to farthest corner) gets no weight.
//!
//! A [`SourceIndex`] (a uniform bucket grid over source cell bounding boxes, CSR layout, built
//! once per source and shared by every output chunk) bounds the work per target cell; weights
//! are produced per chunk of target cells, so memory stays proportional to one chunk.

use super::polygon::{self, Clipper, LocalFrame, Point};
use super::projection::Projection;
use super::RegridError;
use rayon::prelude::*;

mod source_index;

pub(crate) use source_index::SourceIndex;
use source_index::{boxes_overlap, cell_box};

/// The space in which a grid's points are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Space {
    /// Longitude/latitude in degrees (or rotated longitude/latitude), on the sphere.
    LonLat,
    /// Metres of one projection's plane.
    Plane,
}

/// A grid whose cells are given by centres and 4 corners each (`[x, y]`, `[lon, lat]` on the
/// sphere), flattened in C order over `shape = [ny, nx]`.
#[derive(Debug, Clone)]
pub(crate) struct CellGrid {
    /// `[ny, nx]`.
    pub(crate) shape: [usize; 2],
    /// Cell centres.
    pub(crate) centres: Vec<[f64; 2]>,
    /// Cell corners, in order around the cell (either orientation).
    pub(crate) corners: Vec<[[f64; 2]; 4]>,
    /// Where the points live.
    pub(crate) space: Space,
}

impl CellGrid {
    /// Cells of a rectilinear grid from its axes: centres and `[lo, hi]` bounds per cell.
    /// Lengths are taken as given (extra bounds are ignored; missing ones make NaN corners).
    pub(crate) fn rectilinear(
        y_centres: &[f64],
        y_bounds: &[[f64; 2]],
        x_centres: &[f64],
        x_bounds: &[[f64; 2]],
        space: Space,
    ) -> CellGrid {
        let (ny, nx) = (y_centres.len(), x_centres.len());
        let nan = [f64::NAN; 2];
        let mut centres = Vec::with_capacity(ny * nx);
        let mut corners = Vec::with_capacity(ny * nx);
        for (j, &y) in y_centres.iter().enumerate() {
            let [y0, y1] = y_bounds.get(j).copied().unwrap_or(nan);
            for (i, &x) in x_centres.iter().enumerate() {
                let [x0, x1] = x_bounds.get(i).copied().unwrap_or(nan);
                centres.push([x, y]);
                corners.push([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]);
            }
        }
        CellGrid {
            shape: [ny, nx],
            centres,
            corners,
            space,
        }
    }

    /// Cells of a curvilinear lon/lat grid from 2-D centres (`lat`, `lon`, C order over
    /// `shape`) and CF bounds `(lat_bounds, lon_bounds)` of shape `[ny][nx][4]` when present;
    /// without bounds, corners are derived from the centres
    /// ([`polygon::corners_from_centres`]).
    ///
    /// # Errors
    /// [`RegridError::Grid`] when lengths disagree with `shape`, or without bounds when an axis
    /// has fewer than 2 points.
    pub(crate) fn curvilinear(
        shape: [usize; 2],
        lat: &[f64],
        lon: &[f64],
        bounds: Option<(&[f64], &[f64])>,
    ) -> Result<CellGrid, RegridError> {
        let n = shape[0].saturating_mul(shape[1]);
        if lat.len() != n || lon.len() != n {
            return Err(RegridError::Grid(format!(
                "2-D coordinates of {} and {} values for a grid of shape {shape:?}",
                lat.len(),
                lon.len()
            )));
        }
        let centres: Vec<Point> = lon.iter().zip(lat).map(|(&x, &y)| [x, y]).collect();
        let corners = match bounds {
            Some((lat_b, lon_b)) => {
                if lat_b.len() != 4 * n || lon_b.len() != 4 * n {
                    return Err(RegridError::Grid(format!(
                        "bounds of {} and {} values for a grid of shape {shape:?} (4 per cell needed)",
                        lat_b.len(),
                        lon_b.len()
                    )));
                }
                (0..n)
                    .map(|c| {
                        let near = lon[c];
                        std::array::from_fn(|k| {
                            [
                                polygon::unwrap_lon(lon_b[4 * c + k], near),
                                lat_b[4 * c + k],
                            ]
                        })
                    })
                    .collect()
            }
            None => {
                if shape[0] < 2 || shape[1] < 2 {
                    return Err(RegridError::Grid(format!(
                        "a curvilinear grid of shape {shape:?} without bounds: 2 points per axis needed"
                    )));
                }
                polygon::corners_from_centres(shape, &centres)
            }
        };
        Ok(CellGrid {
            shape,
            centres,
            corners,
            space: Space::LonLat,
        })
    }

    /// The same cells expressed in another space: every point goes through `from.inverse`
    /// then `to.forward` (lon/lat is the identity either way). Points the target projection
    /// cannot show become NaN (their cells get no weights). Longitudes of an angular target
    /// are unwrapped around each cell's centre.
    pub(crate) fn reproject(&self, from: &Projection, to: &Projection) -> CellGrid {
        let map = |p: Point| {
            let (lon, lat) = from.inverse(p[0], p[1]);
            let (x, y) = to.forward(lon, lat);
            [x, y]
        };
        let angular = to.is_angular();
        let (centres, corners): (Vec<Point>, Vec<[Point; 4]>) = self
            .centres
            .par_iter()
            .zip(self.corners.par_iter())
            .map(|(&c, cs)| {
                let c = map(c);
                let mut cs = cs.map(map);
                if angular {
                    for p in &mut cs {
                        p[0] = polygon::unwrap_lon(p[0], c[0]);
                    }
                }
                (c, cs)
            })
            .unzip();
        let space = if angular { Space::LonLat } else { Space::Plane };
        CellGrid {
            shape: self.shape,
            centres,
            corners,
            space,
        }
    }
}

/// How target values are made from source values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// Area-weighted mean over overlapping source cells.
    Conservative,
    /// Bilinear interpolation between the 4 surrounding source centres.
    Bilinear,
    /// The nearest source centre.
    Nearest,
}

/// Distance between two points of a space: planar, or great-circle in degrees of arc.
fn distance(a: Point, b: Point, space: Space) -> f64 {
    match space {
        Space::Plane => (a[0] - b[0]).hypot(a[1] - b[1]),
        Space::LonLat => {
            let (va, vb) = (polygon::to_vec(a), polygon::to_vec(b));
            let chord =
                ((va[0] - vb[0]).powi(2) + (va[1] - vb[1]).powi(2) + (va[2] - vb[2]).powi(2))
                    .sqrt();
            (2.0 * (chord / 2.0).min(1.0).asin()).to_degrees()
        }
    }
}

/// Reusable per-call buffers.
#[derive(Default)]
struct Scratch {
    clipper: Clipper,
    candidates: Vec<u32>,
    projected: Vec<(u32, [Point; 4])>,
}

/// Weights for the target cells `targets` (flat indices into `target`, C order) from
/// `source`, both in one space (see the module doc), as triplets (position in `targets`,
/// source flat index, weight). A target cell with no triplet has no source (NaN).
pub(crate) fn weights(
    method: Method,
    source: &CellGrid,
    index: &SourceIndex,
    target: &CellGrid,
    targets: &[usize],
) -> Vec<(u32, u32, f64)> {
    let mut out = Vec::new();
    let mut scratch = Scratch::default();
    for (k, &t) in targets.iter().enumerate() {
        let (Some(centre), Some(corners)) = (target.centres.get(t), target.corners.get(t)) else {
            continue;
        };
        let k = k as u32;
        match method {
            Method::Conservative => {
                conservative(source, index, *corners, k, &mut scratch, &mut out)
            }
            Method::Bilinear => bilinear(source, index, *centre, k, &mut scratch, &mut out),
            Method::Nearest => {
                if let Some((s, _)) = nearest(source, index, *centre, &mut scratch.candidates) {
                    out.push((k, s, 1.0));
                }
            }
        }
    }
    out
}

/// Conservative weights of one target cell.
fn conservative(
    source: &CellGrid,
    index: &SourceIndex,
    corners: [Point; 4],
    k: u32,
    scratch: &mut Scratch,
    out: &mut Vec<(u32, u32, f64)>,
) {
    let space = source.space;
    let Some((lo, hi)) = cell_box(&corners, space) else {
        return;
    };
    index.query(lo, hi, &mut scratch.candidates);
    // Cells that only touch the target (or whose boxes miss it) have no overlap.
    scratch.candidates.retain(|&s| {
        source
            .corners
            .get(s as usize)
            .and_then(|c| cell_box(c, space))
            .is_some_and(|(l, h)| boxes_overlap((lo, hi), (l, h), space))
    });
    let Scratch {
        clipper,
        candidates,
        projected,
    } = scratch;
    // The target and candidates in one plane.
    let target_poly = match source.space {
        Space::Plane => {
            projected.clear();
            for &s in candidates.iter() {
                if let Some(c) = source.corners.get(s as usize) {
                    projected.push((s, *c));
                }
            }
            corners
        }
        Space::LonLat => {
            let centre = polygon::cell_centre(&corners);
            let mut frame = LocalFrame::for_cell(centre, &corners);
            loop {
                let Some(t) = frame.project_cell(&corners) else {
                    return;
                };
                projected.clear();
                let mut redo = false;
                for &s in candidates.iter() {
                    let Some(c) = source.corners.get(s as usize) else {
                        continue;
                    };
                    match frame.project_cell(c) {
                        Some(p) => projected.push((s, p)),
                        None if matches!(frame, LocalFrame::Cylindrical { .. }) => {
                            redo = true;
                            break;
                        }
                        None => {}
                    }
                }
                if !redo {
                    break t;
                }
                frame = LocalFrame::azimuthal(centre);
            }
        }
    };
    let target_area = polygon::area(&target_poly);
    if target_area.is_nan() || target_area <= 0.0 {
        return;
    }
    let target_convex = polygon::is_convex(&target_poly);
    for (s, poly) in projected.iter() {
        if poly.iter().any(|p| !(p[0].is_finite() && p[1].is_finite())) {
            continue;
        }
        let a = if target_convex || !polygon::is_convex(poly) {
            clipper.overlap_area(poly, &target_poly)
        } else {
            clipper.overlap_area(&target_poly, poly)
        };
        let w = a / target_area;
        if w > 1e-12 {
            out.push((k, *s, w));
        }
    }
}

/// The nearest source centre to `p` and its distance, if `p` is within the source domain
/// (1.1 × the nearest cell's circumradius).
fn nearest(
    source: &CellGrid,
    index: &SourceIndex,
    p: Point,
    candidates: &mut Vec<u32>,
) -> Option<(u32, f64)> {
    if !(p[0].is_finite() && p[1].is_finite()) {
        return None;
    }
    let space = source.space;
    let step = index.step[0].max(index.step[1]);
    let (mut r, r_max) = (step, 8.0 * step);
    loop {
        index.query_around(p, r, candidates);
        let best = candidates
            .iter()
            .filter_map(|&s| {
                let c = *source.centres.get(s as usize)?;
                let d = distance(p, c, space);
                d.is_finite().then_some((s, d))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((s, d)) if d <= r => {
                let centre = source.centres.get(s as usize)?;
                let radius = source
                    .corners
                    .get(s as usize)?
                    .iter()
                    .map(|&c| distance(*centre, c, space))
                    .fold(0.0, f64::max);
                return (d <= 1.1 * radius).then_some((s, d));
            }
            _ if r >= r_max => return None,
            Some((_, d)) => r = d.max(2.0 * r).min(r_max),
            None => r = (2.0 * r).min(r_max),
        }
    }
}

/// Bilinear weights of one target point.
fn bilinear(
    source: &CellGrid,
    index: &SourceIndex,
    p: Point,
    k: u32,
    scratch: &mut Scratch,
    out: &mut Vec<(u32, u32, f64)>,
) {
    let Some((s, _)) = nearest(source, index, p, &mut scratch.candidates) else {
        return;
    };
    let [ny, nx] = source.shape;
    let (j, i) = (s as usize / nx.max(1), s as usize % nx.max(1));
    for (dj, di) in [(0, 0), (-1, 0), (0, -1), (-1, -1)] {
        let (j0, mut i0) = (j as i64 + dj, i as i64 + di);
        if index.periodic {
            i0 = i0.rem_euclid(nx as i64);
        } else if i0 < 0 || i0 + 1 >= nx as i64 {
            continue;
        }
        if j0 < 0 || j0 + 1 >= ny as i64 {
            continue;
        }
        let (j0, i0, i1) = (j0 as usize, i0 as usize, (i0 as usize + 1) % nx);
        let ids = [
            j0 * nx + i0,
            j0 * nx + i1,
            (j0 + 1) * nx + i1,
            (j0 + 1) * nx + i0,
        ];
        if ids.iter().any(|&q| q >= source.centres.len()) {
            continue;
        }
        let quad = ids.map(|q| source.centres[q]);
        let Some((plane, q)) = quad_in_plane(quad, p, source.space) else {
            continue;
        };
        if let Some((u, v)) = inverse_bilinear(q, plane) {
            let w = [(1.0 - u) * (1.0 - v), u * (1.0 - v), u * v, (1.0 - u) * v];
            for (q, w) in ids.iter().zip(w) {
                if w != 0.0 {
                    out.push((k, *q as u32, w));
                }
            }
            return;
        }
    }
}

/// A quadrilateral of centres and a point in one plane: as given in a plane; on the sphere in
/// degrees with longitudes unwrapped around the point (so a rectilinear lon/lat source is
/// interpolated linearly in lon and lat, as `xarray.interp`), or in the azimuthal frame on the
/// point when the quad spans more than 90° of longitude (around a pole).
fn quad_in_plane(quad: [Point; 4], p: Point, space: Space) -> Option<(Point, [Point; 4])> {
    if quad.iter().any(|c| !(c[0].is_finite() && c[1].is_finite())) {
        return None;
    }
    match space {
        Space::Plane => Some((p, quad)),
        Space::LonLat => {
            let q = quad.map(|c| [polygon::unwrap_lon(c[0], p[0]), c[1]]);
            let (lo, hi) = q
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| {
                    (lo.min(c[0]), hi.max(c[0]))
                });
            if hi - lo <= 90.0 {
                Some((p, q))
            } else {
                let frame = LocalFrame::azimuthal(p);
                Some((frame.project(p), quad.map(|c| frame.project(c))))
            }
        }
    }
}

/// `(u, v)` in `[0, 1]²` with `p = (1−u)(1−v)·a + u(1−v)·b + uv·c + (1−u)v·d` (Newton's method),
/// or `None` when `p` is outside the quadrilateral `[a, b, c, d]`.
fn inverse_bilinear([a, b, c, d]: [Point; 4], p: Point) -> Option<(f64, f64)> {
    let (mut u, mut v) = (0.5, 0.5);
    let scale =
        (b[0] - a[0]).abs() + (b[1] - a[1]).abs() + (d[0] - a[0]).abs() + (d[1] - a[1]).abs();
    if scale.is_nan() || scale <= 0.0 {
        return None;
    }
    for _ in 0..30 {
        let f = |k: usize| {
            (1.0 - u) * (1.0 - v) * a[k]
                + u * (1.0 - v) * b[k]
                + u * v * c[k]
                + (1.0 - u) * v * d[k]
                - p[k]
        };
        let (fx, fy) = (f(0), f(1));
        // Jacobian.
        let du = |k: usize| (1.0 - v) * (b[k] - a[k]) + v * (c[k] - d[k]);
        let dv = |k: usize| (1.0 - u) * (d[k] - a[k]) + u * (c[k] - b[k]);
        let (j00, j01, j10, j11) = (du(0), dv(0), du(1), dv(1));
        let det = j00 * j11 - j01 * j10;
        if det == 0.0 || !det.is_finite() {
            return None;
        }
        let (su, sv) = ((fx * j11 - fy * j01) / det, (fy * j00 - fx * j10) / det);
        u -= su;
        v -= sv;
        if su.abs() < 1e-14 && sv.abs() < 1e-14 {
            break;
        }
    }
    let eps = 1e-9;
    let inside = (-eps..=1.0 + eps).contains(&u) && (-eps..=1.0 + eps).contains(&v);
    inside.then(|| (u.clamp(0.0, 1.0), v.clamp(0.0, 1.0)))
}

#[cfg(test)]
mod tests;
