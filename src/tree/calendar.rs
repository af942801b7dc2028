//! CF time units and calendar arithmetic for joining time coordinates.
//!
//! This module owns two things: parsing CF `"<unit> since <reference>"` strings
//! into [`TimeUnits`], and the calendar arithmetic (day numbering for the CF
//! calendars) needed to re-encode a time value from one file's units into
//! another's. It is pure and stateless: it does not read files or attributes,
//! does not handle fill values or masking, does not format dates, and does not
//! decide which file's units win; callers pass strings in and get numbers out.

/// Seconds in one day; every CF calendar has fixed-length days.
const SECS_PER_DAY: f64 = 86_400.0;
/// Largest absolute year accepted, keeping day offsets well inside f64 precision.
const MAX_YEAR: i64 = 1_000_000;
/// Days before each month in a 365-day year (add one after February in leap years).
const CUM_365: [i64; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];

/// A CF calendar (the `calendar` attribute of a time coordinate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calendar {
    /// Mixed Julian/Gregorian: Julian up to 1582-10-04, Gregorian from 1582-10-15.
    Standard,
    /// Gregorian leap rules for all dates; year 0 exists.
    ProlepticGregorian,
    /// Every year has 365 days; year 0 exists.
    NoLeap,
    /// Every year has 366 days; year 0 exists.
    AllLeap,
    /// Twelve 30-day months; year 0 exists.
    Day360,
    /// Leap year every 4 years for all dates.
    Julian,
}

impl Calendar {
    /// Parses a CF calendar name, case-insensitively: `"standard"`/`"gregorian"`,
    /// `"proleptic_gregorian"`, `"noleap"`/`"365_day"`, `"all_leap"`/`"366_day"`,
    /// `"360_day"`, `"julian"`. An absent attribute (`None`) means [`Calendar::Standard`].
    pub fn from_cf(name: Option<&str>) -> Result<Calendar, CalendarError> {
        let Some(raw) = name else {
            return Ok(Calendar::Standard);
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "standard" | "gregorian" => Ok(Calendar::Standard),
            "proleptic_gregorian" => Ok(Calendar::ProlepticGregorian),
            "noleap" | "365_day" => Ok(Calendar::NoLeap),
            "all_leap" | "366_day" => Ok(Calendar::AllLeap),
            "360_day" => Ok(Calendar::Day360),
            "julian" => Ok(Calendar::Julian),
            _ => Err(CalendarError::UnknownCalendar {
                name: raw.to_string(),
            }),
        }
    }

    /// The canonical CF name of this calendar.
    pub fn cf_name(self) -> &'static str {
        match self {
            Calendar::Standard => "standard",
            Calendar::ProlepticGregorian => "proleptic_gregorian",
            Calendar::NoLeap => "noleap",
            Calendar::AllLeap => "all_leap",
            Calendar::Day360 => "360_day",
            Calendar::Julian => "julian",
        }
    }

    /// Day number of a date, validating it. Standard, proleptic_gregorian and julian
    /// share the Julian Day Number; the idealised calendars count from year 0.
    fn day_number(self, y: i64, m: i64, d: i64) -> Result<i64, String> {
        if y.abs() > MAX_YEAR {
            return Err(format!("year {y} is outside ±{MAX_YEAR}"));
        }
        if y <= 0 && matches!(self, Calendar::Standard | Calendar::Julian) {
            return Err(format!("year {y} is before 1 (no year 0 here)"));
        }
        if !(1..=12).contains(&m) {
            return Err(format!("month {m} is not in 1..=12"));
        }
        let gregorian_leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let leap = match self {
            Calendar::NoLeap | Calendar::Day360 => false,
            Calendar::AllLeap => true,
            Calendar::Julian => y % 4 == 0,
            Calendar::Standard if y < 1582 => y % 4 == 0,
            Calendar::Standard | Calendar::ProlepticGregorian => gregorian_leap,
        };
        let idx = (m - 1) as usize;
        let month_len = match self {
            Calendar::Day360 => 30,
            _ if m == 2 && leap => 29,
            _ => CUM_365[idx + 1] - CUM_365[idx],
        };
        if !(1..=month_len).contains(&d) {
            return Err(format!("day {d} is not in 1..={month_len} for month {m}"));
        }
        Ok(match self {
            Calendar::Day360 => y * 360 + (m - 1) * 30 + d - 1,
            Calendar::NoLeap => y * 365 + CUM_365[idx] + d - 1,
            Calendar::AllLeap => y * 366 + CUM_365[idx] + i64::from(m > 2) + d - 1,
            Calendar::ProlepticGregorian => jdn(y, m, d, true),
            Calendar::Julian => jdn(y, m, d, false),
            Calendar::Standard => match (y, m, d) {
                ymd if ymd >= (1582, 10, 15) => jdn(y, m, d, true),
                ymd if ymd <= (1582, 10, 4) => jdn(y, m, d, false),
                _ => return Err("dates 1582-10-05..=1582-10-14 do not exist".to_string()),
            },
        })
    }
}

/// Julian Day Number of an astronomical-year date in the Gregorian or Julian calendar.
fn jdn(y: i64, m: i64, d: i64, gregorian: bool) -> i64 {
    let a = (14 - m) / 12;
    let yy = y + 4800 - a;
    let mm = m + 12 * a - 3;
    let base = d + (153 * mm + 2) / 5 + 365 * yy + yy.div_euclid(4);
    if gregorian {
        base - yy.div_euclid(100) + yy.div_euclid(400) - 32045
    } else {
        base - 32083
    }
}

/// Parsed CF time units: unit length, reference instant and calendar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeUnits {
    /// Length of one unit in seconds.
    unit_seconds: f64,
    /// Reference instant: day number in `calendar`.
    ref_day: i64,
    /// Reference instant: seconds into `ref_day`, in `0.0..86400.0`.
    ref_sec: f64,
    calendar: Calendar,
}

impl TimeUnits {
    /// Parses CF `"<unit> since <date>[ <time>][ <tz>]"` for `calendar`.
    ///
    /// Units (case-insensitive): seconds/second/secs/sec/s, minutes/minute/mins/min,
    /// hours/hour/hrs/hr/h, days/day/d, weeks/week, milliseconds/millisecond/msecs/msec/ms,
    /// microseconds/microsecond/usecs/usec/us. Months and years are rejected as ambiguous.
    /// Dates are `Y-M-D` (optionally negative year), time `H[:M[:S[.f]]]` separated by a
    /// space or `T`, and an optional zone `Z`, `UTC`, `GMT` or `±HH[:MM]`.
    pub fn parse(units: &str, calendar: Calendar) -> Result<TimeUnits, CalendarError> {
        let bad = |reason: String| CalendarError::BadUnits {
            units: units.to_string(),
            reason,
        };
        let mut tokens = units.split_whitespace();
        let unit = tokens.next().ok_or_else(|| bad("empty".into()))?;
        match tokens.next() {
            Some(s) if s.eq_ignore_ascii_case("since") => {}
            _ => return Err(bad("expected \"<unit> since <date>\"".into())),
        }
        let unit_seconds = unit_seconds(unit).map_err(bad)?;
        let rest: Vec<&str> = tokens.collect();
        let (date, mut time, mut extra) = match rest.first() {
            None => return Err(bad("missing reference date".into())),
            Some(tok) => match tok.split_once(['T', 't']) {
                Some((date, time)) => (date, Some(time), &rest[1..]),
                None => (*tok, None, &rest[1..]),
            },
        };
        let is_clock = |t: &&str| t.starts_with(|c: char| c.is_ascii_digit());
        if time.is_none() && extra.first().is_some_and(is_clock) {
            time = Some(extra[0]);
            extra = &extra[1..];
        }
        let mut tz = 0.0;
        let mut time_secs = 0.0;
        if let Some(t) = time {
            let (clock, zone) = split_zone(t);
            time_secs = parse_time(clock).map_err(bad)?;
            if let Some(z) = zone {
                tz = parse_zone(z).map_err(bad)?;
            }
        }
        match extra {
            [] => {}
            [z] if time.is_none_or(|t| split_zone(t).1.is_none()) => {
                tz = parse_zone(z).map_err(bad)?;
            }
            _ => return Err(bad(format!("trailing text {:?}", extra.join(" ")))),
        }
        let (y, m, d) = parse_date(date).map_err(bad)?;
        let day = calendar
            .day_number(y, m, d)
            .map_err(|reason| CalendarError::InvalidDate {
                units: units.to_string(),
                calendar,
                reason,
            })?;
        let sec = time_secs - tz;
        let shift = (sec / SECS_PER_DAY).floor();
        Ok(TimeUnits {
            unit_seconds,
            ref_day: day + shift as i64,
            ref_sec: sec - shift * SECS_PER_DAY,
            calendar,
        })
    }

    /// The calendar these units were parsed for.
    pub fn calendar(&self) -> Calendar {
        self.calendar
    }

    /// Re-encodes `value` (in `self`'s units) as the same instant in `target`'s units.
    ///
    /// Both must use the same calendar, else [`CalendarError::CalendarMismatch`].
    /// The reference offset is computed from whole day numbers plus seconds of day, so
    /// results are exact for whole seconds within f64 precision. NaN/inf propagate.
    pub fn convert(&self, value: f64, target: &TimeUnits) -> Result<f64, CalendarError> {
        if self.calendar != target.calendar {
            return Err(CalendarError::CalendarMismatch {
                from: self.calendar,
                to: target.calendar,
            });
        }
        let offset =
            (self.ref_day - target.ref_day) as f64 * SECS_PER_DAY + (self.ref_sec - target.ref_sec);
        if self.unit_seconds == target.unit_seconds {
            // Same unit: avoid a multiply/divide round trip on the value itself.
            return Ok(value + offset / target.unit_seconds);
        }
        Ok((value * self.unit_seconds + offset) / target.unit_seconds)
    }
}

/// Errors from calendar names, units strings and conversions.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The calendar attribute is not a CF calendar this module supports.
    #[error("unknown CF calendar {name:?}")]
    UnknownCalendar {
        /// The name as given.
        name: String,
    },
    /// The units string is malformed or uses an unsupported unit.
    #[error("invalid CF time units {units:?}: {reason}")]
    BadUnits {
        /// The units string as given.
        units: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The reference date is well formed but does not exist in the calendar.
    #[error("reference date of {units:?} is invalid in the {} calendar: {reason}", .calendar.cf_name())]
    InvalidDate {
        /// The units string as given.
        units: String,
        /// The calendar it was parsed for.
        calendar: Calendar,
        /// Why the date is invalid.
        reason: String,
    },
    /// A conversion was asked for between units of different calendars.
    #[error("cannot convert times from the {} calendar to the {} calendar", .from.cf_name(), .to.cf_name())]
    CalendarMismatch {
        /// Calendar of the source units.
        from: Calendar,
        /// Calendar of the target units.
        to: Calendar,
    },
}

fn unit_seconds(unit: &str) -> Result<f64, String> {
    Ok(match unit.to_ascii_lowercase().as_str() {
        "microseconds" | "microsecond" | "usecs" | "usec" | "us" => 1e-6,
        "milliseconds" | "millisecond" | "msecs" | "msec" | "ms" => 1e-3,
        "seconds" | "second" | "secs" | "sec" | "s" => 1.0,
        "minutes" | "minute" | "mins" | "min" => 60.0,
        "hours" | "hour" | "hrs" | "hr" | "h" => 3600.0,
        "days" | "day" | "d" => SECS_PER_DAY,
        "weeks" | "week" => 7.0 * SECS_PER_DAY,
        u if u.contains("month") || u.contains("year") || matches!(u, "yr" | "yrs" | "a") => {
            return Err(format!("unit {unit:?} has no fixed length (ambiguous)"));
        }
        _ => return Err(format!("unknown time unit {unit:?}")),
    })
}

/// Splits a trailing `Z` or `±zone` off a clock string like `12:00:00+00:00`.
fn split_zone(t: &str) -> (&str, Option<&str>) {
    if let Some(clock) = t.strip_suffix(['Z', 'z']) {
        return (clock, Some("Z"));
    }
    match t.find(['+', '-']) {
        Some(i) if i > 0 => (&t[..i], Some(&t[i..])),
        _ => (t, None),
    }
}

fn digits(s: &str, what: &str) -> Result<i64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 12 {
        return Err(format!("bad {what} {s:?}"));
    }
    s.parse().map_err(|_| format!("bad {what} {s:?}"))
}

fn parse_date(s: &str) -> Result<(i64, i64, i64), String> {
    let (sign, body) = match s.strip_prefix('-') {
        Some(b) => (-1, b),
        None => (1, s),
    };
    let parts: Vec<&str> = body.split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(format!("reference date {s:?} is not Y-M-D"));
    };
    let y = sign * digits(y, "year")?;
    Ok((y, digits(m, "month")?, digits(d, "day")?))
}

fn parse_time(s: &str) -> Result<f64, String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.is_empty() || parts.len() > 3 {
        return Err(format!("bad time of day {s:?}"));
    }
    let h = digits(parts[0], "hour")?;
    let m = parts.get(1).map_or(Ok(0), |p| digits(p, "minute"))?;
    let sec = match parts.get(2) {
        None => 0.0,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !p.starts_with('.') => {
            p.parse::<f64>().map_err(|_| format!("bad second {p:?}"))?
        }
        Some(p) => return Err(format!("bad second {p:?}")),
    };
    if h > 23 || m > 59 || sec >= 60.0 {
        return Err(format!("time of day {s:?} out of range"));
    }
    Ok((h * 3600 + m * 60) as f64 + sec)
}

/// Parses a zone designator into its offset east of UTC, in seconds.
fn parse_zone(z: &str) -> Result<f64, String> {
    if ["z", "utc", "gmt"].contains(&z.to_ascii_lowercase().as_str()) {
        return Ok(0.0);
    }
    let (sign, body) = match (z.strip_prefix('+'), z.strip_prefix('-')) {
        (Some(b), _) => (1, b),
        (_, Some(b)) => (-1, b),
        _ => return Err(format!("bad time zone {z:?}")),
    };
    let (h, m) = match body.split_once(':') {
        Some((h, m)) => (h, m),
        None if body.len() == 4 && body.is_ascii() => body.split_at(2),
        None => (body, "0"),
    };
    let (h, m) = (digits(h, "zone hour")?, digits(m, "zone minute")?);
    if h > 23 || m > 59 {
        return Err(format!("time zone {z:?} out of range"));
    }
    Ok((sign * (h * 3600 + m * 60)) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Calendar::*;

    const ALL: [Calendar; 6] = [
        Standard,
        ProlepticGregorian,
        Julian,
        NoLeap,
        AllLeap,
        Day360,
    ];

    fn tu(units: &str, cal: Calendar) -> TimeUnits {
        TimeUnits::parse(units, cal).unwrap_or_else(|e| panic!("{units}: {e}"))
    }

    /// Each row: (value, from units, to units, calendar, expected value in `to`).
    fn check(cases: &[(f64, &str, &str, Calendar, f64)]) {
        for &(v, from, to, cal, want) in cases {
            let got = tu(from, cal)
                .convert(v, &tu(to, cal))
                .expect("same calendar");
            assert_eq!(got, want, "{v} {from} -> {to} ({cal:?})");
        }
    }

    fn invalid_date(units: &str, cal: Calendar) -> bool {
        matches!(
            TimeUnits::parse(units, cal),
            Err(CalendarError::InvalidDate { .. })
        )
    }

    #[test]
    fn calendar_names() {
        assert_eq!(Calendar::from_cf(None).ok(), Some(Standard));
        for (name, cal) in [
            ("Gregorian", Standard),
            ("PROLEPTIC_GREGORIAN", ProlepticGregorian),
            ("365_day", NoLeap),
            ("366_day", AllLeap),
            (" 360_day ", Day360),
        ] {
            assert_eq!(Calendar::from_cf(Some(name)).ok(), Some(cal), "{name}");
        }
        for cal in ALL {
            assert_eq!(Calendar::from_cf(Some(cal.cf_name())).ok(), Some(cal));
        }
        let err = Calendar::from_cf(Some("lunar"));
        assert!(matches!(err, Err(CalendarError::UnknownCalendar { name }) if name == "lunar"));
    }

    // Unless marked "hand", expected values came from cftime 1.6.6.1 as
    // cftime.date2num(cftime.num2date(value, from, calendar), to, calendar).
    #[test]
    fn hours_to_days_and_small_units() {
        let (h, d) = ("hours since 2000-01-01", "days since 2000-01-01");
        let (s, ms) = ("seconds since 2000-01-01", "milliseconds since 2000-01-01");
        let (us, w) = ("microseconds since 2000-01-01", "weeks since 2000-01-01");
        let (min, hr) = ("min since 2000-01-01", "hrs since 2000-01-01");
        check(&[
            (36.0, h, d, Standard, 1.5),
            (1.5, d, h, NoLeap, 36.0),
            (1500.0, ms, s, Standard, 1.5),
            (1e6, us, s, Julian, 1.0),     // hand: 1e6 us = 1 s
            (2.0, w, d, Day360, 14.0),     // hand: 2 * 7 days
            (90.0, min, hr, AllLeap, 1.5), // hand: 90 min = 1.5 h
        ]);
    }

    #[test]
    fn unix_epoch_vs_1900_standard() {
        let (s, d) = ("seconds since 1970-01-01 00:00:00", "days since 1900-01-01");
        // hand: 70 * 365 + 17 leap days (1904..=1968) = 25567.
        check(&[
            (0.0, s, d, Standard, 25567.0),
            (25567.0, d, s, Standard, 0.0),
        ]);
        // 1e9 s = 2001-09-09T01:46:40; cftime gives 37141.07407407407.
        let got = tu(s, Standard).convert(1e9, &tu(d, Standard)).ok();
        assert!(
            got.is_some_and(|x| (x - 37141.07407407407).abs() < 1e-9),
            "{got:?}"
        );
        // 0001-01-01 proleptic is the well-known Unix time -62135596800; the mixed
        // calendar's 0001-01-01 (Julian) is 2 days earlier.
        let (a, b) = ("seconds since 1-1-1", "seconds since 1970-01-01");
        check(&[
            (0.0, a, b, ProlepticGregorian, -62135596800.0),
            (0.0, a, b, Standard, -62135769600.0),
        ]);
    }

    #[test]
    fn leap_days_in_each_calendar() {
        // 1900-02-28 + 1 day vs 1900-03-01: 1900 is leap only in julian/all_leap
        // (Feb 29 = -1); 360_day lands on Feb 29 of a 30-day February (-2).
        let (a, b) = ("days since 1900-02-28", "days since 1900-03-01");
        let expect = [0.0, 0.0, -1.0, 0.0, -1.0, -2.0];
        // hand: 90 days after 2000-01-01 in hours since 1999-12-01 is (31 + 90) * 24
        // everywhere but 360_day, whose December has 30 days: (30 + 90) * 24.
        let (c, d) = ("days since 2000-01-01", "hours since 1999-12-01 00:00:00");
        let expect2 = [2904.0, 2904.0, 2904.0, 2904.0, 2904.0, 2880.0];
        for (i, cal) in ALL.into_iter().enumerate() {
            check(&[(1.0, a, b, cal, expect[i]), (90.0, c, d, cal, expect2[i])]);
        }
        assert!(invalid_date("days since 2001-02-29", NoLeap));
        assert!(TimeUnits::parse("days since 2001-02-29", AllLeap).is_ok());
    }

    #[test]
    fn feb_30_only_in_360_day() {
        check(&[(
            0.0,
            "days since 2000-02-30",
            "days since 2000-03-01",
            Day360,
            -1.0,
        )]);
        for cal in [Standard, ProlepticGregorian, Julian, NoLeap, AllLeap] {
            assert!(invalid_date("days since 2000-02-30", cal), "{cal:?}");
        }
    }

    #[test]
    fn gregorian_switch_1582() {
        let (a, b) = ("days since 1582-10-04", "days since 1582-10-15");
        // 1500-03-01 .. 1600-03-01 is 36525 days of Julian rules, less the 10 skipped.
        let (c, d) = ("days since 1500-03-01", "days since 1600-03-01");
        check(&[
            (1.0, a, b, Standard, 0.0),
            (1.0, a, b, ProlepticGregorian, -10.0),
            (1.0, a, b, Julian, -10.0),
            (0.0, c, d, Standard, -36515.0),
            (0.0, c, d, ProlepticGregorian, -36525.0),
            (0.0, c, d, Julian, -36525.0),
        ]);
        assert!(invalid_date("days since 1582-10-10", Standard));
        assert!(TimeUnits::parse("days since 1582-10-10", ProlepticGregorian).is_ok());
    }

    #[test]
    fn year_zero_and_day_one() {
        let to = "days since 1-01-01";
        check(&[
            (0.0, "days since 0-01-01", to, ProlepticGregorian, -366.0),
            (0.0, "days since -1-01-01", to, ProlepticGregorian, -731.0),
            (0.0, "days since 0-01-01", to, Day360, -360.0),
            (0.0, "days since 0-01-01", to, NoLeap, -365.0),
        ]);
        for cal in [Standard, Julian] {
            assert!(invalid_date("days since 0-01-01", cal));
            assert!(invalid_date("days since -1-01-01", cal));
        }
        let expect = [
            -730121.0, -730119.0, -730134.0, -729635.0, -731634.0, -719640.0,
        ];
        for (cal, want) in ALL.into_iter().zip(expect) {
            check(&[(0.0, "days since 1-1-1", "days since 2000-01-01", cal, want)]);
        }
    }

    #[test]
    fn reference_formats() {
        let base = tu("days since 2000-01-01", Standard);
        for u in [
            "days since 2000-1-1",
            "days since 2000-01-01 00:00:00",
            "days since 2000-01-01T00:00:00",
            "days since 2000-01-01 00:00:00.0",
            "days since 2000-01-01 00:00:00Z",
            "days since 2000-01-01 00:00:00 UTC",
            "days since 2000-01-01T00:00:00+00:00",
            "Days Since 2000-01-01 00:00 +0000",
            "d since 2000-01-01 00",
        ] {
            assert_eq!(tu(u, Standard), base, "{u}");
        }
        let (a, b) = (
            "hours since 2000-01-01 00:00 +06:00",
            "hours since 1999-12-31 18:00",
        );
        let (c, d) = (
            "minutes since 2000-01-01T12:30:00Z",
            "days since 2000-01-01",
        );
        check(&[
            (0.0, a, b, Standard, 0.0),
            (0.0, c, d, Standard, 0.5208333333333334),
        ]);
        assert_eq!(tu("days since 1-1-1", Julian).calendar(), Julian);
    }

    #[test]
    fn parse_errors() {
        for u in [
            "",
            "days",
            "days since",
            "days after 2000-01-01",
            "months since 2000-01-01",
            "years since 2000-01-01",
            "fortnights since 2000-01-01",
            "days since 2000-01",
            "days since 2000/01/01",
            "days since 2000-13-01",
            "days since 2000-01-00",
            "days since 2000-01-01 24:00:00",
            "days since 2000-01-01 12:60",
            "days since 2000-01-01 00:00:1e1",
            "days since 2000-01-01 00:00:00 +25:00",
            "days since 2000-01-01 00:00:00 EST",
            "days since 2000-01-01 00:00:00 UTC extra",
        ] {
            assert!(TimeUnits::parse(u, Standard).is_err(), "{u:?} should fail");
        }
        let err = TimeUnits::parse("months since 2000-01-01", Day360);
        assert!(matches!(err, Err(CalendarError::BadUnits { .. })));
    }

    #[test]
    fn calendar_mismatch() {
        let (a, b) = (
            tu("days since 2000-01-01", NoLeap),
            tu("days since 2000-01-01", Standard),
        );
        let err = a.convert(1.0, &b);
        let msg = err
            .as_ref()
            .map_or_else(|e| e.to_string(), |_| String::new());
        assert!(msg.contains("noleap") && msg.contains("standard"), "{msg}");
        let expected = CalendarError::CalendarMismatch {
            from: NoLeap,
            to: Standard,
        };
        assert!(matches!(err, Err(e) if e.to_string() == expected.to_string()));
    }
}
