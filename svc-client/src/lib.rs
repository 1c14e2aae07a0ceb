//! Call sibling services safely.
#![deny(missing_docs)]

mod client;
mod config;
mod decode;
mod error;
#[cfg(feature = "metrics")]
mod metrics;
mod paths;
mod trace;

pub use client::{Client, RequestBuilder};
pub use config::ClientConfig;
pub use decode::{DEFAULT_DECODE_LIMIT, decode_response, decode_response_with_limit};
pub use error::Error;
#[cfg(feature = "axum")]
pub use trace::trace_middleware;
pub use trace::{continue_trace, extract_context, inject_context, inject_span};

pub use svc_breaker::{CircuitOpen, State};
pub use svc_discovery::{
    Registry, env_var, lookup, must_service_url, service_configured, service_url,
};
pub use svc_httpclient::{
    AttemptEnd, AttemptObserver, AttemptStart, Backoff, CircuitBreaker, CircuitBreakerConfig,
    Method, Response, RetryBudget, StatusCode, header, reqwest,
};
pub use url::Url;

/// `"closed"`, `"open"` or `"half-open"`.
pub(crate) fn state_str(state: State) -> &'static str {
    match state {
        State::Closed => "closed",
        State::Open => "open",
        State::HalfOpen => "half-open",
    }
}
