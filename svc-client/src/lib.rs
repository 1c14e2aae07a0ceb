//! Call sibling services safely.
//!
//! Skeleton: the svc-client issue fills this crate.
#![deny(missing_docs)]

pub use svc_breaker::State;
pub use svc_httpclient::{CircuitBreakerConfig, Method, Response, StatusCode};
