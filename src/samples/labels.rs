//! Looking labels up in a coordinate, as xarray's `.sel` does: a label slice is inclusive and
//! taken in the coordinate's own order whichever way it is written; a scalar or a list matches
//! labels exactly. Time coordinates (CF `units` "… since …") take ISO strings, read in the
//! coordinate's calendar (cftime calendars too).

use crate::tree::calendar::{Calendar, TimeUnits};

use super::descriptor::{Label, Selection};

/// The indices one line picks along one dimension.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub(crate) enum Pick {
    /// `count` indices from `start`, `step` apart.
    Run { start: u64, count: u64, step: u64 },
    /// One index: the dimension is dropped.
    One(u64),
    /// These indices, in this order.
    List(Vec<u64>),
}

impl Pick {
    /// The whole of a dimension of length `len`.
    pub(crate) fn whole(len: u64) -> Pick {
        Pick::Run {
            start: 0,
            count: len,
            step: 1,
        }
    }

    /// Its length in the sample (`None`: dropped).
    pub(crate) fn len(&self) -> Option<u64> {
        match self {
            Pick::Run { count, .. } => Some(*count),
            Pick::One(_) => None,
            Pick::List(list) => Some(list.len() as u64),
        }
    }

    /// The indices, in sample order.
    pub(crate) fn indices(&self) -> Vec<u64> {
        match self {
            Pick::Run { start, count, step } => (0..*count).map(|i| start + i * step).collect(),
            Pick::One(i) => vec![*i],
            Pick::List(list) => list.clone(),
        }
    }
}

/// A coordinate's values, as labels are looked up in them.
#[derive(Debug)]
pub(crate) struct Axis {
    pub(crate) name: String,
    pub(crate) values: Vec<f64>,
    /// Whether the values are float32 (a label also matches its float32 rounding).
    pub(crate) single: bool,
    /// The CF time units, for time coordinates.
    pub(crate) time: Option<TimeUnits>,
}

/// Time labels match within this many units (sub-microsecond for seconds).
const TIME_TOLERANCE: f64 = 1e-6;

impl Axis {
    /// The value of `label` in the coordinate's units.
    fn value(&self, label: &Label) -> Result<f64, String> {
        match (label, &self.time) {
            (Label::Number(n), _) => Ok(*n),
            (Label::Text(text), Some(units)) => {
                let at = TimeUnits::parse(&format!("seconds since {text}"), units.calendar())
                    .map_err(|_| {
                        format!(
                            "{}: {text:?} is not a date in the {} calendar",
                            self.name,
                            units.calendar().cf_name()
                        )
                    })?;
                at.convert(0.0, units).map_err(|e| e.to_string())
            }
            (Label::Text(text), None) => Err(format!(
                "{}: {text:?} is text, but {} is not a time coordinate",
                self.name, self.name
            )),
        }
    }

    fn tolerance(&self) -> f64 {
        if self.time.is_some() {
            TIME_TOLERANCE
        } else {
            0.0
        }
    }

    /// The first and last index of the values in `[lo, hi]` when they are contiguous (a
    /// binary search on a monotonic coordinate), `Err(())` when they are not.
    fn within(&self, lo: f64, hi: f64) -> Result<Option<(usize, usize)>, ()> {
        let v = &self.values;
        let inside = |x: f64| x >= lo && x <= hi;
        let ascending = v.windows(2).all(|w| w[0] < w[1]);
        let descending = !ascending && v.windows(2).all(|w| w[0] > w[1]);
        let (first, end) = if ascending {
            (
                v.partition_point(|&x| x < lo),
                v.partition_point(|&x| x <= hi),
            )
        } else if descending {
            (
                v.partition_point(|&x| x > hi),
                v.partition_point(|&x| x >= lo),
            )
        } else {
            let found: Vec<usize> = (0..v.len()).filter(|&i| inside(v[i])).collect();
            return match (found.first(), found.last()) {
                (Some(&a), Some(&b)) if b - a + 1 == found.len() => Ok(Some((a, b))),
                (Some(_), Some(_)) => Err(()),
                _ => Ok(None),
            };
        };
        Ok((first < end).then(|| (first, end - 1)))
    }

    /// The index of `label`.
    fn find(&self, label: &Label) -> Result<u64, String> {
        let want = self.value(label)?;
        let tol = self.tolerance();
        let exact = self.within(want - tol, want + tol).ok().flatten();
        let single = || {
            let rounded = want as f32 as f64;
            (self.single && rounded != want)
                .then(|| self.within(rounded, rounded).ok().flatten())
                .flatten()
        };
        exact
            .or_else(single)
            .map(|(first, _)| first as u64)
            .ok_or_else(|| format!("{} has no label {label}", self.name))
    }

    /// The indices `selection` picks.
    pub(crate) fn pick(&self, selection: &Selection) -> Result<Pick, String> {
        match selection {
            Selection::One(label) => Ok(Pick::One(self.find(label)?)),
            Selection::List(labels) => labels
                .iter()
                .map(|l| self.find(l))
                .collect::<Result<Vec<u64>, String>>()
                .map(Pick::List),
            Selection::Range { start, end, step } => {
                let (a, b) = (self.value(start)?, self.value(end)?);
                let tol = self.tolerance();
                let (lo, hi) = (a.min(b) - tol, a.max(b) + tol);
                let (first, last) = match self.within(lo, hi) {
                    Ok(Some(found)) => found,
                    Ok(None) => {
                        return Err(format!(
                            "no label of {} lies in [{start}, {end}]",
                            self.name
                        ))
                    }
                    Err(()) => {
                        return Err(format!(
                            "{} is not monotonic, so [{start}, {end}] is not a slice of it",
                            self.name
                        ))
                    }
                };
                let span = (last - first) as u64;
                Ok(Pick::Run {
                    start: first as u64,
                    count: span / step + 1,
                    step: *step,
                })
            }
        }
    }
}

/// The time units of a coordinate with CF `units` and `calendar` attributes, when they are
/// "<unit> since <date>".
///
/// # Errors
/// A time coordinate whose units or calendar are not understood.
pub(crate) fn time_units(
    units: Option<&str>,
    calendar: Option<&str>,
) -> Result<Option<TimeUnits>, String> {
    let Some(units) = units.filter(|u| u.to_ascii_lowercase().contains(" since ")) else {
        return Ok(None);
    };
    let calendar = Calendar::from_cf(calendar).map_err(|e| e.to_string())?;
    TimeUnits::parse(units, calendar)
        .map(Some)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(values: &[f64]) -> Axis {
        Axis {
            name: "latitude".into(),
            values: values.to_vec(),
            single: false,
            time: None,
        }
    }

    fn range(a: f64, b: f64, step: u64) -> Selection {
        Selection::Range {
            start: Label::Number(a),
            end: Label::Number(b),
            step,
        }
    }

    #[test]
    fn slices_are_inclusive_in_either_order_and_in_the_coordinates_order() {
        let descending = axis(&[50.0, 49.0, 48.0, 47.0, 46.0]);
        let want = Pick::Run {
            start: 1,
            count: 3,
            step: 1,
        };
        assert_eq!(descending.pick(&range(49.0, 47.0, 1)).unwrap(), want);
        assert_eq!(descending.pick(&range(47.0, 49.0, 1)).unwrap(), want);
        assert_eq!(
            descending.pick(&range(50.0, 46.0, 2)).unwrap().indices(),
            [0, 2, 4]
        );
        assert!(descending
            .pick(&range(60.0, 70.0, 1))
            .unwrap_err()
            .contains("no label of latitude lies in [60, 70]"));
    }

    #[test]
    fn scalars_and_lists_match_exactly() {
        let a = axis(&[0.0, 0.25, 0.5]);
        assert_eq!(
            a.pick(&Selection::One(Label::Number(0.5))).unwrap(),
            Pick::One(2)
        );
        assert_eq!(
            a.pick(&Selection::List(vec![
                Label::Number(0.5),
                Label::Number(0.0)
            ]))
            .unwrap()
            .indices(),
            [2, 0]
        );
        assert_eq!(
            a.pick(&Selection::One(Label::Number(0.3))).unwrap_err(),
            "latitude has no label 0.3"
        );
    }

    #[test]
    fn time_labels_are_read_in_the_coordinates_calendar() {
        let units = time_units(Some("days since 2000-01-01"), Some("360_day"))
            .unwrap()
            .unwrap();
        // Day 59 of a 360-day calendar is 2000-02-30.
        let time = Axis {
            name: "time".into(),
            values: (0..90).map(f64::from).collect(),
            single: false,
            time: Some(units),
        };
        assert_eq!(
            time.pick(&Selection::One(Label::Text("2000-02-30".into())))
                .unwrap(),
            Pick::One(59)
        );
        let hours = Axis {
            time: time_units(Some("hours since 2023-01-01"), None).unwrap(),
            values: (0..48).map(f64::from).collect(),
            ..time
        };
        assert_eq!(
            hours
                .pick(&Selection::Range {
                    start: Label::Text("2023-01-01T03".into()),
                    end: Label::Text("2023-01-01 06:00".into()),
                    step: 1
                })
                .unwrap(),
            Pick::Run {
                start: 3,
                count: 4,
                step: 1
            }
        );
        assert!(hours
            .pick(&Selection::One(Label::Text("tomorrow".into())))
            .is_err());
    }
}
