//! [`Client`]: one sibling service, found by name, called by path.
//!
//! ```text
//! Client::get(path) ─ join onto the base URL (reject paths that leave it)
//!   └─ span `svc.call` (service, method, path)
//!        └─ svc-httpclient: deadline, retries, budget, breaker
//!             └─ span `HTTP GET` per attempt ─ observer: traceparent, duration metric
//! ```

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use svc_httpclient::{AttemptEnd, AttemptObserver, AttemptStart};
use tracing::Span;
use tracing::field::Empty;
use url::Url;

use crate::config::{ClientConfig, Pool};
use crate::decode::{buffered_success, decode_buffered};
use crate::error::Error;
use crate::header::{HeaderMap, HeaderName, HeaderValue};
use crate::paths;
use crate::{CircuitBreaker, Method, Registry, Response, State, StatusCode, reqwest};

#[cfg(feature = "metrics")]
use crate::metrics::{CallOutcome, Instruments};

/// A client for one sibling service: discovery, retries, timeouts, a
/// circuit breaker, trace propagation and metrics, configured once.
///
/// Cheap to clone; clones share the breaker, the retry budget and the
/// connection pool. Create clients at startup and keep them (the seed's
/// "initialise at startup, not on demand"). Clients of different services
/// share one connection pool unless [`ClientConfig::shared_pool`] says
/// otherwise.
///
/// Paths are relative to the service's base URL, whose path is a prefix:
/// with `AUTH_SVC_URL=http://gw/auth`, `get("/users/1")` calls
/// `http://gw/auth/users/1`. A path that could leave the service is
/// rejected before any I/O ([`Error::is_invalid_path`]).
///
/// An HTTP status is never an `Err` by itself: check
/// [`Response::status`] or use [`decode_response`](crate::decode_response).
///
/// # Example
///
/// ```no_run
/// use svc_client::Client;
///
/// # async fn run() -> Result<(), svc_client::Error> {
/// let auth_client = Client::new("auth-svc")?; // reads AUTH_SVC_URL
/// let resp = auth_client.get("/users/123").await?;
/// println!("{}", resp.status());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Shared>,
}

struct Shared {
    service: Arc<str>,
    base_url: Url,
    http: svc_httpclient::Client,
    breaker: Option<CircuitBreaker>,
    decode_limit: u64,
    #[cfg(feature = "metrics")]
    instruments: Instruments,
}

/// The client whose connection pool every facade client shares by default
/// (`svc_httpclient::Client::new`'s pool: no redirects followed, and plain
/// `http` still works on a machine without root certificates).
fn shared_pool() -> Result<&'static svc_httpclient::Client, svc_httpclient::Error> {
    static POOL: OnceLock<svc_httpclient::Client> = OnceLock::new();
    if let Some(pool) = POOL.get() {
        return Ok(pool);
    }
    let pool = svc_httpclient::Client::new(svc_httpclient::Config::default())?;
    Ok(POOL.get_or_init(|| pool))
}

// ===== impl Client =====

impl Client {
    /// A client for `service` with the default [`ClientConfig`], its URL
    /// read from the environment (`auth-svc` → `AUTH_SVC_URL`).
    ///
    /// # Errors
    ///
    /// When discovery fails: [`Error::is_not_configured`] if no variable is
    /// set (the message names them), [`Error::is_discovery`] for an invalid
    /// name or URL.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # fn run() -> Result<(), svc_client::Error> {
    /// let auth_client = svc_client::Client::new("auth-svc")?;
    /// # let _ = auth_client;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(service: &str) -> Result<Client, Error> {
        Client::with_config(service, ClientConfig::default())
    }

    /// A client for `service` with `config`, its URL read from the
    /// environment.
    ///
    /// # Errors
    ///
    /// As [`Client::new`], and [`Error::is_config`] for an invalid `config`.
    pub fn with_config(service: &str, config: ClientConfig) -> Result<Client, Error> {
        let base_url = svc_discovery::lookup(service).map_err(Error::from)?;
        Client::build(service, base_url, config)
    }

    /// A client for `service` with `config`, its URL taken from `registry`
    /// (a snapshot of the environment, or variables given by a test).
    ///
    /// # Errors
    ///
    /// As [`Client::with_config`].
    ///
    /// # Example
    ///
    /// ```
    /// use svc_client::{Client, ClientConfig, Registry};
    ///
    /// let registry = Registry::from_vars([("AUTH_SVC_URL", "http://127.0.0.1:8001/api")]);
    /// let client = Client::from_registry(&registry, "auth-svc", ClientConfig::default())?;
    /// assert_eq!(client.base_url().as_str(), "http://127.0.0.1:8001/api");
    ///
    /// let err = Client::from_registry(&registry, "chat-svc", ClientConfig::default()).unwrap_err();
    /// assert!(err.is_not_configured());
    /// assert!(err.to_string().contains("CHAT_SVC_URL"));
    /// # Ok::<(), svc_client::Error>(())
    /// ```
    pub fn from_registry(
        registry: &Registry,
        service: &str,
        config: ClientConfig,
    ) -> Result<Client, Error> {
        let base_url = registry.lookup(service).map_err(Error::from)?;
        Client::build(service, base_url, config)
    }

    /// A client for `service` at `base_url`, bypassing discovery (for tools
    /// and tests; services should use discovery).
    ///
    /// # Errors
    ///
    /// [`Error::is_config`] if `base_url` is not an `http` or `https` URL
    /// with a host, or has a query or fragment.
    pub fn with_base_url(
        service: &str,
        base_url: Url,
        config: ClientConfig,
    ) -> Result<Client, Error> {
        if !matches!(base_url.scheme(), "http" | "https") || base_url.host().is_none() {
            return Err(Error::config(
                "base_url",
                format!(
                    "{} is not an http or https URL with a host",
                    svc_discovery::Redacted::new(&base_url)
                ),
            ));
        }
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(Error::config(
                "base_url",
                format!(
                    "{} must not have a query or fragment",
                    svc_discovery::Redacted::new(&base_url)
                ),
            ));
        }
        Client::build(service, base_url, config)
    }

    fn build(service: &str, base_url: Url, config: ClientConfig) -> Result<Client, Error> {
        if config.decode_limit == 0 {
            return Err(Error::config("decode_limit", "must be at least 1 byte"));
        }
        let service: Arc<str> = Arc::from(service);
        let ClientConfig {
            http: mut http_config,
            observer,
            decode_limit,
            pool,
            #[cfg(feature = "metrics")]
            meter,
        } = config;

        #[cfg(feature = "metrics")]
        let instruments = Instruments::new(&service, &base_url, meter.as_ref());

        if let Some(breaker) = http_config.get_circuit_breaker().cloned() {
            let service = Arc::clone(&service);
            #[cfg(feature = "metrics")]
            let instruments = instruments.clone();
            let breaker = breaker.on_transition(move |t: &svc_breaker::Transition| {
                #[cfg(feature = "metrics")]
                instruments.record_transition(t.from(), t.to());
                log_transition(&service, t.from(), t.to());
            });
            http_config = http_config.circuit_breaker(Some(breaker));
        }

        // The facade logs each failed call once, with the service and the
        // path; the inner client would log it a second time.
        let http_config = http_config.log_failures(false).observer(FacadeObserver {
            #[cfg(feature = "metrics")]
            instruments: instruments.clone(),
            user: observer,
        });
        let http = match pool {
            Pool::Shared => shared_pool().and_then(|pool| pool.with_config(http_config)),
            Pool::Own => svc_httpclient::Client::new(http_config),
            Pool::Custom(http) => svc_httpclient::Client::with_http_client(http_config, http),
        }
        .map_err(Error::http_config)?;
        let breaker = http.breaker(&base_url);

        let shared = Arc::new(Shared {
            service,
            base_url,
            http,
            breaker,
            decode_limit,
            #[cfg(feature = "metrics")]
            instruments,
        });
        #[cfg(feature = "metrics")]
        shared
            .instruments
            .observe_state(&shared, |s: &Shared| s.breaker.as_ref());
        Ok(Client { inner: shared })
    }

    /// The service this client calls, as given to the constructor.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The service's base URL; every path is joined under it.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The state of the service's circuit breaker; `None` when the breaker
    /// is disabled.
    pub fn circuit_state(&self) -> Option<State> {
        self.inner.breaker.as_ref().map(CircuitBreaker::state)
    }

    /// A snapshot of the breaker's counters and state; `None` when the
    /// breaker is disabled.
    pub fn metrics(&self) -> Option<svc_breaker::Metrics> {
        self.inner.breaker.as_ref().map(CircuitBreaker::metrics)
    }

    /// The service's circuit breaker (shared with the client, and with every
    /// clone); `None` when disabled. For manual control such as
    /// `force_open` during maintenance.
    pub fn breaker(&self) -> Option<&CircuitBreaker> {
        self.inner.breaker.as_ref()
    }

    /// The URL a request for `path` would go to, or why `path` is rejected.
    ///
    /// # Example
    ///
    /// ```
    /// # use svc_client::{Client, ClientConfig, Registry};
    /// let registry = Registry::from_vars([("GW_URL", "http://gw/api")]);
    /// let client = Client::from_registry(&registry, "gw", ClientConfig::default())?;
    /// assert_eq!(client.url("/users/1")?.as_str(), "http://gw/api/users/1");
    /// assert!(client.url("//evil.example/x").unwrap_err().is_invalid_path());
    /// assert!(client.url("/../admin").unwrap_err().is_invalid_path());
    /// # Ok::<(), svc_client::Error>(())
    /// ```
    pub fn url(&self, path: &str) -> Result<Url, Error> {
        paths::join(&self.inner.base_url, path).map_err(|p| Error::invalid_path(path, p))
    }

    /// A GET request for `path`; send it with `.await`.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// A HEAD request for `path`.
    pub fn head(&self, path: &str) -> RequestBuilder {
        self.request(Method::HEAD, path)
    }

    /// A DELETE request for `path`.
    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    /// A POST request for `path` with `body` as JSON. Retried only when it
    /// was never sent, unless it has an
    /// [`idempotency_key`](RequestBuilder::idempotency_key).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # #[derive(serde::Serialize)] struct ValidateRequest { token: String }
    /// # async fn run(auth_client: svc_client::Client, token: String) -> Result<(), svc_client::Error> {
    /// let resp = auth_client.post("/validate", &ValidateRequest { token }).await?;
    /// # let _ = resp;
    /// # Ok(())
    /// # }
    /// ```
    pub fn post<T: serde::Serialize + ?Sized>(&self, path: &str, body: &T) -> RequestBuilder {
        self.request(Method::POST, path).json(body)
    }

    /// A PUT request for `path` with `body` as JSON.
    pub fn put<T: serde::Serialize + ?Sized>(&self, path: &str, body: &T) -> RequestBuilder {
        self.request(Method::PUT, path).json(body)
    }

    /// A PATCH request for `path` with `body` as JSON; retried like POST.
    pub fn patch<T: serde::Serialize + ?Sized>(&self, path: &str, body: &T) -> RequestBuilder {
        self.request(Method::PATCH, path).json(body)
    }

    /// A request with any method for `path`. An invalid path fails the call
    /// when it is sent, before any I/O.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let inner = match paths::join(&self.inner.base_url, path) {
            Ok(url) => Ok(self.inner.http.request(method.clone(), url)),
            Err(problem) => Err(Error::invalid_path(path, problem)),
        };
        // The span and logs get the path without its query, which may
        // carry tokens.
        let path = path.split('?').next().unwrap_or_default();
        RequestBuilder {
            client: self.clone(),
            method,
            path: Box::from(first_chars(path, 200)),
            inner,
        }
    }
}

/// The first `n` characters of `s`, without walking a short `s`.
fn first_chars(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("service", &self.inner.service)
            .field(
                "base_url",
                &svc_discovery::Redacted::new(&self.inner.base_url),
            )
            .field("circuit_state", &self.circuit_state())
            .finish_non_exhaustive()
    }
}

fn log_transition(service: &str, from: State, to: State) {
    let (from, to) = (crate::state_str(from), crate::state_str(to));
    if to == "open" {
        tracing::warn!(target: "svc_client", service, from, to, "circuit breaker opened: calls fail fast");
    } else {
        tracing::info!(target: "svc_client", service, from, to, "circuit breaker state changed");
    }
}

// ===== observer =====

/// Injects the attempt span's trace context and records the attempt's
/// duration; then runs the caller's observer, if any.
struct FacadeObserver {
    #[cfg(feature = "metrics")]
    instruments: Instruments,
    user: Option<Arc<dyn AttemptObserver>>,
}

impl AttemptObserver for FacadeObserver {
    fn on_attempt_start(&self, request: &mut reqwest::Request, attempt: &AttemptStart<'_>) {
        crate::trace::inject_nearest(attempt.span(), attempt.parent(), request.headers_mut());
        if let Some(user) = &self.user {
            user.on_attempt_start(request, attempt);
        }
    }

    fn on_attempt_end(&self, attempt: &AttemptEnd<'_>) {
        #[cfg(feature = "metrics")]
        self.instruments.record_attempt(attempt);
        if let Some(user) = &self.user {
            user.on_attempt_end(attempt);
        }
    }
}

// ===== impl RequestBuilder =====

/// A request being built; send it with `.await` (or [`send`](RequestBuilder::send)).
///
/// Errors of the builder (an invalid path, header or body) are reported
/// when the request is sent, as reqwest does.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
///
/// # async fn run(client: svc_client::Client) -> Result<(), svc_client::Error> {
/// let resp = client
///     .get("/users")
///     .query(&[("active", "1")])
///     .header("x-request-id", "abc123")
///     .bearer_auth("token")
///     .timeout(Duration::from_secs(2))
///     .await?;
/// # let _ = resp;
/// # Ok(())
/// # }
/// ```
#[must_use = "a request does nothing until it is sent or awaited"]
pub struct RequestBuilder {
    client: Client,
    method: Method,
    path: Box<str>,
    inner: Result<svc_httpclient::RequestBuilder, Error>,
}

impl RequestBuilder {
    fn map(
        mut self,
        f: impl FnOnce(svc_httpclient::RequestBuilder) -> svc_httpclient::RequestBuilder,
    ) -> Self {
        self.inner = self.inner.map(f);
        self
    }

    /// Adds a header. An invalid name or value fails the call when sent.
    pub fn header<K, V>(self, key: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.map(|b| b.header(key, value))
    }

    /// Adds headers, replacing those of the same names.
    pub fn headers(self, headers: HeaderMap) -> Self {
        self.map(|b| b.headers(headers))
    }

    /// Appends query parameters (URL-encoded from any `Serialize`).
    pub fn query<T: serde::Serialize + ?Sized>(self, query: &T) -> Self {
        self.map(|b| b.query(query))
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json<T: serde::Serialize + ?Sized>(self, body: &T) -> Self {
        self.map(|b| b.json(body))
    }

    /// Sets a byte body, replayed as is on retry.
    pub fn body(self, body: impl Into<bytes::Bytes>) -> Self {
        let body: bytes::Bytes = body.into();
        self.map(|b| b.body(body))
    }

    /// Sets `Authorization: Bearer {token}`, marked sensitive (never
    /// logged).
    pub fn bearer_auth(self, token: impl fmt::Display) -> Self {
        self.map(|b| b.bearer_auth(token))
    }

    /// The whole-call timeout of this call (retries included), instead of
    /// the client's.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.map(|b| b.timeout(timeout))
    }

    /// Sets the `Idempotency-Key` header, which makes a POST or PATCH
    /// retryable.
    pub fn idempotency_key(self, key: impl Into<String>) -> Self {
        self.map(|b| b.idempotency_key(key))
    }

    /// Declares the request safe to send more than once (a POST or PATCH is
    /// then retried like a GET).
    pub fn retry_unsafe(self, allowed: bool) -> Self {
        self.map(|b| b.retry_unsafe(allowed))
    }

    /// Retries of this call, instead of the client's `max_retries`.
    pub fn max_retries(self, n: u32) -> Self {
        self.map(|b| b.max_retries(n))
    }

    /// Sends the request: one `svc.call` span around the attempts, one
    /// metric point and, on failure, one log line.
    ///
    /// The body is handed to the caller unread, so the breaker and the
    /// retries see the response head only: a body that stalls or is cut
    /// short after a `200` is the caller's to notice. Let the client read
    /// it ([`decode`](RequestBuilder::decode), [`bytes`](RequestBuilder::bytes),
    /// [`text`](RequestBuilder::text), [`send_buffered`](RequestBuilder::send_buffered))
    /// to have such a body count as a failed attempt, and be retried.
    pub async fn send(self) -> Result<Response, Error> {
        let (shared, span, method, path, inner) = self.start();
        let result = match inner {
            // The attempt spans are children of `svc.call` without the
            // span being entered on every poll of the call: under an
            // OpenTelemetry layer each enter and exit is a subscriber call
            // that attaches and detaches an OpenTelemetry context.
            Ok(builder) => builder
                .send_with_parent(&span)
                .await
                .map_err(Error::from)
                .and_then(|resp| same_origin(&shared.base_url, resp.url()).map(|()| resp)),
            Err(err) => rejected(err).await,
        };
        finish(&shared, &span, &method, &path, result, Response::status)
    }

    /// Sends the request and reads the whole body within the attempt (at
    /// most the client's [`decode_limit`](ClientConfig::decode_limit)): a
    /// body that stalls, resets or is cut short after a 2xx head is a
    /// failure for the breaker and is retried when the request may be
    /// retried. The response's extensions hold its URL.
    pub async fn send_buffered(self) -> Result<http::Response<bytes::Bytes>, Error> {
        let (shared, span, method, path, inner) = self.start();
        let result = match inner {
            Ok(builder) => builder
                .body_limit(shared.decode_limit)
                .send_buffered_with_parent(&span)
                .await
                .map_err(Error::from)
                .and_then(|resp| match resp.extensions().get::<Url>() {
                    Some(url) => same_origin(&shared.base_url, url).map(|()| resp),
                    None => Ok(resp),
                }),
            Err(err) => rejected(err).await,
        };
        let result = finish(&shared, &span, &method, &path, result, |r| r.status());
        result.map_err(|e| e.with_service(&shared.service))
    }

    /// Sends the request and decodes a 2xx JSON response into `T`, the
    /// body read within the attempt (see [`send_buffered`](RequestBuilder::send_buffered)),
    /// with the client's [`decode_limit`](ClientConfig::decode_limit); the
    /// errors are those of [`decode_response`](crate::decode_response).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # #[derive(serde::Deserialize)] struct User { id: String, name: String }
    /// # async fn run(auth_client: svc_client::Client) -> Result<(), svc_client::Error> {
    /// let user: User = auth_client.get("/users/123").decode().await?;
    /// # let _ = user;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn decode<T: DeserializeOwned>(self) -> Result<T, Error> {
        let service = Arc::clone(&self.client.inner.service);
        let resp = self.send_buffered().await?;
        decode_buffered(resp).map_err(|e| e.with_service(&service))
    }

    /// Sends the request and returns the body of its 2xx response, read
    /// within the attempt (see [`send_buffered`](RequestBuilder::send_buffered));
    /// a response outside 2xx is an [`Error::is_decode`] error with its
    /// status and the start of its body.
    pub async fn bytes(self) -> Result<bytes::Bytes, Error> {
        let service = Arc::clone(&self.client.inner.service);
        let resp = self.send_buffered().await?;
        buffered_success(resp)
            .map(|(_, body)| body)
            .map_err(|e| e.with_service(&service))
    }

    /// As [`bytes`](RequestBuilder::bytes), as text (invalid UTF-8 is
    /// replaced with `U+FFFD`).
    pub async fn text(self) -> Result<String, Error> {
        let body = self.bytes().await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// The call's span and parts.
    #[allow(clippy::type_complexity)]
    fn start(
        self,
    ) -> (
        Arc<Shared>,
        Span,
        Method,
        Box<str>,
        Result<svc_httpclient::RequestBuilder, Error>,
    ) {
        let RequestBuilder {
            client,
            method,
            path,
            inner,
        } = self;
        let shared = client.inner;
        let span = tracing::info_span!(
            target: "svc_client",
            "svc.call",
            otel.kind = "internal",
            otel.status_code = Empty,
            svc.service = &*shared.service,
            peer.service = &*shared.service,
            http.request.method = method.as_str(),
            url.path = &*path,
            http.response.status_code = Empty,
            error.type = Empty,
        );
        (shared, span, method, path, inner)
    }
}

/// Checks that a response came from the service: a `reqwest::Client` given
/// with `http_client` may follow a redirect to another host, whose answer
/// is then not the service's.
fn same_origin(base: &Url, url: &Url) -> Result<(), Error> {
    let same = base.scheme() == url.scheme()
        && base.host_str() == url.host_str()
        && base.port_or_known_default() == url.port_or_known_default();
    if same {
        Ok(())
    } else {
        Err(Error::redirected(url))
    }
}

/// A call rejected before it reached svc-httpclient (an invalid path):
/// without I/O, so it consumes tokio's cooperative budget (as
/// svc-httpclient does for its own fail-fast paths) and a caller looping
/// on the error cannot starve its runtime.
async fn rejected<T>(err: Error) -> Result<T, Error> {
    tokio::task::coop::consume_budget().await;
    Err(err)
}

/// Records the end of a call on its span, in the metrics and (on failure)
/// in one log line. The three always agree; see "Outcomes" in the crate
/// docs for the table.
fn finish<R>(
    shared: &Shared,
    span: &Span,
    method: &Method,
    path: &str,
    result: Result<R, Error>,
    status: impl FnOnce(&R) -> StatusCode,
) -> Result<R, Error> {
    match result {
        Ok(resp) => {
            let status = status(&resp);
            span.record("http.response.status_code", i64::from(status.as_u16()));
            // A final 5xx or 429 is a failed call (the breaker counts it as
            // one) even though it is not an `Err`.
            let failed = is_failure_status(status);
            if failed {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", status.as_str());
                log_failed_response(shared, method, path, status);
            }
            #[cfg(feature = "metrics")]
            shared.instruments.record_call(
                method,
                if failed {
                    CallOutcome::Error
                } else {
                    CallOutcome::Ok
                },
            );
            Ok(resp)
        }
        Err(err) => {
            let err = err.with_service(&shared.service);
            span.record("otel.status_code", "ERROR");
            span.record("error.type", &*error_type(&err));
            if let Some(status) = err.status() {
                span.record("http.response.status_code", i64::from(status.as_u16()));
            }
            #[cfg(feature = "metrics")]
            shared.instruments.record_call(
                method,
                if is_rejection(&err) {
                    CallOutcome::Degraded
                } else {
                    CallOutcome::Error
                },
            );
            log_failure(shared, method, path, &err);
            Err(err)
        }
    }
}

/// What the breaker counts as a failure among final responses.
fn is_failure_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// A fail-fast rejection: the circuit was open and nothing was sent. A
/// circuit that opened during the call's retries is a failure of a call
/// that reached the service, not a rejection.
fn is_rejection(err: &Error) -> bool {
    err.is_circuit_open() && err.attempts() == 0
}

fn error_type(err: &Error) -> std::borrow::Cow<'static, str> {
    let kind = if err.is_invalid_path() {
        "invalid_path"
    } else if err.is_redirect() {
        "redirected"
    } else if is_rejection(err) {
        "circuit_open"
    } else if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else if let Some(status) = err.status().filter(|_| err.is_circuit_open()) {
        // The breaker opened after this response: the last failure's type.
        return status.as_str().to_owned().into();
    } else if err.is_budget_exhausted() {
        "retry_budget"
    } else if err.is_request() {
        "request"
    } else {
        "_OTHER"
    };
    kind.into()
}

/// The one log line of a failed call. A fail-fast rejection (nothing sent)
/// is the breaker doing its job and would flood the log during an outage
/// (the transition to open is logged at `warn`), so it is `debug`.
fn log_failure(shared: &Shared, method: &Method, path: &str, err: &Error) {
    let cause = crate::error::chain(err);
    if is_rejection(err) {
        tracing::debug!(
            target: "svc_client",
            service = &*shared.service,
            method = method.as_str(),
            path,
            attempts = err.attempts(),
            cause,
            "service call rejected: circuit open",
        );
    } else {
        tracing::warn!(
            target: "svc_client",
            service = &*shared.service,
            method = method.as_str(),
            path,
            attempts = err.attempts(),
            cause,
            "service call failed",
        );
    }
}

/// The one log line of a call whose last response was a failure (5xx or
/// 429): the caller gets the response, but the call failed.
fn log_failed_response(shared: &Shared, method: &Method, path: &str, status: StatusCode) {
    tracing::warn!(
        target: "svc_client",
        service = &*shared.service,
        method = method.as_str(),
        path,
        status = status.as_u16(),
        "service call failed",
    );
}

impl IntoFuture for RequestBuilder {
    type Output = Result<Response, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("service", &self.client.inner.service)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("valid", &self.inner.is_ok())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use svc_httpclient::Backoff;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Everything the `fmt` layer writes, shared with the test.
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl Logs {
        fn warnings(&self) -> Vec<String> {
            String::from_utf8_lossy(&self.0.lock().unwrap())
                .lines()
                .filter(|l| l.contains("WARN"))
                .map(str::to_owned)
                .collect()
        }
    }

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
        type Writer = Logs;
        fn make_writer(&'a self) -> Logs {
            self.clone()
        }
    }

    async fn server(status: u16) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .fallback(move || async move { axum::http::StatusCode::from_u16(status).unwrap() });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    fn client(addr: std::net::SocketAddr) -> Client {
        let config = ClientConfig::default()
            .max_retries(2)
            .backoff(Backoff::default().base(Duration::from_millis(1)))
            .shared_pool(false);
        Client::with_base_url(
            "auth-svc",
            format!("http://{addr}").parse().unwrap(),
            config,
        )
        .unwrap()
    }

    /// Runs `f` with a subscriber logging `warn` and above into a buffer.
    async fn warnings_of<F: Future<Output = ()>>(f: F) -> Vec<String> {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(logs.clone())
                .with_ansi(false)
                .with_filter(tracing_subscriber::filter::LevelFilter::WARN),
        );
        let _guard = tracing::subscriber::set_default(subscriber);
        f.await;
        logs.warnings()
    }

    /// OpenTelemetry's HTTP conventions type these attributes as integers;
    /// an unsigned `tracing` field would reach the exporter as a string.
    #[tokio::test]
    async fn integer_attributes_are_exported_as_integers() {
        use opentelemetry::trace::TracerProvider as _;
        use opentelemetry::{Key, Value};
        use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let _guard = tracing::subscriber::set_default(subscriber);

        let addr = server(200).await;
        let c = client(addr);
        assert!(c.get("/users/1").await.unwrap().status().is_success());

        let spans = exporter.get_finished_spans().unwrap();
        let attr = |name: &str, key: &'static str| {
            let span = spans.iter().find(|s| s.name == name).expect(name);
            span.attributes
                .iter()
                .find(|kv| kv.key == Key::from_static_str(key))
                .map(|kv| kv.value.clone())
        };
        let status = Some(Value::I64(200));
        assert_eq!(attr("GET", "http.response.status_code"), status);
        assert_eq!(attr("svc.call", "http.response.status_code"), status);
        assert_eq!(
            attr("GET", "server.port"),
            Some(Value::I64(i64::from(addr.port())))
        );
    }

    #[tokio::test]
    async fn a_failed_call_is_logged_once_with_its_service_and_path() {
        // Connection refused on every attempt: three attempts, one line.
        let refused = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let c = client(refused);
        let warnings = warnings_of(async {
            assert!(c.get("/users/1").await.unwrap_err().is_connect());
        })
        .await;
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        assert!(warnings[0].contains("service call failed"), "{warnings:#?}");
        assert!(warnings[0].contains("auth-svc") && warnings[0].contains("/users/1"));
        assert!(warnings[0].contains("attempts=3"), "{warnings:#?}");
    }

    #[tokio::test]
    async fn a_final_5xx_is_logged_once() {
        let c = client(server(503).await);
        let warnings = warnings_of(async {
            let resp = c.get("/users/1").await.unwrap();
            assert_eq!(resp.status(), 503);
        })
        .await;
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        assert!(warnings[0].contains("service call failed"), "{warnings:#?}");
        assert!(warnings[0].contains("status=503"), "{warnings:#?}");
    }

    #[tokio::test]
    async fn an_invalid_request_is_logged_once_and_a_success_not_at_all() {
        let c = client(server(200).await);
        let warnings = warnings_of(async {
            let err = c.get("/users/1").header("x-bad", "a\nb").await.unwrap_err();
            assert!(err.is_request(), "{err}");
            assert!(c.get("/users/1").await.unwrap().status().is_success());
            assert!(c.get("/../admin").await.unwrap_err().is_invalid_path());
        })
        .await;
        assert_eq!(warnings.len(), 2, "{warnings:#?}");
        assert!(warnings.iter().all(|w| w.contains("service call failed")));
    }
}
