//! The metadata documents of a tree snapshot: which keys are documents, what each one renders
//! and its exact length, without holding the documents themselves. Keys are paths from the
//! mount root, e.g. `sst/lat/.zarray`. Nothing is rendered or measured when a snapshot is
//! built: a key is a document when its directory is a node of the tree and its name one of
//! that node's documents. A document is rendered when it is read or its length asked
//! ([`Documents::bytes`]) and kept in a bounded cache of rendered documents ([`RenderedDocs`]);
//! a consolidated document's length is summed from its subtree's parts (see
//! [`consolidated`](super::consolidated)), measured once per group, so `stat` answers exactly
//! without rendering it.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use super::consolidated::{self, Parts};
use super::doc_cache::RenderedDocs;
use super::json::to_bytes;
use super::metadata::{array_v3, attributes, group_v3, zarray, zattrs_array};
use crate::config::ZarrFormat;
use crate::tree::{GroupNode, Node, NodeRef, Tree};

/// What a document renders, given the node at its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DocKind {
    /// An array's `zarr.json`.
    ArrayV3,
    /// An array's `.zarray`.
    ZArray,
    /// An array's `.zattrs` (with `_ARRAY_DIMENSIONS`).
    ArrayAttrs,
    /// The mount root's `zarr.json` (no consolidated metadata).
    RootV3,
    /// A group's `zarr.json` as its parent's consolidated metadata holds it (empty inline
    /// metadata); never served under a key of its own.
    GroupEntryV3,
    /// A group's `zarr.json` with its whole subtree inline.
    GroupV3,
    /// A group's `.zgroup`.
    ZGroup,
    /// A group's `.zattrs`.
    GroupAttrs,
    /// A group's `.zmetadata` (its subtree consolidated).
    ZMetadata,
}

/// The documents of a snapshot's tree, measured and rendered when asked, the rendered ones
/// kept.
pub(super) struct Documents {
    format: ZarrFormat,
    /// The parts of each measured group's subtree (what its consolidated metadata holds), by
    /// the group's path.
    subtrees: Mutex<HashMap<Box<str>, Parts>>,
    /// Held while a subtree is measured, so a reader asking for a document that the
    /// pre-rendering thread is measuring waits for its figure instead of walking the tree too.
    measuring: Mutex<()>,
    rendered: RenderedDocs,
}

impl Documents {
    /// The documents of a tree served in `format`, keeping rendered documents up to
    /// `cache_bytes`. Renders and measures nothing.
    pub(super) fn new(format: ZarrFormat, cache_bytes: usize) -> Documents {
        Documents {
            format,
            subtrees: Mutex::new(HashMap::new()),
            measuring: Mutex::new(()),
            rendered: RenderedDocs::new(cache_bytes),
        }
    }

    /// The exact length of document `key` of `tree` (the tree these documents are of);
    /// `None` when `key` is no document. A per-node document is rendered (and kept) to
    /// measure it; a consolidated one is summed from its subtree.
    pub(super) fn len_of(&self, tree: &Tree, key: &str) -> Option<u64> {
        let (dir, node, kind) = self.locate(tree, key)?;
        match (node, kind) {
            (NodeRef::Group(group), DocKind::GroupV3 | DocKind::ZMetadata) => {
                Some(self.consolidated_len(group, dir, kind))
            }
            _ => self
                .rendered
                .get_or_render(key, || render(node, kind, self.format, 0))
                .map(|bytes| bytes.len() as u64),
        }
    }

    /// The bytes of document `key` of `tree` (the tree these documents are of), rendered or
    /// from the cache; `None` when `key` is no document.
    pub(super) fn bytes(&self, tree: &Tree, key: &str) -> Option<Arc<Vec<u8>>> {
        let (dir, node, kind) = self.locate(tree, key)?;
        self.rendered.get_or_render(key, || {
            let capacity = match (node, kind) {
                (NodeRef::Group(group), DocKind::GroupV3 | DocKind::ZMetadata) => {
                    self.consolidated_len(group, dir, kind)
                }
                _ => 0,
            };
            render(node, kind, self.format, capacity)
        })
    }

    /// Bytes of rendered documents held now.
    pub(super) fn held_bytes(&self) -> usize {
        self.rendered.held_bytes()
    }

    /// The consolidated documents of the mount root's groups (`<group>/zarr.json` with the
    /// subtree inline, or `<group>/.zmetadata`) with their lengths, by key: what a reader
    /// opening a dataset or a DataTree reads first. Measures each group's subtree.
    pub(super) fn dataset_documents(&self, tree: &Tree) -> Vec<(String, u64)> {
        let file = match self.format {
            ZarrFormat::V3 => "zarr.json",
            ZarrFormat::V2 => ".zmetadata",
        };
        tree.root
            .children
            .iter()
            .filter(|(_, child)| matches!(child, Node::Group(_)))
            .filter_map(|(name, _)| {
                let key = format!("{name}/{file}");
                let len = self.len_of(tree, &key)?;
                Some((key, len))
            })
            .collect()
    }

    /// Every document key of `tree`.
    #[cfg(test)]
    pub(super) fn keys(&self, tree: &Tree) -> Vec<String> {
        fn walk(group: &GroupNode, path: &str, format: ZarrFormat, out: &mut Vec<String>) {
            let own: &[&str] = match format {
                ZarrFormat::V3 => &["zarr.json"],
                ZarrFormat::V2 if path.is_empty() => &[".zgroup", ".zattrs"],
                ZarrFormat::V2 => &[".zgroup", ".zattrs", ".zmetadata"],
            };
            out.extend(own.iter().map(|file| join(path, file)));
            for (name, child) in &group.children {
                let child_path = join(path, name);
                match child {
                    Node::Group(g) => walk(g, &child_path, format, out),
                    Node::Array(_) => out.extend(
                        array_docs(format)
                            .iter()
                            .map(|(file, _)| join(&child_path, file)),
                    ),
                }
            }
        }
        let mut out = Vec::new();
        walk(&tree.root, "", self.format, &mut out);
        out
    }

    /// The directory, node and kind of document `key`; `None` when `key` is no document.
    fn locate<'t>(&self, tree: &'t Tree, key: &'t str) -> Option<(&'t str, NodeRef<'t>, DocKind)> {
        let (dir, file) = key.rsplit_once('/').unwrap_or(("", key));
        let dir_ok = (dir.is_empty() && !key.contains('/')) || !dir.split('/').any(str::is_empty);
        if !DOC_NAMES.contains(&file) || !dir_ok {
            return None;
        }
        let node = tree.node(dir)?;
        let kind = match (node, self.format, file) {
            (NodeRef::Array(_), ZarrFormat::V3, "zarr.json") => DocKind::ArrayV3,
            (NodeRef::Array(_), ZarrFormat::V2, ".zarray") => DocKind::ZArray,
            (NodeRef::Array(_), ZarrFormat::V2, ".zattrs") => DocKind::ArrayAttrs,
            (NodeRef::Group(_), ZarrFormat::V3, "zarr.json") if dir.is_empty() => DocKind::RootV3,
            (NodeRef::Group(_), ZarrFormat::V3, "zarr.json") => DocKind::GroupV3,
            (NodeRef::Group(_), ZarrFormat::V2, ".zgroup") => DocKind::ZGroup,
            (NodeRef::Group(_), ZarrFormat::V2, ".zattrs") => DocKind::GroupAttrs,
            (NodeRef::Group(_), ZarrFormat::V2, ".zmetadata") if !dir.is_empty() => {
                DocKind::ZMetadata
            }
            _ => return None,
        };
        Some((dir, node, kind))
    }

    /// The length of the consolidated document (`kind`) of `group` at `path`.
    fn consolidated_len(&self, group: &GroupNode, path: &str, kind: DocKind) -> u64 {
        let known = self.subtrees.lock().get(path).cloned();
        let mut parts = known.unwrap_or_else(|| {
            let _one_at_a_time = self.measuring.lock();
            self.subtree(group, path)
        });
        if kind == DocKind::ZMetadata {
            for &(file, kind) in GROUP_DOCS_V2 {
                let (len, newlines) = measure(&node_value(NodeRef::Group(group), kind));
                parts.add(file, len, newlines);
            }
        }
        consolidated::len(&outer(group, self.format), &parts)
    }

    /// The parts of the documents below `group` at `path`, keyed relative to it (what its
    /// consolidated metadata holds), measured once: the parts of each group below are kept
    /// too.
    fn subtree(&self, group: &GroupNode, path: &str) -> Parts {
        if let Some(parts) = self.subtrees.lock().get(path) {
            return parts.clone();
        }
        let mut below = Parts::default();
        for (name, child) in &group.children {
            match child {
                Node::Array(a) => {
                    for &(file, kind) in array_docs(self.format) {
                        let (len, newlines) = measure(&node_value(NodeRef::Array(a), kind));
                        let key = if file == "zarr.json" {
                            name.clone()
                        } else {
                            format!("{name}/{file}")
                        };
                        below.add(&key, len, newlines);
                    }
                }
                Node::Group(g) => {
                    let nested = self.subtree(g, &join(path, name));
                    match self.format {
                        ZarrFormat::V3 => {
                            let entry = node_value(NodeRef::Group(g), DocKind::GroupEntryV3);
                            let (len, newlines) = measure(&entry);
                            below.add(name, len, newlines);
                        }
                        ZarrFormat::V2 => {
                            for &(file, kind) in GROUP_DOCS_V2 {
                                let (len, newlines) = measure(&node_value(NodeRef::Group(g), kind));
                                below.add(&format!("{name}/{file}"), len, newlines);
                            }
                        }
                    }
                    below.extend_under(name, &nested);
                }
            }
        }
        self.subtrees.lock().insert(path.into(), below.clone());
        below
    }
}

/// Every file name a document can have.
const DOC_NAMES: &[&str] = &["zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"];

/// The documents of a group directory in v2 besides `.zmetadata`: file name and kind.
pub(super) const GROUP_DOCS_V2: &[(&str, DocKind)] = &[
    (".zgroup", DocKind::ZGroup),
    (".zattrs", DocKind::GroupAttrs),
];

/// The documents of an array directory in `format`: file name and kind.
pub(super) fn array_docs(format: ZarrFormat) -> &'static [(&'static str, DocKind)] {
    match format {
        ZarrFormat::V3 => &[("zarr.json", DocKind::ArrayV3)],
        ZarrFormat::V2 => &[
            (".zarray", DocKind::ZArray),
            (".zattrs", DocKind::ArrayAttrs),
        ],
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

/// A per-node document's length and number of line breaks.
fn measure(value: &Value) -> (u64, u64) {
    let bytes = to_bytes(value);
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
    (bytes.len() as u64, newlines as u64)
}

/// The value of a per-node document of `node` (`Null` when the node is of the other type).
pub(super) fn node_value(node: NodeRef<'_>, kind: DocKind) -> Value {
    match (node, kind) {
        (NodeRef::Array(a), DocKind::ArrayV3) => array_v3(a),
        (NodeRef::Array(a), DocKind::ZArray) => zarray(a),
        (NodeRef::Array(a), DocKind::ArrayAttrs) => zattrs_array(a),
        (NodeRef::Group(g), DocKind::RootV3) => group_v3(&g.attrs, None),
        (NodeRef::Group(g), DocKind::GroupEntryV3) => {
            group_v3(&g.attrs, Some(Value::Object(Map::new())))
        }
        (NodeRef::Group(_), DocKind::ZGroup) => json!({"zarr_format": 2}),
        (NodeRef::Group(g), DocKind::GroupAttrs) => Value::Object(attributes(&g.attrs)),
        _ => Value::Null,
    }
}

/// A group's consolidated document with a placeholder where its metadata object goes.
fn outer(group: &GroupNode, format: ZarrFormat) -> Vec<u8> {
    let slot = consolidated::placeholder();
    to_bytes(&match format {
        ZarrFormat::V3 => group_v3(&group.attrs, Some(slot)),
        ZarrFormat::V2 => json!({"zarr_consolidated_format": 1, "metadata": slot}),
    })
}

/// Renders a document of kind `kind` of `node`, `len` bytes long; `None` when the node is of the
/// other type.
fn render(node: NodeRef<'_>, kind: DocKind, format: ZarrFormat, len: u64) -> Option<Vec<u8>> {
    match (node, kind) {
        (NodeRef::Group(g), DocKind::GroupV3 | DocKind::ZMetadata) => {
            let entries = consolidated::entries(g, format, kind == DocKind::ZMetadata);
            consolidated::render(&outer(g, format), &entries, len as usize)
        }
        (node, kind) => match node_value(node, kind) {
            Value::Null => None,
            value => Some(to_bytes(&value)),
        },
    }
}
