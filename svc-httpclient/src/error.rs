//! The one error type of the crate.
//!
//! It is opaque (a boxed private kind, one pointer wide, like reqwest's) so
//! new failure kinds can be added without breaking callers, and so a
//! `Result<Response, Error>` stays small. Callers classify it with the
//! predicates, which walk [`source()`](std::error::Error::source) so they
//! still answer when the error is wrapped (by the svc-client facade, or by
//! the budget error wrapping the last attempt's error).
//!
//! URLs inside are stripped of credentials when the error is built, and
//! `Display` and `Debug` show them through `svc_discovery::Redacted` (no
//! query values), so no message or log line can leak a password or a token.
//!
//! One vocabulary names failures for telemetry: [`Error::error_type`] (the
//! OpenTelemetry `error.type`), shared by the attempt spans, the
//! [`AttemptEnd`](crate::AttemptEnd) of observers and the facade's call
//! spans and metrics, so a dashboard groups the same failure the same way
//! wherever it is counted. One formatter, [`error_chain`], renders an
//! error with its causes for a log line.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

use reqwest::{Method, StatusCode};
use url::Url;

use crate::CircuitOpen;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A failed call: circuit open, timeout, connection failure, other transport
/// failure, retry budget exhausted, or an invalid request or configuration.
///
/// An HTTP status is never an `Error` by itself: a call that got a response
/// returns it, whatever its status.
///
/// ```no_run
/// # async fn run() -> Result<(), svc_httpclient::Error> {
/// let client = svc_httpclient::Client::new(Default::default())?;
/// match client.get("http://auth-svc:8001/users/123").await {
///     Ok(resp) => println!("status {}", resp.status()),
///     Err(e) if e.is_circuit_open() => println!("auth-svc is down, serve from cache"),
///     Err(e) => return Err(e),
/// }
/// # Ok(())
/// # }
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    method: Option<Method>,
    url: Option<Url>,
    attempts: u32,
    status: Option<StatusCode>,
    source: Option<BoxError>,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// Invalid configuration: the setting and why.
    Config(&'static str, Cow<'static, str>),
    /// Invalid request: bad URL, body encoding, invalid header.
    Request,
    /// The call's deadline (or, inside the chain, one attempt's limit) passed.
    Timeout,
    /// One attempt ran out of its `attempt_timeout` (a source of the others).
    AttemptTimeout(std::time::Duration),
    /// The deadline given from outside the call
    /// ([`RequestBuilder::deadline`](crate::RequestBuilder::deadline), such
    /// as the caller's propagated budget) passed: before the call started
    /// (nothing sent), or during it (its attempt's timeout is the source).
    DeadlineExceeded,
    /// No connection could be made.
    Connect,
    /// Sending the request or receiving the response head failed.
    Transport,
    /// The breaker of the origin rejected the attempt.
    CircuitOpen(CircuitOpen),
    /// The retry budget of the origin had no retry left.
    BudgetExhausted,
    /// Reading the response body failed (reset, cut short) after a
    /// response head had arrived.
    Body,
    /// The response body was larger than the limit (bytes).
    BodyTooLarge(u64),
    /// `bytes()`, `text()` or `decode()` got a response outside 2xx.
    Status(StatusCode),
    /// An `https` call on a machine without root certificates.
    TlsRoots,
    /// The body was not JSON of the expected type.
    Decode,
}

impl Kind {
    /// The OpenTelemetry `error.type` of a failure of this kind (a
    /// `Status` error's is its status code).
    pub(crate) fn error_type(&self) -> &str {
        match self {
            Kind::Timeout | Kind::AttemptTimeout(_) => "timeout",
            Kind::DeadlineExceeded => "deadline_exceeded",
            Kind::Connect | Kind::TlsRoots => "connect",
            Kind::BodyTooLarge(_) => "body_too_large",
            Kind::Request | Kind::Config(..) => "request",
            Kind::CircuitOpen(_) => "circuit_open",
            Kind::BudgetExhausted => "retry_budget",
            Kind::Decode => "decode",
            Kind::Status(status) => status.as_str(),
            Kind::Transport | Kind::Body => "transport",
        }
    }
}

// ===== impl Error =====

impl Error {
    pub(crate) fn new(kind: Kind) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                method: None,
                url: None,
                attempts: 0,
                status: None,
                source: None,
            }),
        }
    }

    pub(crate) fn config(setting: &'static str, why: impl Into<Cow<'static, str>>) -> Error {
        Error::new(Kind::Config(setting, why.into()))
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    /// Sets the URL, stripping credentials.
    pub(crate) fn with_url(mut self, url: &Url) -> Error {
        self.inner.url = Some(svc_discovery::strip_userinfo(url).into_owned());
        self
    }

    /// Sets a URL known to be free of credentials.
    pub(crate) fn with_clean_url(mut self, url: Url) -> Error {
        self.inner.url = Some(url);
        self
    }

    pub(crate) fn with_method(mut self, method: Method) -> Error {
        self.inner.method = Some(method);
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Error {
        self.inner.attempts = attempts;
        self
    }

    pub(crate) fn with_status(mut self, status: Option<StatusCode>) -> Error {
        self.inner.status = status;
        self
    }

    pub(crate) fn inner_method(&self) -> Option<&Method> {
        self.inner.method.as_ref()
    }

    fn chain(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        let first: &(dyn StdError + 'static) = self;
        std::iter::successors(Some(first), |e| (*e).source())
    }

    fn any_kind(&self, pred: impl Fn(&Kind) -> bool) -> bool {
        self.chain().any(|e| {
            e.downcast_ref::<Error>()
                .is_some_and(|e| pred(&e.inner.kind))
        })
    }

    /// The breaker of the origin is open (or half-open with its trial in
    /// flight): the request was not sent. See [`Error::circuit_open`].
    pub fn is_circuit_open(&self) -> bool {
        self.chain().any(|e| e.is::<CircuitOpen>())
            || self.any_kind(|k| matches!(k, Kind::CircuitOpen(_)))
    }

    /// The call's `timeout` or an attempt's `attempt_timeout` passed.
    pub fn is_timeout(&self) -> bool {
        self.any_kind(|k| {
            matches!(
                k,
                Kind::Timeout | Kind::AttemptTimeout(_) | Kind::DeadlineExceeded
            )
        }) || self.chain().any(|e| {
            e.downcast_ref::<reqwest::Error>()
                .is_some_and(reqwest::Error::is_timeout)
                || e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        })
    }

    /// The deadline given from outside the call
    /// ([`RequestBuilder::deadline`](crate::RequestBuilder::deadline), the
    /// caller's own caller's budget in svc-client) passed: either before the
    /// call started (nothing was sent, [`attempts`](Error::attempts) is 0),
    /// or while an attempt ran, which that deadline cut short. Such an error
    /// is also [`is_timeout`](Error::is_timeout). The breaker does not count
    /// it against the service: the time was the caller's to give.
    ///
    /// ```no_run
    /// # async fn run(client: svc_httpclient::Client) {
    /// let at = tokio::time::Instant::now(); // no time left
    /// let err = client.get("http://auth-svc:8001/users/1").deadline(at).await.unwrap_err();
    /// assert!(err.is_deadline_exceeded() && err.attempts() == 0);
    /// # }
    /// ```
    pub fn is_deadline_exceeded(&self) -> bool {
        self.any_kind(|k| matches!(k, Kind::DeadlineExceeded))
    }

    /// No connection could be made (refused, DNS, TLS handshake).
    pub fn is_connect(&self) -> bool {
        self.any_kind(|k| matches!(k, Kind::Connect | Kind::TlsRoots))
            || self.chain().any(|e| {
                e.downcast_ref::<reqwest::Error>()
                    .is_some_and(reqwest::Error::is_connect)
            })
    }

    /// The per-origin retry budget refused a retry after a failed attempt;
    /// the attempt's own error is the [`source`](StdError::source), so
    /// [`is_timeout`](Error::is_timeout) or [`is_connect`](Error::is_connect)
    /// also answer for it.
    pub fn is_budget_exhausted(&self) -> bool {
        self.any_kind(|k| matches!(k, Kind::BudgetExhausted))
    }

    /// The request (bad URL, body encoding, invalid header) or the client
    /// configuration was invalid; nothing was sent.
    pub fn is_request(&self) -> bool {
        self.any_kind(|k| matches!(k, Kind::Request | Kind::Config(..)))
    }

    /// Reading the response body failed after its head arrived (the
    /// connection was reset or closed early), when the library read it
    /// (`bytes()`, `text()`, `decode()`). A body cut off by the deadline
    /// answers [`is_timeout`](Error::is_timeout) instead.
    pub fn is_body(&self) -> bool {
        self.any_kind(|k| matches!(k, Kind::Body | Kind::BodyTooLarge(_)))
    }

    /// The response body was larger than the limit
    /// ([`RequestBuilder::body_limit`](crate::RequestBuilder::body_limit)).
    pub fn is_body_too_large(&self) -> bool {
        self.any_kind(|k| matches!(k, Kind::BodyTooLarge(_)))
    }

    /// `bytes()`, `text()` or `decode()` got a final response outside
    /// 2xx; [`status`](Error::status) says which.
    pub fn is_status(&self) -> bool {
        self.any_kind(|k| matches!(k, Kind::Status(_)))
    }

    /// `decode()` got a body that is not JSON of the expected type (the
    /// `serde_json` error is the [`source`](StdError::source)).
    pub fn is_decode(&self) -> bool {
        self.any_kind(|k| matches!(k, Kind::Decode))
    }

    /// The status of the last response this call received before it failed
    /// (for example the 503 after which the breaker opened), if any.
    pub fn status(&self) -> Option<StatusCode> {
        self.status_ref().copied()
    }

    /// The OpenTelemetry `error.type` of this failure, the value spans and
    /// metrics record for it:
    ///
    /// | failure | `error.type` |
    /// |---|---|
    /// | rejected by an open circuit, nothing sent | `circuit_open` |
    /// | the deadline given to the call ([`RequestBuilder::deadline`](crate::RequestBuilder::deadline)) passed | `deadline_exceeded` |
    /// | the call's deadline or an attempt's limit passed | `timeout` |
    /// | no connection could be made (or no TLS roots) | `connect` |
    /// | the circuit opened during the retries | the last failure's: its status (`503`), or its type |
    /// | the retry budget refused a retry | `retry_budget` |
    /// | a body over the limit | `body_too_large` |
    /// | a final status outside 2xx (`bytes()`, `decode()`, ...) | the status (`404`) |
    /// | a body that is not the expected JSON | `decode` |
    /// | an invalid request or configuration | `request` |
    /// | another transport failure (reset, cut-off body) | `transport` |
    ///
    /// ```
    /// let err = svc_httpclient::Client::new(
    ///     svc_httpclient::Config::default().timeout(std::time::Duration::ZERO),
    /// )
    /// .unwrap_err();
    /// assert_eq!(err.error_type(), "request");
    /// ```
    pub fn error_type(&self) -> &str {
        if self.is_circuit_open() && self.attempts() == 0 {
            return "circuit_open";
        }
        if self.is_deadline_exceeded() {
            return "deadline_exceeded";
        }
        if self.is_timeout() {
            return "timeout";
        }
        if self.is_connect() {
            return "connect";
        }
        match &self.inner.kind {
            // The breaker opened after this failure: the failure's type.
            Kind::CircuitOpen(_) => match self.status_ref() {
                Some(status) => status.as_str(),
                None => self
                    .source()
                    .and_then(|e| e.downcast_ref::<Error>())
                    .map_or("circuit_open", Error::error_type),
            },
            kind => kind.error_type(),
        }
    }

    fn status_ref(&self) -> Option<&StatusCode> {
        self.chain()
            .filter_map(|e| e.downcast_ref::<Error>())
            .find_map(|e| e.inner.status.as_ref())
    }

    /// Attempts actually sent before the call failed (0 when the breaker
    /// rejected the first one or the request was invalid).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// The URL of the request, without credentials (but with its query:
    /// show it with `svc_discovery::Redacted` when it may hold tokens).
    pub fn url(&self) -> Option<&Url> {
        self.inner.url.as_ref()
    }

    /// The breaker's rejection, whose
    /// [`retry_after`](CircuitOpen::retry_after) suits a `Retry-After` header.
    pub fn circuit_open(&self) -> Option<&CircuitOpen> {
        self.chain().find_map(|e| {
            e.downcast_ref::<CircuitOpen>().or_else(|| {
                e.downcast_ref::<Error>().and_then(|e| match &e.inner.kind {
                    Kind::CircuitOpen(open) => Some(open),
                    _ => None,
                })
            })
        })
    }
}

struct Attempts(u32);

impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("1 attempt"),
            n => write!(f, "{n} attempts"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let target = match &inner.url {
            Some(url) => format!(" to {}", svc_discovery::Redacted::new(url)),
            None => String::new(),
        };
        let attempts = Attempts(inner.attempts);
        match &inner.kind {
            Kind::Config(setting, why) => write!(f, "invalid client config: `{setting}` {why}"),
            Kind::Request => write!(f, "invalid request{target}"),
            Kind::Timeout => write!(f, "request{target} timed out after {attempts}"),
            Kind::AttemptTimeout(limit) => {
                write!(f, "attempt{target} timed out after {limit:?}")
            }
            Kind::DeadlineExceeded if inner.attempts == 0 => {
                write!(f, "deadline exceeded: request{target} not sent")
            }
            Kind::DeadlineExceeded => {
                write!(
                    f,
                    "deadline exceeded: request{target} stopped after {attempts}"
                )
            }
            Kind::Connect => write!(f, "could not connect{target} after {attempts}"),
            Kind::Transport => write!(f, "request{target} failed after {attempts}"),
            Kind::CircuitOpen(_) if inner.attempts == 0 => {
                write!(f, "circuit breaker is open: request{target} not sent")
            }
            Kind::CircuitOpen(_) => {
                write!(
                    f,
                    "circuit breaker opened: request{target} stopped after {attempts}"
                )
            }
            Kind::BudgetExhausted => {
                write!(
                    f,
                    "retry budget exhausted: request{target} failed after {attempts}"
                )
            }
            Kind::Body => write!(
                f,
                "reading the response body{} failed after {attempts}",
                from(&inner.url)
            ),
            Kind::BodyTooLarge(limit) => write!(
                f,
                "response body{} exceeds the limit of {limit} bytes",
                from(&inner.url)
            ),
            Kind::TlsRoots => write!(
                f,
                "no TLS root certificates: https request{target} not sent"
            ),
            Kind::Status(status) => {
                write!(f, "unexpected status {status}{}", from(&inner.url))
            }
            Kind::Decode => write!(f, "could not decode the JSON response{}", from(&inner.url)),
        }
    }
}

/// ` from {url}` (redacted), or nothing.
fn from(url: &Option<Url>) -> String {
    match url {
        Some(url) => format!(" from {}", svc_discovery::Redacted::new(url)),
        None => String::new(),
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let mut d = f.debug_struct("svc_httpclient::Error");
        d.field("kind", &inner.kind);
        if let Some(method) = &inner.method {
            d.field("method", method);
        }
        if let Some(url) = &inner.url {
            d.field("url", &svc_discovery::Redacted::new(url));
        }
        if inner.attempts > 0 {
            d.field("attempts", &inner.attempts);
        }
        if let Some(status) = inner.status {
            d.field("status", &status);
        }
        if let Some(source) = &inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// Renders `err` and its sources as `a: b: c`, for a log line (a source
/// whose message the text already ends with is not repeated).
///
/// ```
/// let err = svc_httpclient::Client::new(
///     svc_httpclient::Config::default().circuit_breaker(Some(
///         svc_httpclient::CircuitBreakerConfig::default().failure_threshold(0),
///     )),
/// )
/// .unwrap_err();
/// let line = svc_httpclient::error_chain(&err);
/// assert!(line.starts_with("invalid client config: `circuit_breaker`"), "{line}");
/// ```
pub fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        // Wrappers often repeat their source's text; skip exact repeats.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests;
