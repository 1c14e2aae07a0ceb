//! svc-discovery's integration tests, in one binary: linking a test binary
//! is the slow part of a test build, so there is one per crate.

mod endpoints;
mod names;
mod process_env;
mod properties;
mod registry;
