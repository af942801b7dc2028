//! `[view.regrid]`: the method, the target grid (`lat`/`lon` ranges, a `crs` with `x`/`y`
//! ranges, or `like` another node of the tree) and the NaN threshold of a regrid view, checked
//! whole so every error names the view and the value given.

use serde::{Deserialize, Serialize};

/// How source values become target values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegridMethod {
    /// Linear in both dimensions between source centres, as `xarray.interp(method="linear")`.
    Bilinear,
    /// Area-weighted mean of the overlapping source cells, normalised by the valid fraction.
    Conservative,
    /// The nearest source centre, as `xarray.interp(method="nearest")`.
    Nearest,
    /// Mean of the source values whose centres fall in the target cell.
    Mean,
    /// Smallest of those values.
    Min,
    /// Largest of those values.
    Max,
    /// Population standard deviation of those values.
    Std,
    /// Median of those values.
    Median,
    /// How many valid values fall in the target cell.
    Count,
}

impl RegridMethod {
    /// Whether the method bins source centres into target cells (a statistic).
    pub fn is_statistic(self) -> bool {
        !matches!(
            self,
            RegridMethod::Bilinear | RegridMethod::Conservative | RegridMethod::Nearest
        )
    }
}

/// An evenly spaced axis: `start` and `stop` are the first and last cell centres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxisRange {
    /// The first centre.
    pub start: f64,
    /// The last centre (inclusive).
    pub stop: f64,
    /// The spacing, negative for a descending axis.
    pub step: f64,
}

impl AxisRange {
    /// Number of centres, or why the range describes none.
    pub fn len(&self) -> Result<usize, String> {
        if !(self.start.is_finite() && self.stop.is_finite() && self.step.is_finite()) {
            return Err("start, stop and step must be finite".into());
        }
        if self.step == 0.0 || (self.stop - self.start) * self.step < 0.0 {
            return Err(format!(
                "step {} does not lead from {} to {}",
                self.step, self.start, self.stop
            ));
        }
        // The same count as the regrid kernels' regular axes: a stop within 1e-9 steps of the
        // last centre counts as reached.
        let n = ((self.stop - self.start) / self.step + 1e-9).floor() + 1.0;
        if n > 1e7 {
            return Err(format!("{n} cells is more than 10,000,000"));
        }
        Ok(n as usize)
    }

    /// Whether the range is empty (it never is once checked).
    pub fn is_empty(&self) -> bool {
        self.len().is_ok_and(|n| n == 0)
    }

    /// The centres.
    pub fn centres(&self) -> Vec<f64> {
        let n = self.len().unwrap_or(0);
        (0..n).map(|i| self.start + i as f64 * self.step).collect()
    }
}

/// The grid a regrid view writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum TargetGrid {
    /// Latitude and longitude centres (dimensions `lat`, `lon`).
    LatLon {
        /// Latitudes.
        lat: AxisRange,
        /// Longitudes.
        lon: AxisRange,
    },
    /// Projected centres in metres of `crs` (dimensions `y`, `x`).
    Projected {
        /// `EPSG:<code>`.
        crs: String,
        /// Eastings.
        x: AxisRange,
        /// Northings.
        y: AxisRange,
    },
    /// The grid of another group of the tree.
    Like {
        /// Its tree path.
        like: String,
    },
    /// Nested HEALPix cells covering the sphere (one dimension, `cell`).
    Healpix {
        /// The HEALPix parameters.
        healpix: HealpixGrid,
    },
}

/// `healpix = { level = N }`: 12·4^N nested cells.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealpixGrid {
    /// The refinement level (nside = 2^level), 0 to 20.
    pub level: i64,
}

impl HealpixGrid {
    /// The level, when it is within 0-20.
    pub fn depth(&self) -> Option<u8> {
        u8::try_from(self.level)
            .ok()
            .filter(|&l| l <= crate::operators::kernels::regrid::healpix::MAX_LEVEL)
    }
}

fn one() -> f64 {
    1.0
}

/// `[view.regrid]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegridParams {
    /// The method.
    pub method: RegridMethod,
    /// The target grid.
    pub grid: TargetGrid,
    /// xarray-regrid's `nan_threshold` (xESMF's `na_thres`): how much of a target cell may be
    /// missing before it is NaN (default 1.0: any valid source value gives a value).
    #[serde(default = "one")]
    pub nan_threshold: f64,
    /// The source's CRS (`EPSG:<code>`) when its grid has no CF `grid_mapping`.
    #[serde(default)]
    pub source_crs: Option<String>,
    /// Side of the square output chunks along the two grid dimensions (default 256), or the
    /// cells per chunk of a HEALPix target (default 4^min(level, 8)).
    #[serde(default)]
    pub chunk: Option<u64>,
    /// Chunk lengths by dimension name, overriding `chunk` and the one element per chunk along
    /// the other dimensions, e.g. `{ time = 30 }`.
    #[serde(default)]
    pub chunks: std::collections::BTreeMap<String, u64>,
    /// The codec (default none).
    #[serde(default = "super::view::no_codec")]
    pub codec: super::view::Codec,
    /// The codec's level.
    #[serde(default)]
    pub level: Option<i32>,
}

impl RegridParams {
    /// The output chunk: its side along each of two grid dimensions, or its cells along a
    /// HEALPix target's `cell`.
    pub fn chunk_len(&self) -> u64 {
        match (&self.grid, self.chunk) {
            (_, Some(chunk)) => chunk,
            (TargetGrid::Healpix { healpix }, None) => {
                1 << (2 * healpix.depth().unwrap_or(0).min(8))
            }
            (_, None) => super::view::tile(),
        }
    }
}

/// Checks the values of a parsed `[view.regrid]`.
pub(crate) fn check(view: &str, params: &RegridParams) -> Result<(), String> {
    let axis = |name: &str, range: &AxisRange| {
        range
            .len()
            .map_err(|e| format!("view {view:?}: grid {name} {range:?}: {e}"))
    };
    match &params.grid {
        TargetGrid::LatLon { lat, lon } => {
            axis("lat", lat)?;
            axis("lon", lon)?;
            if lat.start.abs() > 90.0 || lat.stop.abs() > 90.0 {
                return Err(format!(
                    "view {view:?}: grid lat from {} to {} leaves [-90, 90]",
                    lat.start, lat.stop
                ));
            }
        }
        TargetGrid::Projected { crs, x, y } => {
            axis("x", x)?;
            axis("y", y)?;
            check_crs(view, "grid crs", crs)?;
        }
        TargetGrid::Like { like } => {
            if like.trim_matches('/').is_empty() {
                return Err(format!("view {view:?}: grid like names no tree path"));
            }
        }
        TargetGrid::Healpix { healpix } => {
            if healpix.depth().is_none() {
                return Err(format!(
                    "view {view:?}: grid healpix level {} must be within 0-20",
                    healpix.level
                ));
            }
            if params.method == RegridMethod::Conservative {
                return Err(format!(
                    "view {view:?}: conservative regridding to HEALPix cells is not supported; \
                     use mean or nearest"
                ));
            }
        }
    }
    if let Some(crs) = &params.source_crs {
        check_crs(view, "source_crs", crs)?;
    }
    if !params.nan_threshold.is_finite() || !(0.0..=1.0).contains(&params.nan_threshold) {
        return Err(format!(
            "view {view:?}: nan_threshold {} must be within 0-1",
            params.nan_threshold
        ));
    }
    if params.chunk == Some(0) {
        return Err(format!("view {view:?}: chunk must be at least 1"));
    }
    super::view::check_chunks(view, &params.chunks)?;
    super::view::check_level(view, params.codec, params.level)
}

fn check_crs(view: &str, key: &str, crs: &str) -> Result<(), String> {
    crate::operators::kernels::regrid::projection::Projection::from_epsg(crs)
        .map(|_| ())
        .map_err(|e| format!("view {view:?}: {key} {crs:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_count_their_centres() {
        let r = AxisRange {
            start: -89.5,
            stop: 89.5,
            step: 1.0,
        };
        assert_eq!(r.len(), Ok(180));
        let down = AxisRange {
            start: 89.5,
            stop: -89.5,
            step: -1.0,
        };
        assert_eq!(down.centres()[179], -89.5);
        let wrong = AxisRange {
            start: 0.0,
            stop: 10.0,
            step: -1.0,
        };
        assert!(wrong.len().is_err());
    }

    fn parsed(text: &str) -> RegridParams {
        toml::from_str(text).expect("a regrid table")
    }

    #[test]
    fn healpix_levels_are_checked_and_conservative_refused() {
        let good = parsed("method = \"mean\"\ngrid = { healpix = { level = 3 } }");
        assert_eq!(
            good.grid,
            TargetGrid::Healpix {
                healpix: HealpixGrid { level: 3 }
            }
        );
        assert_eq!(good.chunk_len(), 64);
        assert!(check("hp", &good).is_ok());
        assert_eq!(
            parsed("method = \"mean\"\ngrid = { healpix = { level = 12 } }").chunk_len(),
            65_536
        );
        let bad = parsed("method = \"mean\"\ngrid = { healpix = { level = 21 } }");
        let e = check("hp", &bad).unwrap_err();
        assert!(e.contains("\"hp\"") && e.contains("level 21"), "{e}");
        let negative = parsed("method = \"mean\"\ngrid = { healpix = { level = -1 } }");
        assert!(check("hp", &negative).is_err());
        let conservative = parsed("method = \"conservative\"\ngrid = { healpix = { level = 2 } }");
        let e = check("hp", &conservative).unwrap_err();
        assert!(
            e.contains("\"hp\"") && e.contains("use mean or nearest"),
            "{e}"
        );
        assert!(toml::from_str::<RegridParams>(
            "method = \"mean\"\ngrid = { healpix = { nside = 4 } }"
        )
        .is_err());
    }
}
