//! The snapshot a mount serves, and its replacement while mounted. Requests resolve against the
//! current [`KeySpace`]; [`Snapshots::swap`] puts a new one in place atomically. Readers in flight
//! are never broken: an open file keeps the key space it was opened on, and every inode whose
//! path serves something different in the new snapshot is retired (see `inodes.rs`), so the
//! kernel's page cache and size of an inode always describe one snapshot. The front end then
//! tells the kernel to forget the directory entries of retired inodes, and the next lookup of
//! such a path gets a fresh inode from the new snapshot (or `ENOENT`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::RwLock;

use super::inodes::{split_path, Inodes};
use crate::keyspace::{KeySpace, Kind};

/// What an inode resolves to now.
pub enum Resolved {
    /// The path's current inode, in the current key space.
    Current {
        /// The inode's path.
        path: Arc<str>,
        /// The current key space.
        keys: Arc<KeySpace>,
    },
    /// An inode retired by a swap: what it was (`None`: nothing).
    Retired(Option<Kind>),
}

/// The current key space and the inodes handed out over it.
pub struct Snapshots {
    keys: ArcSwap<KeySpace>,
    inodes: Inodes,
    /// Held for reading while an inode is handed out or resolved together with the key space,
    /// for writing while the key space and the retired inodes change together.
    swapping: RwLock<()>,
}

/// What a swap changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swapped {
    /// Paths the kernel knew whose inodes were retired, each with its parent directory's inode
    /// (deepest paths first): their directory entries are to be forgotten.
    pub retired: Vec<(u64, String)>,
}

impl Snapshots {
    /// Serving `keys`.
    pub fn new(keys: Arc<KeySpace>) -> Self {
        Snapshots {
            keys: ArcSwap::new(keys),
            inodes: Inodes::new(),
            swapping: RwLock::new(()),
        }
    }

    /// The current key space.
    pub fn current(&self) -> Arc<KeySpace> {
        self.keys.load_full()
    }

    /// What `path` is in the current key space, and its current inode.
    pub fn lookup(&self, path: &str) -> Option<(u64, Kind)> {
        let _consistent = self.swapping.read();
        let kind = self.keys.load().stat(path)?;
        Some((self.inodes.inode(path), kind))
    }

    /// What inode `ino` resolves to; `None` for a number never handed out.
    pub fn resolve(&self, ino: u64) -> Option<Resolved> {
        let _consistent = self.swapping.read();
        let inode = self.inodes.get(ino)?;
        Some(match inode.retired {
            Some(was) => Resolved::Retired(was),
            None => Resolved::Current {
                path: inode.path,
                keys: self.keys.load_full(),
            },
        })
    }

    /// The path of an inode handed out earlier, current or retired.
    pub fn path(&self, ino: u64) -> Option<Arc<str>> {
        self.inodes.path(ino)
    }

    /// Serves `next` from now on, retiring the inodes of every path that `next` serves
    /// differently. Comparing runs before the swap without blocking requests; only inodes
    /// handed out meanwhile are compared while requests wait.
    pub fn swap(&self, next: Arc<KeySpace>) -> Swapped {
        let old = self.current();
        let from = self.inodes.next();
        let known = self.inodes.current_from(0);
        let mut changed = changed(&old, &next, &known);
        let mut known: HashMap<Arc<str>, u64> = known.into_iter().collect();
        {
            let _exclusive = self.swapping.write();
            let late = self.inodes.current_from(from);
            changed.extend(self::changed(&old, &next, &late));
            known.extend(late);
            for path in &changed {
                self.inodes.retire(path, old.stat(path));
            }
            self.keys.store(next);
        }
        let mut retired: Vec<(u64, String)> = changed
            .iter()
            .filter_map(|path| {
                let (parent, _) = split_path(path)?;
                Some((*known.get(parent)?, path.to_string()))
            })
            .collect();
        retired.sort_by_key(|(_, path)| std::cmp::Reverse(path.matches('/').count()));
        Swapped { retired }
    }
}

/// The paths among `known` that `next` serves differently from `old`.
fn changed(old: &KeySpace, next: &KeySpace, known: &[(Arc<str>, u64)]) -> Vec<Arc<str>> {
    let paths = old.changed_keys(next, known.iter().map(|(path, _)| &**path));
    let paths: HashSet<&str> = paths.into_iter().collect();
    known
        .iter()
        .filter(|(path, _)| paths.contains(&**path))
        .map(|(path, _)| path.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::inodes::ROOT;
    use super::*;
    use crate::config::ZarrFormat;
    use crate::sources::model::{Attr, AttrValue};
    use crate::tree::{GroupNode, Node, Tree};

    /// A tree of empty groups, each with a `title` attribute.
    fn keys(groups: &[(&str, &str)]) -> Arc<KeySpace> {
        let mut root = GroupNode::default();
        for (name, title) in groups {
            let group = GroupNode {
                attrs: vec![Attr {
                    name: "title".into(),
                    value: AttrValue::Text((*title).into()),
                }],
                children: BTreeMap::new(),
            };
            root.children.insert((*name).into(), Node::Group(group));
        }
        let tree = Tree {
            root,
            notes: Vec::new(),
            left_out: Vec::new(),
            hidden: Vec::new(),
        };
        Arc::new(KeySpace::new(Arc::new(tree), ZarrFormat::V3))
    }

    fn current_path(snapshots: &Snapshots, ino: u64) -> Option<String> {
        match snapshots.resolve(ino)? {
            Resolved::Current { path, .. } => Some(path.to_string()),
            Resolved::Retired(_) => None,
        }
    }

    #[test]
    fn a_swap_retires_exactly_the_changed_and_vanished_paths() {
        let snapshots = Snapshots::new(keys(&[("a", "one"), ("b", "two"), ("c", "three")]));
        let lookup = |path: &str| snapshots.lookup(path).map(|(ino, _)| ino);
        let [a, a_doc, b, b_doc, c, c_doc, root_doc] = [
            "a",
            "a/zarr.json",
            "b",
            "b/zarr.json",
            "c",
            "c/zarr.json",
            "zarr.json",
        ]
        .map(|path| lookup(path).unwrap());
        let b_doc_was = snapshots.lookup("b/zarr.json").unwrap().1;
        assert!(lookup("d").is_none());

        // a unchanged, b gone, c retitled, d new.
        let swapped = snapshots.swap(keys(&[("a", "one"), ("c", "four"), ("d", "five")]));
        let expected = [(b, "b/zarr.json"), (c, "c/zarr.json"), (ROOT, "b")];
        assert_eq!(
            swapped.retired,
            expected.map(|(parent, path)| (parent, path.to_owned()))
        );
        // Unchanged paths keep their inodes.
        assert_eq!(lookup("a"), Some(a));
        assert_eq!(lookup("a/zarr.json"), Some(a_doc));
        assert_eq!(lookup("c"), Some(c));
        assert_eq!(
            current_path(&snapshots, a_doc).as_deref(),
            Some("a/zarr.json")
        );
        // Retired inodes remember what they were; their paths resolve anew.
        assert!(matches!(
            snapshots.resolve(b_doc),
            Some(Resolved::Retired(Some(kind))) if kind == b_doc_was
        ));
        assert!(matches!(
            snapshots.resolve(b),
            Some(Resolved::Retired(Some(Kind::Dir)))
        ));
        assert!(lookup("b/zarr.json").is_none());
        assert!(matches!(
            snapshots.resolve(c_doc),
            Some(Resolved::Retired(_))
        ));
        assert!(lookup("c/zarr.json").unwrap() > c_doc);
        assert_eq!(
            lookup("zarr.json"),
            Some(root_doc),
            "the root lists no children"
        );
        assert!(lookup("d/zarr.json").is_some());
        // The same tree again retires nothing.
        let again = snapshots.swap(keys(&[("a", "one"), ("c", "four"), ("d", "five")]));
        assert_eq!(again, Swapped::default());
    }
}
