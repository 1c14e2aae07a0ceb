//! [`ClientConfig`]: the seed's `svc.ClientConfig`, plus everything
//! `svc-httpclient` offers.

use std::fmt;
use std::time::Duration;

use svc_httpclient::AttemptObserver;

use crate::decode::DEFAULT_DECODE_LIMIT;
use crate::{CircuitBreakerConfig, reqwest};

/// Settings of a [`Client`](crate::Client). `Default` gives the defaults of
/// DESIGN.md §4; the setters are chainable and take `self` by value.
///
/// | setting | default |
/// |---|---|
/// | [`timeout`](ClientConfig::timeout) (whole call, retries included) | 30 s |
/// | [`attempt_timeout`](ClientConfig::attempt_timeout) | 10 s, never past the remaining `timeout` |
/// | [`max_retries`](ClientConfig::max_retries) | 3 |
/// | [`circuit_breaker`](ClientConfig::circuit_breaker) | open after 5 consecutive failures, 30 s open, 1 trial call |
/// | backoff ([`http`](ClientConfig::http)) | 100 ms × 2ⁿ, cap 5 s, full jitter |
/// | `max_retry_after` ([`http`](ClientConfig::http)) | 30 s |
/// | retry budget ([`http`](ClientConfig::http)) | 20% of calls over 10 s, plus 10 retries/s |
/// | [`decode_limit`](ClientConfig::decode_limit) | 16 MiB |
/// | [`shared_pool`](ClientConfig::shared_pool) | on: one connection pool for every client of the process |
///
/// # Example
///
/// The seed's `NewClientWithConfig`:
///
/// ```
/// use std::time::Duration;
/// use svc_client::{CircuitBreakerConfig, ClientConfig};
///
/// let config = ClientConfig::default()
///     .timeout(Duration::from_secs(5)) // shorter timeout for fast-fail
///     .max_retries(2) // fewer retries
///     .circuit_breaker(Some(
///         CircuitBreakerConfig::default()
///             .failure_threshold(3) // open after 3 failures
///             .reset_timeout(Duration::from_secs(15)),
///     ));
/// # let _ = config;
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    pub(crate) http: svc_httpclient::Config,
    pub(crate) decode_limit: u64,
    pub(crate) call_span: bool,
    pub(crate) pool: Pool,
    #[cfg(feature = "metrics")]
    pub(crate) meter: Option<opentelemetry::metrics::Meter>,
}

/// Where a client's connections come from.
#[derive(Clone)]
pub(crate) enum Pool {
    /// The process-wide pool shared by every client.
    Shared,
    /// A pool of its own.
    Own,
    /// The caller's `reqwest::Client`.
    Custom(reqwest::Client),
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            http: svc_httpclient::Config::default(),
            call_span: false,
            decode_limit: DEFAULT_DECODE_LIMIT,
            pool: Pool::Shared,
            #[cfg(feature = "metrics")]
            meter: None,
        }
    }
}

impl ClientConfig {
    /// Deadline of a whole call, retries and backoff included (default
    /// 30 s). Keep it shorter than your own handler's timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.timeout(timeout);
        self
    }

    /// Deadline of one attempt (default 10 s), never past the remaining
    /// `timeout`.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.attempt_timeout(timeout);
        self
    }

    /// Retries after the first attempt (default 3). Only failures that can
    /// succeed later are retried, and POST/PATCH only when safe.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.http = self.http.max_retries(n);
        self
    }

    /// The circuit breaker of the service (`Some(default)` by default);
    /// `None` disables it.
    pub fn circuit_breaker(mut self, config: Option<CircuitBreakerConfig>) -> Self {
        self.http = self.http.circuit_breaker(config);
        self
    }

    /// Every other `svc-httpclient` setting (backoff, `Retry-After` cap,
    /// retry budget, retried statuses, default headers, `User-Agent`,
    /// generated idempotency keys, observers, origin bounds), set on the
    /// wrapped [`svc_httpclient::Config`] by `f`. The facade keeps the
    /// setters of the seed's `ClientConfig` only; the rest has one home.
    ///
    /// ```
    /// use std::time::Duration;
    /// use svc_client::{Backoff, ClientConfig};
    ///
    /// let config = ClientConfig::default()
    ///     .timeout(Duration::from_secs(5))
    ///     .http(|c| c.backoff(Backoff::default().base(Duration::from_millis(50))).retry_budget(None));
    /// # let _ = config;
    /// ```
    pub fn http(
        mut self,
        f: impl FnOnce(svc_httpclient::Config) -> svc_httpclient::Config,
    ) -> Self {
        self.http = f(self.http);
        self
    }

    /// Adds hooks run around every attempt; they see the request after the
    /// client's own (trace context injection) and compose with other
    /// observers (see [`svc_httpclient::Config::observer`]).
    pub fn observer(mut self, observer: impl AttemptObserver) -> Self {
        self.http = self.http.observer(observer);
        self
    }

    /// Wraps each call's attempts in a logical `svc.call` span (default
    /// off). By default, as the OpenTelemetry HTTP client conventions and
    /// .NET do, each attempt is one client span (`HTTP GET`), a child of
    /// the caller's span, carrying `peer.service`,
    /// `http.request.resend_count` and the HTTP attributes; the call's
    /// outcome is in its log line and metric point. Turn it on to see the
    /// retries of one call grouped under one span, with the call's status.
    ///
    /// ```
    /// let config = svc_client::ClientConfig::default().call_span(true);
    /// # let _ = config;
    /// ```
    pub fn call_span(mut self, on: bool) -> Self {
        self.call_span = on;
        self
    }

    /// The body size limit of [`RequestBuilder::decode`](crate::RequestBuilder::decode)
    /// (default 16 MiB). At least 1 byte.
    pub fn decode_limit(mut self, bytes: u64) -> Self {
        self.decode_limit = bytes;
        self
    }

    /// Whether the client uses the process-wide connection pool shared by
    /// every client of every service (default `true`). `false` gives it a
    /// pool of its own.
    pub fn shared_pool(mut self, shared: bool) -> Self {
        self.pool = if shared { Pool::Shared } else { Pool::Own };
        self
    }

    /// Sends through `http` (its pool and TLS settings) instead of the
    /// shared pool. Build it with `reqwest::redirect::Policy::none()`: a
    /// `reqwest::Client` follows redirects by default, and an answer from
    /// another host is never handed back as the service's (the call fails
    /// with [`Error::is_redirect`](crate::Error::is_redirect)).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.pool = Pool::Custom(http);
        self
    }

    /// The meter the client's instruments come from, instead of the global
    /// meter provider's.
    #[cfg(feature = "metrics")]
    pub fn meter(mut self, meter: opentelemetry::metrics::Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// The `svc-httpclient` settings (timeouts, retries, breaker...).
    pub fn http_config(&self) -> &svc_httpclient::Config {
        &self.http
    }
}

impl From<svc_httpclient::Config> for ClientConfig {
    /// Keeps every `svc-httpclient` setting, its observers included (they
    /// see the request after the facade's own).
    fn from(http: svc_httpclient::Config) -> Self {
        ClientConfig {
            http,
            ..ClientConfig::default()
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pool = match self.pool {
            Pool::Shared => "shared",
            Pool::Own => "own",
            Pool::Custom(_) => "custom",
        };
        f.debug_struct("ClientConfig")
            .field("http", &self.http)
            .field("decode_limit", &self.decode_limit)
            .field("call_span", &self.call_span)
            .field("pool", &pool)
            .finish_non_exhaustive()
    }
}
