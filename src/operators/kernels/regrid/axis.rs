//! One coordinate axis of a rectilinear grid as a row of cells: centres in file order
//! (ascending or descending) and `[lower, upper]` bounds per cell. Cells come from CF bounds,
//! from centres (midpoints, ends extrapolated), or from a regular `{start, stop, step}` target.
//!
//! Latitude bounds are clipped to ±90, so a pole-centred cell of a 0.5° grid is `[89.75, 90]`.
//! A longitude axis whose cells cover 360° is periodic. Longitudes of any convention (0..360,
//! −180..180) are accepted; the weight builders compare them modulo 360.

use serde::{Deserialize, Serialize};

use super::RegridError;

/// Degrees in a full turn of longitude.
pub(crate) const TURN: f64 = 360.0;

/// What a coordinate measures: it decides how cell lengths are measured and whether it wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum AxisKind {
    /// Degrees north; cell length is `sin φ2 − sin φ1`; bounds clipped to ±90.
    Latitude,
    /// Degrees east; compared modulo 360; periodic when the cells cover 360°.
    Longitude,
    /// Any other coordinate (projected metres, ...): plain lengths, no wrap.
    Planar,
}

/// A row of cells along one axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Axis {
    name: String,
    kind: AxisKind,
    /// Centres in file order, strictly monotonic.
    centres: Vec<f64>,
    /// `[lower, upper]` per cell (in file order), `lower < upper`.
    bounds: Vec<[f64; 2]>,
    /// 360 for a longitude axis whose cells cover a full turn, else `None`.
    period: Option<f64>,
}

impl Axis {
    /// Cells from centres: bounds are midpoints between centres, the two ends extrapolated by half
    /// the neighbouring spacing; latitude bounds clipped to [-90, 90]. A longitude axis whose cells
    /// cover 360° (within 1e-6 of the spacing, or single-precision rounding of the coordinates)
    /// is periodic.
    ///
    /// # Errors
    /// [`RegridError::BadAxis`] for no centre, a single centre (its width is unknown), centres
    /// that are not finite or not strictly monotonic, latitudes outside ±90.
    pub(crate) fn from_centres(
        name: &str,
        kind: AxisKind,
        centres: Vec<f64>,
    ) -> Result<Axis, RegridError> {
        check_centres(name, kind, &centres)?;
        let n = centres.len();
        if n < 2 {
            return Err(bad(
                name,
                "a single centre without bounds has no cell width",
            ));
        }
        let mut edges = Vec::with_capacity(n + 1);
        edges.push(centres[0] - (centres[1] - centres[0]) / 2.0);
        edges.extend(centres.windows(2).map(|w| (w[0] + w[1]) / 2.0));
        edges.push(centres[n - 1] + (centres[n - 1] - centres[n - 2]) / 2.0);
        let bounds = edges
            .windows(2)
            .map(|w| [w[0].min(w[1]), w[0].max(w[1])])
            .collect();
        Axis::build(name, kind, centres, bounds)
    }

    /// Cells from CF bounds (`[n][2]`, either order inside a pair).
    ///
    /// # Errors
    /// [`RegridError::BadAxis`] as for [`Axis::from_centres`], and for bounds whose count differs
    /// from the centres', that are not finite, of zero width, or whose lower (upper) bounds are
    /// not monotonic in the direction of the centres.
    pub(crate) fn with_bounds(
        name: &str,
        kind: AxisKind,
        centres: Vec<f64>,
        bounds: Vec<[f64; 2]>,
    ) -> Result<Axis, RegridError> {
        check_centres(name, kind, &centres)?;
        if bounds.len() != centres.len() {
            return Err(bad(
                name,
                &format!("{} bounds for {} centres", bounds.len(), centres.len()),
            ));
        }
        if bounds.iter().flatten().any(|b| !b.is_finite()) {
            return Err(bad(name, "bounds are not all finite"));
        }
        let bounds: Vec<[f64; 2]> = bounds.iter().map(|&[a, b]| [a.min(b), a.max(b)]).collect();
        let ascending = centres.len() < 2 || centres[1] > centres[0];
        let monotonic = bounds.windows(2).all(|w| {
            let (first, second) = if ascending {
                (w[0], w[1])
            } else {
                (w[1], w[0])
            };
            first[0] <= second[0] && first[1] <= second[1]
        });
        if !monotonic {
            return Err(bad(name, "bounds are not monotonic like the centres"));
        }
        Axis::build(name, kind, centres, bounds)
    }

    /// Evenly spaced target axis: start, stop inclusive, step (as the config's `{start, stop,
    /// step}`); a stop within 1e-9 steps of the last centre counts as reached. Each cell is the
    /// centre ± step/2 (latitude clipped to ±90).
    ///
    /// # Errors
    /// [`RegridError::BadAxis`] for a zero or non-finite step, a step pointing away from `stop`,
    /// latitudes outside ±90.
    pub(crate) fn regular(
        name: &str,
        kind: AxisKind,
        start: f64,
        stop: f64,
        step: f64,
    ) -> Result<Axis, RegridError> {
        if !(start.is_finite() && stop.is_finite() && step.is_finite()) {
            return Err(bad(name, "start, stop and step must be finite"));
        }
        if step == 0.0 {
            return Err(bad(name, "the step is zero"));
        }
        let steps = (stop - start) / step;
        if steps < -1e-9 {
            return Err(bad(name, "the step points away from stop"));
        }
        let cells = (steps + 1e-9).floor() + 1.0;
        if cells > f64::from(u32::MAX) {
            return Err(bad(name, "too many cells"));
        }
        let centres: Vec<f64> = (0..cells as usize)
            .map(|i| start + i as f64 * step)
            .collect();
        check_centres(name, kind, &centres)?;
        let half = step.abs() / 2.0;
        let bounds = centres.iter().map(|&c| [c - half, c + half]).collect();
        Axis::build(name, kind, centres, bounds)
    }

    /// Clips latitude bounds, checks widths and finds whether the axis is periodic.
    fn build(
        name: &str,
        kind: AxisKind,
        centres: Vec<f64>,
        mut bounds: Vec<[f64; 2]>,
    ) -> Result<Axis, RegridError> {
        if kind == AxisKind::Latitude {
            for b in &mut bounds {
                *b = [b[0].clamp(-90.0, 90.0), b[1].clamp(-90.0, 90.0)];
            }
        }
        if bounds.iter().any(|b| b[1] <= b[0]) {
            return Err(bad(name, "a cell has zero width"));
        }
        let mut period = None;
        if kind == AxisKind::Longitude {
            let lowest = bounds.iter().map(|b| b[0]).fold(f64::INFINITY, f64::min);
            let highest = bounds
                .iter()
                .map(|b| b[1])
                .fold(f64::NEG_INFINITY, f64::max);
            let spacing = (highest - lowest) / bounds.len() as f64;
            // Coordinates stored as float32 carry ~2e-5 of rounding near 360.
            let tolerance = (1e-6 * spacing).max(4.0 * TURN * f64::from(f32::EPSILON));
            if (highest - lowest - TURN).abs() <= tolerance {
                period = Some(TURN);
            }
        }
        Ok(Axis {
            name: name.to_owned(),
            kind,
            centres,
            bounds,
            period,
        })
    }

    /// Number of cells.
    pub(crate) fn len(&self) -> usize {
        self.centres.len()
    }

    /// What the coordinate measures.
    pub(crate) fn kind(&self) -> AxisKind {
        self.kind
    }

    /// Centres in file order.
    pub(crate) fn centres(&self) -> &[f64] {
        &self.centres
    }

    /// `[lower, upper]` per cell in file order, `lower < upper`.
    pub(crate) fn bounds(&self) -> &[[f64; 2]] {
        &self.bounds
    }

    /// Whether the centres increase with the index (a single cell counts as ascending).
    pub(crate) fn is_ascending(&self) -> bool {
        self.centres.len() < 2 || self.centres[1] > self.centres[0]
    }

    /// Whether this is a longitude axis whose cells cover a full turn.
    pub(crate) fn is_periodic(&self) -> bool {
        self.period.is_some()
    }

    /// Whether coordinates of this axis compare modulo 360.
    pub(crate) fn wraps(&self) -> bool {
        self.kind == AxisKind::Longitude
    }

    /// The file index of the `k`-th cell in ascending order of coordinates.
    pub(crate) fn file_index(&self, k: usize) -> usize {
        if self.is_ascending() {
            k
        } else {
            self.len() - 1 - k
        }
    }

    /// Centres in ascending order.
    pub(crate) fn sorted_centres(&self) -> Vec<f64> {
        (0..self.len())
            .map(|k| self.centres[self.file_index(k)])
            .collect()
    }

    /// Bounds in ascending order of coordinates.
    pub(crate) fn sorted_bounds(&self) -> Vec<[f64; 2]> {
        (0..self.len())
            .map(|k| self.bounds[self.file_index(k)])
            .collect()
    }
}

/// Checks centres: at least one, finite, strictly monotonic, latitudes within ±90.
fn check_centres(name: &str, kind: AxisKind, centres: &[f64]) -> Result<(), RegridError> {
    if centres.is_empty() {
        return Err(bad(name, "no cell"));
    }
    if centres.len() > u32::MAX as usize {
        return Err(bad(name, "too many cells"));
    }
    if centres.iter().any(|c| !c.is_finite()) {
        return Err(bad(name, "coordinates are not all finite"));
    }
    let ascending = centres.windows(2).all(|w| w[1] > w[0]);
    let descending = centres.windows(2).all(|w| w[1] < w[0]);
    if !ascending && !descending {
        return Err(bad(name, "coordinates are not strictly monotonic"));
    }
    if kind == AxisKind::Latitude && centres.iter().any(|c| c.abs() > 90.0) {
        return Err(bad(name, "latitudes outside [-90, 90]"));
    }
    Ok(())
}

/// A [`RegridError::BadAxis`] for axis `name`.
fn bad(name: &str, reason: &str) -> RegridError {
    RegridError::BadAxis {
        axis: name.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn bounds_from_centres_are_midpoints_with_extrapolated_ends() {
        let axis = Axis::from_centres("x", AxisKind::Planar, vec![0.0, 1.0, 3.0, 7.0]).unwrap();
        let expected = [[-0.5, 0.5], [0.5, 2.0], [2.0, 5.0], [5.0, 9.0]];
        assert_eq!(axis.bounds(), &expected);
        assert!(axis.is_ascending());
        assert!(!axis.is_periodic());

        let down = Axis::from_centres("x", AxisKind::Planar, vec![7.0, 3.0, 1.0, 0.0]).unwrap();
        let expected = [[5.0, 9.0], [2.0, 5.0], [0.5, 2.0], [-0.5, 0.5]];
        assert_eq!(down.bounds(), &expected);
        assert!(!down.is_ascending());
        assert_eq!(down.file_index(0), 3);
    }

    #[test]
    fn latitude_bounds_are_clipped_at_the_poles() {
        let centres: Vec<f64> = (0..361).map(|i| 90.0 - 0.5 * i as f64).collect();
        let axis = Axis::from_centres("lat", AxisKind::Latitude, centres).unwrap();
        assert_eq!(axis.bounds()[0], [89.75, 90.0]);
        assert_eq!(axis.bounds()[360], [-90.0, -89.75]);
        assert_eq!(axis.bounds()[1], [89.25, 89.75]);
        let regular = Axis::regular("lat", AxisKind::Latitude, -90.0, 90.0, 1.0).unwrap();
        assert_eq!(regular.len(), 181);
        assert_eq!(regular.bounds()[0], [-90.0, -89.5]);
        assert_eq!(regular.bounds()[180], [89.5, 90.0]);
    }

    #[test]
    fn full_turn_longitudes_are_periodic_in_either_convention() {
        let east: Vec<f64> = (0..720).map(|i| 0.5 * i as f64).collect();
        assert!(Axis::from_centres("lon", AxisKind::Longitude, east.clone())
            .unwrap()
            .is_periodic());
        let west: Vec<f64> = (0..360).map(|i| -179.5 + i as f64).collect();
        assert!(Axis::from_centres("lon", AxisKind::Longitude, west)
            .unwrap()
            .is_periodic());
        // Float32-rounded coordinates of a 0.1° grid still cover the turn.
        let tenth: Vec<f64> = (0..3600)
            .map(|i| f64::from((0.1 * i as f64) as f32))
            .collect();
        assert!(Axis::from_centres("lon", AxisKind::Longitude, tenth)
            .unwrap()
            .is_periodic());
        let half: Vec<f64> = east[..360].to_vec();
        assert!(!Axis::from_centres("lon", AxisKind::Longitude, half)
            .unwrap()
            .is_periodic());
        assert!(!Axis::from_centres("x", AxisKind::Planar, east)
            .unwrap()
            .is_periodic());
        let target = Axis::regular("lon", AxisKind::Longitude, -180.0, 179.0, 1.0).unwrap();
        assert_eq!(target.len(), 360);
        assert!(target.is_periodic());
    }

    #[test]
    fn regular_counts_an_inclusive_stop_and_descends() {
        let axis = Axis::regular("lon", AxisKind::Longitude, 0.0, 359.9, 0.1).unwrap();
        assert_eq!(axis.len(), 3600);
        assert!(close(axis.centres()[3599], 359.9));
        let down = Axis::regular("lat", AxisKind::Latitude, 90.0, -90.0, -0.25).unwrap();
        assert_eq!(down.len(), 721);
        assert!(!down.is_ascending());
        assert_eq!(down.bounds()[1], [89.625, 89.875]);
        let one = Axis::regular("y", AxisKind::Planar, 5.0, 5.0, 2.0).unwrap();
        assert_eq!(one.bounds(), &[[4.0, 6.0]]);
    }

    #[test]
    fn cf_bounds_in_either_order() {
        let axis = Axis::with_bounds(
            "lat",
            AxisKind::Latitude,
            vec![80.0, 85.0, 89.0],
            vec![[77.5, 82.5], [87.5, 82.5], [87.5, 90.0]],
        )
        .unwrap();
        assert_eq!(axis.bounds(), &[[77.5, 82.5], [82.5, 87.5], [87.5, 90.0]]);
        let single = Axis::with_bounds("x", AxisKind::Planar, vec![1.0], vec![[2.0, 0.0]]).unwrap();
        assert_eq!(single.bounds(), &[[0.0, 2.0]]);
    }

    #[test]
    fn bad_axes_are_refused() {
        let planar = AxisKind::Planar;
        let cases = [
            Axis::from_centres("x", planar, vec![]),
            Axis::from_centres("x", planar, vec![1.0]),
            Axis::from_centres("x", planar, vec![0.0, f64::NAN, 2.0]),
            Axis::from_centres("x", planar, vec![0.0, 2.0, 1.0]),
            Axis::from_centres("x", planar, vec![0.0, 0.0]),
            Axis::from_centres("lat", AxisKind::Latitude, vec![89.0, 90.5]),
            Axis::regular("x", planar, 0.0, 1.0, 0.0),
            Axis::regular("x", planar, 0.0, 1.0, -0.5),
            Axis::regular("x", planar, 0.0, f64::INFINITY, 1.0),
            Axis::regular("lat", AxisKind::Latitude, -91.0, 0.0, 1.0),
            Axis::with_bounds("x", planar, vec![0.0, 1.0], vec![[0.0, 1.0]]),
            Axis::with_bounds("x", planar, vec![0.0], vec![[1.0, 1.0]]),
            Axis::with_bounds("x", planar, vec![0.0, 1.0], vec![[-0.5, 2.5], [0.5, 1.5]]),
        ];
        for (i, case) in cases.into_iter().enumerate() {
            match case {
                Err(RegridError::BadAxis { axis, .. }) => assert!(!axis.is_empty(), "case {i}"),
                other => panic!("case {i}: {other:?}"),
            }
        }
    }
}
