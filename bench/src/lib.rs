//! The measuring harness of the svc workspace: loopback servers (healthy,
//! failing, fault-injecting), latency statistics, memory probes and report
//! output, shared by the `compare` and `soak` binaries and the fuzz tests.
//!
//! # Overview
//!
//! - The servers themselves run on `svc_demo::net`, the one listener that
//!   counts connections and lets a handler reset its own (the demo's
//!   services serve on it too).
//! - [`fault`]: the fault-injecting handler of the soak (5xx, 429 with
//!   `Retry-After`, slow and hung answers, resets, bodies that are cut
//!   short, stall or are reset after a `200` head, invalid JSON; outage and
//!   bad-bodies modes) and what it observed (requests, POST replays,
//!   arrival gaps).
//! - [`invariants`]: the soak's checks, as pure functions of what it saw.
//! - [`soak`]: the `soak` binary's fault storm (callers, loopers, the
//!   server's schedule, what they observed, the printed report).
//! - [`stats`]: percentiles of latency samples.
//! - [`mem`]: the process's resident set size, from `/proc/self/status`.
//! - [`compare`]: the `compare` binary's suites (four clients side by
//!   side: latency, throughput, outage, memory).
//! - [`benchmarks`]: `BENCHMARKS.md`, from criterion's estimates and the
//!   `compare` output (the `bench-report` binary `cargo xtask bench` runs).
//! - [`report`]: the flat `key<TAB>value` file `cargo xtask bench` reads,
//!   and table formatting.
//!
//! Everything here talks to loopback addresses only.
#![deny(missing_docs)]

pub mod benchmarks;
pub mod compare;
mod date;
pub mod fault;
pub mod invariants;
pub mod mem;
pub mod report;
pub mod soak;
pub mod stats;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, ignoring poisoning: a panicking task must not hide what was
/// recorded (the soak reports panics separately).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The runtime the binaries measure on: multi-threaded, two workers.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
