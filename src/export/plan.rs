//! What an export writes: its units — the chunks of every array under the exported path, or
//! its shards where `--shard-shape` groups chunks (numbered in tree order and split over
//! `--shard K/N` workers as for `warm`, so a worker always writes whole shards) — and every
//! metadata document under it, each with its key relative to the exported path.

use std::collections::HashMap;
use std::sync::Arc;

use super::sharding::{ShardGrid, ShardShape};
use super::ExportError;
use crate::config::ZarrFormat;
use crate::keyspace::warm::Shard;
use crate::keyspace::{array_chunk_key, KeySpace};
use crate::tree::ArrayNode;

/// One key an export writes: a chunk, or a shard of chunks.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Its array.
    pub array: Arc<ArrayNode>,
    /// Its index in the array's chunk grid, or in its shard grid when `shards` is set.
    pub index: Vec<u64>,
    /// How the array's chunks group into shards, when they do.
    pub(crate) shards: Option<ShardGrid>,
}

/// An exported array: its shard grid if sharded, and the units numbered before it.
struct Planned {
    array: Arc<ArrayNode>,
    shards: Option<ShardGrid>,
    grid: Vec<u64>,
    before: u64,
}

/// The keys of one export.
pub struct ExportPlan {
    /// The exported tree path, without surrounding slashes (`""`: the whole tree).
    root: String,
    arrays: Vec<Planned>,
    total: u64,
    /// Metadata documents under the exported path, as full keys, in tree order.
    documents: Vec<String>,
}

impl ExportPlan {
    /// The plan of exporting `path` from `keys`, its chunks grouped into shards of
    /// `shard_shape` where given.
    ///
    /// # Errors
    /// [`ExportError::NoPath`] when `path` is not a group or array of the tree;
    /// [`ExportError::Sharding`] when a shard shape is asked of Zarr v2 or names no dimension
    /// of an exported array.
    pub fn new(
        keys: &KeySpace,
        path: &str,
        shard_shape: Option<&ShardShape>,
    ) -> Result<ExportPlan, ExportError> {
        let root = path.trim_matches('/').to_owned();
        if keys.tree().node(&root).is_none() {
            return Err(ExportError::NoPath(path.to_owned()));
        }
        if shard_shape.is_some() && keys.format() != ZarrFormat::V3 {
            return Err(ExportError::Sharding(
                "shards are a Zarr v3 feature: add --zarr-format 3".to_owned(),
            ));
        }
        let chunks = keys.warm_plan(std::slice::from_ref(&root))?;
        let mut arrays = Vec::new();
        let mut total = 0;
        for array in chunks.array_nodes() {
            let shards = shard_shape.and_then(|s| s.grid_of(array));
            let grid = shards
                .as_ref()
                .map_or_else(|| array.geometry.grid(), ShardGrid::shards);
            arrays.push(Planned {
                array: array.clone(),
                shards,
                before: total,
                grid: grid.clone(),
            });
            total += grid.iter().product::<u64>();
        }
        if let Some(shape) = shard_shape {
            for dim in shape.dims() {
                if !arrays.iter().any(|p| p.array.dims.iter().any(|d| d == dim)) {
                    return Err(ExportError::Sharding(format!(
                        "no exported array has a dimension {dim:?}"
                    )));
                }
            }
        }
        let mut documents = Vec::new();
        walk(keys, &root, &mut documents);
        Ok(ExportPlan {
            root,
            arrays,
            total,
            documents,
        })
    }

    /// Units (chunks and shards) in the whole export.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Arrays exported.
    pub fn arrays(&self) -> usize {
        self.arrays.len()
    }

    /// Arrays written in shards.
    pub fn sharded_arrays(&self) -> usize {
        self.arrays.iter().filter(|p| p.shards.is_some()).count()
    }

    /// Units in `shard`.
    pub fn shard_len(&self, shard: Shard) -> u64 {
        (self.total + shard.count - 1 - shard.index) / shard.count
    }

    /// The `i`-th unit of `shard` (`i < shard_len`): units are numbered in tree order and
    /// shard `K/N` takes those whose number is `K` modulo `N`.
    pub fn unit(&self, shard: Shard, i: u64) -> Option<Unit> {
        let number = shard.index + i * shard.count;
        if number >= self.total {
            return None;
        }
        let at = self
            .arrays
            .partition_point(|p| p.before <= number)
            .checked_sub(1)?;
        let planned = self.arrays.get(at)?;
        let mut linear = number - planned.before;
        let mut index = vec![0u64; planned.grid.len()];
        for d in (0..index.len()).rev() {
            index[d] = linear % planned.grid[d];
            linear /= planned.grid[d];
        }
        Some(Unit {
            array: planned.array.clone(),
            index,
            shards: planned.shards.clone(),
        })
    }

    /// The arrays exported, in tree order.
    pub(crate) fn array_nodes(&self) -> impl Iterator<Item = &Arc<ArrayNode>> {
        self.arrays.iter().map(|p| &p.array)
    }

    /// The shard grids of the sharded arrays, by array path.
    pub(crate) fn shard_grids(&self) -> HashMap<&str, &ShardGrid> {
        self.arrays
            .iter()
            .filter_map(|p| Some((p.array.path.as_str(), p.shards.as_ref()?)))
            .collect()
    }

    /// The full key of chunk (or shard) `index` of `array` and its key in the store.
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
