//! Sample sets (`[[samples]]` tables): a descriptor file of ML training samples over a node of
//! the tree becomes a group where each variable is an array `(sample, *shape)` with one sample
//! per chunk — one uncompressed file a loader can `np.fromfile` — plus per-sample coordinates.
//!
//! | file | owns |
//! |---|---|
//! | `descriptor.rs` | parsing the JSONL descriptor file and its header |
//! | `labels.rs` | looking labels up in coordinates, as xarray's `.sel` |
//! | `resolve.rs` | resolving lines to picks and one sample shape; lines set aside |
//! | `operator.rs` | computing a sample from its picks through the region reader |
//! | `arrays.rs` | the arrays and attributes of a set's group |
//!
//! A set is built after the views, so it may cut from any dataset, group or view. A bad line is
//! reported and left out; a set with no good line, or whose file cannot be read, is left out.

mod arrays;
mod descriptor;
mod labels;
mod operator;
mod resolve;

use crate::config::{producer, MountConfig, Producer, SamplesConfig};
use crate::tree::{Tree, TreeError, TreeErrorKind};
use crate::views::RangeScans;

/// Lists line numbers as `line 3` or `lines 6, 9`.
fn lines_label(lines: &[usize]) -> String {
    let list: Vec<String> = lines.iter().map(usize::to_string).collect();
    match lines.len() {
        1 => format!("line {}", list[0]),
        _ => format!("lines {}", list.join(", ")),
    }
}

/// Adds every sample set of `config` to `tree`. A set whose source was left out, whose
/// descriptor file cannot be read or whose every line is bad is left out (in `tree.left_out`);
/// bad lines of the others are reported in `tree.notes`.
///
/// # Errors
/// [`TreeError`] of kind config when a set's `from` names nothing in the tree, or its name is
/// taken.
pub(crate) fn build(
    config: &MountConfig,
    tree: &mut Tree,
    next_id: &mut usize,
    scans: &RangeScans,
) -> Result<(), TreeError> {
    for set in &config.samples {
        let label = format!("samples {}", set.name);
        match build_one(config, set, tree, next_id, scans, &label) {
            Ok(()) => {}
            Err(e) if e.kind == TreeErrorKind::Data => {
                tracing::debug!("left out {}: {}", e.dataset, e.message);
                tree.left_out.push(e);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn build_one(
    config: &MountConfig,
    set: &SamplesConfig,
    tree: &mut Tree,
    next_id: &mut usize,
    scans: &RangeScans,
    label: &str,
) -> Result<(), TreeError> {
    let datasets: Vec<&str> = config.datasets.iter().map(|d| d.name.as_str()).collect();
    let views: Vec<&str> = config.views.iter().map(|v| v.name.as_str()).collect();
    let producer_name = match producer(&set.from, &datasets, &views) {
        Some(Producer::Dataset(i)) => datasets[i].to_owned(),
        Some(Producer::View(i)) => format!("view {}", views[i]),
        None => set.from.clone(),
    };
    if tree.left_out.iter().any(|e| e.dataset == producer_name) {
        return Err(TreeError::data(
            label,
            format!("it reads {}, which is left out", set.from),
        ));
    }
    let group = crate::views::group_at(tree, &set.from, label)?;
    let file = set.file_name();
    let text = scans
        .read_text(&set.descriptors, &set.storage)
        .map_err(|e| TreeError::data(label, format!("cannot read {}: {e}", set.descriptors)))?;
    let descriptors =
        descriptor::parse(&text).map_err(|e| TreeError::data(label, format!("{file} {e}")))?;
    let mut source = resolve::Source::new(&set.from, group, scans);
    let resolved = resolve::resolve(&mut source, &descriptors)
        .map_err(|e| TreeError::data(label, format!("{file}: {e}")))?;
    let reports: Vec<String> = resolved
        .bad
        .iter()
        .map(|(lines, why)| format!("{file} {}: {why}", lines_label(lines)))
        .collect();
    if resolved.picks.is_empty() {
        let first: Vec<&str> = reports.iter().take(3).map(String::as_str).collect();
        let why = if first.is_empty() {
            format!("{file} has no sample lines")
        } else {
            format!("no line is usable: {}", first.join("; "))
        };
        return Err(TreeError::data(label, why));
    }
    let built = arrays::group(&source, &resolved, &descriptors.header, set, next_id, &text);
    let lines_left_out = reports.len();
    for report in reports {
        tracing::warn!("{label}: {report}");
        tree.notes.push(format!("{label}: {report}"));
    }
    tracing::debug!(
        "{label}: {} samples ({lines_left_out} line(s) left out)",
        resolved.picks.len()
    );
    crate::views::place(tree, &set.name, built).map_err(|m| TreeError::config(label, m))
}
