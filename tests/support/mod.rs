//! Shared parts of the Rust integration tests.

pub mod s3_server;
