//! Integration tests: real servers on 127.0.0.1, one per test.

#[path = "../support/mod.rs"]
mod support;

mod classification;
mod retries;
mod smoke;
mod timing;
