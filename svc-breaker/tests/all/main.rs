//! The breaker's integration tests, in one binary: linking a test binary
//! is the slow part of a test build, so there is one per crate.
//!
//! Not under `--cfg loom`: the dev-dependencies are not built then, and the
//! loom models have their own binary (`tests/loom.rs`, `cargo xtask loom`).
#![cfg(not(loom))]

mod breaker;
mod call;
mod concurrency;
mod config;
#[cfg(feature = "serde")]
mod files;
mod model;
#[cfg(feature = "tower")]
mod tower;
