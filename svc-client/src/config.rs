//! [`ClientConfig`]: the seed's `svc.ClientConfig`, plus everything
//! `svc-httpclient` offers.

use std::fmt;
use std::time::Duration;

use svc_httpclient::AttemptObserver;

use crate::decode::DEFAULT_DECODE_LIMIT;
use crate::error::Error;
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
/// | [`propagate_deadline`](ClientConfig::propagate_deadline) | on: a call inside a request with a budget ends by it and sends what is left |
/// | [`deadline_margin`](ClientConfig::deadline_margin) | 5 ms kept back from the request's budget |
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
///
/// # From the environment
///
/// [`ClientConfig::from_env`] reads `AUTH_SVC_TIMEOUT`,
/// `AUTH_SVC_ATTEMPT_TIMEOUT`, `AUTH_SVC_MAX_RETRIES`,
/// `AUTH_SVC_BREAKER_FAILURE_THRESHOLD` and `AUTH_SVC_BREAKER_RESET_TIMEOUT`
/// next to `AUTH_SVC_URL`; [`from_registry`](ClientConfig::from_registry)
/// reads them from a [`Registry`](crate::Registry) snapshot and
/// [`apply_settings`](ClientConfig::apply_settings) over a config of your
/// own.
///
/// # From a file (feature `serde`)
///
/// `ClientConfig` deserializes from any serde format (TOML, JSON, YAML),
/// one table per service, with the names of the setters: every field of
/// [`svc_httpclient::Config`]'s file format (`timeout`, `attempt_timeout`,
/// `max_retries`, `circuit_breaker`, `backoff`, `retry_budget`,
/// `max_retry_after`, `retry_statuses`, `user_agent`,
/// `generate_idempotency_keys`, `max_origins`, `origin_idle_timeout`; see
/// its documentation) and the facade's own `decode_limit` (bytes),
/// `call_span`, `shared_pool` and `propagate_deadline` (bools) and
/// `deadline_margin` (a duration). Durations are strings such as
/// `"250ms"`, `"2s"`, `"1m30s"`; `circuit_breaker = false` turns the
/// breaker off. A missing field keeps its default, an unknown one is an
/// error, and every value is validated while the file is read, the error
/// naming the setting. Code stays in code: observers, the meter, the
/// `reqwest::Client` of [`http_client`](ClientConfig::http_client); and
/// `peer_service` and `log_failures` are the facade's to set (an error in
/// a file).
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use std::collections::BTreeMap;
/// use svc_client::{ClientConfig, Registry};
///
/// let file = r#"
///     [auth-svc]
///     timeout = "2s"
///     max_retries = 1
///     circuit_breaker = { failure_threshold = 3, reset_timeout = "15s" }
///
///     [chat-svc]
///     timeout = "500ms"
///     circuit_breaker = false
/// "#;
/// let mut services: BTreeMap<String, ClientConfig> = toml::from_str(file).unwrap();
/// // An operator's variables still win over the file.
/// let registry = Registry::from_vars([("AUTH_SVC_MAX_RETRIES", "0")]);
/// let auth = services.remove("auth-svc").unwrap().apply_settings(&registry, "auth-svc")?;
/// # let _ = auth;
///
/// let err = toml::from_str::<ClientConfig>("max_retries = -1").unwrap_err();
/// assert!(err.message().contains("expected u32"), "{err}");
/// # }
/// # Ok::<(), svc_client::Error>(())
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    pub(crate) http: svc_httpclient::Config,
    pub(crate) decode_limit: u64,
    pub(crate) call_span: bool,
    pub(crate) pool: Pool,
    pub(crate) propagate_deadline: bool,
    pub(crate) deadline_margin: Duration,
    #[cfg(feature = "metrics")]
    pub(crate) meter: Option<opentelemetry::metrics::Meter>,
}

/// The default [`ClientConfig::deadline_margin`].
pub(crate) const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_millis(5);

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
            propagate_deadline: true,
            deadline_margin: DEFAULT_DEADLINE_MARGIN,
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

    /// How a service with several replicas is called: balancing, outlier
    /// ejection, re-resolution of a host name (see
    /// [`svc_httpclient::EndpointsConfig`]; the replicas come from a list in
    /// `{NAME}_URL` or from the addresses of its host name).
    ///
    /// ```
    /// use std::time::Duration;
    /// use svc_client::{ClientConfig, EndpointsConfig, OutlierConfig};
    ///
    /// let config = ClientConfig::default().endpoints(
    ///     EndpointsConfig::default()
    ///         .outlier(OutlierConfig::default().base_ejection_time(Duration::from_secs(10))),
    /// );
    /// # let _ = config;
    /// ```
    pub fn endpoints(mut self, endpoints: svc_httpclient::EndpointsConfig) -> Self {
        self.http = self.http.endpoints(endpoints);
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

    /// Whether calls made while a request with a budget is being handled
    /// (inside [`server::layer()`](crate::server::layer), see
    /// [`deadline`](crate::deadline)) are bound by that budget (default
    /// `true`): each call then runs with `min(its timeout, remaining -
    /// deadline_margin)`, sends each attempt's own budget to the service
    /// (the `svc-timeout-ms` header; `grpc-timeout` for a
    /// [`grpc::Channel`](crate::grpc::Channel)), never starts an attempt or a
    /// backoff it cannot finish, and fails at once with
    /// [`Error::is_deadline_exceeded`](crate::Error::is_deadline_exceeded)
    /// when nothing is left. `false` ignores the request's budget: the
    /// client's own timeouts only, as before there were deadlines.
    ///
    /// ```
    /// // A background job's client: its calls outlive the request that started it.
    /// let config = svc_client::ClientConfig::default().propagate_deadline(false);
    /// # let _ = config;
    /// ```
    pub fn propagate_deadline(mut self, on: bool) -> Self {
        self.propagate_deadline = on;
        self
    }

    /// How much of the request's remaining budget a call leaves unused
    /// (default 5 ms): the time this service needs to turn the call's
    /// result (or its failure) into its own answer before its caller gives
    /// up. A call inside a request with 100 ms left runs for at most 95 ms.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let config = svc_client::ClientConfig::default().deadline_margin(Duration::from_millis(20));
    /// # let _ = config;
    /// ```
    pub fn deadline_margin(mut self, margin: Duration) -> Self {
        self.deadline_margin = margin;
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
            .field("propagate_deadline", &self.propagate_deadline)
            .field("deadline_margin", &self.deadline_margin)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// Checks the facade's own settings and the `svc-httpclient` ones, as
    /// building a [`Client`](crate::Client) does.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.decode_limit == 0 {
            return Err(Error::config("decode_limit", "must be at least 1 byte"));
        }
        self.http.validate().map_err(Error::http_config)
    }
}

// ===== serde =====

/// The file format (feature `serde`): every field of `svc-httpclient`'s
/// `Config` file format, and the facade's own (`decode_limit`,
/// `call_span`, `shared_pool`), in one table.
///
/// serde cannot combine `flatten` with `deny_unknown_fields`, so the
/// facade reads its own fields and hands the rest, as one table, to
/// `svc_httpclient::Config`'s `Deserialize`, which rejects unknown fields
/// and validates. The `svc-httpclient` fields thus have one definition,
/// there, and a field added to it is accepted here with no change.
#[cfg(feature = "serde")]
mod file {
    use std::fmt;

    use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

    use super::{ClientConfig, Pool};

    impl<'de> Deserialize<'de> for ClientConfig {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_map(ClientConfigVisitor)
        }
    }

    struct ClientConfigVisitor;

    impl<'de> Visitor<'de> for ClientConfigVisitor {
        type Value = ClientConfig;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table of client settings")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClientConfig, A::Error> {
            let mut http = serde_json::Map::new();
            let mut decode_limit: Option<u64> = None;
            let mut call_span: Option<bool> = None;
            let mut shared_pool: Option<bool> = None;
            let mut propagate_deadline: Option<bool> = None;
            let mut deadline_margin: Option<String> = None;
            fn once<T, E: de::Error>(
                slot: &mut Option<T>,
                key: &'static str,
                value: T,
            ) -> Result<(), E> {
                match slot.replace(value) {
                    Some(_) => Err(E::duplicate_field(key)),
                    None => Ok(()),
                }
            }
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "decode_limit" => once(&mut decode_limit, "decode_limit", map.next_value()?)?,
                    "call_span" => once(&mut call_span, "call_span", map.next_value()?)?,
                    "shared_pool" => once(&mut shared_pool, "shared_pool", map.next_value()?)?,
                    "propagate_deadline" => once(
                        &mut propagate_deadline,
                        "propagate_deadline",
                        map.next_value()?,
                    )?,
                    "deadline_margin" => {
                        once(&mut deadline_margin, "deadline_margin", map.next_value()?)?;
                    }
                    // The facade sets them itself: a file's value would be
                    // silently replaced.
                    "peer_service" | "log_failures" => {
                        return Err(de::Error::custom(format_args!(
                            "`{key}` is set by svc-client itself (the service's name; one log \
                             line per failed call) and cannot be set in a client's settings"
                        )));
                    }
                    _ => {
                        let value: serde_json::Value = map.next_value()?;
                        if http.insert(key, value).is_some() {
                            return Err(de::Error::custom("a field is set twice"));
                        }
                    }
                }
            }
            let http = svc_httpclient::Config::deserialize(serde_json::Value::Object(http))
                .map_err(de::Error::custom)?;
            let mut config = ClientConfig::from(http);
            if let Some(limit) = decode_limit {
                config = config.decode_limit(limit);
            }
            if let Some(on) = call_span {
                config = config.call_span(on);
            }
            if let Some(shared) = shared_pool {
                config.pool = if shared { Pool::Shared } else { Pool::Own };
            }
            if let Some(on) = propagate_deadline {
                config = config.propagate_deadline(on);
            }
            if let Some(text) = deadline_margin {
                let margin = svc_breaker::parse_duration(&text)
                    .map_err(|e| de::Error::custom(format_args!("deadline_margin: {e}")))?;
                config = config.deadline_margin(margin);
            }
            config.validate().map_err(de::Error::custom)?;
            Ok(config)
        }
    }
}
