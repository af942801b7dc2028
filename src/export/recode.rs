//! `--codec`: the exported arrays served with another compressor. The tree is copied with every
//! array under the exported path given the new encoding, and served by a successor key space,
//! so chunks and metadata agree by construction (the encoding is part of every chunk's cache
//! key). Arrays of strings keep theirs.

use std::str::FromStr;
use std::sync::Arc;

use crate::operators::Encoding;
use crate::sources::model::DType;
use crate::tree::{ArrayNode, GroupNode, Node, Tree};

/// The compressor asked for with `--codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportCodec {
    /// No compressor: `bytes` only.
    None,
    /// zstd at a level.
    Zstd(i32),
    /// gzip at a level (0–9).
    Gzip(u32),
    /// blosc with zstd inside and byte shuffle, at a level (0–9).
    Blosc(u8),
}

impl FromStr for ExportCodec {
    type Err = String;

    fn from_str(text: &str) -> Result<ExportCodec, String> {
        let bad = || {
            format!(
                "codec {text:?} must be none, zstd[:LEVEL] (1-22), gzip[:LEVEL] (0-9) or \
                 blosc[:LEVEL] (0-9)"
            )
        };
        let (name, level) = match text.trim().split_once(':') {
            Some((name, level)) => (name, Some(level.trim())),
            None => (text.trim(), None),
        };
        let level_in = |default: i64, range: std::ops::RangeInclusive<i64>| {
            let level = level.map_or(Ok(default), |l| l.parse::<i64>().map_err(|_| bad()))?;
            if range.contains(&level) {
                Ok(level)
            } else {
                Err(bad())
            }
        };
        Ok(match name.to_ascii_lowercase().as_str() {
            "none" | "bytes" if level.is_none() => ExportCodec::None,
            "zstd" => ExportCodec::Zstd(level_in(3, 1..=22)? as i32),
            "gzip" => ExportCodec::Gzip(level_in(5, 0..=9)? as u32),
            "blosc" => ExportCodec::Blosc(level_in(5, 0..=9)? as u8),
            _ => return Err(bad()),
        })
    }
}

impl ExportCodec {
    /// The encoding of an array of `dtype` under this codec; `None` for strings, which keep
    /// their own.
    fn encoding_for(self, dtype: DType) -> Option<Encoding> {
        if dtype == DType::String {
            return None;
        }
        Some(match self {
            ExportCodec::None => Encoding::Bytes,
            ExportCodec::Zstd(level) => Encoding::Zstd { level },
            ExportCodec::Gzip(level) => Encoding::Gzip { level },
            ExportCodec::Blosc(level) => Encoding::BloscZstd {
                level,
                typesize: dtype.size().and_then(|s| u8::try_from(s).ok()).unwrap_or(1),
            },
        })
    }
}

/// A copy of `tree` in which every array under `root` (a tree path) is served with `codec`.
pub fn recoded(tree: &Tree, root: &str, codec: ExportCodec) -> Tree {
    let root = root.trim_matches('/');
    Tree {
        root: copy_group(&tree.root, "", root, codec),
        notes: Vec::new(),
        left_out: Vec::new(),
        hidden: tree.hidden.clone(),
    }
}

fn copy_group(group: &GroupNode, path: &str, root: &str, codec: ExportCodec) -> GroupNode {
    let children = group
        .children
        .iter()
        .map(|(name, child)| {
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}/{name}")
            };
            let copied = match child {
                Node::Group(g) => Node::Group(copy_group(g, &child_path, root, codec)),
                Node::Array(a) if under(&child_path, root) => Node::Array(recode(a, codec)),
                Node::Array(a) => Node::Array(a.clone()),
            };
            (name.clone(), copied)
        })
        .collect();
    GroupNode {
        attrs: group.attrs.clone(),
        children,
    }
}

fn under(path: &str, root: &str) -> bool {
    root.is_empty()
        || path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn recode(array: &Arc<ArrayNode>, codec: ExportCodec) -> Arc<ArrayNode> {
    let Some(encoding) = codec.encoding_for(array.geometry.dtype) else {
        return array.clone();
    };
    let mut recipe = array.recipe.clone();
    recipe.encoding = encoding;
    Arc::new(ArrayNode {
        id: array.id,
        path: array.path.clone(),
        dims: array.dims.clone(),
        geometry: array.geometry.clone(),
        attrs: array.attrs.clone(),
        recipe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_parse_with_default_levels_and_reject_nonsense() {
        assert_eq!("zstd".parse(), Ok(ExportCodec::Zstd(3)));
        assert_eq!("zstd:9".parse(), Ok(ExportCodec::Zstd(9)));
        assert_eq!("GZIP:1".parse(), Ok(ExportCodec::Gzip(1)));
        assert_eq!("blosc".parse(), Ok(ExportCodec::Blosc(5)));
        assert_eq!("none".parse(), Ok(ExportCodec::None));
        for bad in ["lz4", "zstd:0", "gzip:10", "none:1", "zstd:x", ""] {
            assert!(bad.parse::<ExportCodec>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_paths_under_the_root_are_recoded() {
        assert!(under("a/b", ""));
        assert!(under("a/b", "a"));
        assert!(under("a", "a"));
        assert!(!under("ab/c", "a"));
    }
}
