//! Consolidated metadata (`zarr.json` inline in v3, `.zmetadata` in v2) written as a stream:
//! the group's outer document is serialised with a placeholder where its metadata object goes,
//! and the object is written entry by entry, each entry's own document re-indented, so a
//! document of 10,000 arrays is never a tree of JSON values in memory. The result is byte for
//! byte what `serde_json`'s pretty printer writes for the whole tree of values. Lengths are
//! summed from each entry's length and line count ([`Parts`]) without rendering anything.

use serde_json::{Map, Value};

use super::documents::{array_docs, node_value, DocKind, GROUP_DOCS_V2};
use super::json::to_bytes;
use crate::config::ZarrFormat;
use crate::tree::{GroupNode, Node, NodeRef};

/// The placeholder string standing for the metadata object (written as `"\u0000…\u0000"`).
const SLOT: &str = "\u{0}consolidated metadata\u{0}";

/// The placeholder as a JSON value.
pub(super) fn placeholder() -> Value {
    Value::String(SLOT.into())
}

/// The placeholder as the serialiser writes it.
fn slot_text() -> String {
    serde_json::to_string(SLOT).unwrap_or_default()
}

/// Sums over the entries of a metadata object, relative to the group that holds them.
#[derive(Debug, Clone, Default)]
pub(super) struct Parts {
    /// Number of entries.
    count: u64,
    /// Bytes of their keys as JSON strings (quotes included).
    keys: u64,
    /// Bytes of their documents as served.
    bytes: u64,
    /// Line breaks in their documents.
    newlines: u64,
}

impl Parts {
    /// Adds the entry `key` whose document has `len` bytes and `newlines` line breaks.
    pub(super) fn add(&mut self, key: &str, len: u64, newlines: u64) {
        self.count += 1;
        self.keys += json_key_len(key);
        self.bytes += len;
        self.newlines += newlines;
    }

    /// Adds the entries of a child `name`, whose keys gain the prefix `name/`.
    pub(super) fn extend_under(&mut self, name: &str, child: &Parts) {
        // Escaping is per character, so "name/key" escapes to escape(name) + "/" + escape(key).
        let prefix = json_key_len(name) - 2 + 1;
        self.count += child.count;
        self.keys += child.keys + child.count * prefix;
        self.bytes += child.bytes;
        self.newlines += child.newlines;
    }
}

fn json_key_len(key: &str) -> u64 {
    serde_json::to_string(key).map_or(0, |s| s.len()) as u64
}

/// The nesting level of the placeholder's member in `outer` (the indent of its line / 2).
fn slot_level(outer: &[u8], at: usize) -> usize {
    let line_start = outer[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    outer[line_start..at]
        .iter()
        .take_while(|&&b| b == b' ')
        .count()
        / 2
}

/// The exact length of the consolidated document whose outer part is `outer` and whose
/// metadata object holds `parts`.
pub(super) fn len(outer: &[u8], parts: &Parts) -> u64 {
    let slot = slot_text();
    let Some(at) = find(outer, slot.as_bytes()) else {
        return outer.len() as u64;
    };
    let level = slot_level(outer, at) as u64 + 1;
    let object = if parts.count == 0 {
        2
    } else {
        // "{" + per entry: separator, "\n", indent, key, ": ", document re-indented + "\n",
        // indent of the closing brace, "}".
        1 + (parts.count - 1)
            + parts.count * (1 + 2 * level + 2)
            + parts.keys
            + parts.bytes
            + parts.newlines * 2 * level
            + 1
            + 2 * (level - 1)
            + 1
    };
    outer.len() as u64 - slot.len() as u64 + object
}

/// One entry of a metadata object: its key relative to the group and what it renders.
pub(super) struct Entry<'t> {
    key: String,
    node: NodeRef<'t>,
    kind: DocKind,
}

/// The entries of `group`'s consolidated metadata in the order the serialiser writes them
/// (with `own`, v2's `.zgroup` and `.zattrs` of the group itself last).
pub(super) fn entries(group: &GroupNode, format: ZarrFormat, own: bool) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    collect(group, "", format, &mut out);
    if own {
        push_docs(&mut out, "", NodeRef::Group(group), GROUP_DOCS_V2);
    }
    if !map_keeps_insertion_order() {
        out.sort_by(|a, b| a.key.cmp(&b.key));
    }
    out
}

fn collect<'t>(group: &'t GroupNode, prefix: &str, format: ZarrFormat, out: &mut Vec<Entry<'t>>) {
    for (name, child) in &group.children {
        let path = format!("{prefix}{name}");
        match (child, format) {
            (Node::Array(a), ZarrFormat::V3) => out.push(Entry {
                key: path,
                node: NodeRef::Array(a),
                kind: DocKind::ArrayV3,
            }),
            (Node::Array(a), ZarrFormat::V2) => {
                push_docs(
                    out,
                    &format!("{path}/"),
                    NodeRef::Array(a),
                    array_docs(format),
                );
            }
            (Node::Group(g), _) => {
                match format {
                    ZarrFormat::V3 => out.push(Entry {
                        key: path.clone(),
                        node: NodeRef::Group(g),
                        kind: DocKind::GroupEntryV3,
                    }),
                    ZarrFormat::V2 => {
                        push_docs(out, &format!("{path}/"), NodeRef::Group(g), GROUP_DOCS_V2);
                    }
                }
                collect(g, &format!("{path}/"), format, out);
            }
        }
    }
}

/// Pushes the documents `docs` (file name and kind) of `node`, keyed `prefix` + file name.
fn push_docs<'t>(
    out: &mut Vec<Entry<'t>>,
    prefix: &str,
    node: NodeRef<'t>,
    docs: &[(&str, DocKind)],
) {
    for &(file, kind) in docs {
        out.push(Entry {
            key: format!("{prefix}{file}"),
            node,
            kind,
        });
    }
}

/// Whether `serde_json`'s maps keep insertion order (its `preserve_order` feature, which any
/// crate of the build may turn on) rather than sorting their keys.
fn map_keeps_insertion_order() -> bool {
    let mut map = Map::new();
    map.insert("b".into(), Value::Null);
    map.insert("a".into(), Value::Null);
    map.keys().next().is_some_and(|k| k == "b")
}

/// Writes the consolidated document: `outer` with its placeholder replaced by the metadata
/// object of `entries`, into a buffer of `capacity` bytes (its length when known). `None` when
/// `outer` has no placeholder.
pub(super) fn render(outer: &[u8], entries: &[Entry<'_>], capacity: usize) -> Option<Vec<u8>> {
    let slot = slot_text();
    let at = find(outer, slot.as_bytes())?;
    let level = slot_level(outer, at) + 1;
    let indent = " ".repeat(2 * level);
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(&outer[..at]);
    if entries.is_empty() {
        out.extend_from_slice(b"{}");
    } else {
        out.push(b'{');
        for (i, entry) in entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'\n');
            out.extend_from_slice(indent.as_bytes());
            out.extend_from_slice(serde_json::to_string(&entry.key).ok()?.as_bytes());
            out.extend_from_slice(b": ");
            for (j, line) in to_bytes(&node_value(entry.node, entry.kind))
                .split(|&b| b == b'\n')
                .enumerate()
            {
                if j > 0 {
                    out.push(b'\n');
                    out.extend_from_slice(indent.as_bytes());
                }
                out.extend_from_slice(line);
            }
        }
        out.push(b'\n');
        out.extend_from_slice(&indent.as_bytes()[2..]);
        out.push(b'}');
    }
    out.extend_from_slice(&outer[at + slot.len()..]);
    Some(out)
}

/// The position of the last occurrence of `needle` in `haystack` (the placeholder follows
/// every attribute, so a look-alike attribute value cannot be taken for it).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}
