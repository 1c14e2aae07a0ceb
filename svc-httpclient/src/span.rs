//! What the client tells `tracing` by itself: one span per attempt, one
//! `debug` event per retry, one `warn` event per failed call.
//!
//! The span is per attempt, not per call, because that is what the
//! OpenTelemetry HTTP client conventions describe (each resend is its own
//! client span, `http.request.resend_count` numbering it), and because a
//! trace then shows where a slow call spent its time: in a hung first
//! attempt, in a `Retry-After` wait, or in the third try. The call itself
//! is the caller's span (the `svc-client` facade's `svc.call`).
//!
//! A failed call is logged once, at its end, with every attempt counted,
//! not once per attempt: during an outage a log line per attempt is a log
//! storm on top of the retry storm. A wrapper that logs the call itself
//! turns it off with [`Config::log_failures`](crate::Config::log_failures).
//!
//! Events go to the caller's span given to
//! [`send_with_parent`](crate::RequestBuilder::send_with_parent), which is
//! not entered while the call runs ([`Scope`]); spans are entered only
//! while their attempt is polled ([`Sending`](crate::attempt::Sending)). Under an OpenTelemetry
//! layer each enter and exit costs about as much as a small
//! allocation-heavy function, so the pipeline avoids the extra ones.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use tracing::Span;
use tracing::field::Empty;
use url::Url;

use crate::endpoint::Endpoint;
use crate::error::{Error, error_chain};

/// One client span per attempt (OpenTelemetry HTTP client conventions),
/// a child of `parent` when it is given and enabled, else of the caller's
/// current span.
///
/// With an `endpoint` (an origin with several), `url.full`,
/// `server.address` and `server.port` are those of the URL the attempt
/// requests there, and `network.peer.address` is the endpoint's address
/// when it is known before connecting.
pub(crate) fn attempt_span(
    parent: Option<&Span>,
    method: &Method,
    url: &Url,
    endpoint: Option<&Endpoint>,
    resend_count: u32,
    peer_service: Option<&str>,
) -> Span {
    // No subscriber takes `info` spans at all (none is installed, or every
    // filter is below `info`): no span. The macro would build a disabled
    // one, which with `tracing`'s `log` feature (on in most services:
    // axum turns it on) still checks the `log` levels on every enter,
    // exit and record.
    if !tracing::level_enabled!(tracing::Level::INFO) {
        return Span::none();
    }
    let parent = parent.and_then(Span::id);
    let endpoint_url = endpoint.map(|e| e.url(url));
    let url = endpoint_url.as_deref().unwrap_or(url);
    // A span's name is part of its static metadata, so each name needs its
    // own `info_span!` call site, and so does each kind of parent (explicit
    // or contextual): the macro writes the field list once for all of them.
    macro_rules! span {
        ($name:literal) => {
            match &parent {
                Some(parent) => span!(@fields $name, parent: parent,),
                None => span!(@fields $name,),
            }
        };
        (@fields $name:literal, $($parent:tt)*) => {
            // Integer attributes are recorded as `i64`: `tracing-opentelemetry`
            // turns an unsigned field into a string through `Debug`
            // formatting, which is both slower and the wrong type for the
            // OpenTelemetry conventions.
            tracing::info_span!(
                target: "svc_httpclient",
                $($parent)*
                $name,
                "otel.kind" = "client",
                "otel.name" = method.as_str(),
                "otel.status_code" = Empty,
                "http.request.method" = method.as_str(),
                "server.address" = url.host_str().unwrap_or_default(),
                "server.port" = i64::from(url.port_or_known_default().unwrap_or_default()),
                "url.full" = &*svc_discovery::url_full(url),
                // Recorded only when set (`Option<&str>` records nothing
                // for `None`).
                "peer.service" = peer_service,
                "http.response.status_code" = Empty,
                "http.request.resend_count" = Empty,
                "error.type" = Empty,
                "network.peer.address" = Empty,
            )
        };
    }
    let span = match *method {
        Method::GET => span!("HTTP GET"),
        Method::POST => span!("HTTP POST"),
        Method::PUT => span!("HTTP PUT"),
        Method::DELETE => span!("HTTP DELETE"),
        Method::PATCH => span!("HTTP PATCH"),
        Method::HEAD => span!("HTTP HEAD"),
        _ => span!("HTTP"),
    };
    if resend_count > 0 {
        span.record("http.request.resend_count", i64::from(resend_count));
    }
    if let Some(peer) = endpoint.and_then(Endpoint::peer) {
        span.record("network.peer.address", peer);
    }
    span
}

/// Records how the attempt of `span` ended.
pub(crate) fn record_end(span: &Span, status: Option<StatusCode>, error_type: Option<&str>) {
    if let Some(status) = status {
        span.record("http.response.status_code", i64::from(status.as_u16()));
    }
    if let Some(error_type) = error_type {
        span.record("error.type", error_type);
        span.record("otel.status_code", "ERROR");
    }
}

/// Where the call's own events go: into the caller's `parent` span when
/// the call was given one (it is not entered while the call runs), else
/// the current span.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a>(pub(crate) Option<&'a Span>);

// ===== impl Scope =====

impl Scope<'_> {
    pub(crate) fn in_scope<R>(self, f: impl FnOnce() -> R) -> R {
        match self.0 {
            Some(parent) => parent.in_scope(f),
            None => f(),
        }
    }

    /// The `debug` event of a retry: after attempt number `attempt`
    /// failed with `reason`, the next one starts in `wait`.
    pub(crate) fn retrying(
        self,
        method: &Method,
        url: &Url,
        attempt: u32,
        reason: Option<&str>,
        wait: Duration,
    ) {
        self.in_scope(|| {
            tracing::debug!(
                target: "svc_httpclient",
                method = %method,
                url = %svc_discovery::Redacted::new(url),
                attempt,
                reason = reason.unwrap_or("unknown"),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying request",
            );
        });
    }

    /// The `warn` event of a call that failed with `err`. `origin` is the
    /// key of the origin the call got to, with the attempts it made there;
    /// `None` when it failed before (an invalid request, missing roots).
    pub(crate) fn call_failed(self, err: &Error, origin: Option<&str>) {
        self.in_scope(|| {
            tracing::warn!(
                target: "svc_httpclient",
                method = err.inner_method().map(Method::as_str),
                url = err.url().map(svc_discovery::redact).unwrap_or_default(),
                origin,
                attempts = origin.map(|_| err.attempts()),
                cause = %error_chain(err),
                "http call failed",
            );
        });
    }

    /// The `warn` event of a call whose last response is a failure (a 5xx
    /// or 429) returned to the caller after `attempts` attempts, because
    /// of `why` (retries exhausted, budget exhausted, ...).
    pub(crate) fn response_failed(
        self,
        method: &Method,
        url: &Url,
        attempts: u32,
        status: StatusCode,
        why: &str,
    ) {
        self.in_scope(|| {
            tracing::warn!(
                target: "svc_httpclient",
                method = method.as_str(),
                url = %svc_discovery::Redacted::new(url),
                attempts,
                status = status.as_u16(),
                cause = why,
                "http call failed",
            );
        });
    }
}
