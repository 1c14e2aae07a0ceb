//! Atomics that loom can model.
//!
//! Under `--cfg loom` the atomics that decide the breaker's state (the state
//! word, the rate window, the re-open counter) are loom's, so `tests/loom.rs`
//! explores every interleaving of acquire, record and transition. The
//! statistics counters stay `std` atomics even under loom: they are never
//! read to make a decision, and modelling them would only blow up the search.
//! The layout follows `tokio/src/loom/mod.rs`.

#[cfg(loom)]
pub(crate) use ::loom::sync::atomic::{AtomicU8, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
