//! Checks of a dataset's config against its files: every dimension, key, variable and attribute
//! the config names (`concat_dim`, `chunks`, a fix rule's `match` keys, variables and promoted
//! global attributes) must exist in some file of the dataset. A failure is a config error, which
//! refuses the whole config — unlike files that cannot be joined, which only leave their dataset
//! out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use super::fixes::FixSet;
use crate::sources::membership::{Layout, Member};
use crate::sources::model::{FileMeta, GroupMeta};

/// At most this many valid choices are listed in a message.
const LISTED: usize = 24;

/// `names` as a comma-separated list, shortened after [`LISTED`] entries.
fn listing<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let names: Vec<&String> = names.into_iter().collect();
    let mut text = names
        .iter()
        .take(LISTED)
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LISTED {
        text.push_str(&format!(", … ({} in all)", names.len()));
    }
    if text.is_empty() {
        text.push_str("none");
    }
    text
}

/// Every dimension name of `group` and its subgroups (declared or used by a variable).
fn dims_of(group: &GroupMeta, out: &mut BTreeSet<String>) {
    out.extend(group.dims.iter().map(|d| d.name.clone()));
    for var in &group.vars {
        out.extend(var.dims.iter().cloned());
    }
    for child in &group.groups {
        dims_of(child, out);
    }
}

/// Every variable and dimension name of `group` and its subgroups.
fn names_of(group: &GroupMeta, out: &mut BTreeSet<String>) {
    dims_of(group, out);
    out.extend(group.vars.iter().map(|v| v.name.clone()));
    for child in &group.groups {
        names_of(child, out);
    }
}

/// The join dimension must be a dimension of at least one file (after its fixes).
///
/// # Errors
/// A message naming the key and the dimensions of the first file.
pub(crate) fn concat_dim(layout: &Layout, files: &[&FileMeta], key: &str) -> Result<(), String> {
    let Some(dim) = layout.concat_dim.as_deref() else {
        return Ok(());
    };
    let mut first = BTreeSet::new();
    for (i, file) in files.iter().enumerate() {
        let mut dims = BTreeSet::new();
        dims_of(&file.root, &mut dims);
        if dims.contains(dim) {
            return Ok(());
        }
        if i == 0 {
            first = dims;
        }
    }
    let example = files.first().map_or("", |f| f.path.as_str());
    Err(format!(
        "{key} = {dim:?} is not a dimension of any of its {} file(s) (dimensions of {example}: {})",
        files.len(),
        listing(&first)
    ))
}

/// Every `chunks` key must be a dimension of some file (after its fixes) or a new dimension.
///
/// # Errors
/// A message naming the key and listing the dataset's dimensions.
pub(crate) fn chunks(
    overrides: &BTreeMap<String, u64>,
    layout: &Layout,
    files: &[&FileMeta],
) -> Result<(), String> {
    let mut dims: BTreeSet<String> = layout.new_dims.iter().cloned().collect();
    for file in files {
        dims_of(&file.root, &mut dims);
    }
    match overrides.keys().find(|k| !dims.contains(*k)) {
        None => Ok(()),
        Some(unknown) => Err(format!(
            "chunks: {unknown:?} is not a dimension of the dataset (dimensions: {})",
            listing(&dims)
        )),
    }
}

/// A fix rule's `match` keys must be keys of the dataset's files, and the variables and
/// dimensions its actions name must exist in some file (before fixes) or be made by a rename.
///
/// # Errors
/// A message naming the fix file, the rule, the action and the valid choices.
pub(crate) fn fix_names(
    fixes: &FixSet,
    path: &Path,
    files: &[(Arc<FileMeta>, &Member)],
    layout: &Layout,
) -> Result<(), String> {
    let mut keys: BTreeSet<String> = layout.kinds.keys().cloned().collect();
    for (_, member) in files {
        keys.extend(member.keys.keys().cloned());
    }
    let mut names = BTreeSet::new();
    for (meta, _) in files {
        names_of(&meta.root, &mut names);
    }
    for rule in &fixes.rules {
        names.extend(rule.rename.values().cloned());
        names.extend(rule.promote_attrs.values().cloned());
    }
    let mut globals = BTreeSet::new();
    for (meta, _) in files {
        globals.extend(meta.root.attrs.iter().map(|a| a.name.clone()));
    }
    for rule in &fixes.rules {
        for name in rule.set_attrs.get(".").into_iter().flat_map(|a| a.keys()) {
            globals.insert(name.clone());
        }
    }
    let fail = |number: usize, what: String| {
        Err(format!(
            "fix file {}: rule {number}: {what}",
            path.display()
        ))
    };
    for (i, rule) in fixes.rules.iter().enumerate() {
        if let Some(key) = rule.match_keys.keys().find(|k| !keys.contains(*k)) {
            return fail(
                i + 1,
                format!(
                    "match key {key:?} is not a key of the dataset's files (keys: {})",
                    listing(&keys)
                ),
            );
        }
        let global = |n: &&String| n.as_str() != ".";
        let named: [(&str, Vec<&String>); 9] = [
            ("drop_vars", rule.drop_vars.iter().collect()),
            ("rename", rule.rename.keys().collect()),
            ("flip", rule.flip.iter().collect()),
            ("coords", rule.coords.keys().collect()),
            ("scale", rule.scale.keys().collect()),
            ("cast", rule.cast.keys().collect()),
            ("fill_value", rule.fill_value.keys().collect()),
            ("set_attrs", rule.set_attrs.keys().filter(global).collect()),
            (
                "drop_attrs",
                rule.drop_attrs.keys().filter(global).collect(),
            ),
        ];
        if let Some(attr) = rule.promote_attrs.keys().find(|a| !globals.contains(*a)) {
            return fail(
                i + 1,
                format!(
                    "promote_attrs names global attribute {attr:?}, which no file of the dataset has (global attributes: {})",
                    listing(&globals)
                ),
            );
        }
        for (action, used) in named {
            if let Some(name) = used.into_iter().find(|n| !names.contains(*n)) {
                return fail(
                    i + 1,
                    format!(
                        "{action} names {name:?}, which no file of the dataset has (variables and dimensions: {})",
                        listing(&names)
                    ),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_listings_are_shortened() {
        let names: Vec<String> = (0..30).map(|i| format!("v{i:02}")).collect();
        let text = listing(&names);
        assert!(text.starts_with("v00, v01"), "{text}");
        assert!(text.ends_with("(30 in all)"), "{text}");
        assert_eq!(listing(&Vec::new()), "none");
    }
}
