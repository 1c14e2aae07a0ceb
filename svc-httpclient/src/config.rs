//! Client settings: timeouts, retries, retry budget, breaker, hooks
//! (the backoff has its own module, [`crate::backoff`]).
//!
//! Every default is anchored in DESIGN.md §4. The two timeouts are kept
//! apart on purpose: `timeout` is the caller's deadline for the whole call
//! (retries and backoff included), `attempt_timeout` bounds one attempt so a
//! single hung connection cannot eat the whole deadline. Mixing them up is a
//! classic bug of retrying clients (go-retryablehttp #127, dotnet/extensions
//! #4770).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};

use svc_breaker::Transition;

use crate::CircuitBreakerConfig;
use crate::backoff::Backoff;
use crate::endpoint::EndpointsConfig;
use crate::error::Error;
use crate::observe::{AttemptObserver, Layered};

/// A retry budget: retries may add at most `retry_percent` of the recent
/// calls (over a `ttl` window), plus `min_per_sec` retries per second, per
/// origin. Defaults: 20% over 10 s, plus 10 retries/s (Finagle, tower's
/// `TpsBudget`).
///
/// Without a budget, an outage multiplies the traffic sent to the failing
/// service by `max_retries + 1` exactly when it can least take it (a retry
/// storm, istio #27419). With it, a 100% outage costs at most about
/// `1 + retry_percent` requests per call once the floor is used up.
///
/// ```
/// use std::time::Duration;
/// use svc_httpclient::{Config, RetryBudget};
///
/// let config = Config::default().retry_budget(Some(
///     RetryBudget::default().retry_percent(0.1).min_per_sec(5),
/// ));
/// # let _ = config;
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(try_from = "file::RawRetryBudget")
)]
pub struct RetryBudget {
    pub(crate) ttl: Duration,
    pub(crate) min_per_sec: u32,
    pub(crate) retry_percent: f64,
}

impl Default for RetryBudget {
    /// 20% of the calls over 10 s, plus 10 retries per second.
    fn default() -> Self {
        RetryBudget {
            ttl: Duration::from_secs(10),
            min_per_sec: 10,
            retry_percent: 0.2,
        }
    }
}

impl RetryBudget {
    /// How long a call's deposit (and a retry's withdrawal) counts: between
    /// 1 s and 60 s (default 10 s).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Retries per second always allowed, so that a client making few calls
    /// can still retry (default 10).
    pub fn min_per_sec(mut self, n: u32) -> Self {
        self.min_per_sec = n;
        self
    }

    /// Retries allowed as a fraction of calls: 0.2 is 20% (default). Must be
    /// finite, between 0 and 10.
    pub fn retry_percent(mut self, fraction: f64) -> Self {
        self.retry_percent = fraction;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        if self.ttl < Duration::from_secs(1) || self.ttl > Duration::from_secs(60) {
            return Err(Error::config(
                "retry_budget.ttl",
                "must be between 1s and 60s",
            ));
        }
        if !self.retry_percent.is_finite() || !(0.0..=10.0).contains(&self.retry_percent) {
            return Err(Error::config(
                "retry_budget.retry_percent",
                "must be finite and between 0 and 10",
            ));
        }
        Ok(())
    }
}

/// Settings of a [`Client`](crate::Client). `Default` gives the DESIGN.md §4
/// defaults; setters are chainable, take `self` by value and are named
/// after the settings. There are no getters: the client reads its settings
/// itself, and `Debug` shows them all (sensitive header values redacted).
///
/// ```
/// use std::time::Duration;
/// use svc_httpclient::{CircuitBreakerConfig, Config};
///
/// let config = Config::default()
///     .timeout(Duration::from_secs(5))
///     .max_retries(2)
///     .circuit_breaker(Some(
///         CircuitBreakerConfig::default()
///             .failure_threshold(3)
///             .reset_timeout(Duration::from_secs(15)),
///     ));
/// assert!(format!("{config:?}").starts_with("Config { timeout: 5s,"));
/// ```
///
/// # From a file (feature `serde`)
///
/// `Config` deserializes from any serde format (TOML, JSON, YAML) under the
/// setters' names, with durations as strings in the one format of the svc
/// crates ([`svc_breaker::parse_duration`]: `"250ms"`, `"2s"`, `"1m30s"`):
///
/// | field | value |
/// |---|---|
/// | `timeout`, `attempt_timeout`, `max_retry_after`, `origin_idle_timeout` | a duration |
/// | `max_retries`, `max_origins` | a whole number |
/// | `backoff` | a table: `base`, `cap` (durations), `factor` (a number), `jitter` (a bool) |
/// | `retry_budget` | `false` (no budget), `true` (the default) or a table: `ttl`, `min_per_sec`, `retry_percent` (null or missing: the default) |
/// | `circuit_breaker` | `false` (no breaker), `true` (the default) or a table of [`CircuitBreakerConfig`] settings (`failure_threshold`, `reset_timeout`, ...) |
/// | `retry_statuses` | a list of status codes |
/// | `user_agent`, `peer_service` | a string |
/// | `generate_idempotency_keys`, `log_failures` | a bool |
///
/// A missing field keeps its default and an unknown one is an error. The
/// result is [validated](Config::validate) while it is read, so a bad value
/// fails there, with the setting named. Hooks and observers
/// (`on_transition`, `observer`) are code, and `default_headers` may carry
/// credentials that a file should not: those are set in code only.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use std::time::Duration;
/// use svc_httpclient::Config;
///
/// let config: Config = serde_json::from_str(r#"{
///     "timeout": "5s",
///     "max_retries": 2,
///     "backoff": { "base": "50ms" },
///     "circuit_breaker": { "failure_threshold": 3, "reset_timeout": "15s" },
///     "retry_budget": false
/// }"#)?;
/// # let _ = config;
/// let err = serde_json::from_str::<Config>(r#"{ "timeout": "0s" }"#).unwrap_err();
/// assert!(err.to_string().contains("`timeout` must be greater than zero"), "{err}");
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(try_from = "file::RawConfig")
)]
pub struct Config {
    pub(crate) timeout: Duration,
    pub(crate) attempt_timeout: Duration,
    pub(crate) max_retries: u32,
    pub(crate) backoff: Backoff,
    pub(crate) max_retry_after: Duration,
    pub(crate) retry_budget: Option<RetryBudget>,
    circuit_breaker: Option<CircuitBreakerConfig>,
    /// Composed onto every origin's breaker when a client is built, so
    /// they apply whatever the order of the setters.
    on_transition: Vec<TransitionHook>,
    retry_statuses: Vec<StatusCode>,
    default_headers: HeaderMap,
    user_agent: Option<String>,
    pub(crate) generate_idempotency_keys: bool,
    /// Every observer added, layered ([`Config::observer`]).
    pub(crate) observer: Option<Arc<dyn AttemptObserver>>,
    pub(crate) log_failures: bool,
    pub(crate) peer_service: Option<Arc<str>>,
    pub(crate) max_origins: usize,
    pub(crate) origin_idle_timeout: Duration,
    pub(crate) endpoints: EndpointsConfig,
}

type TransitionHook = Arc<dyn Fn(&Transition) + Send + Sync + 'static>;

impl Default for Config {
    fn default() -> Self {
        Config {
            timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
            max_retries: 3,
            backoff: Backoff::default(),
            max_retry_after: Duration::from_secs(30),
            retry_budget: Some(RetryBudget::default()),
            circuit_breaker: Some(CircuitBreakerConfig::default()),
            on_transition: Vec::new(),
            retry_statuses: DEFAULT_RETRY_STATUSES.to_vec(),
            default_headers: HeaderMap::new(),
            user_agent: None,
            generate_idempotency_keys: false,
            observer: None,
            log_failures: true,
            peer_service: None,
            max_origins: 1024,
            origin_idle_timeout: Duration::from_secs(10 * 60),
            endpoints: EndpointsConfig::default(),
        }
    }
}

/// 408, 429, 500, 502, 503, 504: the statuses that can succeed later.
const DEFAULT_RETRY_STATUSES: [StatusCode; 6] = [
    StatusCode::REQUEST_TIMEOUT,
    StatusCode::TOO_MANY_REQUESTS,
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::GATEWAY_TIMEOUT,
];

/// Headers whose values never appear in a log or a `Debug` output.
pub(crate) fn is_sensitive_header(name: &HeaderName) -> bool {
    name == header::AUTHORIZATION
        || name == header::PROXY_AUTHORIZATION
        || name == header::COOKIE
        || name == header::SET_COOKIE
}

// ===== setters =====

impl Config {
    /// The deadline of a whole call, retries and backoff included (default
    /// 30 s). Reading the body of the returned response is bounded too: by
    /// the limit of the attempt that returned it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The limit of one attempt (default 10 s), from connecting until the
    /// response body has been read. An attempt never runs past the call's
    /// remaining `timeout`.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Retries after the first attempt (default 3, so at most 4 attempts).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The backoff between attempts (default [`Backoff::default`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The longest `Retry-After` obeyed (default 30 s): a server asking for
    /// more gets this. Without a cap a server can park a client for days
    /// (go-retryablehttp #247).
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// The per-origin retry budget (default [`RetryBudget::default`]);
    /// `None` allows every retry `max_retries` permits.
    pub fn retry_budget(mut self, budget: Option<RetryBudget>) -> Self {
        self.retry_budget = budget;
        self
    }

    /// The per-origin circuit breaker (default: the seed's, 5 consecutive
    /// failures, 30 s open); `None` disables it. Hooks added with
    /// [`on_transition`](Config::on_transition) apply to it whether they
    /// were added before or after.
    pub fn circuit_breaker(mut self, config: Option<CircuitBreakerConfig>) -> Self {
        self.circuit_breaker = config;
        self
    }

    /// Adds `hook`, called after every state transition of every origin's
    /// breaker (after the breaker config's own listeners, then in the order
    /// the hooks were added), on the thread that caused it. Keep it quick;
    /// it must not panic. Without a breaker it is never called.
    ///
    /// ```
    /// use svc_httpclient::{CircuitBreakerConfig, Config};
    ///
    /// let config = Config::default()
    ///     .on_transition(|t| eprintln!("breaker {:?} -> {:?}", t.from(), t.to()))
    ///     // Set after the hook: the hook still applies to it.
    ///     .circuit_breaker(Some(CircuitBreakerConfig::default().failure_threshold(3)));
    /// # let _ = config;
    /// ```
    pub fn on_transition(mut self, hook: impl Fn(&Transition) + Send + Sync + 'static) -> Self {
        self.on_transition.push(Arc::new(hook));
        self
    }

    /// The statuses that are retried (default 408, 429, 500, 502, 503, 504).
    pub fn retry_statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.retry_statuses = statuses.into_iter().collect();
        self.retry_statuses.sort_unstable();
        self.retry_statuses.dedup();
        self
    }

    /// Headers added to every request that does not set them itself.
    /// Values of `Authorization`, `Proxy-Authorization`, `Cookie` and
    /// `Set-Cookie` are marked sensitive and never shown.
    pub fn default_headers(mut self, mut headers: HeaderMap) -> Self {
        for (name, value) in headers.iter_mut() {
            if is_sensitive_header(name) {
                value.set_sensitive(true);
            }
        }
        self.default_headers = headers;
        self
    }

    /// The `User-Agent` of requests that do not set one.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Adds a random (UUID v4) `Idempotency-Key`, the same on every attempt,
    /// to POST and PATCH requests that lack one, which makes them retryable
    /// (default off: a key only protects a server that honours it).
    pub fn generate_idempotency_keys(mut self, on: bool) -> Self {
        self.generate_idempotency_keys = on;
        self
    }

    /// Adds hooks run around every attempt (for example to inject trace
    /// context). Observers compose as layers, the last added outermost:
    /// [`on_attempt_start`](AttemptObserver::on_attempt_start) runs from the
    /// last added to the first, so each observer sees the request as the
    /// ones added after it left it (a user's observer sees the
    /// `traceparent` the facade's, added last, injected), and
    /// [`on_attempt_end`](AttemptObserver::on_attempt_end) from the first
    /// added to the last.
    ///
    /// ```
    /// use svc_httpclient::{AttemptObserver, AttemptStart, Config, reqwest};
    ///
    /// struct Header(&'static str);
    ///
    /// impl AttemptObserver for Header {
    ///     fn on_attempt_start(&self, request: &mut reqwest::Request, _: &AttemptStart<'_>) {
    ///         request.headers_mut().append("x-seen-by", self.0.parse().unwrap());
    ///     }
    /// }
    ///
    /// // On every attempt: "x-seen-by: outer", then "x-seen-by: inner".
    /// let config = Config::default().observer(Header("inner")).observer(Header("outer"));
    /// # let _ = config;
    /// ```
    pub fn observer(mut self, observer: impl AttemptObserver) -> Self {
        let outer: Arc<dyn AttemptObserver> = Arc::new(observer);
        self.observer = Some(match self.observer.take() {
            None => outer,
            Some(inner) => Arc::new(Layered { outer, inner }),
        });
        self
    }

    /// Whether the client logs one `warn` event per failed call (target
    /// `svc_httpclient`, message `http call failed`; default on). A layer
    /// that logs failures itself, with more context, turns it off so a
    /// failure is logged once, as the facade `svc-client` does. Retries are
    /// still logged at `debug`, and the attempt spans still record the
    /// error.
    ///
    /// ```
    /// let config = svc_httpclient::Config::default().log_failures(false);
    /// assert!(format!("{config:?}").contains("log_failures: false"));
    /// ```
    pub fn log_failures(mut self, on: bool) -> Self {
        self.log_failures = on;
        self
    }

    /// The logical name of the service called (`auth-svc`), recorded as the
    /// OpenTelemetry `peer.service` of every attempt span (default none;
    /// the svc-client facade sets it to the service's name).
    ///
    /// ```
    /// let config = svc_httpclient::Config::default().peer_service("auth-svc");
    /// assert!(format!("{config:?}").contains("auth-svc"));
    /// ```
    pub fn peer_service(mut self, name: impl Into<Arc<str>>) -> Self {
        self.peer_service = Some(name.into());
        self
    }

    /// The most origins (scheme, host, port) whose breaker and retry budget
    /// the client keeps (default 1024). A caller with many hosts (a webhook
    /// sender) would otherwise grow the map forever: past the cap, the
    /// least recently used origins without a call in flight are dropped,
    /// and a later call there starts with a fresh (closed) breaker. Origins
    /// whose breaker was handed out by [`Client::breaker`](crate::Client::breaker)
    /// are kept.
    pub fn max_origins(mut self, max: usize) -> Self {
        self.max_origins = max;
        self
    }

    /// How long an origin without calls keeps its breaker and budget
    /// (default 10 minutes; see [`max_origins`](Config::max_origins)). Well
    /// past any `reset_timeout`, so an open breaker is not forgotten
    /// while it protects its origin.
    pub fn origin_idle_timeout(mut self, idle: Duration) -> Self {
        self.origin_idle_timeout = idle;
        self
    }

    /// How origins with several endpoints (replicas) are balanced, when
    /// their endpoints are ejected, and how often a host name is resolved
    /// again ([`EndpointsConfig`]; see [`Client::balance`](crate::Client::balance)).
    ///
    /// ```
    /// use svc_httpclient::{Config, EndpointsConfig, OutlierConfig};
    ///
    /// let config = Config::default()
    ///     .endpoints(EndpointsConfig::default().outlier(OutlierConfig::default().consecutive_failures(3)));
    /// # let _ = config;
    /// ```
    pub fn endpoints(mut self, endpoints: EndpointsConfig) -> Self {
        self.endpoints = endpoints;
        self
    }
}

// ===== for wrappers =====

impl Config {
    /// The breaker settings every origin gets (`None`: no breaker), for a
    /// wrapper that changes one of them and keeps the others (svc-client's
    /// `ClientConfig::from_env`). Hooks added with
    /// [`on_transition`](Config::on_transition) are kept apart and not
    /// included.
    ///
    /// ```
    /// use svc_httpclient::{CircuitBreakerConfig, Config};
    ///
    /// let config = Config::default();
    /// let breaker = config.circuit_breaker_config().cloned().unwrap_or_default();
    /// let config = config.circuit_breaker(Some(breaker.failure_threshold(3)));
    /// assert_eq!(
    ///     config.circuit_breaker_config(),
    ///     Some(&CircuitBreakerConfig::default().failure_threshold(3)),
    /// );
    /// assert_eq!(Config::default().circuit_breaker(None).circuit_breaker_config(), None);
    /// ```
    pub fn circuit_breaker_config(&self) -> Option<&CircuitBreakerConfig> {
        self.circuit_breaker.as_ref()
    }
}

// ===== crate access =====

impl Config {
    /// The breaker settings of every origin: `circuit_breaker` with the
    /// `on_transition` hooks composed onto it.
    pub(crate) fn origin_breaker(&self) -> Option<CircuitBreakerConfig> {
        let mut breaker = self.circuit_breaker.clone()?;
        for hook in &self.on_transition {
            let hook = Arc::clone(hook);
            breaker = breaker.on_transition(move |t: &Transition| hook(t));
        }
        Some(breaker)
    }

    pub(crate) fn is_retry_status(&self, status: StatusCode) -> bool {
        self.retry_statuses.binary_search(&status).is_ok()
    }

    /// Checks every setting, as [`Client::new`](crate::Client::new) does;
    /// the error ([`Error::is_request`]) names the first invalid one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use svc_httpclient::{CircuitBreakerConfig, Config};
    ///
    /// assert!(Config::default().validate().is_ok());
    /// let err = Config::default().timeout(Duration::ZERO).validate().unwrap_err();
    /// assert!(err.to_string().contains("`timeout`"));
    /// let breaker = CircuitBreakerConfig::default().failure_threshold(0);
    /// let err = Config::default().circuit_breaker(Some(breaker)).validate().unwrap_err();
    /// assert!(err.to_string().contains("failure_threshold"));
    /// ```
    ///
    /// # Errors
    ///
    /// The first invalid setting, named in the message.
    pub fn validate(&self) -> Result<(), Error> {
        if self.timeout.is_zero() {
            return Err(Error::config("timeout", "must be greater than zero"));
        }
        if self.attempt_timeout.is_zero() {
            return Err(Error::config(
                "attempt_timeout",
                "must be greater than zero",
            ));
        }
        self.backoff.validate()?;
        if self.max_origins == 0 {
            return Err(Error::config("max_origins", "must be at least 1"));
        }
        if self.origin_idle_timeout.is_zero() {
            return Err(Error::config(
                "origin_idle_timeout",
                "must be greater than zero",
            ));
        }
        if let Some(budget) = &self.retry_budget {
            budget.validate()?;
        }
        self.endpoints.validate()?;
        if let Some(ua) = &self.user_agent
            && HeaderValue::from_str(ua).is_err()
        {
            return Err(Error::config("user_agent", "must be a valid header value"));
        }
        if let Some(breaker) = &self.circuit_breaker {
            breaker
                .validate()
                .map_err(|e| Error::config("circuit_breaker", e.to_string()).with_source(e))?;
        }
        Ok(())
    }

    /// The default headers, with `User-Agent` added, as sent.
    pub(crate) fn effective_default_headers(&self) -> HeaderMap {
        let mut headers = self.default_headers.clone();
        if let Some(ua) = &self.user_agent
            && !headers.contains_key(header::USER_AGENT)
            && let Ok(value) = HeaderValue::from_str(ua)
        {
            headers.insert(header::USER_AGENT, value);
        }
        headers
    }
}

/// Header values shown as `Sensitive` when marked so or named like a secret.
struct RedactedHeaders<'a>(&'a HeaderMap);

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.0 {
            if value.is_sensitive() || is_sensitive_header(name) {
                map.entry(name, &"Sensitive");
            } else {
                map.entry(name, value);
            }
        }
        map.finish()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("timeout", &self.timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("max_retry_after", &self.max_retry_after)
            .field("retry_budget", &self.retry_budget)
            .field("circuit_breaker", &self.circuit_breaker)
            .field("on_transition", &self.on_transition.len())
            .field("retry_statuses", &self.retry_statuses)
            .field("default_headers", &RedactedHeaders(&self.default_headers))
            .field("user_agent", &self.user_agent)
            .field("generate_idempotency_keys", &self.generate_idempotency_keys)
            .field(
                "observer",
                &self.observer.as_ref().map(|_| "AttemptObserver"),
            )
            .field("log_failures", &self.log_failures)
            .field("peer_service", &self.peer_service)
            .field("max_origins", &self.max_origins)
            .field("origin_idle_timeout", &self.origin_idle_timeout)
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

// ===== serde =====

/// The file format (feature `serde`); see [`Config`]'s documentation.
#[cfg(feature = "serde")]
mod file {
    use std::fmt;
    use std::marker::PhantomData;
    use std::time::Duration;

    use reqwest::StatusCode;
    use serde::Deserialize;
    use serde::de::{self, Deserializer, MapAccess, Visitor};

    use super::{Config, RetryBudget};
    use crate::CircuitBreakerConfig;
    use crate::backoff::Backoff;
    use crate::error::Error;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct RawConfig {
        #[serde(default, with = "svc_breaker::serde_duration::option")]
        timeout: Option<Duration>,
        #[serde(default, with = "svc_breaker::serde_duration::option")]
        attempt_timeout: Option<Duration>,
        max_retries: Option<u32>,
        backoff: Option<Backoff>,
        #[serde(default, with = "svc_breaker::serde_duration::option")]
        max_retry_after: Option<Duration>,
        retry_budget: Option<Toggle<RetryBudget>>,
        circuit_breaker: Option<Toggle<CircuitBreakerConfig>>,
        retry_statuses: Option<Vec<u16>>,
        user_agent: Option<String>,
        generate_idempotency_keys: Option<bool>,
        log_failures: Option<bool>,
        peer_service: Option<String>,
        max_origins: Option<usize>,
        #[serde(default, with = "svc_breaker::serde_duration::option")]
        origin_idle_timeout: Option<Duration>,
        endpoints: Option<crate::EndpointsConfig>,
    }

    impl TryFrom<RawConfig> for Config {
        type Error = Error;

        fn try_from(raw: RawConfig) -> Result<Config, Error> {
            let mut c = Config::default();
            if let Some(d) = raw.timeout {
                c = c.timeout(d);
            }
            if let Some(d) = raw.attempt_timeout {
                c = c.attempt_timeout(d);
            }
            if let Some(n) = raw.max_retries {
                c = c.max_retries(n);
            }
            if let Some(b) = raw.backoff {
                c = c.backoff(b);
            }
            if let Some(d) = raw.max_retry_after {
                c = c.max_retry_after(d);
            }
            if let Some(Toggle(budget)) = raw.retry_budget {
                c = c.retry_budget(budget);
            }
            if let Some(Toggle(breaker)) = raw.circuit_breaker {
                c = c.circuit_breaker(breaker);
            }
            if let Some(codes) = raw.retry_statuses {
                let statuses = codes
                    .into_iter()
                    .map(|code| {
                        StatusCode::from_u16(code).map_err(|_| {
                            Error::config(
                                "retry_statuses",
                                format!("has {code}, which is not a status code (100 to 999)"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                c = c.retry_statuses(statuses);
            }
            if let Some(ua) = raw.user_agent {
                c = c.user_agent(ua);
            }
            if let Some(on) = raw.generate_idempotency_keys {
                c = c.generate_idempotency_keys(on);
            }
            if let Some(on) = raw.log_failures {
                c = c.log_failures(on);
            }
            if let Some(name) = raw.peer_service {
                c = c.peer_service(name);
            }
            if let Some(n) = raw.max_origins {
                c = c.max_origins(n);
            }
            if let Some(d) = raw.origin_idle_timeout {
                c = c.origin_idle_timeout(d);
            }
            if let Some(endpoints) = raw.endpoints {
                c = c.endpoints(endpoints);
            }
            c.validate()?;
            Ok(c)
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct RawRetryBudget {
        #[serde(default, with = "svc_breaker::serde_duration::option")]
        ttl: Option<Duration>,
        min_per_sec: Option<u32>,
        retry_percent: Option<f64>,
    }

    impl TryFrom<RawRetryBudget> for RetryBudget {
        type Error = Error;

        fn try_from(raw: RawRetryBudget) -> Result<RetryBudget, Error> {
            let mut b = RetryBudget::default();
            if let Some(ttl) = raw.ttl {
                b = b.ttl(ttl);
            }
            if let Some(n) = raw.min_per_sec {
                b = b.min_per_sec(n);
            }
            if let Some(p) = raw.retry_percent {
                b = b.retry_percent(p);
            }
            b.validate()?;
            Ok(b)
        }
    }

    // `Backoff` keeps its fields to its own module: it is read through its
    // setters, and checked with the same validation as a client's.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawBackoff {
        #[serde(default, with = "svc_breaker::serde_duration::option")]
        base: Option<Duration>,
        factor: Option<f64>,
        #[serde(default, with = "svc_breaker::serde_duration::option")]
        cap: Option<Duration>,
        jitter: Option<bool>,
    }

    /// Feature `serde`: the backoff of a [`Config`] file, under the
    /// setters' names (`base`, `factor`, `cap`, `jitter`), durations as
    /// strings, missing fields at their defaults, validated while read.
    impl<'de> Deserialize<'de> for Backoff {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Backoff, D::Error> {
            let raw = RawBackoff::deserialize(deserializer)?;
            let mut b = Backoff::default();
            if let Some(d) = raw.base {
                b = b.base(d);
            }
            if let Some(f) = raw.factor {
                b = b.factor(f);
            }
            if let Some(d) = raw.cap {
                b = b.cap(d);
            }
            if let Some(on) = raw.jitter {
                b = b.jitter(on);
            }
            b.validate().map_err(de::Error::custom)?;
            Ok(b)
        }
    }

    /// A setting that is on by default and can be turned off in a file:
    /// `false` is `None`, `true` the defaults, a table its settings. A null
    /// (JSON, YAML) is a missing field, as everywhere in serde: the default.
    struct Toggle<T>(Option<T>);

    impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Toggle<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(ToggleVisitor(PhantomData))
        }
    }

    struct ToggleVisitor<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for ToggleVisitor<T> {
        type Value = Toggle<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("false (off), true (the defaults) or a table of settings")
        }

        fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
            Ok(Toggle(on.then(T::default)))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Toggle(Some(t)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_design() {
        let c = Config::default();
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.attempt_timeout, Duration::from_secs(10));
        assert_eq!(c.max_retries, 3);
        assert_eq!(c.max_retry_after, Duration::from_secs(30));
        assert_eq!(c.backoff, Backoff::default());
        assert_eq!(c.retry_budget, Some(RetryBudget::default()));
        assert!(c.circuit_breaker.is_some());
        let codes: Vec<u16> = c.retry_statuses.iter().map(|s| s.as_u16()).collect();
        assert_eq!(codes, [408, 429, 500, 502, 503, 504]);
        assert!(!c.generate_idempotency_keys);
    }

    #[test]
    fn debug_redacts_sensitive_header_values() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cr3t-token"),
        );
        headers.insert(header::COOKIE, HeaderValue::from_static("session=hunter2"));
        headers.insert("x-tenant", HeaderValue::from_static("acme"));
        let debug = format!("{:?}", Config::default().default_headers(headers));
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("acme"), "{debug}");
    }
}
