//! Front ends: thin adapters that translate requests into key-space calls. Today: FUSE.

mod errno;
pub mod fuse;
mod handles;
mod inodes;
mod kernel;
pub mod snapshot;
