//! `[[samples]]` tables: sample sets, each a descriptor file (JSONL) over a node of the tree.
//! Owns their keys and path resolution; what the descriptors select is checked when the tree
//! is built (`crate::samples`).

use std::path::Path;

use serde::Deserialize;

use super::{is_url, StorageSection};

/// One `[[samples]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplesConfig {
    /// Its path under the mount root (may contain `/`).
    pub name: String,
    /// The node of the tree the samples are cut from: a dataset, a group or a view.
    pub from: String,
    /// The descriptor file: a path (relative to the config file) or an object-store URL.
    pub descriptors: String,
    /// How to reach `descriptors` when it is an object-store URL.
    #[serde(default)]
    pub storage: StorageSection,
}

impl SamplesConfig {
    /// Checks the keys and resolves a relative `descriptors` against `base`.
    pub(super) fn resolve(&mut self, base: &Path) -> Result<(), String> {
        let valid = !self.name.is_empty()
            && self
                .name
                .split('/')
                .all(|s| !s.is_empty() && !s.starts_with('.') && !s.contains(char::is_control));
        if !valid {
            return Err(format!(
                "samples name {:?} must be a path of non-empty segments without '.' prefixes",
                self.name
            ));
        }
        if self.descriptors.is_empty() {
            return Err(format!("samples {:?}: `descriptors` is empty", self.name));
        }
        if !is_url(&self.descriptors) && Path::new(&self.descriptors).is_relative() {
            self.descriptors = base.join(&self.descriptors).to_string_lossy().into_owned();
        }
        Ok(())
    }

    /// The descriptor file's name, for messages (`boxes.jsonl`).
    pub fn file_name(&self) -> &str {
        self.descriptors
            .rsplit('/')
            .next()
            .unwrap_or(&self.descriptors)
    }
}
