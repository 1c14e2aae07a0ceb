//! A retrying HTTP client with a per-origin circuit breaker.
//!
//! Skeleton: the svc-httpclient issue fills this crate.
#![deny(missing_docs)]

pub use reqwest;
pub use reqwest::{Method, Response, StatusCode};
pub use svc_breaker::Config as CircuitBreakerConfig;
