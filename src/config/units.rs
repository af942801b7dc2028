//! Sizes and durations as a config writes them (`"512MiB"`, `4096`, `"1h30m"`), and the serde
//! helpers that read them into bytes and [`Duration`]s.

use std::time::Duration;

use serde::Deserialize;

/// Parses a byte size such as `"512MiB"`, `"50GiB"`, `"1.5GB"` or `"4096"`.
///
/// # Errors
/// A message when the text is not a number with an optional unit.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like \"512MiB\""))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        other => return Err(format!("unknown size unit {other:?} in {text:?}")),
    };
    Ok((number * factor) as u64)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Number(u64),
    Text(String),
}

pub(super) fn de_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match SizeValue::deserialize(d)? {
        SizeValue::Number(n) => Ok(n),
        SizeValue::Text(t) => parse_size(&t).map_err(serde::de::Error::custom),
    }
}

/// Parses a duration such as `"30s"`, `"10m"`, `"1h"`, `"1h30m"` or `"500ms"` (units `ms`, `s`,
/// `m`/`min`, `h`, `d`).
///
/// # Errors
/// A message when the text is not a sequence of numbers each followed by a unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration like \"30s\", \"10m\" or \"1h\"");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = rest[digits..].trim_start();
        let letters = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let seconds = match rest[..letters].to_ascii_lowercase().as_str() {
            "ms" => 1e-3,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => return Err(format!("{text:?}: a duration needs a unit (s, m, h, …)")),
            other => return Err(format!("unknown duration unit {other:?} in {text:?}")),
        };
        rest = rest[letters..].trim_start();
        total += Duration::try_from_secs_f64(number * seconds).map_err(|_| invalid())?;
    }
    Ok(total)
}

/// `refresh`: a duration of at least a second.
pub(super) fn de_refresh<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    let every = parse_duration(&text).map_err(serde::de::Error::custom)?;
    if every < Duration::from_secs(1) {
        return Err(serde::de::Error::custom(format!(
            "refresh = {text:?} is too short; use at least \"1s\""
        )));
    }
    Ok(Some(every))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("50GiB").unwrap(), 50 << 30);
        assert_eq!(parse_size("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("12 parsecs").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(
            parse_duration("1h 30min").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        for bad in ["", "10", "m", "10 fortnights", "-5s", "1s2"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
