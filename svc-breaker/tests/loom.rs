//! Loom models of the breaker (filled by the svc-breaker issue).
#![cfg(loom)]
