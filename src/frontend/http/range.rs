//! Conditional and partial requests: one `Range: bytes=…` range against a value's length, and
//! `If-None-Match` against its entity tag.

/// What a `Range` header asks of a value of some length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ranged {
    /// The whole value (no header, a form not understood, or several ranges).
    Whole,
    /// Bytes `start..=end`, within the value.
    Part(u64, u64),
    /// Nothing of the value is in the range.
    Unsatisfiable,
}

/// The range `header` asks of a value of `len` bytes; one range is served, anything else is
/// answered with the whole value (as RFC 9110 allows).
pub(super) fn ranged(header: &str, len: u64) -> Ranged {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ranged::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |text: &str| -> Option<u64> {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    match (first.is_empty(), number(first), number(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(suffix)) => {
            if suffix == 0 || len == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(len.saturating_sub(suffix), len - 1)
            }
        }
        (false, Some(start), None) if last.is_empty() => {
            if start >= len {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(start, len - 1)
            }
        }
        (false, Some(start), Some(end)) if end >= start => {
            if start >= len {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(start, end.min(len - 1))
            }
        }
        _ => Ranged::Whole,
    }
}

/// Whether an `If-None-Match` header names one of `tags` (or is `*`); weak tags compare by
/// their opaque part.
pub(super) fn none_match(header: &str, tags: &[&str]) -> bool {
    header.split(',').map(str::trim).any(|given| {
        given == "*" || {
            let given = given.strip_prefix("W/").unwrap_or(given);
            tags.contains(&given)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_range_is_served_and_clipped_to_the_value() {
        assert_eq!(ranged("bytes=0-9", 100), Ranged::Part(0, 9));
        assert_eq!(ranged("bytes=90-200", 100), Ranged::Part(90, 99));
        assert_eq!(ranged("bytes=10-", 100), Ranged::Part(10, 99));
        assert_eq!(ranged("bytes=-30", 100), Ranged::Part(70, 99));
        assert_eq!(ranged("bytes=-300", 100), Ranged::Part(0, 99));
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert_eq!(ranged("bytes=100-", 100), Ranged::Unsatisfiable);
        assert_eq!(ranged("bytes=100-120", 100), Ranged::Unsatisfiable);
        assert_eq!(ranged("bytes=-0", 100), Ranged::Unsatisfiable);
        assert_eq!(ranged("bytes=0-", 0), Ranged::Unsatisfiable);
    }

    #[test]
    fn other_forms_get_the_whole_value() {
        for header in [
            "items=0-1",
            "bytes=5-2",
            "bytes=0-1,4-5",
            "bytes=a-b",
            "bytes=+1-2",
        ] {
            assert_eq!(ranged(header, 100), Ranged::Whole, "{header}");
        }
    }

    #[test]
    fn if_none_match_names_a_tag_or_anything() {
        assert!(none_match("\"a\"", &["\"a\""]));
        assert!(none_match("W/\"b\", \"a\"", &["\"a\""]));
        assert!(none_match("*", &["\"a\""]));
        assert!(!none_match("\"b\"", &["\"a\""]));
    }
}
