//! What an export writes: the chunks of every array under the exported path (numbered in tree
//! order and split into shards as for `warm`) and every metadata document under it, each with
//! its key relative to the exported path.

use std::sync::Arc;

use super::ExportError;
use crate::keyspace::warm::{Shard, WarmPlan};
use crate::keyspace::{array_chunk_key, KeySpace};
use crate::tree::ArrayNode;

/// The keys of one export.
pub struct ExportPlan {
    /// The exported tree path, without surrounding slashes (`""`: the whole tree).
    root: String,
    chunks: WarmPlan,
    /// Metadata documents under the exported path, as full keys, in tree order.
    documents: Vec<String>,
}

impl ExportPlan {
    /// The plan of exporting `path` from `keys`.
    ///
    /// # Errors
    /// [`ExportError::NoPath`] when `path` is not a group or array of the tree.
    pub fn new(keys: &KeySpace, path: &str) -> Result<ExportPlan, ExportError> {
        let root = path.trim_matches('/').to_owned();
        if keys.tree().node(&root).is_none() {
            return Err(ExportError::NoPath(path.to_owned()));
        }
        let chunks = keys.warm_plan(std::slice::from_ref(&root))?;
        let mut documents = Vec::new();
        walk(keys, &root, &mut documents);
        Ok(ExportPlan {
            root,
            chunks,
            documents,
        })
    }

    /// Chunks in the whole export.
    pub fn total(&self) -> u64 {
        self.chunks.total()
    }

    /// Arrays exported.
    pub fn arrays(&self) -> usize {
        self.chunks.arrays()
    }

    /// Chunks in `shard`.
    pub fn shard_len(&self, shard: Shard) -> u64 {
        self.chunks.shard_len(shard)
    }

    /// The `i`-th chunk of `shard`: its array and index.
    pub fn chunk(&self, shard: Shard, i: u64) -> Option<(Arc<ArrayNode>, Vec<u64>)> {
        self.chunks.chunk(shard, i)
    }

    /// The arrays exported, in tree order.
    pub(crate) fn array_nodes(&self) -> impl Iterator<Item = &Arc<ArrayNode>> {
        self.chunks.array_nodes()
    }

    /// The full key of chunk `index` of `array` and its key in the store.
    pub fn chunk_keys(
        &self,
        keys: &KeySpace,
        array: &ArrayNode,
        index: &[u64],
    ) -> (String, String) {
        let within = array_chunk_key(keys.format(), array, index);
        let full = format!("{}/{within}", array.path);
        let relative = self.relative(&full);
        (full, relative)
    }

    /// Metadata documents under the exported path (full keys).
    pub fn documents(&self) -> &[String] {
        &self.documents
    }

    /// `key` relative to the exported path.
    pub fn relative(&self, key: &str) -> String {
        let key = key.trim_matches('/');
        if self.root.is_empty() {
            return key.to_owned();
        }
        key.strip_prefix(&self.root)
            .map_or(key, |rest| rest.trim_start_matches('/'))
            .to_owned()
    }

    /// The exported path.
    pub fn root(&self) -> &str {
        &self.root
    }
}

/// Collects the metadata documents of the directory `path` and of the groups and arrays below.
fn walk(keys: &KeySpace, path: &str, out: &mut Vec<String>) {
    let Some(listing) = keys.list(path) else {
        return;
    };
    for position in 0..listing.len() {
        let Some((name, is_dir)) = listing.get(position) else {
            continue;
        };
        let child = if path.is_empty() {
            name
        } else {
            format!("{path}/{name}")
        };
        if is_dir {
            if keys.tree().node(&child).is_some() {
                walk(keys, &child, out);
            }
        } else if keys.chunk_key_of(&child).is_none() {
            out.push(child);
        }
    }
}
