//! Call sibling services safely: discovery, retries, timeouts, a circuit
//! breaker, trace propagation and metrics in one client.
//!
//! # Overview
//!
//! A service author writes `Client::new("auth-svc")?` and gets, with nothing
//! to wire by hand:
//!
//! - **Discovery** from the environment the platform injects
//!   (`auth-svc` → `AUTH_SVC_URL`, with the Kubernetes
//!   `AUTH_SVC_SERVICE_HOST`/`_PORT` fallback), failing at startup with a
//!   message naming the variables when the service is not configured.
//! - **Retries** of failures that can succeed later, with exponential
//!   backoff and jitter, `Retry-After`, a retry budget, and never a replayed
//!   POST unless it is safe (`svc-httpclient`).
//! - **Timeouts**: a deadline for the whole call and one per attempt, and
//!   the caller's own budget across hops: inside a request served behind
//!   `server::layer()`, every call ends by the caller's deadline and tells
//!   the next service what is left ([`deadline`]).
//! - **A circuit breaker** that opens after 5 consecutive failures and fails
//!   calls fast for 30 s ([`Error::is_circuit_open`], with
//!   [`Error::retry_after`]).
//! - **Safe paths**: `get("/users/1")` is joined under the service's base
//!   URL; a path that could reach another host or climb above the base path
//!   (`//evil`, `http://…`, `..`, `\`, CR/LF) is rejected before any I/O.
//! - **Traces**: one OpenTelemetry client span per attempt (`peer.service`,
//!   `http.request.resend_count`), under the caller's span, as the HTTP
//!   client conventions and .NET do; a logical `svc.call` span around them
//!   on request ([`ClientConfig::call_span`]). The W3C
//!   `traceparent`/`tracestate` of each attempt is sent to the service,
//!   even when the application never installed a global propagator or a
//!   filter turned the library's spans off. [`extract_context`], [`continue_trace`] and the
//!   `trace_middleware` for axum (feature `axum`) continue the trace on the
//!   server side.
//! - **Metrics** (feature `metrics`): `http.client.request.duration` per
//!   attempt, calls by outcome, breaker state and transitions.
//!
//! This crate re-exports what a service needs, so it depends on
//! `svc-client` only.
//!
//! # Example
//!
//! ```no_run
//! use serde::Deserialize;
//! use svc_client::{Client, Error};
//!
//! #[derive(Deserialize)]
//! struct User {
//!     id: String,
//!     name: String,
//! }
//!
//! # async fn run() -> Result<(), Error> {
//! // At startup: fails if AUTH_SVC_URL (or the Kubernetes variables) is unset.
//! let auth_client = Client::new("auth-svc")?;
//!
//! // Per request: retries, breaker, timeouts and trace propagation included.
//! let user: User = auth_client.get("/users/123").decode().await?;
//! println!("{} is {}", user.id, user.name);
//! # Ok(())
//! # }
//! ```
//!
//! # Settings from the environment and from files
//!
//! Next to `AUTH_SVC_URL`, an operator tunes the client of `auth-svc` with
//! `AUTH_SVC_TIMEOUT`, `AUTH_SVC_ATTEMPT_TIMEOUT`, `AUTH_SVC_MAX_RETRIES`,
//! `AUTH_SVC_BREAKER_FAILURE_THRESHOLD` and `AUTH_SVC_BREAKER_RESET_TIMEOUT`
//! (durations as `250ms`, `2s`, `1m`; the table is at
//! [`ClientConfig::from_env`]). A set but invalid value is an error naming
//! the variable, never a silent default:
//!
//! ```
//! use std::time::Duration;
//! use svc_client::{Client, ClientConfig, Registry};
//!
//! // In production: `ClientConfig::from_env("auth-svc")?` and `Client::with_config`.
//! let registry = Registry::from_vars([
//!     ("AUTH_SVC_URL", "http://127.0.0.1:8001"),
//!     ("AUTH_SVC_TIMEOUT", "2s"),
//!     ("AUTH_SVC_BREAKER_RESET_TIMEOUT", "15s"),
//! ]);
//! let config = ClientConfig::from_registry(&registry, "auth-svc")?;
//! let auth = Client::from_registry(&registry, "auth-svc", config)?;
//! # let _ = auth;
//!
//! // Or keep your own defaults and let the variables override them.
//! let config = ClientConfig::default()
//!     .max_retries(1)
//!     .apply_settings(&registry, "auth-svc")?;
//! # let _ = config;
//!
//! let typo = Registry::from_vars([("AUTH_SVC_TIMEOUT", "2")]);
//! let err = ClientConfig::from_registry(&typo, "auth-svc").unwrap_err();
//! assert!(err.is_config());
//! assert!(err.to_string().starts_with(
//!     r#"AUTH_SVC_TIMEOUT="2": expected a duration such as 250ms, 2s or 1m"#
//! ));
//! # Ok::<(), svc_client::Error>(())
//! ```
//!
//! With the `serde` feature, [`ClientConfig`] (and the breaker's
//! [`CircuitBreakerConfig`]) deserialize from TOML, JSON or YAML with the
//! setters' names and the same duration format; unknown fields are errors
//! (the fields are listed at [`ClientConfig`]):
//!
//! ```
//! # #[cfg(feature = "serde")] {
//! use std::time::Duration;
//! use svc_client::ClientConfig;
//!
//! let config: ClientConfig = toml::from_str(r#"
//!     timeout = "2s"
//!     max_retries = 1
//!
//!     [circuit_breaker]
//!     failure_threshold = 3
//!     reset_timeout = "15s"
//! "#).unwrap();
//! # let _ = config;
//! let err = toml::from_str::<ClientConfig>("timout = \"2s\"").unwrap_err();
//! assert!(err.message().contains("unknown field `timout`"));
//! # }
//! ```
//!
//! # Guide
//!
//! The Rust twin of every snippet of the Go `pkg/svc` description this
//! crate implements, and the table of how a call's log line, metric and
//! span agree, are in [`_guide`].
//!
//! # Feature flags
//!
//! - `metrics` (default): OpenTelemetry metrics (`ClientConfig::meter` picks
//!   the meter; the global meter provider by default).
//!   Instruments: `http.client.request.duration` (histogram, seconds, per
//!   attempt, semantic-convention attributes and buckets),
//!   `svc.client.calls` (counter by `svc.outcome`: `ok`, `degraded` when the
//!   circuit was open, `error` for an error or a final 5xx),
//!   `svc.client.circuit_breaker.state` (gauge, 1 for the current state) and
//!   `svc.client.circuit_breaker.transitions` (counter).
//! - `axum`: `trace_middleware`, a middleware giving every request a server
//!   span that continues the caller's trace, and `server::layer()`, the same
//!   as a tower layer for axum and tonic servers, which also keeps the
//!   caller's deadline ([`deadline`]) and sheds requests that arrive out of
//!   time.
//! - `grpc`: gRPC (tonic 0.14); `server::layer()` for tonic servers.
//!   span that continues the caller's trace.
//! - `serde`: `Deserialize` for [`ClientConfig`], and, through the `serde`
//!   features of `svc-httpclient` and `svc-breaker`, for
//!   [`svc_httpclient::Config`], [`Backoff`], [`RetryBudget`] and
//!   [`CircuitBreakerConfig`]: settings from files.
//! - `grpc`: [`grpc::Channel`], a tonic 0.14 channel to a sibling service
//!   for any generated client, with the same breaker, deadline, retries,
//!   traces and metrics (`rpc.client.duration`), and
//!   [`Error::from_status`]. TLS for `https` URLs is rustls with the
//!   system's roots.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is **1.88**. Raising it is not a
//! breaking change, but is noted in the changelog.
#![deny(missing_docs)]

pub mod _guide;

mod client;
mod config;
pub mod deadline;
mod decode;
mod error;
#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(any(feature = "axum", feature = "grpc"))]
mod grpc_timeout;
#[cfg(feature = "metrics")]
mod metrics;
mod observe;
mod paths;
mod request;
#[cfg(any(feature = "axum", feature = "grpc"))]
pub mod server;
mod settings;
mod trace;

pub use client::Client;
pub use config::ClientConfig;
pub use decode::{DEFAULT_DECODE_LIMIT, decode_response, decode_response_with_limit};
pub use error::Error;
pub use request::RequestBuilder;
pub use settings::SettingError;
#[cfg(feature = "axum")]
pub use trace::trace_middleware;
pub use trace::{continue_trace, extract_context, inject_context, inject_span};

pub use svc_breaker::{CircuitOpen, Metrics as BreakerMetrics, State, Transition};
pub use svc_discovery::Error as DiscoveryError;
pub use svc_discovery::Setting;
pub use svc_discovery::{
    Registry, endpoints, env_var, lookup, lookup_optional, must_service_url, service_configured,
    service_url,
};
pub use svc_httpclient::Error as HttpError;
pub use svc_httpclient::{
    AttemptEnd, AttemptObserver, AttemptStart, Backoff, CircuitBreaker, CircuitBreakerConfig,
    EndpointState, EndpointsConfig, Method, OutlierConfig, Resolve, Response, RetryBudget,
    StatusCode, header, reqwest,
};
pub use url::Url;

// The README's examples are compiled with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
