//! Directory listings of the key space, produced lazily by position so that listing an array
//! with millions of chunks computes nothing and allocates little.

use std::sync::Arc;

use crate::config::ZarrFormat;
use crate::tree::{ArrayNode, GroupNode, Node};

/// One directory's entries: named fixed entries first, then generated chunk names.
pub struct Listing {
    fixed: Vec<(String, bool)>,
    generated: Option<Generated>,
}

struct Generated {
    /// Names are `i` (v3 prefix) or `i.j.k` (v2) over this grid.
    grid: Vec<u64>,
    dotted: bool,
    /// What each name starts with (`c.` for flat v3 keys).
    prefix: &'static str,
    /// Whether generated names are directories.
    dirs: bool,
}

impl Listing {
    /// A group: its metadata documents and children.
    pub fn group(group: &GroupNode, format: ZarrFormat, consolidated: bool) -> Listing {
        let mut fixed: Vec<(String, bool)> = match format {
            ZarrFormat::V3 => vec![("zarr.json".into(), false)],
            ZarrFormat::V2 => {
                let mut v = vec![(".zgroup".into(), false), (".zattrs".into(), false)];
                if consolidated {
                    v.push((".zmetadata".into(), false));
                }
                v
            }
        };
        fixed.extend(group.children.iter().map(|(name, node)| {
            (
                name.clone(),
                matches!(node, Node::Group(_) | Node::Array(_)),
            )
        }));
        Listing {
            fixed,
            generated: None,
        }
    }

    /// A v3 array directory: `zarr.json` and the `c` prefix (a file for 0-d arrays).
    pub fn array_v3(array: &Arc<ArrayNode>) -> Listing {
        let scalar = array.geometry.shape.is_empty();
        Listing {
            fixed: vec![("zarr.json".into(), false), ("c".into(), !scalar)],
            generated: None,
        }
    }

    /// A v2 array directory: `.zarray`, `.zattrs` and every chunk key.
    pub fn array_v2(array: &Arc<ArrayNode>) -> Listing {
        let grid = array.geometry.grid();
        let fixed = vec![(".zarray".into(), false), (".zattrs".into(), false)];
        if grid.is_empty() {
            let mut fixed = fixed;
            fixed.push(("0".into(), false));
            return Listing {
                fixed,
                generated: None,
            };
        }
        Listing {
            fixed,
            generated: Some(Generated {
                grid,
                dotted: true,
                prefix: "",
                dirs: false,
            }),
        }
    }

    /// A v3 array directory with flat chunk keys: `zarr.json` and every `c.i.j.k`.
    pub fn array_v3_flat(array: &Arc<ArrayNode>) -> Listing {
        Listing {
            fixed: vec![("zarr.json".into(), false)],
            generated: Some(Generated {
                grid: array.geometry.grid(),
                dotted: true,
                prefix: "c.",
                dirs: false,
            }),
        }
    }

    /// A v3 chunk-key prefix at `depth` (number of indices already given).
    pub fn chunk_prefix(array: &Arc<ArrayNode>, depth: usize) -> Listing {
        let grid = array.geometry.grid();
        Listing {
            fixed: Vec::new(),
            generated: Some(Generated {
                grid: vec![grid[depth]],
                dotted: false,
                prefix: "",
                dirs: depth + 1 < grid.len(),
            }),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.fixed.len() as u64
            + self
                .generated
                .as_ref()
                .map_or(0, |g| g.grid.iter().product())
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry at `position`: its name and whether it is a directory.
    pub fn get(&self, position: u64) -> Option<(String, bool)> {
        if let Some(entry) = self.fixed.get(position as usize) {
            return Some(entry.clone());
        }
        let g = self.generated.as_ref()?;
        let mut linear = position - self.fixed.len() as u64;
        if linear >= g.grid.iter().product() {
            return None;
        }
        let mut index = vec![0u64; g.grid.len()];
        for d in (0..g.grid.len()).rev() {
            index[d] = linear % g.grid[d];
            linear /= g.grid[d];
        }
        let names: Vec<String> = index.iter().map(u64::to_string).collect();
        let name = if g.dotted {
            format!("{}{}", g.prefix, names.join("."))
        } else {
            names.join("/")
        };
        Some((name, g.dirs))
    }
}
