//! Path patterns: `{key}`, `{key:d}` and `{key:%Y%m}` fields matched against a file's path
//! relative to its glob's base directory, giving the keys that structure a dataset (DataTree
//! levels, merged variables, new dimensions). Also the typed values of those keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fancy_regex::Regex;

/// How a key's text is interpreted when it becomes a coordinate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    /// Any text within one path segment.
    Text,
    /// An integer.
    Int,
    /// A date in the given strftime-like format (`%Y %m %d %H %M %S`).
    Date(String),
}

/// A compiled path pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    regex: Regex,
    /// Capture group i+1 holds key `names[i]`; a key that appears again is a back-reference.
    names: Vec<String>,
    kinds: BTreeMap<String, FieldKind>,
}

/// A pattern that cannot be compiled.
#[derive(Debug, thiserror::Error)]
#[error("invalid pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// What is wrong.
    pub reason: String,
}

impl Pattern {
    /// Compiles `text`.
    ///
    /// # Errors
    /// [`PatternError`] for unbalanced braces, empty keys, unknown `%` codes or a key used with
    /// two different kinds.
    pub fn new(text: &str) -> Result<Pattern, PatternError> {
        let fail = |reason: String| PatternError {
            pattern: text.to_owned(),
            reason,
        };
        let mut regex = String::from("^");
        let mut names = Vec::new();
        let mut kinds: BTreeMap<String, FieldKind> = BTreeMap::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            regex.push_str(&fancy_regex::escape(&rest[..open]));
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| fail("a '{' is not closed".into()))?
                + open;
            let field = &rest[open + 1..close];
            let (name, spec) = field.split_once(':').unwrap_or((field, ""));
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(fail(format!("bad key name {name:?}")));
            }
            let (kind, part) = match spec {
                "" => (FieldKind::Text, "[^/]+?".to_owned()),
                "d" => (FieldKind::Int, "[+-]?[0-9]+".to_owned()),
                fmt if fmt.contains('%') => (
                    FieldKind::Date(fmt.to_owned()),
                    date_regex(fmt).map_err(fail)?,
                ),
                other => {
                    return Err(fail(format!(
                        "unknown field format {other:?} (use d or %Y%m-style)"
                    )))
                }
            };
            if let Some(previous) = kinds.insert(name.to_owned(), kind.clone()) {
                if previous != kind {
                    return Err(fail(format!("key {name} is used with two formats")));
                }
            }
            match names.iter().position(|n| n == name) {
                // A repeated key must match the same text: a back-reference, so the engine
                // backtracks to the split where all occurrences agree.
                Some(first) => regex.push_str(&format!("\\{}", first + 1)),
                None => {
                    regex.push('(');
                    regex.push_str(&part);
                    regex.push(')');
                    names.push(name.to_owned());
                }
            }
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(fail("a '}' has no '{'".into()));
        }
        regex.push_str(&fancy_regex::escape(rest));
        regex.push('$');
        let regex = Regex::new(&regex).map_err(|e| fail(e.to_string()))?;
        Ok(Pattern {
            text: text.to_owned(),
            regex,
            names,
            kinds,
        })
    }

    /// The pattern text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The kind of every key.
    pub fn kinds(&self) -> &BTreeMap<String, FieldKind> {
        &self.kinds
    }

    /// The keys of `relative` (a path relative to the base directory), or `None` if it does not
    /// match (including a key that appears twice with different values).
    pub fn match_path(&self, relative: &str) -> Option<BTreeMap<String, String>> {
        let captures = self.regex.captures(relative).ok()??;
        let mut keys = BTreeMap::new();
        for (i, name) in self.names.iter().enumerate() {
            keys.insert(name.clone(), captures.get(i + 1)?.as_str().to_owned());
        }
        Some(keys)
    }
}

fn date_regex(format: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push_str(&fancy_regex::escape(&c.to_string()));
            continue;
        }
        out.push_str(match chars.next() {
            Some('Y') => "[0-9]{4}",
            Some('m' | 'd' | 'H' | 'M' | 'S') => "[0-9]{2}",
            Some('j') => "[0-9]{3}",
            other => return Err(format!("unknown date code %{}", other.unwrap_or(' '))),
        });
    }
    Ok(out)
}

/// Seconds since 1970-01-01 (proleptic Gregorian) of `text` in `format`; `None` if invalid.
pub fn parse_date(text: &str, format: &str) -> Option<i64> {
    let (mut year, mut month, mut day, mut hour, mut minute, mut second, mut doy) =
        (None, 1i64, 1i64, 0i64, 0i64, 0i64, None);
    let mut rest = text;
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            rest = rest.strip_prefix(c)?;
            continue;
        }
        let code = chars.next()?;
        let width = match code {
            'Y' => 4,
            'j' => 3,
            _ => 2,
        };
        let (digits, tail) = rest.split_at_checked(width)?;
        let value: i64 = digits.parse().ok()?;
        rest = tail;
        match code {
            'Y' => year = Some(value),
            'm' => month = value,
            'd' => day = value,
            'H' => hour = value,
            'M' => minute = value,
            'S' => second = value,
            'j' => doy = Some(value),
            _ => return None,
        }
    }
    let year = year?;
    if !rest.is_empty()
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = match doy {
        Some(doy) => days_from_civil(year, 1, 1) + doy - 1,
        None => days_from_civil(year, month, day),
    };
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The directory a glob starts from: its components before the first one with a wildcard.
pub fn glob_base(glob: &str) -> PathBuf {
    let mut base = PathBuf::new();
    for component in Path::new(glob).components() {
        let text = component.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[', '{']) {
            break;
        }
        base.push(component);
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_match_within_segments() {
        let p = Pattern::new(
            "{group}/{model}/{experiment}/{variable}_AIS_{group}_{model}_{experiment}.nc",
        )
        .unwrap();
        let keys = p
            .match_path("JPL1/ISSM/exp05/lithk_AIS_JPL1_ISSM_exp05.nc")
            .unwrap();
        assert_eq!(keys["group"], "JPL1");
        assert_eq!(keys["model"], "ISSM");
        assert_eq!(keys["variable"], "lithk");
        assert!(
            p.match_path("JPL1/ISSM/exp05/lithk_AIS_JPL1_OTHER_exp05.nc")
                .is_none(),
            "repeated key must agree"
        );
        assert!(p
            .match_path("JPL1/ISSM/exp05/extra/lithk_AIS_JPL1_ISSM_exp05.nc")
            .is_none());
    }

    #[test]
    fn integer_and_date_fields() {
        let p = Pattern::new("{polygon_id:d}/{injection_date:%Y%m}/{run}.nc").unwrap();
        let keys = p.match_path("12/202004/experiment.nc").unwrap();
        assert_eq!(keys["polygon_id"], "12");
        assert_eq!(keys["injection_date"], "202004");
        assert!(p.match_path("x/202004/experiment.nc").is_none());
        assert_eq!(p.kinds()["injection_date"], FieldKind::Date("%Y%m".into()));
        // 2020-04-01 is 18353 days after 1970-01-01 (date -d 2020-04-01 +%s / 86400).
        assert_eq!(parse_date("202004", "%Y%m"), Some(18_353 * 86_400));
        assert_eq!(parse_date("202013", "%Y%m"), None);
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(Pattern::new("{model").is_err());
        assert!(Pattern::new("{a:%Q}").is_err());
        assert!(Pattern::new("{a:d}/{a}").is_err());
    }

    #[test]
    fn glob_base_stops_at_the_first_wildcard() {
        assert_eq!(
            glob_base("/data/ismip6/**/*.nc"),
            PathBuf::from("/data/ismip6")
        );
        assert_eq!(glob_base("/data/sst_*.nc"), PathBuf::from("/data"));
    }
}
