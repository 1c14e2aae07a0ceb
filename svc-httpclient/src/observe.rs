//! Hooks around every attempt, for what the client cannot know itself.
//!
//! The facade injects the W3C `traceparent` of the attempt span from
//! [`AttemptObserver::on_attempt_start`]; metrics exporters count attempts
//! from [`AttemptObserver::on_attempt_end`]. Both run inside the attempt's
//! `tracing` span, so `tracing::Span::current()` is that span.
//!
//! Observers compose instead of replacing each other
//! ([`Config::observer`](crate::Config::observer) adds one), as layers: the
//! last added sees the request first and the result last. So the facade
//! adds its trace-injecting observer last, and a user's observer, added
//! before, sees the `traceparent` it injected, with no plumbing of the
//! facade's own.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use url::Url;

use crate::Outcome;

/// Hooks run around every attempt of every call. Both methods default to
/// doing nothing. They run synchronously on the calling task: keep them
/// short and never block.
///
/// ```
/// use svc_httpclient::{AttemptEnd, AttemptObserver, AttemptStart, Config, reqwest};
///
/// struct RequestId;
///
/// impl AttemptObserver for RequestId {
///     fn on_attempt_start(&self, request: &mut reqwest::Request, attempt: &AttemptStart<'_>) {
///         let value = format!("attempt-{}", attempt.resend_count());
///         if let Ok(value) = value.parse() {
///             request.headers_mut().insert("x-attempt", value);
///         }
///     }
///     fn on_attempt_end(&self, attempt: &AttemptEnd<'_>) {
///         if attempt.will_retry() {
///             eprintln!("{} {} will be retried", attempt.method(), attempt.url());
///         }
///     }
/// }
///
/// let config = Config::default().observer(RequestId);
/// # let _ = config;
/// ```
pub trait AttemptObserver: Send + Sync + 'static {
    /// Called just before an attempt is sent, inside the attempt's span.
    /// May change the request, for example to add headers.
    fn on_attempt_start(&self, request: &mut reqwest::Request, attempt: &AttemptStart<'_>) {
        let _ = (request, attempt);
    }

    /// Called when an attempt ended: response head received, error, or
    /// timeout. Not called when the caller dropped the call.
    fn on_attempt_end(&self, attempt: &AttemptEnd<'_>) {
        let _ = attempt;
    }
}

/// An `Arc` of an observer is an observer, so the caller can keep a handle
/// to it (for example to read counters it collects).
impl<T: AttemptObserver + ?Sized> AttemptObserver for Arc<T> {
    fn on_attempt_start(&self, request: &mut reqwest::Request, attempt: &AttemptStart<'_>) {
        (**self).on_attempt_start(request, attempt);
    }

    fn on_attempt_end(&self, attempt: &AttemptEnd<'_>) {
        (**self).on_attempt_end(attempt);
    }
}

/// Two observers as one: `outer` sees the request first and the result
/// last (see [`Config::observer`](crate::Config::observer)).
pub(crate) struct Layered {
    pub(crate) outer: Arc<dyn AttemptObserver>,
    pub(crate) inner: Arc<dyn AttemptObserver>,
}

impl AttemptObserver for Layered {
    fn on_attempt_start(&self, request: &mut reqwest::Request, attempt: &AttemptStart<'_>) {
        self.outer.on_attempt_start(request, attempt);
        self.inner.on_attempt_start(request, attempt);
    }

    fn on_attempt_end(&self, attempt: &AttemptEnd<'_>) {
        self.inner.on_attempt_end(attempt);
        self.outer.on_attempt_end(attempt);
    }
}

/// What [`AttemptObserver::on_attempt_start`] is told about an attempt.
#[derive(Debug, Clone, Copy)]
pub struct AttemptStart<'a> {
    pub(crate) resend_count: u32,
    pub(crate) span: &'a tracing::Span,
    pub(crate) parent: Option<&'a tracing::Span>,
}

impl AttemptStart<'_> {
    /// The attempt's span (also the current span during the hook): the one
    /// whose trace context the request should carry. Cheaper than
    /// `tracing::Span::current()`, which clones the span handle through the
    /// subscriber.
    ///
    /// It may be disabled (a filter such as `RUST_LOG=warn,my_service=info`
    /// turns the library's spans off): then the request should carry the
    /// context of [`parent`](AttemptStart::parent), or of the caller's
    /// current span, so that the trace is never lost.
    pub fn span(&self) -> &tracing::Span {
        self.span
    }

    /// The span the call was sent under with
    /// [`RequestBuilder::send_with_parent`](crate::RequestBuilder::send_with_parent),
    /// if any: the next candidate for the trace context when the attempt
    /// span is disabled.
    pub fn parent(&self) -> Option<&tracing::Span> {
        self.parent
    }

    /// 0 for the first attempt, 1 for the first retry, ...
    /// (OpenTelemetry `http.request.resend_count`).
    pub fn resend_count(&self) -> u32 {
        self.resend_count
    }
}

/// What [`AttemptObserver::on_attempt_end`] is told about an attempt.
#[derive(Debug, Clone)]
pub struct AttemptEnd<'a> {
    pub(crate) method: &'a Method,
    pub(crate) url: &'a Url,
    pub(crate) resend_count: u32,
    pub(crate) status: Option<StatusCode>,
    pub(crate) error_type: Option<&'a str>,
    pub(crate) duration: Duration,
    pub(crate) outcome: Outcome,
    pub(crate) will_retry: bool,
    pub(crate) endpoint: Option<&'a str>,
    pub(crate) ejected: bool,
}

impl AttemptEnd<'_> {
    /// The request method.
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The request URL, without credentials.
    pub fn url(&self) -> &Url {
        self.url
    }

    /// 0 for the first attempt, 1 for the first retry, ...
    pub fn resend_count(&self) -> u32 {
        self.resend_count
    }

    /// The response status, when a response head was received.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// The OpenTelemetry `error.type`: the status code as text for a 4xx or
    /// 5xx response, `"timeout"`, `"connect"`, `"transport"`,
    /// `"body_too_large"` or `"request"` for errors (the vocabulary of
    /// [`Error::error_type`](crate::Error::error_type)); `None` when the
    /// attempt succeeded.
    pub fn error_type(&self) -> Option<&str> {
        self.error_type
    }

    /// How long the attempt took.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// What the attempt did to the origin's circuit breaker (also reported
    /// when the breaker is disabled).
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Whether another attempt follows.
    pub fn will_retry(&self) -> bool {
        self.will_retry
    }

    /// The endpoint (`host:port`) that served the attempt, when its origin
    /// has several ([`Client::balance`](crate::Client::balance)); `None`
    /// for an origin called as it is.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint
    }

    /// Whether this attempt's failure ejected its endpoint
    /// ([`OutlierConfig`](crate::OutlierConfig)).
    pub fn ejected(&self) -> bool {
        self.ejected
    }
}
