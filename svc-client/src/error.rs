//! The facade's one error type.
//!
//! Opaque, like `reqwest::Error`: a pointer-sized box, so a
//! `Result<Response, Error>` stays small, and predicates instead of public
//! variants, so new causes can be added without breaking callers. The
//! predicates walk [`source`](std::error::Error::source) through the errors of
//! `svc-httpclient` and `svc-discovery`, so they survive wrapping.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use svc_discovery::Redacted;
use url::Url;

use crate::paths::PathProblem;
use crate::settings::SettingError;
use crate::{CircuitOpen, StatusCode, reqwest};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The error of every fallible operation of this crate.
///
/// | predicate | when |
/// |---|---|
/// | [`is_not_configured`](Error::is_not_configured) | discovery found no variable for the service |
/// | [`is_discovery`](Error::is_discovery) | discovery failed: not configured, invalid name or URL |
/// | [`is_invalid_path`](Error::is_invalid_path) | a path would leave the service (rejected before any I/O) |
/// | [`is_circuit_open`](Error::is_circuit_open) | the breaker is open: the service is unhealthy, no request was sent |
/// | [`is_timeout`](Error::is_timeout) | the call or its last attempt timed out |
/// | [`is_deadline_exceeded`](Error::is_deadline_exceeded) | the request's [deadline](crate::deadline) passed before or during the call |
/// | [`is_connect`](Error::is_connect) | no connection could be made |
/// | [`is_budget_exhausted`](Error::is_budget_exhausted) | the retry budget stopped a retry |
/// | [`is_decode`](Error::is_decode) | [`decode_response`](crate::decode_response) failed: non-2xx, too large, not the expected JSON |
/// | [`is_request`](Error::is_request) | the request could not be built (header, body encoding) |
/// | [`is_config`](Error::is_config) | the [`ClientConfig`](crate::ClientConfig) was invalid, or a setting from the environment ([`setting_error`](Error::setting_error)) |
///
/// # Example
///
/// ```no_run
/// # use svc_client::{Client, Error};
/// # async fn run(client: Client) -> Result<(), Error> {
/// match client.get("/users/123").await {
///     Ok(resp) => { /* check resp.status() */ }
///     Err(err) if err.is_circuit_open() => {
///         // Fail fast: tell our own caller when to come back.
///         let retry_after = err.retry_after().unwrap_or_default();
///         eprintln!("auth-svc is down, retry in {retry_after:?}");
///     }
///     Err(err) => return Err(err),
/// }
/// # Ok(())
/// # }
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    service: Option<Arc<str>>,
}

pub(crate) enum Kind {
    Discovery(svc_discovery::Error),
    InvalidPath {
        path: Box<str>,
        problem: PathProblem,
    },
    Config {
        /// `None` when `message` is a whole message from svc-httpclient.
        setting: Option<&'static str>,
        message: String,
        source: Option<BoxError>,
    },
    /// A setting from the environment was set but invalid.
    Setting(SettingError),
    Http(svc_httpclient::Error),
    Decode(DecodeError),
    /// The response came from another origin: a client given with
    /// `http_client` followed a redirect.
    Redirected {
        to: Url,
    },
    /// A gRPC call of [`grpc::Channel`](crate::grpc::Channel) that ended
    /// without a status from the service.
    #[cfg(feature = "grpc")]
    Grpc(GrpcError),
}

/// A gRPC call's failure of our own (the service's statuses are
/// `tonic::Status`es, not errors of ours).
#[cfg(feature = "grpc")]
pub(crate) struct GrpcError {
    pub(crate) problem: GrpcProblem,
    /// The call's path, `/package.Service/Method`.
    pub(crate) rpc: Box<str>,
    pub(crate) attempts: u32,
    pub(crate) source: Option<BoxError>,
}

#[cfg(feature = "grpc")]
#[derive(Debug, Clone, Copy)]
pub(crate) enum GrpcProblem {
    CircuitOpen(CircuitOpen),
    Timeout,
    /// The request's propagated deadline passed (before the call, or cutting
    /// an attempt short).
    DeadlineExceeded,
    Connect,
    Transport,
}

/// Details of a failed [`decode_response`](crate::decode_response).
pub(crate) struct DecodeError {
    pub(crate) problem: DecodeProblem,
    pub(crate) status: StatusCode,
    pub(crate) url: Url,
    pub(crate) content_type: Option<String>,
    pub(crate) snippet: String,
    pub(crate) source: Option<BoxError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeProblem {
    Status,
    TooLarge { limit: u64 },
    Body,
    Json,
}

// ===== impl Error =====

impl Error {
    pub(crate) fn new(kind: Kind) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                service: None,
            }),
        }
    }

    pub(crate) fn with_service(mut self, service: &Arc<str>) -> Error {
        self.inner.service = Some(Arc::clone(service));
        self
    }

    pub(crate) fn redirected(to: &Url) -> Error {
        let mut to = svc_discovery::strip_userinfo(to).into_owned();
        to.set_query(None);
        Error::new(Kind::Redirected { to })
    }

    pub(crate) fn invalid_path(path: &str, problem: PathProblem) -> Error {
        // Keep the message readable and bounded: a path can be long.
        let path: String = path.chars().take(200).collect();
        Error::new(Kind::InvalidPath {
            path: path.into(),
            problem,
        })
    }

    pub(crate) fn config(setting: &'static str, message: impl Into<String>) -> Error {
        Error::new(Kind::Config {
            setting: Some(setting),
            message: message.into(),
            source: None,
        })
    }

    /// A `base_url` given to `with_base_url` failed discovery's checks; the
    /// message names the setting and why.
    pub(crate) fn base_url(err: svc_discovery::Error) -> Error {
        Error::new(Kind::Config {
            setting: None,
            message: err.to_string(),
            source: None,
        })
    }

    /// svc-httpclient rejected the configuration; its message names the
    /// setting and the cause, and its source chain is kept.
    pub(crate) fn http_config(err: svc_httpclient::Error) -> Error {
        Error::new(Kind::Config {
            setting: None,
            message: err.to_string(),
            source: Some(Box::new(err)),
        })
    }

    /// This error and its sources.
    fn chain(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        let first: &(dyn StdError + 'static) = self;
        std::iter::successors(Some(first), |e| (*e).source())
    }

    /// `pred` holds for the HTTP client error of this error or of any of
    /// its sources (a decode error wraps the body read's error, a caller's
    /// error may wrap ours).
    fn any_http(&self, pred: impl Fn(&svc_httpclient::Error) -> bool) -> bool {
        self.http().is_some_and(&pred)
            || self
                .chain()
                .filter_map(|e| e.downcast_ref::<svc_httpclient::Error>())
                .any(&pred)
            || self
                .chain()
                .filter_map(|e| e.downcast_ref::<Error>())
                .skip(1)
                .any(|e| e.http().is_some_and(&pred))
    }

    fn http(&self) -> Option<&svc_httpclient::Error> {
        match &self.inner.kind {
            Kind::Http(e) => Some(e),
            _ => None,
        }
    }

    fn decode(&self) -> Option<&DecodeError> {
        match &self.inner.kind {
            Kind::Decode(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is a gRPC call's failure that `pred` accepts.
    #[cfg(feature = "grpc")]
    fn is_grpc(&self, pred: fn(GrpcProblem) -> bool) -> bool {
        matches!(&self.inner.kind, Kind::Grpc(e) if pred(e.problem))
    }

    fn is_grpc_timeout(&self) -> bool {
        #[cfg(feature = "grpc")]
        return self.is_grpc(|p| matches!(p, GrpcProblem::Timeout | GrpcProblem::DeadlineExceeded));
        #[cfg(not(feature = "grpc"))]
        false
    }

    fn is_grpc_deadline(&self) -> bool {
        #[cfg(feature = "grpc")]
        return self.is_grpc(|p| matches!(p, GrpcProblem::DeadlineExceeded));
        #[cfg(not(feature = "grpc"))]
        false
    }

    fn is_grpc_connect(&self) -> bool {
        #[cfg(feature = "grpc")]
        return self.is_grpc(|p| matches!(p, GrpcProblem::Connect));
        #[cfg(not(feature = "grpc"))]
        false
    }

    fn is_grpc_transport(&self) -> bool {
        #[cfg(feature = "grpc")]
        return self.is_grpc(|p| matches!(p, GrpcProblem::Transport));
        #[cfg(not(feature = "grpc"))]
        false
    }

    fn discovery(&self) -> Option<&svc_discovery::Error> {
        match &self.inner.kind {
            Kind::Discovery(e) => Some(e),
            _ => None,
        }
    }

    /// The breaker of the service is open: no request was sent. The service
    /// is unhealthy; degrade, fail fast or use a fallback (see
    /// [`retry_after`](Error::retry_after)).
    pub fn is_circuit_open(&self) -> bool {
        self.any_http(svc_httpclient::Error::is_circuit_open)
            || self.circuit_open().is_some()
            || self.chain().any(|e| e.is::<CircuitOpen>())
    }

    /// Discovery found no variable for the service (`AUTH_SVC_URL` and the
    /// Kubernetes fallbacks are all unset). The message names them.
    pub fn is_not_configured(&self) -> bool {
        self.discovery()
            .is_some_and(svc_discovery::Error::is_not_configured)
    }

    /// Discovery failed: the service is not configured, its name is
    /// invalid, or its variable holds an invalid URL (the message names the
    /// variable).
    pub fn is_discovery(&self) -> bool {
        self.discovery().is_some()
    }

    /// A path was rejected before any I/O because it could leave the
    /// service: an absolute URL, `//host`, a backslash, a control character,
    /// a fragment or `..` climbing above the base path.
    pub fn is_invalid_path(&self) -> bool {
        matches!(self.inner.kind, Kind::InvalidPath { .. })
    }

    /// The call (or its last attempt) timed out.
    pub fn is_timeout(&self) -> bool {
        self.any_http(svc_httpclient::Error::is_timeout)
            || self.is_grpc_timeout()
            || self.chain().any(|e| {
                e.downcast_ref::<reqwest::Error>()
                    .is_some_and(reqwest::Error::is_timeout)
                    || e.downcast_ref::<std::io::Error>()
                        .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            })
    }

    /// No connection could be made (refused, DNS, TLS).
    pub fn is_connect(&self) -> bool {
        self.any_http(svc_httpclient::Error::is_connect)
            || self.is_grpc_connect()
            || self.chain().any(|e| {
                e.downcast_ref::<reqwest::Error>()
                    .is_some_and(reqwest::Error::is_connect)
            })
    }

    /// The retry budget of the service was exhausted.
    pub fn is_budget_exhausted(&self) -> bool {
        self.any_http(svc_httpclient::Error::is_budget_exhausted)
    }

    /// The request could not be built (invalid header, body encoding).
    pub fn is_request(&self) -> bool {
        // A setting rejected by svc-httpclient's validation carries its
        // error as the source; it is a config error, not a request's.
        !matches!(self.inner.kind, Kind::Setting(_))
            && self.any_http(svc_httpclient::Error::is_request)
    }

    /// [`decode_response`](crate::decode_response) failed: a non-2xx status,
    /// a body over the size limit, an unreadable body or JSON that does not
    /// match the type.
    pub fn is_decode(&self) -> bool {
        self.decode().is_some()
            || self
                .http()
                .is_some_and(|e| e.is_body_too_large() || e.is_decode())
    }

    /// The service answered with a redirect to another host, and the
    /// `reqwest::Client` given with
    /// [`ClientConfig::http_client`](crate::ClientConfig::http_client)
    /// followed it: its answer is not handed back (a call never leaves the
    /// service it was built for). Build that client with
    /// `reqwest::redirect::Policy::none()`.
    pub fn is_redirect(&self) -> bool {
        matches!(self.inner.kind, Kind::Redirected { .. })
    }

    /// The [`ClientConfig`](crate::ClientConfig) was invalid (the message
    /// names the setting), or a setting read from the environment by
    /// [`ClientConfig::from_env`](crate::ClientConfig::from_env) was set to
    /// an invalid value (the message names the variable; see
    /// [`setting_error`](Error::setting_error)).
    pub fn is_config(&self) -> bool {
        matches!(self.inner.kind, Kind::Config { .. } | Kind::Setting(_))
    }

    /// The variable, value and expectation of a setting from the
    /// environment that was set but invalid
    /// ([`ClientConfig::from_env`](crate::ClientConfig::from_env)).
    ///
    /// ```
    /// use svc_client::{ClientConfig, Registry};
    ///
    /// let registry = Registry::from_vars([("AUTH_SVC_BREAKER_FAILURE_THRESHOLD", "0")]);
    /// let err = ClientConfig::from_registry(&registry, "auth-svc").unwrap_err();
    /// assert_eq!(
    ///     err.setting_error().map(|e| e.variable()),
    ///     Some("AUTH_SVC_BREAKER_FAILURE_THRESHOLD"),
    /// );
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"AUTH_SVC_BREAKER_FAILURE_THRESHOLD="0": failure_threshold must be at least 1"#,
    /// );
    /// ```
    pub fn setting_error(&self) -> Option<&SettingError> {
        match &self.inner.kind {
            Kind::Setting(e) => Some(e),
            _ => None,
        }
    }

    /// The deadline of the request being handled (see [`crate::deadline`])
    /// passed: before the call (nothing was sent, no effect on the
    /// breaker), or during it, which it then cut short (also
    /// [`is_timeout`](Error::is_timeout); not a breaker failure either: the
    /// service was given the caller's last milliseconds). For a gRPC call,
    /// the same from a [`grpc::Channel`](crate::grpc::Channel)'s
    /// status (through [`Error::from_status`](crate::Error::from_status)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use svc_client::{Client, ClientConfig, Registry, deadline};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let registry = Registry::from_vars([("AUTH_SVC_URL", "http://127.0.0.1:9")]);
    /// let auth = Client::from_registry(&registry, "auth-svc", ClientConfig::default())?;
    /// // A request whose budget has run out: no I/O at all.
    /// let err = deadline::scope(tokio::time::Instant::now(), auth.get("/users/1").send())
    ///     .await
    ///     .unwrap_err();
    /// assert!(err.is_deadline_exceeded());
    /// assert_eq!(err.attempts(), 0);
    /// # Ok::<(), svc_client::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn is_deadline_exceeded(&self) -> bool {
        self.any_http(svc_httpclient::Error::is_deadline_exceeded) || self.is_grpc_deadline()
    }

    /// A call the request's deadline rejected before sending anything.
    pub(crate) fn is_deadline_rejection(&self) -> bool {
        self.attempts() == 0 && self.is_deadline_exceeded()
    }

    /// A fail-fast rejection: the circuit was open and nothing was sent. A
    /// circuit that opened during the call's retries is a failure of a call
    /// that reached the service, not a rejection.
    pub(crate) fn is_rejection(&self) -> bool {
        self.is_circuit_open() && self.attempts() == 0
    }

    /// The OpenTelemetry `error.type` of the call (low cardinality): the
    /// value the `svc.call` span and the metrics carry. `circuit_open` only
    /// for a call that sent nothing; for a circuit that opened during the
    /// retries, the last failure's type.
    ///
    /// ```
    /// # use svc_client::{Client, ClientConfig, Registry};
    /// let registry = Registry::from_vars([("GW_URL", "http://gw/api")]);
    /// let client = Client::from_registry(&registry, "gw", ClientConfig::default())?;
    /// assert_eq!(client.url("//evil").unwrap_err().error_type(), "invalid_path");
    /// # Ok::<(), svc_client::Error>(())
    /// ```
    pub fn error_type(&self) -> std::borrow::Cow<'static, str> {
        let kind = if self.is_invalid_path() {
            "invalid_path"
        } else if self.is_redirect() {
            "redirected"
        } else if self.is_rejection() {
            "circuit_open"
        } else if self.is_deadline_exceeded() {
            "deadline_exceeded"
        } else if self.is_timeout() {
            "timeout"
        } else if self.is_connect() {
            "connect"
        } else if let Some(status) = self.status().filter(|_| self.is_circuit_open()) {
            // The breaker opened after this response: the last failure's type.
            return status.as_str().to_owned().into();
        } else if self.is_budget_exhausted() {
            "retry_budget"
        } else if self.is_decode() {
            "decode"
        } else if self.is_request() {
            "request"
        } else if self.is_grpc_transport() {
            "transport"
        } else if self.is_config() {
            "config"
        } else if self.is_discovery() {
            "discovery"
        } else if let Some(http) = self.http() {
            // Transport, body failures...: the HTTP client's own type.
            return http.error_type().to_owned().into();
        } else {
            "_OTHER"
        };
        kind.into()
    }

    /// The HTTP status the error relates to, if any (a decode error of a
    /// non-2xx response, for instance).
    pub fn status(&self) -> Option<StatusCode> {
        match &self.inner.kind {
            Kind::Http(e) => e.status(),
            Kind::Decode(d) => Some(d.status),
            _ => None,
        }
    }

    /// When the circuit is open: how long until the breaker lets a trial
    /// call through. Use it for a `Retry-After` header of your own 503.
    pub fn retry_after(&self) -> Option<Duration> {
        self.circuit_open().map(CircuitOpen::retry_after)
    }

    /// The breaker's error when the circuit is open.
    pub fn circuit_open(&self) -> Option<&CircuitOpen> {
        #[cfg(feature = "grpc")]
        if let Kind::Grpc(GrpcError {
            problem: GrpcProblem::CircuitOpen(open),
            ..
        }) = &self.inner.kind
        {
            return Some(open);
        }
        self.http().and_then(svc_httpclient::Error::circuit_open)
    }

    /// How many attempts were sent (0 when none was, e.g. circuit open or an
    /// invalid path).
    pub fn attempts(&self) -> u32 {
        #[cfg(feature = "grpc")]
        if let Kind::Grpc(e) = &self.inner.kind {
            return e.attempts;
        }
        self.http().map_or(0, svc_httpclient::Error::attempts)
    }

    /// The URL of the request, without credentials, when known.
    pub fn url(&self) -> Option<&Url> {
        match &self.inner.kind {
            Kind::Http(e) => e.url(),
            Kind::Decode(d) => Some(&d.url),
            _ => None,
        }
    }

    /// The service the failed call was for, when known.
    pub fn service(&self) -> Option<&str> {
        self.inner.service.as_deref()
    }

    /// For a decode error: the response's `Content-Type`, if it had one.
    pub fn content_type(&self) -> Option<&str> {
        self.decode().and_then(|d| d.content_type.as_deref())
    }

    /// For a decode error: the first ~200 bytes of the body, as lossy UTF-8
    /// (never cut inside a character).
    pub fn body_snippet(&self) -> Option<&str> {
        self.decode().map(|d| d.snippet.as_str())
    }

    /// The discovery error, when discovery failed.
    pub fn discovery_error(&self) -> Option<&svc_discovery::Error> {
        self.discovery()
    }

    /// The HTTP client error, when the call failed in the client.
    pub fn http_error(&self) -> Option<&svc_httpclient::Error> {
        self.http()
    }
}

// ===== gRPC =====

#[cfg(feature = "grpc")]
impl Error {
    pub(crate) fn grpc(
        problem: GrpcProblem,
        rpc: &str,
        attempts: u32,
        source: Option<BoxError>,
    ) -> Error {
        Error::new(Kind::Grpc(GrpcError {
            problem,
            rpc: Box::from(rpc),
            attempts,
            source,
        }))
    }

    /// The facade's error behind a [`tonic::Status`] that a
    /// [`grpc::Channel`](crate::grpc::Channel) produced itself (open
    /// circuit, timeout, connection failure); `None` for a status the
    /// service answered, or one from elsewhere.
    ///
    /// ```no_run
    /// use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    /// use svc_client::{Error, grpc::Channel};
    ///
    /// # async fn run() -> Result<(), Error> {
    /// let mut health = HealthClient::new(Channel::new("auth-svc")?);
    /// match health.check(HealthCheckRequest::default()).await {
    ///     Ok(resp) => println!("{:?}", resp.into_inner().status),
    ///     Err(status) => match Error::from_status(&status) {
    ///         Some(err) if err.is_circuit_open() => {
    ///             println!("auth-svc is down; retry in {:?}", err.retry_after());
    ///         }
    ///         _ => println!("auth-svc answered {:?}", status.code()),
    ///     },
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_status(status: &tonic::Status) -> Option<&Error> {
        StdError::source(status)?.downcast_ref::<Error>()
    }
}

impl From<svc_httpclient::Error> for Error {
    fn from(err: svc_httpclient::Error) -> Error {
        Error::new(Kind::Http(err))
    }
}

impl From<svc_discovery::Error> for Error {
    fn from(err: svc_discovery::Error) -> Error {
        Error::new(Kind::Discovery(err))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            // Transparent: these already name the service, variable or URL.
            Kind::Discovery(e) => fmt::Display::fmt(e, f),
            Kind::Http(e) => fmt::Display::fmt(e, f),
            Kind::InvalidPath { path, problem } => {
                write!(f, "invalid path {path:?}: {problem}")
            }
            Kind::Config {
                setting: Some(setting),
                message,
                ..
            } => write!(f, "invalid client setting `{setting}`: {message}"),
            Kind::Config {
                setting: None,
                message,
                ..
            } => f.write_str(message),
            Kind::Decode(d) => fmt::Display::fmt(d, f),
            Kind::Setting(e) => fmt::Display::fmt(e, f),
            #[cfg(feature = "grpc")]
            Kind::Grpc(e) => {
                let service = self.inner.service.as_deref().unwrap_or("the service");
                let rpc = &e.rpc;
                match e.problem {
                    GrpcProblem::CircuitOpen(open) => write!(
                        f,
                        "circuit open for {service}, retry after {:.1}s ({rpc} not sent)",
                        open.retry_after().as_secs_f64()
                    ),
                    GrpcProblem::Timeout => write!(
                        f,
                        "gRPC call {rpc} to {service} timed out ({} attempts)",
                        e.attempts
                    ),
                    GrpcProblem::DeadlineExceeded if e.attempts == 0 => write!(
                        f,
                        "deadline exceeded: gRPC call {rpc} to {service} not sent"
                    ),
                    GrpcProblem::DeadlineExceeded => write!(
                        f,
                        "deadline exceeded: gRPC call {rpc} to {service} stopped ({} attempts)",
                        e.attempts
                    ),
                    GrpcProblem::Connect => write!(
                        f,
                        "could not connect to {service} for {rpc} ({} attempts)",
                        e.attempts
                    ),
                    GrpcProblem::Transport => write!(
                        f,
                        "gRPC call {rpc} to {service} failed in transport ({} attempts)",
                        e.attempts
                    ),
                }
            }
            Kind::Redirected { to } => write!(
                f,
                "the service redirected the call to another host ({}): the reqwest::Client given \
                 with `http_client` follows redirects; build it with \
                 reqwest::redirect::Policy::none()",
                svc_discovery::Redacted::new(to)
            ),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("svc_client::Error");
        let kind = match &self.inner.kind {
            Kind::Discovery(_) => "discovery",
            Kind::InvalidPath { .. } => "invalid_path",
            Kind::Config { .. } | Kind::Setting(_) => "config",
            Kind::Http(_) => "http",
            Kind::Decode(_) => "decode",
            Kind::Redirected { .. } => "redirected",
            #[cfg(feature = "grpc")]
            Kind::Grpc(_) => "grpc",
        };
        d.field("kind", &kind);
        if let Some(service) = &self.inner.service {
            d.field("service", service);
        }
        match &self.inner.kind {
            Kind::Discovery(e) => d.field("source", e),
            Kind::Http(e) => d.field("source", e),
            Kind::InvalidPath { path, problem } => {
                d.field("path", path).field("problem", &problem.to_string())
            }
            Kind::Config {
                setting,
                message,
                source,
            } => d
                .field("setting", setting)
                .field("message", message)
                .field("source", source),
            Kind::Setting(e) => d
                .field("variable", &e.variable())
                .field("value", &e.value())
                .field("source", &e.source()),
            Kind::Redirected { to } => d.field("to", &Redacted::new(to)),
            #[cfg(feature = "grpc")]
            Kind::Grpc(e) => d
                .field("problem", &e.problem)
                .field("rpc", &e.rpc)
                .field("attempts", &e.attempts)
                .field("source", &e.source),
            Kind::Decode(e) => d
                .field("status", &e.status)
                .field("url", &Redacted::new(&e.url))
                .field("content_type", &e.content_type)
                .field("body", &e.snippet)
                .field("source", &e.source),
        };
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.inner.kind {
            // Transparent kinds expose their inner error's source, so a
            // report printing the chain does not repeat the message.
            Kind::Discovery(e) => e.source(),
            Kind::Http(e) => e.source(),
            Kind::InvalidPath { .. } | Kind::Redirected { .. } => None,
            // svc-httpclient's error is the message itself: transparent,
            // as for `Http`.
            Kind::Config {
                setting: None,
                source: Some(inner),
                ..
            } => inner.source(),
            Kind::Config { source, .. } => source.as_deref().map(|e| e as _),
            // Transparent: the message is the setting error's.
            Kind::Setting(e) => e.source(),
            Kind::Decode(d) => d.source.as_deref().map(|e| e as _),
            #[cfg(feature = "grpc")]
            Kind::Grpc(e) => e.source.as_deref().map(|e| e as _),
        }
    }
}

// ===== impl DecodeError =====

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem {
            DecodeProblem::Status => write!(
                f,
                "unexpected status {} from {}",
                self.status,
                Redacted::new(&self.url)
            )?,
            DecodeProblem::TooLarge { limit } => write!(
                f,
                "response body from {} exceeds the limit of {limit} bytes",
                Redacted::new(&self.url)
            )?,
            DecodeProblem::Body => write!(
                f,
                "could not read the response body from {}",
                Redacted::new(&self.url)
            )?,
            DecodeProblem::Json => write!(
                f,
                "could not decode the JSON response from {} ({})",
                Redacted::new(&self.url),
                self.status
            )?,
        }
        match &self.content_type {
            Some(ct) => write!(f, ", content-type {ct:?}")?,
            None => f.write_str(", no content-type")?,
        }
        if self.snippet.is_empty() {
            f.write_str(", empty body")
        } else {
            write!(f, ", body starts with {:?}", self.snippet)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_static<T: Send + Sync + 'static>() {}

    #[test]
    fn error_is_small_and_thread_safe() {
        assert_send_sync_static::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        assert_eq!(
            std::mem::size_of::<Result<(), Error>>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn invalid_path_names_the_path() {
        let err = Error::invalid_path("//evil/x", PathProblem::SchemeRelative);
        assert!(err.is_invalid_path());
        assert!(!err.is_circuit_open());
        assert!(err.to_string().contains("\"//evil/x\""), "{err}");
        assert!(err.source().is_none());
    }

    #[test]
    fn invalid_path_escapes_control_characters() {
        let err = Error::invalid_path("/a\r\nHost: evil", PathProblem::Control);
        let msg = err.to_string();
        assert!(!msg.contains('\r') && !msg.contains('\n'), "{msg:?}");
        assert!(msg.contains("\\r\\n"), "{msg}");
    }

    #[test]
    fn config_names_the_setting() {
        let err = Error::config("decode_limit", "must be at least 1");
        assert!(err.is_config());
        assert_eq!(
            err.to_string(),
            "invalid client setting `decode_limit`: must be at least 1"
        );
    }
}
