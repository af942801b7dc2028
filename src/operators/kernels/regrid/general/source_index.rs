//! The source index of the general regrid: a uniform bucket grid over the bounding boxes of
//! a source grid's cells (CSR layout, built once per source and shared by every output chunk),
//! answering which cells may overlap a box or lie near a point.

use super::super::polygon::{self, Point};
use super::{distance, CellGrid, Space};
use rayon::prelude::*;

/// Most buckets a cell is listed in; a larger cell is checked against every query.
const MAX_BUCKETS_PER_CELL: usize = 1024;

/// A uniform bucket grid over the bounding boxes of a source grid's cells.
#[derive(Debug)]
pub(crate) struct SourceIndex {
    space: Space,
    /// Lower-left of bucket (0, 0).
    origin: Point,
    /// Bucket sides.
    pub(super) step: Point,
    /// Buckets along x and y.
    nb: [usize; 2],
    /// CSR offsets (`nb[0] * nb[1] + 1`) into `items`.
    offsets: Vec<u32>,
    /// Source cell indices per bucket.
    items: Vec<u32>,
    /// Cells too large for the buckets, candidates of every query.
    big: Vec<u32>,
    /// The last column of centres is next to the first (a global lon/lat grid): bilinear
    /// quads close across that seam.
    pub(super) periodic: bool,
}

/// The bounding box of a cell, `None` when a corner is not finite. On the sphere the
/// longitudes are unwrapped around the first corner; a cell around a pole spans every
/// longitude and reaches the pole.
pub(super) fn cell_box(corners: &[Point; 4], space: Space) -> Option<(Point, Point)> {
    if corners
        .iter()
        .any(|c| !(c[0].is_finite() && c[1].is_finite()))
    {
        return None;
    }
    let near = corners[0][0];
    let xs = corners.map(|c| match space {
        Space::LonLat => polygon::unwrap_lon(c[0], near),
        Space::Plane => c[0],
    });
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for (k, c) in corners.iter().enumerate() {
        lo = [lo[0].min(xs[k]), lo[1].min(c[1])];
        hi = [hi[0].max(xs[k]), hi[1].max(c[1])];
    }
    if space == Space::LonLat && (hi[0] - lo[0] > 180.0 || winds_around_pole(corners)) {
        let north = corners.iter().map(|c| c[1]).sum::<f64>() > 0.0;
        lo = [-180.0, if north { lo[1] } else { -90.0 }];
        hi = [180.0 + 360.0, if north { 90.0 } else { hi[1] }];
    }
    Some((lo, hi))
}

/// Whether two boxes overlap with a positive area (on the sphere, with the second box moved
/// by whole turns of longitude).
pub(super) fn boxes_overlap(a: (Point, Point), b: (Point, Point), space: Space) -> bool {
    let y = a.0[1] < b.1[1] && b.0[1] < a.1[1];
    let x = |shift: f64| a.0[0] < b.1[0] + shift && b.0[0] + shift < a.1[0];
    y && match space {
        Space::Plane => x(0.0),
        Space::LonLat => {
            let d = polygon::unwrap_lon(b.0[0], a.0[0]) - b.0[0];
            x(d) || x(d - 360.0) || x(d + 360.0)
        }
    }
}

/// Whether a lon/lat quadrilateral goes once around a pole (its longitude steps add to ±360°).
fn winds_around_pole(corners: &[Point; 4]) -> bool {
    let mut turn = 0.0;
    for k in 0..4 {
        let (a, b) = (corners[k][0], corners[(k + 1) % 4][0]);
        turn += polygon::unwrap_lon(b, a) - a;
    }
    turn.abs() > 180.0
}

impl SourceIndex {
    /// The index of `source`'s cells (cells with a corner that is not finite are left out).
    pub(crate) fn new(source: &CellGrid) -> SourceIndex {
        let space = source.space;
        let cell_box = |k: usize| cell_box(&source.corners[k], space);
        let n = source.corners.len();
        // Domain and a typical cell size (median of a sample of box sides).
        let (mut lo, mut hi) = source
            .corners
            .par_iter()
            .filter_map(|c| self::cell_box(c, space))
            .reduce(
                || ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]),
                |(l0, h0), (l1, h1)| {
                    (
                        [l0[0].min(l1[0]), l0[1].min(l1[1])],
                        [h0[0].max(h1[0]), h0[1].max(h1[1])],
                    )
                },
            );
        let stride = (n / 4096).max(1);
        let mut sides: Vec<f64> = (0..n)
            .step_by(stride)
            .filter_map(cell_box)
            .map(|(l, h)| (h[0] - l[0]).max(h[1] - l[1]))
            .collect();
        let mut index = SourceIndex {
            space,
            origin: [0.0, 0.0],
            step: [1.0, 1.0],
            nb: [1, 1],
            offsets: vec![0, 0],
            items: Vec::new(),
            big: Vec::new(),
            periodic: is_periodic(source),
        };
        if sides.is_empty() || !(lo[0] <= hi[0] && lo[1] <= hi[1]) {
            return index;
        }
        sides.sort_by(f64::total_cmp);
        // Buckets of about two cells a side: a cell sits in 1 to 4 of them.
        let side = 2.0 * sides[sides.len() / 2].max(1e-12);
        if space == Space::LonLat {
            lo[0] = -180.0;
            hi[0] = 180.0;
        }
        let max_buckets = (2 * n).clamp(1, 1 << 24) as f64;
        let mut s = side;
        let count = |s: f64, lo: f64, hi: f64| (((hi - lo) / s).ceil() as usize).max(1);
        while (count(s, lo[0], hi[0]) as f64) * (count(s, lo[1], hi[1]) as f64) > max_buckets {
            s *= 1.5;
        }
        index.origin = lo;
        index.nb = [count(s, lo[0], hi[0]), count(s, lo[1], hi[1])];
        index.step = [
            (hi[0] - lo[0]).max(s) / index.nb[0] as f64,
            (hi[1] - lo[1]).max(s) / index.nb[1] as f64,
        ];
        if space == Space::LonLat {
            index.step[0] = 360.0 / index.nb[0] as f64;
        }
        // Counting pass, then filling pass (CSR).
        let nbuckets = index.nb[0] * index.nb[1];
        let mut counts = vec![0u32; nbuckets + 1];
        let mut big = Vec::new();
        for k in 0..n {
            if let Some((l, h)) = cell_box(k) {
                if index.bucket_count(l, h) > MAX_BUCKETS_PER_CELL {
                    big.push(k as u32);
                } else {
                    index.for_buckets(l, h, |q| counts[q + 1] += 1);
                }
            }
        }
        for q in 0..nbuckets {
            counts[q + 1] += counts[q];
        }
        let mut fill = counts.clone();
        let mut items = vec![0u32; counts[nbuckets] as usize];
        for k in 0..n {
            if let Some((l, h)) = cell_box(k) {
                if index.bucket_count(l, h) <= MAX_BUCKETS_PER_CELL {
                    index.for_buckets(l, h, |q| {
                        items[fill[q] as usize] = k as u32;
                        fill[q] += 1;
                    });
                }
            }
        }
        index.offsets = counts;
        index.items = items;
        index.big = big;
        index
    }

    /// Bucket index ranges (x possibly beyond `nb[0]` on the sphere, to be wrapped) of a box.
    fn ranges(&self, lo: Point, hi: Point) -> Option<([i64; 2], [i64; 2])> {
        let cell = |v: f64, k: usize| ((v - self.origin[k]) / self.step[k]).floor();
        let (mut x0, mut x1) = (cell(lo[0], 0), cell(hi[0], 0));
        let (y0, y1) = (
            cell(lo[1], 1).max(0.0),
            cell(hi[1], 1).min(self.nb[1] as f64 - 1.0),
        );
        if !(x0.is_finite() && x1.is_finite() && y0 <= y1) {
            return None;
        }
        match self.space {
            Space::Plane => {
                x0 = x0.max(0.0);
                x1 = x1.min(self.nb[0] as f64 - 1.0);
                if x0 > x1 {
                    return None;
                }
            }
            Space::LonLat => {
                if x1 - x0 + 1.0 >= self.nb[0] as f64 {
                    (x0, x1) = (0.0, self.nb[0] as f64 - 1.0);
                }
            }
        }
        Some(([x0 as i64, x1 as i64], [y0 as i64, y1 as i64]))
    }

    fn bucket_count(&self, lo: Point, hi: Point) -> usize {
        self.ranges(lo, hi).map_or(0, |(x, y)| {
            (x[1] - x[0] + 1) as usize * (y[1] - y[0] + 1) as usize
        })
    }

    /// Calls `f` with every bucket a box overlaps.
    fn for_buckets(&self, lo: Point, hi: Point, mut f: impl FnMut(usize)) {
        let Some((xr, yr)) = self.ranges(lo, hi) else {
            return;
        };
        let nx = self.nb[0] as i64;
        for y in yr[0]..=yr[1] {
            for x in xr[0]..=xr[1] {
                f((y * nx + x.rem_euclid(nx)) as usize);
            }
        }
    }

    /// The source cells whose boxes may overlap the box `lo..hi` (sorted, distinct).
    pub(super) fn query(&self, lo: Point, hi: Point, out: &mut Vec<u32>) {
        out.clear();
        self.for_buckets(lo, hi, |q| {
            let (a, b) = (self.offsets[q] as usize, self.offsets[q + 1] as usize);
            out.extend_from_slice(&self.items[a..b]);
        });
        out.extend_from_slice(&self.big);
        out.sort_unstable();
        out.dedup();
    }

    /// The source cells near a point: every cell whose centre is within `r` of `p` is among
    /// them (`r` in the space's units; degrees of arc on the sphere).
    pub(super) fn query_around(&self, p: Point, r: f64, out: &mut Vec<u32>) {
        match self.space {
            Space::Plane => self.query([p[0] - r, p[1] - r], [p[0] + r, p[1] + r], out),
            Space::LonLat => {
                let coslat = (p[1].abs() + r).min(90.0).to_radians().cos();
                let dl = if coslat < 1e-6 {
                    360.0
                } else {
                    (1.1 * r / coslat).min(360.0)
                };
                self.query([p[0] - dl, p[1] - r], [p[0] + dl, p[1] + r], out)
            }
        }
    }
}

/// Whether the last column of centres follows the first one (as far as one column step, on
/// the middle row): a global grid in longitude.
fn is_periodic(source: &CellGrid) -> bool {
    let [ny, nx] = source.shape;
    if nx < 3 || ny == 0 || source.centres.len() != ny * nx {
        return false;
    }
    let row = &source.centres[(ny / 2) * nx..(ny / 2 + 1) * nx];
    let step = distance(row[0], row[1], source.space);
    let seam = distance(row[nx - 1], row[0], source.space);
    step > 0.0 && seam > 0.5 * step && seam < 1.5 * step
}
