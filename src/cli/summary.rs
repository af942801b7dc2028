//! The one line `atlasfs mount` prints once the mount is ready: what is served, what the index
//! could not use, and where the details are.

use std::path::Path;

use atlasfs::sources::catalog::IndexReport;
use atlasfs::tree::Tree;

/// What a mount serves and what it left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MountSummary {
    /// Datasets served.
    pub datasets: usize,
    /// Datasets left out because their data cannot be served.
    pub left_out: usize,
    /// Arrays served, in every dataset.
    pub arrays: usize,
    /// Source files indexed and served.
    pub files: usize,
    /// Files (or stores) the index could not use.
    pub skipped: usize,
    /// Files a glob matched but the dataset's pattern did not.
    pub unmatched: usize,
}

impl MountSummary {
    /// The summary of `tree`, built from an index that reported `report` and `files` usable
    /// source files.
    pub(super) fn new(tree: &Tree, report: &IndexReport, files: usize) -> Self {
        MountSummary {
            datasets: tree.root.children.len(),
            left_out: tree.left_out.len(),
            arrays: tree.arrays().len(),
            files,
            skipped: report.skipped.len(),
            unmatched: report.unmatched.len(),
        }
    }

    /// `mounted /atlas: 3 datasets, 41 arrays, 372 files indexed, 2 skipped (details: atlasfs
    /// index CONFIG, log LOG)`; the log is left out when logging to stderr.
    pub(super) fn line(&self, mountpoint: &Path, config: &Path, log: Option<&Path>) -> String {
        let mut datasets = counted(self.datasets, "dataset", "datasets");
        if self.left_out > 0 {
            datasets.push_str(&format!(" ({} left out)", self.left_out));
        }
        let mut line = format!(
            "mounted {}: {datasets}, {}, {} indexed, {} skipped",
            mountpoint.display(),
            counted(self.arrays, "array", "arrays"),
            counted(self.files, "file", "files"),
            self.skipped
        );
        if self.unmatched > 0 {
            line.push_str(&format!(", {} unmatched", self.unmatched));
        }
        let mut notes = Vec::new();
        if self.left_out + self.skipped + self.unmatched > 0 {
            notes.push(format!("details: atlasfs index {}", config.display()));
        }
        if let Some(log) = log {
            notes.push(format!("log {}", tidy(log).display()));
        }
        if !notes.is_empty() {
            line.push_str(&format!(" ({})", notes.join(", ")));
        }
        line
    }
}

/// `log` with its directory resolved (`configs/../cache/atlasfs.log` → `/srv/cache/atlasfs.log`)
/// when that directory exists, else as given.
fn tidy(log: &Path) -> std::path::PathBuf {
    match (log.parent(), log.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|dir| dir.join(name))
            .unwrap_or_else(|_| log.to_path_buf()),
        _ => log.to_path_buf(),
    }
}

fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_every_count_and_where_the_details_are() {
        let summary = MountSummary {
            datasets: 3,
            left_out: 0,
            arrays: 41,
            files: 372,
            skipped: 2,
            unmatched: 0,
        };
        assert_eq!(
            summary.line(
                Path::new("/atlas"),
                Path::new("/c.toml"),
                Some(Path::new("/l.log"))
            ),
            "mounted /atlas: 3 datasets, 41 arrays, 372 files indexed, 2 skipped \
             (details: atlasfs index /c.toml, log /l.log)"
        );
    }

    #[test]
    fn left_out_datasets_and_unmatched_files_are_counted_when_there_are_any() {
        let summary = MountSummary {
            datasets: 1,
            left_out: 1,
            arrays: 1,
            files: 1,
            skipped: 0,
            unmatched: 4,
        };
        assert_eq!(
            summary.line(Path::new("/a"), Path::new("c"), None),
            "mounted /a: 1 dataset (1 left out), 1 array, 1 file indexed, 0 skipped, \
             4 unmatched (details: atlasfs index c)"
        );
    }

    #[test]
    fn a_clean_index_points_to_the_log_only() {
        let summary = MountSummary {
            datasets: 1,
            left_out: 0,
            arrays: 2,
            files: 60,
            skipped: 0,
            unmatched: 0,
        };
        assert_eq!(
            summary.line(Path::new("/a"), Path::new("c"), Some(Path::new("/l.log"))),
            "mounted /a: 1 dataset, 2 arrays, 60 files indexed, 0 skipped (log /l.log)"
        );
    }
}
