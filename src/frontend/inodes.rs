//! Inode numbers for key-space paths, handed out on first lookup. An inode stands for what its
//! path served when it was handed out: when a new snapshot serves something else at that path
//! (other bytes, another size, or nothing), the inode is *retired* — it keeps its path and the
//! attributes it had, so files opened through it stay consistent — and the next lookup of the
//! path gets a fresh number. Numbers are never reused.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::keyspace::Kind;

/// The root directory's inode.
pub(super) const ROOT: u64 = 1;

/// Path <-> inode table.
#[derive(Default)]
pub(super) struct Inodes {
    inner: RwLock<Table>,
}

#[derive(Default)]
struct Table {
    /// The current inode of each path.
    by_path: HashMap<Arc<str>, u64>,
    /// Every inode handed out, by number − [`ROOT`].
    inodes: Vec<Inode>,
}

/// What an inode number stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Inode {
    /// Its path.
    pub path: Arc<str>,
    /// `None` while it is its path's current inode; once retired, what it was then (`None`
    /// inside when it was nothing).
    pub retired: Option<Option<Kind>>,
}

impl Inodes {
    /// A table holding only the root.
    pub(super) fn new() -> Self {
        let inodes = Inodes::default();
        inodes.inode("");
        inodes
    }

    /// The current inode of `path`, allocating one if needed.
    pub(super) fn inode(&self, path: &str) -> u64 {
        if let Some(&ino) = self.inner.read().by_path.get(path) {
            return ino;
        }
        let mut table = self.inner.write();
        if let Some(&ino) = table.by_path.get(path) {
            return ino;
        }
        let ino = table.inodes.len() as u64 + ROOT;
        let path: Arc<str> = path.into();
        table.inodes.push(Inode {
            path: path.clone(),
            retired: None,
        });
        table.by_path.insert(path, ino);
        ino
    }

    /// An inode handed out earlier.
    pub(super) fn get(&self, ino: u64) -> Option<Inode> {
        let index = ino.checked_sub(ROOT)? as usize;
        self.inner.read().inodes.get(index).cloned()
    }

    /// The path of an inode handed out earlier (current or retired).
    pub(super) fn path(&self, ino: u64) -> Option<Arc<str>> {
        self.get(ino).map(|inode| inode.path)
    }

    /// The current inodes numbered `from` and above, with their paths.
    pub(super) fn current_from(&self, from: u64) -> Vec<(Arc<str>, u64)> {
        let table = self.inner.read();
        let start = from.saturating_sub(ROOT) as usize;
        table
            .inodes
            .iter()
            .zip(ROOT..)
            .skip(start)
            .filter(|(inode, _)| inode.retired.is_none())
            .map(|(inode, ino)| (inode.path.clone(), ino))
            .collect()
    }

    /// The number the next new inode will get.
    pub(super) fn next(&self) -> u64 {
        self.inner.read().inodes.len() as u64 + ROOT
    }

    /// Retires the current inode of `path`, which was `kind`; returns its number.
    pub(super) fn retire(&self, path: &str, kind: Option<Kind>) -> Option<u64> {
        let mut table = self.inner.write();
        let ino = table.by_path.remove(path)?;
        if let Some(inode) = table.inodes.get_mut((ino - ROOT) as usize) {
            inode.retired = Some(kind);
        }
        Some(ino)
    }
}

/// `parent/name`, or `name` at the root.
pub(super) fn child_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// The parent path and the name of a non-root path.
pub(super) fn split_path(path: &str) -> Option<(&str, &str)> {
    if path.is_empty() {
        return None;
    }
    Some(path.rsplit_once('/').unwrap_or(("", path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inodes_are_stable_and_reversible() {
        let inodes = Inodes::new();
        assert_eq!(inodes.inode(""), ROOT);
        let a = inodes.inode("sst/zarr.json");
        assert_eq!(inodes.inode("sst/zarr.json"), a);
        assert_ne!(inodes.inode("sst"), a);
        assert_eq!(&*inodes.path(a).unwrap(), "sst/zarr.json");
        assert!(inodes.path(999).is_none());
        assert_eq!(split_path("sst/zarr.json"), Some(("sst", "zarr.json")));
        assert_eq!(split_path("sst"), Some(("", "sst")));
        assert_eq!(split_path(""), None);
    }

    #[test]
    fn a_retired_inode_keeps_its_path_and_the_path_gets_a_new_one() {
        let inodes = Inodes::new();
        let old = inodes.inode("sst/zarr.json");
        let from = inodes.next();
        assert_eq!(
            inodes.retire("sst/zarr.json", Some(Kind::File(7))),
            Some(old)
        );
        assert_eq!(
            inodes.retire("sst/zarr.json", None),
            None,
            "already retired"
        );
        let retired = inodes.get(old).unwrap();
        assert_eq!(&*retired.path, "sst/zarr.json");
        assert_eq!(retired.retired, Some(Some(Kind::File(7))));
        let new = inodes.inode("sst/zarr.json");
        assert!(new > old);
        assert_eq!(inodes.get(new).unwrap().retired, None);
        assert_eq!(
            inodes.current_from(from),
            vec![("sst/zarr.json".into(), new)]
        );
        let all: Vec<u64> = inodes.current_from(0).iter().map(|c| c.1).collect();
        assert_eq!(all, vec![ROOT, new]);
    }
}
