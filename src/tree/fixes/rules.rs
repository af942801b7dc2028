//! The fix file format and its parsing. Unknown keys and actions are errors that name the file
//! and the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A fix file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("fix file {path}: {message}")]
pub struct FixError {
    /// The fix file.
    pub path: PathBuf,
    /// What is wrong (TOML errors include the line number).
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixFile {
    #[serde(default)]
    fix: Vec<Rule>,
}

/// Values of a coordinate: a list, or a start and a step.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CoordValues {
    /// Explicit values.
    List(Vec<f64>),
    /// `start + i * step`.
    Range {
        /// First value.
        start: f64,
        /// Increment.
        step: f64,
    },
}

/// A time-encoding override.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeFix {
    /// The time variable (its bounds follow it).
    #[serde(default = "default_time_var")]
    pub var: String,
    /// New `units`.
    #[serde(default)]
    pub units: Option<String>,
    /// New `calendar`.
    #[serde(default)]
    pub calendar: Option<String>,
}

fn default_time_var() -> String {
    "time".to_owned()
}

/// One rule: where it applies and what it does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Keys (pattern fields or catalog columns) that must all equal these values.
    #[serde(default, rename = "match")]
    pub match_keys: BTreeMap<String, toml::Value>,
    /// A glob on the path relative to the dataset's base directory.
    #[serde(default)]
    pub match_path: Option<String>,
    /// Variables to leave out.
    #[serde(default)]
    pub drop_vars: Vec<String>,
    /// Variables and/or dimensions to rename.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Dimensions to reverse (coordinate and data).
    #[serde(default)]
    pub flip: Vec<String>,
    /// Coordinate values to replace.
    #[serde(default)]
    pub coords: BTreeMap<String, CoordValues>,
    /// Factors to multiply variables by.
    #[serde(default)]
    pub scale: BTreeMap<String, f64>,
    /// Types to cast variables to (numpy names).
    #[serde(default)]
    pub cast: BTreeMap<String, String>,
    /// `_FillValue` to declare or override.
    #[serde(default)]
    pub fill_value: BTreeMap<String, f64>,
    /// Time encoding to impose.
    #[serde(default)]
    pub time: Option<TimeFix>,
    /// Attributes to set, per variable (`"."` for global attributes).
    #[serde(default)]
    pub set_attrs: BTreeMap<String, BTreeMap<String, toml::Value>>,
    /// Attributes to remove, per variable (`"."` for global attributes).
    #[serde(default)]
    pub drop_attrs: BTreeMap<String, Vec<String>>,
    /// Global attributes to turn into variables (attribute → variable name).
    #[serde(default)]
    pub promote_attrs: BTreeMap<String, String>,
}

impl Rule {
    /// Whether the rule applies to a file with these keys and this relative path.
    pub fn matches(&self, keys: &BTreeMap<String, String>, relative: &str) -> bool {
        let keys_match = self.match_keys.iter().all(|(k, want)| {
            let want = match want {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            keys.get(k) == Some(&want)
        });
        let path_matches = self
            .match_path
            .as_deref()
            .is_none_or(|glob| glob::Pattern::new(glob).is_ok_and(|p| p.matches(relative)));
        keys_match && path_matches
    }
}

/// The rules of one fix file.
#[derive(Debug, Clone)]
pub struct FixSet {
    /// The file's name, for `history` and reports.
    pub name: String,
    /// Rules in file order.
    pub rules: Vec<Rule>,
}

impl FixSet {
    /// Reads and validates a fix file.
    ///
    /// # Errors
    /// [`FixError`] naming the file (and the line, for unknown keys or bad values).
    pub fn load(path: &Path) -> Result<FixSet, FixError> {
        let fail = |message: String| FixError {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let file: FixFile =
            toml::from_str(&text).map_err(|e| fail(e.to_string().trim_end().to_owned()))?;
        for (i, rule) in file.fix.iter().enumerate() {
            if let Some(glob) = &rule.match_path {
                glob::Pattern::new(glob)
                    .map_err(|e| fail(format!("rule {}: match_path: {e}", i + 1)))?;
            }
            for dtype in rule.cast.values() {
                if super::apply::parse_dtype(dtype).is_none() {
                    return Err(fail(format!(
                        "rule {}: unknown dtype {dtype:?} in cast",
                        i + 1
                    )));
                }
            }
        }
        Ok(FixSet {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            rules: file.fix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FixSet, FixError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::write(&path, text).unwrap();
        FixSet::load(&path)
    }

    #[test]
    fn unknown_actions_name_the_line() {
        let err =
            parse("[[fix]]\nrename = { a = \"b\" }\n\n[[fix]]\nsqueeze = [\"x\"]\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("line 5") && text.contains("squeeze"),
            "{text}"
        );
    }

    #[test]
    fn rules_match_keys_and_paths() {
        let set = parse("[[fix]]\nmatch = { model = \"ISSM\", year = 2015 }\nmatch_path = \"JPL1/**\"\nscale = { x = 1000.0 }\n").unwrap();
        let rule = &set.rules[0];
        let keys: BTreeMap<String, String> = [
            ("model".into(), "ISSM".into()),
            ("year".into(), "2015".into()),
        ]
        .into();
        assert!(rule.matches(&keys, "JPL1/ISSM/a.nc"));
        assert!(!rule.matches(&keys, "UCI/ISSM/a.nc"));
        let other: BTreeMap<String, String> = [("model".into(), "BISICLES".into())].into();
        assert!(!rule.matches(&other, "JPL1/x.nc"));
    }
}
