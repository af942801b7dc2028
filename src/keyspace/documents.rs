//! The metadata documents of a tree snapshot: which keys are documents, what each one renders
//! and its exact length, without holding the documents themselves. Keys are paths from the
//! mount root, e.g. `sst/lat/.zarray`. A document is rendered from its node when it is read
//! ([`Documents::bytes`]) and kept in a bounded cache of rendered documents ([`RenderedDocs`]);
//! its length is measured once when the index is built (per-node documents rendered once,
//! consolidated ones summed from their parts, see [`consolidated`](super::consolidated)), so
//! `stat` answers exactly without rendering.

use std::collections::HashMap;
use std::sync::Arc;

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

#[derive(Debug, Clone, Copy)]
struct DocEntry {
    kind: DocKind,
    len: u64,
}

/// The document keys of a snapshot with their kinds and lengths, and the rendered ones kept.
pub(super) struct Documents {
    format: ZarrFormat,
    entries: HashMap<Box<str>, DocEntry>,
    rendered: RenderedDocs,
}

impl Documents {
    /// Indexes every metadata document of `tree` in `format`, keeping rendered documents up to
    /// `cache_bytes`.
    pub(super) fn build(tree: &Tree, format: ZarrFormat, cache_bytes: usize) -> Documents {
        let mut docs = Documents {
            format,
            entries: HashMap::new(),
            rendered: RenderedDocs::new(cache_bytes),
        };
        docs.walk(&tree.root, "", true);
        docs
    }

    /// The exact length of document `key`; `None` when `key` is no document.
    pub(super) fn len_of(&self, key: &str) -> Option<u64> {
        self.entries.get(key).map(|e| e.len)
    }

    /// The bytes of document `key` of `tree` (the tree this index was built from), rendered or
    /// from the cache; `None` when `key` is no document.
    pub(super) fn bytes(&self, tree: &Tree, key: &str) -> Option<Arc<Vec<u8>>> {
        let entry = *self.entries.get(key)?;
        self.rendered.get_or_render(key, || {
            let (dir, _) = key.rsplit_once('/').unwrap_or(("", key));
            render(tree.node(dir)?, entry.kind, self.format, entry.len)
        })
    }

    /// Bytes of rendered documents held now.
    pub(super) fn held_bytes(&self) -> usize {
        self.rendered.held_bytes()
    }

    /// The consolidated documents of the mount root's groups (`<group>/zarr.json` with the
    /// subtree inline, or `<group>/.zmetadata`) with their lengths, by key: what a reader
    /// opening a dataset or a DataTree reads first.
    pub(super) fn dataset_documents(&self) -> Vec<(&str, u64)> {
        let mut docs: Vec<(&str, u64)> = self
            .entries
            .iter()
            .filter(|(key, e)| {
                matches!(e.kind, DocKind::GroupV3 | DocKind::ZMetadata)
                    && key.matches('/').count() == 1
            })
            .map(|(key, e)| (&**key, e.len))
            .collect();
        docs.sort_unstable();
        docs
    }

    /// Every document key.
    #[cfg(test)]
    pub(super) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|k| &**k)
    }

    fn insert(&mut self, dir: &str, name: &str, kind: DocKind, len: u64) {
        self.entries
            .insert(join(dir, name).into_boxed_str(), DocEntry { kind, len });
    }

    /// Indexes the documents of `group` at `path` and below; returns the parts of its
    /// descendants' documents keyed relative to it (what its consolidated metadata holds).
    fn walk(&mut self, group: &GroupNode, path: &str, is_root: bool) -> Parts {
        let mut below = Parts::default();
        for (name, child) in &group.children {
            let child_path = join(path, name);
            match child {
                Node::Array(a) => {
                    for &(file, kind) in array_docs(self.format) {
                        let (len, newlines) = measure(&node_value(NodeRef::Array(a), kind));
                        self.insert(&child_path, file, kind, len);
                        let key = if file == "zarr.json" {
                            name.clone()
                        } else {
                            format!("{name}/{file}")
                        };
                        below.add(&key, len, newlines);
                    }
                }
                Node::Group(g) => {
                    let nested = self.walk(g, &child_path, false);
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
        let node = NodeRef::Group(group);
        match self.format {
            ZarrFormat::V3 if is_root => {
                let (len, _) = measure(&node_value(node, DocKind::RootV3));
                self.insert(path, "zarr.json", DocKind::RootV3, len);
            }
            ZarrFormat::V3 => {
                let len = consolidated::len(&outer(group, self.format), &below);
                self.insert(path, "zarr.json", DocKind::GroupV3, len);
            }
            ZarrFormat::V2 => {
                let mut own = below.clone();
                for &(file, kind) in GROUP_DOCS_V2 {
                    let (len, newlines) = measure(&node_value(node, kind));
                    self.insert(path, file, kind, len);
                    own.add(file, len, newlines);
                }
                if !is_root {
                    let len = consolidated::len(&outer(group, self.format), &own);
                    self.insert(path, ".zmetadata", DocKind::ZMetadata, len);
                }
            }
        }
        below
    }
}

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
