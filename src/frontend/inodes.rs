//! Inode numbers for key-space paths, handed out on first lookup and stable for the life of the
//! mount (the tree is an immutable snapshot, so a path always means the same thing).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

/// The root directory's inode.
pub const ROOT: u64 = 1;

/// Path <-> inode table.
#[derive(Default)]
pub struct Inodes {
    inner: RwLock<Table>,
}

#[derive(Default)]
struct Table {
    by_path: HashMap<Arc<str>, u64>,
    paths: Vec<Arc<str>>,
}

impl Inodes {
    /// A table holding only the root.
    pub fn new() -> Self {
        let inodes = Inodes::default();
        inodes.inode("");
        inodes
    }

    /// The inode of `path`, allocating one if needed.
    pub fn inode(&self, path: &str) -> u64 {
        if let Some(&ino) = self.inner.read().by_path.get(path) {
            return ino;
        }
        let mut table = self.inner.write();
        if let Some(&ino) = table.by_path.get(path) {
            return ino;
        }
        let ino = table.paths.len() as u64 + ROOT;
        let path: Arc<str> = path.into();
        table.paths.push(path.clone());
        table.by_path.insert(path, ino);
        ino
    }

    /// The path of an inode handed out earlier.
    pub fn path(&self, ino: u64) -> Option<Arc<str>> {
        let index = ino.checked_sub(ROOT)? as usize;
        self.inner.read().paths.get(index).cloned()
    }
}

/// `parent/name`, or `name` at the root.
pub fn child_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
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
    }
}
