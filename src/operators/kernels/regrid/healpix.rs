//! Nested HEALPix cells as a regrid target: how many cells a level has, which cell holds a
//! point, where a cell's centre is (through `cdshealpix`), and source centres binned into
//! cells, as sparse rows of weight 1 per output chunk of consecutive cell ids.
//!
//! Longitudes and latitudes are degrees; centres are returned with longitudes in `[0, 360)`
//! as `healpy.pix2ang(..., lonlat=True)` gives them. Pure math: no I/O, no view types.

use std::ops::Range;

#[cfg(test)]
use super::sparse::SparseWeights;

/// The finest level a target may have (12·4^20 cells).
pub(crate) const MAX_LEVEL: u8 = 20;

/// Number of cells of `level`: 12·4^level.
pub(crate) fn cell_count(level: u8) -> u64 {
    12u64 << (2 * u32::from(level.min(MAX_LEVEL)))
}

/// The nested id of the cell holding (`lon`, `lat`) in degrees, or `None` for a point that is
/// not on the sphere (non-finite, or latitude outside [-90, 90]).
///
/// Computed as the HEALPix library's `ang2pix_nest` (and healpy's, with `lonlat=True`) from
/// the colatitude's cosine and the longitude, so a point exactly on a cell edge goes where
/// healpy puts it; `cdshealpix` works from the latitude, whose sine rounds the other way on
/// some edges (sin 30° < 1/2 in floating point).
pub(crate) fn cell_of(level: u8, lon: f64, lat: f64) -> Option<u64> {
    if !(lon.is_finite() && lat.is_finite()) || lat.abs() > 90.0 {
        return None;
    }
    let level = level.min(MAX_LEVEL);
    let nside = 1u64 << level;
    let theta = std::f64::consts::FRAC_PI_2 - lat.to_radians();
    let (z, sth) = (theta.cos(), theta.sin());
    let near_pole = !(0.01..=std::f64::consts::PI - 0.01).contains(&theta);
    let za = z.abs();
    let tt = (lon.to_radians() / std::f64::consts::FRAC_PI_2).rem_euclid(4.0);
    let n = nside as f64;
    let (ix, iy, face) = if za <= 2.0 / 3.0 {
        let (t1, t2) = (n * (0.5 + tt), n * (z * 0.75));
        let jp = (t1 - t2).max(0.0) as u64;
        let jm = (t1 + t2).max(0.0) as u64;
        let (ifp, ifm) = (jp >> level, jm >> level);
        let face = match ifp.cmp(&ifm) {
            std::cmp::Ordering::Equal => ifp | 4,
            std::cmp::Ordering::Less => ifp,
            std::cmp::Ordering::Greater => ifm + 8,
        };
        (jm & (nside - 1), nside - (jp & (nside - 1)) - 1, face)
    } else {
        let ntt = (tt as u64).min(3);
        let tp = tt - ntt as f64;
        let tmp = match za < 0.99 || !near_pole {
            true => n * (3.0 * (1.0 - za)).sqrt(),
            false => n * sth / ((1.0 + za) / 3.0).sqrt(),
        };
        let jp = ((tp * tmp) as u64).min(nside - 1);
        let jm = (((1.0 - tp) * tmp) as u64).min(nside - 1);
        match z >= 0.0 {
            true => (nside - jm - 1, nside - jp - 1, ntt),
            false => (jp, jm, ntt + 8),
        }
    };
    Some((face.min(11) << (2 * level)) + (spread(ix) | (spread(iy) << 1)))
}

/// The bits of `v` spread to the even bit positions (the nested index's interleaving).
fn spread(v: u64) -> u64 {
    (0..32).fold(0, |out, bit| out | (((v >> bit) & 1) << (2 * bit)))
}

/// The centre (`lon` in [0, 360), `lat`) in degrees of nested cell `cell` of `level`
/// (`cell` is taken modulo the cell count).
pub(crate) fn centre(level: u8, cell: u64) -> (f64, f64) {
    let level = level.min(MAX_LEVEL);
    let (lon, lat) = cdshealpix::nested::center(level, cell % cell_count(level));
    (lon.to_degrees().rem_euclid(360.0), lat.to_degrees())
}

/// Source cells binned by the HEALPix cell holding their centre: source flat indices sorted
/// by cell id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Membership {
    /// Cell ids, ascending.
    cells: Vec<u64>,
    /// The source flat index of each entry of `cells`.
    sources: Vec<u32>,
}

impl Membership {
    /// Bins source centres (`lon`, `lat` in degrees, one per source flat index); centres not
    /// on the sphere belong to no cell.
    pub(crate) fn new(level: u8, centres: impl IntoIterator<Item = (f64, f64)>) -> Membership {
        let mut pairs: Vec<(u64, u32)> = centres
            .into_iter()
            .enumerate()
            .filter_map(|(s, (lon, lat))| Some((cell_of(level, lon, lat)?, u32::try_from(s).ok()?)))
            .collect();
        pairs.sort_unstable();
        Membership {
            cells: pairs.iter().map(|p| p.0).collect(),
            sources: pairs.iter().map(|p| p.1).collect(),
        }
    }

    /// (row, source, 1) for the sources binned in `cells`, row `k` being cell `cells.start + k`.
    pub(crate) fn triplets(&self, cells: Range<u64>) -> Vec<(u32, u32, f64)> {
        let a = self.cells.partition_point(|&c| c < cells.start);
        let b = self.cells.partition_point(|&c| c < cells.end);
        (a..b)
            .filter_map(|i| {
                let row = u32::try_from(self.cells.get(i)? - cells.start).ok()?;
                Some((row, *self.sources.get(i)?, 1.0))
            })
            .collect()
    }

    /// Rows for the cells `cells`: the sources binned in each, with weight 1.
    #[cfg(test)]
    pub(crate) fn rows(&self, cells: Range<u64>) -> SparseWeights {
        let n = usize::try_from(cells.end.saturating_sub(cells.start)).unwrap_or(0);
        SparseWeights::from_triplets(n, self.triplets(cells))
    }
}

#[cfg(test)]
mod tests;
