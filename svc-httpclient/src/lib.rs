//! A retrying HTTP client that cannot cause a retry storm or a double charge.
//!
//! # Overview
//!
//! [`Client`] wraps a [`reqwest::Client`] (rustls, one connection pool) in a
//! pipeline for every call:
//!
//! 1. **Deadline**: `timeout` (30 s) bounds the whole call, retries and
//!    backoff included; each attempt gets `min(attempt_timeout, remaining)`.
//!    A deadline from outside the call (the caller's own budget,
//!    [`RequestBuilder::deadline`]) bounds it too, and can be sent on with
//!    each attempt ([`RequestBuilder::deadline_header`]).
//! 2. **Retry loop**: up to `max_retries` (3) retries of failures that can
//!    succeed later (connect errors, timeouts, resets, 408, 429, 500, 502,
//!    503, 504), with exponential backoff and full jitter, or the server's
//!    `Retry-After` (capped, and never past the deadline).
//! 3. **Retry budget** per origin: retries may add 20% to the calls of the
//!    last 10 s (plus 10/s), so an outage cannot multiply the load on the
//!    failing service.
//! 4. **Circuit breaker** per origin (scheme, host, port), from
//!    [`svc_breaker`]: every attempt is recorded (2xx/3xx success; 5xx, 429,
//!    network errors and timeouts failure; other 4xx and cancellation no
//!    effect); while it is open, calls fail at once without I/O.
//!
//! POST and PATCH are never replayed once they may have reached the server,
//! unless they carry an `Idempotency-Key` (see
//! [`RequestBuilder::idempotency_key`] and
//! [`Config::generate_idempotency_keys`]) or the caller opts in with
//! [`RequestBuilder::retry_unsafe`]. JSON and byte bodies are encoded once
//! and replayed; a streaming body gets exactly one attempt.
//!
//! An HTTP status is never an `Err`: after the last attempt the caller gets
//! the last [`Response`] and checks its status. [`Error`] is for what has no
//! response: circuit open, timeout, connection failure, retry budget
//! exhausted, invalid request.
//!
//! Each attempt is a `tracing` span following the OpenTelemetry HTTP client
//! conventions (`http.request.method`, `server.address`, `server.port`,
//! `url.full` without credentials, `http.response.status_code`,
//! `http.request.resend_count`, `error.type`), a child of the caller's
//! span; each retry is a `debug` event and each failed call one `warn`
//! event. Values of `Authorization`, `Cookie` and `Proxy-Authorization`
//! and URL credentials never appear in a log, an error or a `Debug` output.
//!
//! # Example
//!
//! Services usually reach this client through the `svc-client` facade
//! (`svc_client::Client::new("auth-svc")`), which adds discovery and trace
//! propagation. Used directly:
//!
//! ```no_run
//! use std::time::Duration;
//! use svc_httpclient::{CircuitBreakerConfig, Client, Config, StatusCode};
//!
//! # async fn run() -> Result<(), svc_httpclient::Error> {
//! let client = Client::new(
//!     Config::default()
//!         .timeout(Duration::from_secs(5))
//!         .max_retries(2)
//!         .circuit_breaker(Some(
//!             CircuitBreakerConfig::default()
//!                 .failure_threshold(3)
//!                 .reset_timeout(Duration::from_secs(15)),
//!         )),
//! )?;
//!
//! match client.get("http://auth-svc:8001/users/123").await {
//!     Ok(resp) if resp.status() == StatusCode::OK => { /* decode */ }
//!     Ok(resp) => eprintln!("auth-svc answered {}", resp.status()),
//!     Err(e) if e.is_circuit_open() => { /* degrade: serve from cache */ }
//!     Err(e) => return Err(e),
//! }
//!
//! // A POST is retried only with an idempotency key.
//! let resp = client
//!     .post("http://auth-svc:8001/validate", &serde_json::json!({ "token": "t" }))
//!     .idempotency_key("validate-7f3a")
//!     .await?;
//! # let _ = resp;
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! - `serde` (off): [`Config`] (with [`Backoff`], [`RetryBudget`] and the
//!   breaker's [`CircuitBreakerConfig`]) deserializes from configuration
//!   files; see [`Config`'s documentation](Config#from-a-file-feature-serde).
//!
//! TLS is rustls (through reqwest); no OpenSSL.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is **1.88**. Raising it is not a
//! breaking change, but is noted in the changelog.
#![deny(missing_docs)]

mod attempt;
mod backoff;
mod budget;
mod call;
mod client;
mod config;
mod deadline;
mod endpoint;
mod error;
mod observe;
mod origin;
mod policy;
mod request;
mod retry;
mod span;

pub use reqwest;
pub use reqwest::{Method, Response, StatusCode, header};
pub use svc_breaker::Config as CircuitBreakerConfig;
pub use svc_breaker::{CircuitBreaker, CircuitOpen, Outcome, State, Transition};

pub use backoff::Backoff;
pub use client::Client;
pub use config::{Config, RetryBudget};
pub use endpoint::EndpointState;
pub use endpoint::config::{EndpointsConfig, OutlierConfig};
pub use endpoint::resolve::{Resolve, Resolving};
pub use error::{Error, error_chain};
pub use observe::{AttemptEnd, AttemptObserver, AttemptStart};
pub use policy::RetryPolicy;
pub use request::{DEFAULT_BODY_LIMIT, RequestBuilder};

// The README's example is compiled with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
