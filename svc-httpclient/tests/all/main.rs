//! Integration tests: real servers on 127.0.0.1, one per test.

mod bodies;
mod breaker;
mod budget;
mod classification;
mod config;
mod deadline;
mod endpoints;
#[cfg(feature = "serde")]
mod files;
mod observability;
mod origins;
mod retries;
mod smoke;
mod timing;
