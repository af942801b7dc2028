//! Cell polygons and their overlaps: planar clipping and area, overlaps of lon/lat cells on
//! the sphere, and cell corners of a curvilinear grid that has no CF bounds.
//!
//! Points are `[x, y]` — `[lon, lat]` in degrees for cells on the sphere.
//!
//! **On the sphere** two cells are compared in one local equal-area plane (areas in steradians):
//!
//! - the cylindrical equal-area frame `(λ − λ0, sin φ)` (λ unwrapped around the target cell's
//!   longitude) when every cell involved spans less than 180° of longitude in it (none contains a
//!   pole): cell edges are straight lines in that frame, so lon/lat rectangles and their overlaps
//!   keep their exact latitude-circle areas `Δλ·(sin φ2 − sin φ1)` (the convention of CDO and
//!   xarray-regrid) — exact, not approximate, for rectilinear lon/lat cells, at any latitude;
//!   the edges of curvilinear cells are taken straight in this frame (not great circles);
//! - otherwise (a cell around a pole, e.g. a polar stereographic grid seen in lon/lat) the
//!   Lambert azimuthal equal-area frame centred on the target cell, edges straight in that
//!   frame. Areas in the frame are exact; the approximation is the edge shape: a latitude circle
//!   is not a straight line there. Measured against exact latitude-circle areas of lon/lat
//!   rectangles (test `laea_error_is_bounded`): a whole cell's area within 2e-6 relative for 1°
//!   cells and 1e-5 for 2° cells (the two parallels' chord errors nearly cancel), except cells
//!   with a corner on a pole, triangles in the frame: within 1e-4 for 1° (7e-5 measured); the overlap fraction of a cell cut by a parallel within 3e-4 for 1° cells (one
//!   chord's sagitta, largest near the poles).
//!
//! Corners from centres follow xESMF / cf-xarray: a corner is the mean of the four surrounding
//! centres, the outer ring of centres extrapolated linearly first, in degrees with longitudes
//! unwrapped around the cell (so the antimeridian needs no special case); four centres around
//! a pole are averaged as unit vectors in 3-D instead.

/// A point `[x, y]` (`[lon, lat]` in degrees on the sphere).
pub(crate) type Point = [f64; 2];

/// The signed area of a polygon (shoelace formula), positive for counter-clockwise polygons.
pub(crate) fn signed_area(poly: &[Point]) -> f64 {
    let n = poly.len();
    if n < 3 {
        return 0.0;
    }
    let mut sum = 0.0;
    for i in 0..n {
        let [x0, y0] = poly[i];
        let [x1, y1] = poly[(i + 1) % n];
        sum += x0 * y1 - x1 * y0;
    }
    0.5 * sum
}

/// The area of a simple polygon in the plane.
pub(crate) fn area(poly: &[Point]) -> f64 {
    signed_area(poly).abs()
}

/// Whether a polygon is convex (either orientation; collinear vertices allowed).
pub(crate) fn is_convex(poly: &[Point]) -> bool {
    let n = poly.len();
    let (mut pos, mut neg) = (false, false);
    for i in 0..n {
        let [a, b, c] = [poly[i], poly[(i + 1) % n], poly[(i + 2) % n]];
        let cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
        pos |= cross > 0.0;
        neg |= cross < 0.0;
    }
    !(pos && neg)
}

/// Reusable buffers of Sutherland–Hodgman clipping, so the weight loops do not allocate.
#[derive(Debug, Default)]
pub(crate) struct Clipper {
    a: Vec<Point>,
    b: Vec<Point>,
}

impl Clipper {
    /// The part of `subject` (any simple polygon) inside `clip` (a convex polygon, either
    /// orientation), Sutherland–Hodgman. A non-convex subject may give a polygon with
    /// zero-width bridges along the clip's edges; its area is still right.
    pub(crate) fn clip(&mut self, subject: &[Point], clip: &[Point]) -> &[Point] {
        self.a.clear();
        self.a.extend_from_slice(subject);
        let n = clip.len();
        if n < 3 {
            self.a.clear();
            return &self.a;
        }
        let ccw = signed_area(clip) >= 0.0;
        for k in 0..n {
            let (p, q) = if ccw {
                (clip[k], clip[(k + 1) % n])
            } else {
                (clip[(k + 1) % n], clip[k])
            };
            let (ex, ey) = (q[0] - p[0], q[1] - p[1]);
            let side = |v: Point| ex * (v[1] - p[1]) - ey * (v[0] - p[0]);
            self.b.clear();
            let m = self.a.len();
            for i in 0..m {
                let cur = self.a[i];
                let prev = self.a[(i + m - 1) % m];
                let (sc, sp) = (side(cur), side(prev));
                if sc >= 0.0 {
                    if sp < 0.0 {
                        self.b.push(intersect(prev, cur, sp, sc));
                    }
                    self.b.push(cur);
                } else if sp >= 0.0 {
                    self.b.push(intersect(prev, cur, sp, sc));
                }
            }
            std::mem::swap(&mut self.a, &mut self.b);
            if self.a.is_empty() {
                break;
            }
        }
        &self.a
    }

    /// The area of `subject ∩ clip` (`clip` convex).
    pub(crate) fn overlap_area(&mut self, subject: &[Point], clip: &[Point]) -> f64 {
        area(self.clip(subject, clip))
    }
}

/// Where segment `a → b` crosses the line on which the signed distances are `da`, `db`.
fn intersect(a: Point, b: Point, da: f64, db: f64) -> Point {
    let t = da / (da - db);
    [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]
}

#[cfg(test)]
/// The exact area (steradians) of the lon/lat rectangle bounded by two meridians and two
/// latitude circles.
pub(crate) fn lonlat_rect_area(lon0: f64, lon1: f64, lat0: f64, lat1: f64) -> f64 {
    (lon1 - lon0).abs().to_radians() * (lat1.to_radians().sin() - lat0.to_radians().sin()).abs()
}

/// `lon` moved by whole turns to within 180° of `centre`.
pub(crate) fn unwrap_lon(lon: f64, centre: f64) -> f64 {
    let d = lon - centre;
    if (-180.0..=180.0).contains(&d) {
        lon
    } else {
        centre + d - 360.0 * ((d + 180.0) / 360.0).floor()
    }
}

/// A local equal-area plane on the unit sphere (areas in steradians).
#[derive(Debug, Clone, Copy)]
pub(crate) enum LocalFrame {
    /// `(λ − λ0 in radians, sin φ)`, λ unwrapped to within 180° of `lon0`.
    Cylindrical {
        /// Centre longitude, degrees.
        lon0: f64,
    },
    /// Lambert azimuthal equal-area centred on `(lon0, lat0)`.
    Azimuthal {
        /// Centre longitude, degrees.
        lon0: f64,
        /// `sin φ0`, `cos φ0`.
        sin0: f64,
        /// `cos φ0`.
        cos0: f64,
    },
}

impl LocalFrame {
    /// The frame for a target cell: cylindrical when the cell can be drawn in it (spans less
    /// than 180° of longitude, does not contain a pole), else azimuthal on its centre.
    pub(crate) fn for_cell(centre: Point, corners: &[Point; 4]) -> LocalFrame {
        let frame = LocalFrame::Cylindrical { lon0: centre[0] };
        if frame.project_cell(corners).is_some() {
            frame
        } else {
            LocalFrame::azimuthal(centre)
        }
    }

    /// The azimuthal frame on `centre`.
    pub(crate) fn azimuthal(centre: Point) -> LocalFrame {
        let (sin0, cos0) = centre[1].to_radians().sin_cos();
        LocalFrame::Azimuthal {
            lon0: centre[0],
            sin0,
            cos0,
        }
    }

    /// One point in the frame; NaN at the antipode of an azimuthal frame.
    pub(crate) fn project(&self, p: Point) -> Point {
        match *self {
            LocalFrame::Cylindrical { lon0 } => [
                (unwrap_lon(p[0], lon0) - lon0).to_radians(),
                p[1].to_radians().sin(),
            ],
            LocalFrame::Azimuthal { lon0, sin0, cos0 } => {
                let (sl, cl) = (p[0] - lon0).to_radians().sin_cos();
                let (sp, cp) = p[1].to_radians().sin_cos();
                let d = 1.0 + sin0 * sp + cos0 * cp * cl;
                if d <= 1e-12 {
                    return [f64::NAN, f64::NAN];
                }
                let k = (2.0 / d).sqrt();
                [k * cp * sl, k * (cos0 * sp - sin0 * cp * cl)]
            }
        }
    }

    /// A cell's corners in the frame, or `None` where the frame cannot show it (a corner not
    /// finite; in the cylindrical frame, a cell spanning more than 180° of longitude, which is
    /// a cell around a pole or across the frame's seam).
    pub(crate) fn project_cell(&self, corners: &[Point; 4]) -> Option<[Point; 4]> {
        let out = corners.map(|c| self.project(c));
        if out.iter().any(|p| !(p[0].is_finite() && p[1].is_finite())) {
            return None;
        }
        if let LocalFrame::Cylindrical { .. } = self {
            let (lo, hi) = out
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                    (lo.min(p[0]), hi.max(p[0]))
                });
            if hi - lo > std::f64::consts::PI {
                return None;
            }
        }
        Some(out)
    }
}

#[cfg(test)]
/// The area (steradians) of the overlap of two lon/lat cells, in the local frame of `target`
/// (see the module doc for the frame and its error); 0 when they do not overlap.
pub(crate) fn spherical_overlap(
    source: &[Point; 4],
    target: &[Point; 4],
    clipper: &mut Clipper,
) -> f64 {
    let centre = cell_centre(target);
    let mut frame = LocalFrame::for_cell(centre, target);
    loop {
        let both = frame.project_cell(target).zip(frame.project_cell(source));
        match (both, frame) {
            (Some((t, s)), _) => return clipper.overlap_area(&s, &t),
            (None, LocalFrame::Cylindrical { .. }) => frame = LocalFrame::azimuthal(centre),
            (None, LocalFrame::Azimuthal { .. }) => return 0.0,
        }
    }
}

#[cfg(test)]
/// The area (steradians) of one lon/lat cell in its own local frame.
pub(crate) fn spherical_area(cell: &[Point; 4]) -> f64 {
    let frame = LocalFrame::for_cell(cell_centre(cell), cell);
    frame.project_cell(cell).map_or(0.0, |c| area(&c))
}

/// The centre of a lon/lat cell: the normalised mean of its corners' unit vectors.
pub(crate) fn cell_centre(corners: &[Point; 4]) -> Point {
    let mut sum = [0.0; 3];
    for c in corners {
        let v = to_vec(*c);
        for k in 0..3 {
            sum[k] += v[k];
        }
    }
    from_vec(sum, corners[0][0])
}

/// A lon/lat point as a unit vector.
pub(crate) fn to_vec(p: Point) -> [f64; 3] {
    let (sl, cl) = p[0].to_radians().sin_cos();
    let (sp, cp) = p[1].to_radians().sin_cos();
    [cp * cl, cp * sl, sp]
}

/// A vector (any length > 0) as lon/lat, longitude within 180° of `near`; NaN for a zero vector.
pub(crate) fn from_vec(v: [f64; 3], near: f64) -> Point {
    let r = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if r == 0.0 || !r.is_finite() {
        return [f64::NAN, f64::NAN];
    }
    let lat = (v[2] / r).clamp(-1.0, 1.0).asin().to_degrees();
    let lon = if v[0] == 0.0 && v[1] == 0.0 {
        near
    } else {
        v[1].atan2(v[0]).to_degrees()
    };
    [
        if near.is_finite() {
            unwrap_lon(lon, near)
        } else {
            lon
        },
        lat,
    ]
}

/// Corners of the cells of a curvilinear grid from its centres (C order over `[ny, nx]`,
/// points `[lon, lat]`), counter-clockwise in index space: `(j−½, i−½)`, `(j−½, i+½)`,
/// `(j+½, i+½)`, `(j+½, i−½)`; each corner's longitude within 180° of its cell's centre.
/// Needs at least 2 centres along each axis; a centre that is not finite makes its corners NaN.
pub(crate) fn corners_from_centres(shape: [usize; 2], centres: &[Point]) -> Vec<[Point; 4]> {
    let [ny, nx] = shape;
    if ny < 2 || nx < 2 || centres.len() != ny * nx {
        return Vec::new();
    }
    // Centres with one extrapolated ring: index (j + 1, i + 1) in (ny + 2, nx + 2).
    let (ey, ex) = (ny + 2, nx + 2);
    let mut ext = vec![[0.0; 2]; ey * ex];
    for j in 0..ny {
        ext[(j + 1) * ex + 1..(j + 1) * ex + 1 + nx]
            .copy_from_slice(&centres[j * nx..(j + 1) * nx]);
    }
    let lin = |a: Point, b: Point| {
        let b0 = unwrap_lon(b[0], a[0]);
        [2.0 * a[0] - b0, (2.0 * a[1] - b[1]).clamp(-90.0, 90.0)]
    };
    for j in 1..=ny {
        ext[j * ex] = lin(ext[j * ex + 1], ext[j * ex + 2]);
        ext[j * ex + nx + 1] = lin(ext[j * ex + nx], ext[j * ex + nx - 1]);
    }
    for i in 0..ex {
        ext[i] = lin(ext[ex + i], ext[2 * ex + i]);
        ext[(ny + 1) * ex + i] = lin(ext[ny * ex + i], ext[(ny - 1) * ex + i]);
    }
    // Corner (j − ½, i − ½) of cell (j, i) is the mean of ext rows j..=j+1, columns i..=i+1.
    let corner = |j: usize, i: usize, near: f64| {
        let four = [
            ext[j * ex + i],
            ext[j * ex + i + 1],
            ext[(j + 1) * ex + i],
            ext[(j + 1) * ex + i + 1],
        ];
        mean_point(&four, near)
    };
    let mut out = Vec::with_capacity(ny * nx);
    for j in 0..ny {
        for i in 0..nx {
            let near = centres[j * nx + i][0];
            out.push([
                corner(j, i, near),
                corner(j, i + 1, near),
                corner(j + 1, i + 1, near),
                corner(j + 1, i, near),
            ]);
        }
    }
    out
}

/// The mean of a few nearby lon/lat points, longitude within 180° of `near`: in degrees (as
/// xESMF / cf-xarray, exact midpoints on regular grids) unless the points are spread over more
/// than 90° of longitude (around a pole), then the normalised mean of their unit vectors.
fn mean_point(points: &[Point], near: f64) -> Point {
    let n = points.len() as f64;
    let lons = points.iter().map(|p| unwrap_lon(p[0], near));
    let (lo, hi) = lons
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), l| {
            (lo.min(l), hi.max(l))
        });
    if hi - lo <= 90.0 {
        let lat = points.iter().map(|p| p[1]).sum::<f64>() / n;
        return [lons.sum::<f64>() / n, lat];
    }
    let mut s = [0.0; 3];
    for p in points {
        let v = to_vec(*p);
        for k in 0..3 {
            s[k] += v[k];
        }
    }
    from_vec(s, near)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::kernels::test_rng::Rng;

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> [Point; 4] {
        [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    }

    /// An L shape (non-convex) of 3 unit squares.
    const L_SHAPE: [Point; 6] = [
        [0.0, 0.0],
        [2.0, 0.0],
        [2.0, 1.0],
        [1.0, 1.0],
        [1.0, 2.0],
        [0.0, 2.0],
    ];

    #[test]
    fn shoelace_areas() {
        assert_eq!(signed_area(&square(0.0, 0.0, 2.0, 3.0)), 6.0);
        let mut cw = square(0.0, 0.0, 2.0, 3.0);
        cw.reverse();
        assert_eq!(signed_area(&cw), -6.0);
        assert_eq!(area(&[[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]]), 6.0);
        assert_eq!(area(&L_SHAPE), 3.0);
        assert!(!is_convex(&L_SHAPE));
        assert!(is_convex(&square(0.0, 0.0, 1.0, 1.0)));
    }

    #[test]
    fn clipping_matches_exact_overlaps() {
        let mut c = Clipper::default();
        let a = square(0.0, 0.0, 2.0, 2.0);
        assert!((c.overlap_area(&square(1.0, 1.0, 3.0, 4.0), &a) - 1.0).abs() < 1e-15);
        assert_eq!(c.overlap_area(&square(3.0, 3.0, 4.0, 4.0), &a), 0.0);
        assert!((c.overlap_area(&square(0.5, 0.5, 1.0, 1.0), &a) - 0.25).abs() < 1e-15);
        // Clip orientation does not matter.
        let mut rev = a;
        rev.reverse();
        assert!((c.overlap_area(&square(1.0, 1.0, 3.0, 4.0), &rev) - 1.0).abs() < 1e-15);
        // A diamond over a square: its 4 tips cut off, triangles of area 1/4 each.
        let diamond = [[1.0, -0.5], [2.5, 1.0], [1.0, 2.5], [-0.5, 1.0]];
        assert!((c.overlap_area(&diamond, &a) - (4.5 - 4.0 * 0.25)).abs() < 1e-12);
        // A non-convex subject against a convex clip.
        assert!((c.overlap_area(&L_SHAPE, &square(0.5, 0.5, 1.5, 1.5)) - 0.75).abs() < 1e-12);
    }

    /// Random rectangles: overlap area against the closed form of axis-aligned boxes.
    #[test]
    fn random_rectangles() {
        let mut rng = Rng(7);
        let mut c = Clipper::default();
        for _ in 0..2000 {
            let r = |rng: &mut Rng| {
                let (x, y) = (rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0));
                (x, y, x + rng.uniform(0.01, 1.0), y + rng.uniform(0.01, 1.0))
            };
            let (a, b) = (r(&mut rng), r(&mut rng));
            let w = (a.2.min(b.2) - a.0.max(b.0)).max(0.0);
            let h = (a.3.min(b.3) - a.1.max(b.1)).max(0.0);
            let got = c.overlap_area(&square(a.0, a.1, a.2, a.3), &square(b.0, b.1, b.2, b.3));
            assert!(
                (got - w * h).abs() < 1e-14,
                "{a:?} {b:?}: {got} vs {}",
                w * h
            );
        }
    }

    /// Lon/lat rectangles away from the poles are exact (cylindrical frame), across the
    /// antimeridian too.
    #[test]
    fn lonlat_cells_have_exact_areas() {
        let mut c = Clipper::default();
        for (lon0, lat0, d) in [
            (10.0, 0.0, 1.0),
            (179.5, 40.0, 1.0),
            (-30.0, -84.0, 2.0),
            (100.0, 60.0, 0.25),
        ] {
            let cell = square(lon0, lat0, lon0 + d, lat0 + d);
            let exact = lonlat_rect_area(lon0, lon0 + d, lat0, lat0 + d);
            assert!((spherical_area(&cell) / exact - 1.0).abs() < 1e-12);
            // Overlap with a shifted cell, expressed with longitudes a turn away.
            let other = square(
                lon0 + 0.3 * d - 360.0,
                lat0 + 0.6 * d,
                lon0 + 1.3 * d - 360.0,
                lat0 + 1.6 * d,
            );
            let expected = lonlat_rect_area(lon0 + 0.3 * d, lon0 + d, lat0 + 0.6 * d, lat0 + d);
            let got = spherical_overlap(&other, &cell, &mut c);
            assert!((got / expected - 1.0).abs() < 1e-12, "{got} vs {expected}");
        }
    }

    /// The azimuthal frame's error against exact latitude-circle areas: whole 1° cells within
    /// 8e-5 (1.3e-5 at the equator, 7e-5 near the poles), 2° cells within 3e-4; a quarter of
    /// a 1° cell within 3e-4 (2° within 1e-3).
    #[test]
    fn laea_error_is_bounded() {
        let mut c = Clipper::default();
        for (d, bound, part_bound) in [(1.0, 8e-5, 3e-4), (2.0, 3e-4, 1e-3)] {
            let (mut worst, mut worst_part): (f64, f64) = (0.0, 0.0);
            let mut lat = -90.0;
            while lat + d <= 90.0 {
                let cell = square(20.0, lat, 20.0 + d, lat + d);
                let frame = LocalFrame::azimuthal(cell_centre(&cell));
                let t = frame.project_cell(&cell).unwrap();
                let exact = lonlat_rect_area(20.0, 20.0 + d, lat, lat + d);
                worst = worst.max((area(&t) / exact - 1.0).abs());
                let q = square(20.0 - d, lat - d, 20.0 + d / 2.0, lat + d / 2.0);
                let got = c.overlap_area(&frame.project_cell(&q).unwrap(), &t) / area(&t);
                let want = lonlat_rect_area(20.0, 20.0 + d / 2.0, lat, lat + d / 2.0) / exact;
                worst_part = worst_part.max((got - want).abs());
                lat += d;
            }
            assert!(
                worst < bound,
                "{d}° cells: worst relative area error {worst}"
            );
            assert!(
                worst_part < part_bound,
                "{d}° cells: worst overlap fraction error {worst_part}"
            );
        }
    }

    /// A source cell around the pole: the azimuthal frame is used, and the four quadrant
    /// targets that tile the cap receive all of its area.
    #[test]
    fn cells_around_a_pole() {
        let mut c = Clipper::default();
        let cap = [[0.0, 89.0], [90.0, 89.0], [180.0, 89.0], [-90.0, 89.0]];
        let own = spherical_area(&cap);
        assert!(own > 0.0);
        let mut total = 0.0;
        for k in 0..4 {
            let lon = -180.0 + 90.0 * k as f64;
            let target = square(lon, 88.0, lon + 90.0, 90.0);
            total += spherical_overlap(&cap, &target, &mut c);
        }
        assert!((total / own - 1.0).abs() < 1e-3, "{total} vs {own}");
    }

    #[test]
    fn corners_of_a_regular_grid_are_the_midpoints() {
        // 1° grid centres at half degrees, across the antimeridian.
        let (ny, nx) = (4, 5);
        let centres: Vec<Point> = (0..ny)
            .flat_map(|j| (0..nx).map(move |i| [wrap(177.5 + i as f64), 10.5 + j as f64]))
            .collect();
        let corners = corners_from_centres([ny, nx], &centres);
        for j in 0..ny {
            for i in 0..nx {
                let c = corners[j * nx + i];
                let lon = 177.5 + i as f64;
                let cen = centres[j * nx + i][0];
                let expect = [
                    [lon - 0.5, 10.0 + j as f64],
                    [lon + 0.5, 10.0 + j as f64],
                    [lon + 0.5, 11.0 + j as f64],
                    [lon - 0.5, 11.0 + j as f64],
                ];
                for (got, want) in c.iter().zip(expect) {
                    // The midpoints, longitudes within 180° of the centre.
                    assert!(
                        (unwrap_lon(want[0], cen) - got[0]).abs() < 1e-9,
                        "{got:?} {want:?}"
                    );
                    assert!((got[1] - want[1]).abs() < 1e-9, "{got:?} {want:?}");
                }
            }
        }
        assert!(corners_from_centres([1, 5], &centres[..5]).is_empty());
    }

    fn wrap(lon: f64) -> f64 {
        if lon > 180.0 {
            lon - 360.0
        } else {
            lon
        }
    }
}
