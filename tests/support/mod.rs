//! Shared parts of the Rust integration tests.

pub(crate) mod s3_server;
