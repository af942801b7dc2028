//! Front ends: thin adapters that translate requests into key-space calls. FUSE and HTTP.

mod errno;
pub mod fuse;
mod handles;
pub mod http;
mod inodes;
mod kernel;
pub mod snapshot;
