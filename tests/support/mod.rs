//! Shared parts of the Rust integration tests.

pub(crate) mod mount;
pub(crate) mod s3_server;
pub(crate) mod zarrs_names;
