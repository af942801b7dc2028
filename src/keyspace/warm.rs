//! Warming: every chunk under some tree paths, numbered in tree order, split into shards so that
//! independent processes (a Slurm array, Dask workers) each take a part — shard `K/N` takes the
//! chunks whose number is `K` modulo `N` — and computed into the cache.

use std::str::FromStr;
use std::sync::Arc;

use super::{KeyError, KeySpace};
use crate::cache::Served;
use crate::tree::{ArrayNode, GroupNode, Node, NodeRef};

/// Shard `index` of `count` (0-based: `0/4` … `3/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: u64,
    /// How many shards.
    pub count: u64,
}

impl Shard {
    /// The whole job as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("shard {text:?} must be K/N with 0 <= K < N, e.g. 0/4");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<u64>().map_err(|_| bad())?,
            n.trim().parse::<u64>().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// What warming one chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmed {
    /// It was already cached; nothing was computed.
    AlreadyCached,
    /// It was computed and cached; its size in bytes.
    Computed(u64),
}

/// The chunks under some paths, in tree order.
pub struct WarmPlan {
    /// Arrays and the number of chunks before each.
    arrays: Vec<(Arc<ArrayNode>, u64)>,
    total: u64,
}

impl WarmPlan {
    /// Chunks in the whole plan.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Arrays in the plan.
    pub fn arrays(&self) -> usize {
        self.arrays.len()
    }

    /// The arrays in the plan, in tree order.
    pub fn array_nodes(&self) -> impl Iterator<Item = &Arc<ArrayNode>> {
        self.arrays.iter().map(|(array, _)| array)
    }

    /// Chunks in `shard`.
    pub fn shard_len(&self, shard: Shard) -> u64 {
        (self.total + shard.count - 1 - shard.index) / shard.count
    }

    /// The `i`-th chunk of `shard` (`i < shard_len`): its array and index.
    pub fn chunk(&self, shard: Shard, i: u64) -> Option<(Arc<ArrayNode>, Vec<u64>)> {
        let number = shard.index + i * shard.count;
        if number >= self.total {
            return None;
        }
        let at = self.arrays.partition_point(|(_, before)| *before <= number) - 1;
        let (array, before) = &self.arrays[at];
        let mut linear = number - before;
        let grid = array.geometry.grid();
        let mut index = vec![0u64; grid.len()];
        for d in (0..grid.len()).rev() {
            index[d] = linear % grid[d];
            linear /= grid[d];
        }
        Some((array.clone(), index))
    }
}

fn collect(group: &GroupNode, out: &mut Vec<Arc<ArrayNode>>) {
    for child in group.children.values() {
        match child {
            Node::Group(g) => collect(g, out),
            Node::Array(a) => out.push(a.clone()),
        }
    }
}

impl KeySpace {
    /// Every chunk under `paths` (tree paths such as `sst` or `sst/analysed_sst`; `""` or `/`
    /// is the whole tree), each array once.
    ///
    /// # Errors
    /// [`KeyError::NotFound`] naming a path that is not a group or array of the tree.
    pub fn warm_plan(&self, paths: &[String]) -> Result<WarmPlan, KeyError> {
        let mut arrays = Vec::new();
        for path in paths {
            let trimmed = path.trim_matches('/');
            match self.tree.node(trimmed) {
                Some(NodeRef::Group(g)) => collect(g, &mut arrays),
                Some(NodeRef::Array(a)) => arrays.push(a.clone()),
                None => return Err(KeyError::NotFound(path.clone())),
            }
        }
        let mut seen = std::collections::HashSet::new();
        arrays.retain(|a| seen.insert(a.id));
        let mut total = 0;
        let mut planned = Vec::with_capacity(arrays.len());
        for array in arrays {
            let chunks: u64 = array.geometry.grid().iter().product();
            if chunks == 0 {
                continue;
            }
            planned.push((array, total));
            total += chunks;
        }
        Ok(WarmPlan {
            arrays: planned,
            total,
        })
    }

    /// Computes and caches chunk `index` of `array` unless it is cached already.
    ///
    /// # Errors
    /// [`KeyError::Chunk`] when the chunk cannot be computed (naming the source).
    pub fn warm_chunk(&self, array: &ArrayNode, index: &[u64]) -> Result<Warmed, KeyError> {
        if self.cache.contains(self.chunk_key(array, index)) {
            return Ok(Warmed::AlreadyCached);
        }
        let (bytes, served) = self.chunk(array, index)?;
        Ok(match served {
            Served::Computed => Warmed::Computed(bytes.len() as u64),
            _ => Warmed::AlreadyCached,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_reject_nonsense() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
