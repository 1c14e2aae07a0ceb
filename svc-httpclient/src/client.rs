//! The client and the pipeline of one call.
//!
//! ```text
//! call ─ deadline (timeout) ─┬─ retry loop: budget, classify, backoff / Retry-After
//!                            └─ breaker of the origin ─ one attempt (min(attempt_timeout, remaining))
//! ```
//!
//! The breaker sees every attempt, not every call: three failed attempts are
//! three failures, because each one reached (or failed to reach) the
//! server. A call the caller drops mid-attempt drops the breaker permit,
//! which counts as no effect and frees a half-open trial slot, so
//! cancellation can never wedge the breaker.
//!
//! Redirects are not followed (`redirect::Policy::none()`): a 3xx is
//! returned to the caller and counts as a success. Following a redirect to
//! another origin would charge that origin's outcome to this origin's
//! breaker, and services rarely redirect each other. A client given through
//! [`Client::with_http_client`] keeps its own redirect policy.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{IntoUrl, Method, Response, StatusCode};
use tokio::time::Instant;
use tracing::Span;
use tracing::field::Empty;
use url::Url;

use crate::budget::Budget;
use crate::config::{Config, is_sensitive_header};
use crate::error::{Error, Kind, chain_to_string};
use crate::observe::{AttemptEnd, AttemptStart};
use crate::origin::origin_key;
use crate::request::{CallOptions, RequestBuilder};
use crate::retry::{IDEMPOTENCY_KEY, honours_retry_after, parse_retry_after, replay_allowed};
use crate::{CircuitBreaker, Outcome, State};

/// A retrying HTTP client with a circuit breaker and a retry budget per
/// origin (scheme, host, port).
///
/// Cheap to clone: clones share the connection pool, the breakers and the
/// budgets. Create one at startup and reuse it.
///
/// ```no_run
/// use std::time::Duration;
/// use svc_httpclient::{Client, Config, StatusCode};
///
/// # async fn run() -> Result<(), svc_httpclient::Error> {
/// let client = Client::new(Config::default().timeout(Duration::from_secs(5)))?;
/// let resp = client.get("http://auth-svc:8001/users/123").await?;
/// if resp.status() != StatusCode::OK {
///     // An HTTP status is never an `Err`: check it.
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientRef>,
}

struct ClientRef {
    http: reqwest::Client,
    config: Config,
    default_headers: HeaderMap,
    origins: RwLock<HashMap<Box<str>, Arc<Origin>>>,
    /// The origin of the millisecond clock of `Origin::last_used`.
    epoch: Instant,
    /// When idle origins were last dropped (ms since `epoch`).
    last_sweep: AtomicU64,
    /// The pool was built without root certificates, because the machine
    /// has none: `https` calls fail at once with this as their cause.
    roots_missing: Option<Arc<RootsMissing>>,
}

/// The pool `Client::new` builds: rustls, no redirects followed. On a
/// machine without root certificates (no CA bundle in the image) the first
/// build fails; the pool is then built with no roots at all, for plain
/// `http`, and the reason is kept for the `https` calls.
fn default_pool() -> Result<(reqwest::Client, Option<Arc<RootsMissing>>), Error> {
    let builder = || reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    let first = match builder().build() {
        Ok(http) => return Ok((http, None)),
        Err(e) => e.without_url(),
    };
    match builder().tls_certs_only(Vec::new()).build() {
        Ok(http) => Ok((http, Some(Arc::new(RootsMissing(Arc::new(first)))))),
        Err(_) => Err(Error::config(
            "http_client",
            format!("could not be built: {}", chain_to_string(&first)),
        )
        .with_source(first)),
    }
}

/// Why `https` calls cannot be made: no root certificate could be loaded.
#[derive(Debug, Clone)]
pub(crate) struct RootsMissing(Arc<reqwest::Error>);

impl fmt::Display for RootsMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no TLS root certificates could be loaded (SSL_CERT_FILE, SSL_CERT_DIR or the \
             system store): add a CA bundle to the image (e.g. /etc/ssl/certs/ca-certificates.crt) \
             to call https services",
        )
    }
}

impl std::error::Error for RootsMissing {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// The per-origin state: its breaker and its retry budget.
struct Origin {
    key: Box<str>,
    breaker: Option<CircuitBreaker>,
    budget: Option<Budget>,
    /// The last call (ms since the client's `epoch`).
    last_used: AtomicU64,
    /// Its breaker was handed out ([`Client::breaker`]): never dropped.
    pinned: AtomicBool,
}

// ===== impl Client =====

impl Client {
    /// A client with its own connection pool (rustls, no redirects
    /// followed). Fails, naming the setting, when `config` is invalid.
    ///
    /// ```
    /// use std::time::Duration;
    /// use svc_httpclient::{Client, Config};
    ///
    /// let err = Client::new(Config::default().timeout(Duration::ZERO)).unwrap_err();
    /// assert!(err.to_string().contains("`timeout`"));
    /// ```
    ///
    /// Without any root certificate on the machine (a minimal container
    /// image without a CA bundle), the client is still built, so that
    /// plain-`http` siblings work; an `https` call then fails before any
    /// I/O with an [`Error::is_connect`] error saying the roots are
    /// missing.
    pub fn new(config: Config) -> Result<Client, Error> {
        config.validate()?;
        let (http, roots_missing) = default_pool()?;
        Client::build(config, http, roots_missing)
    }

    /// A client with `config` sharing this client's connection pool (the
    /// cheap way to give each sibling its own settings), and what it found
    /// out about the machine's root certificates.
    pub fn with_config(&self, config: Config) -> Result<Client, Error> {
        Client::build(
            config,
            self.inner.http.clone(),
            self.inner.roots_missing.clone(),
        )
    }

    /// A client sending through `http`, to share one connection pool
    /// between clients. `http` keeps its own redirect policy and TLS
    /// settings; its own timeouts apply inside each attempt.
    pub fn with_http_client(config: Config, http: reqwest::Client) -> Result<Client, Error> {
        Client::build(config, http, None)
    }

    fn build(
        config: Config,
        http: reqwest::Client,
        roots_missing: Option<Arc<RootsMissing>>,
    ) -> Result<Client, Error> {
        config.validate()?;
        if let Some(breaker) = config.get_circuit_breaker() {
            CircuitBreaker::new(breaker.clone())
                .map_err(|e| Error::config("circuit_breaker", e.to_string()).with_source(e))?;
        }
        Ok(Client {
            inner: Arc::new(ClientRef {
                http,
                default_headers: config.effective_default_headers(),
                config,
                origins: RwLock::new(HashMap::new()),
                epoch: Instant::now(),
                last_sweep: AtomicU64::new(0),
                roots_missing,
            }),
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// A GET request; send it with `.await` or [`RequestBuilder::send`].
    pub fn get(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A HEAD request.
    pub fn head(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    /// A DELETE request.
    pub fn delete(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// A POST request with `body` encoded as JSON (once; a retry replays the
    /// bytes). Not retried after it may have been sent unless it carries an
    /// `Idempotency-Key` or [`RequestBuilder::retry_unsafe`] is set.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), svc_httpclient::Error> {
    /// # let client = svc_httpclient::Client::new(Default::default())?;
    /// let resp = client
    ///     .post("http://billing-svc:8003/charges", &serde_json::json!({"cents": 1250}))
    ///     .idempotency_key("order-8841-charge")
    ///     .await?;
    /// # let _ = resp;
    /// # Ok(())
    /// # }
    /// ```
    pub fn post<T: serde::Serialize + ?Sized>(
        &self,
        url: impl IntoUrl,
        body: &T,
    ) -> RequestBuilder {
        self.request(Method::POST, url).json(body)
    }

    /// A PUT request with `body` encoded as JSON.
    pub fn put<T: serde::Serialize + ?Sized>(&self, url: impl IntoUrl, body: &T) -> RequestBuilder {
        self.request(Method::PUT, url).json(body)
    }

    /// A PATCH request with `body` encoded as JSON; retried like POST.
    pub fn patch<T: serde::Serialize + ?Sized>(
        &self,
        url: impl IntoUrl,
        body: &T,
    ) -> RequestBuilder {
        self.request(Method::PATCH, url).json(body)
    }

    /// A request with any method.
    pub fn request(&self, method: Method, url: impl IntoUrl) -> RequestBuilder {
        RequestBuilder::new(self.clone(), self.inner.http.request(method, url))
    }

    /// Sends a prepared request through the pipeline. A request whose body
    /// is a stream cannot be replayed and gets exactly one attempt. A
    /// timeout set on the request is the whole call's timeout.
    pub async fn execute(&self, request: reqwest::Request) -> Result<Response, Error> {
        let opts = CallOptions {
            timeout: request.timeout().copied(),
            ..CallOptions::default()
        };
        self.run(request, opts, None).await.map(|(resp, _)| resp)
    }

    /// The breaker of `url`'s origin, created if needed; `None` when the
    /// breaker is disabled. The returned breaker shares state with the one
    /// the client uses, and the client keeps that origin for its whole life
    /// (it is never dropped by [`Config::max_origins`]).
    pub fn breaker(&self, url: &Url) -> Option<CircuitBreaker> {
        let origin = self.origin(url, Instant::now());
        origin.pinned.store(true, Ordering::Relaxed);
        origin.breaker.clone()
    }

    /// How many origins the client keeps a breaker and a budget for (at
    /// most [`Config::max_origins`], plus those with calls in flight or a
    /// breaker handed out).
    pub fn origin_count(&self) -> usize {
        self.inner
            .origins
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The state of `url`'s origin breaker (`Closed` if no call went there
    /// yet); `None` when the breaker is disabled.
    pub fn circuit_state(&self, url: &Url) -> Option<State> {
        self.inner.config.get_circuit_breaker()?;
        let key = origin_key(url);
        let origins = self
            .inner
            .origins
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        match origins.get(&*key) {
            Some(origin) => origin.breaker.as_ref().map(CircuitBreaker::state),
            None => Some(State::Closed),
        }
    }

    fn origin(&self, url: &Url, now: Instant) -> Arc<Origin> {
        let key = origin_key(url);
        let now_ms = self.millis(now);
        {
            let origins = self
                .inner
                .origins
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(origin) = origins.get(&*key) {
                origin.last_used.store(now_ms, Ordering::Relaxed);
                return Arc::clone(origin);
            }
        }
        let mut origins = self
            .inner
            .origins
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let config = &self.inner.config;
        if !origins.contains_key(&*key) {
            self.sweep(&mut origins, now_ms);
        }
        let origin = origins.entry(key.into()).or_insert_with_key(|key| {
            Arc::new(Origin {
                key: key.clone(),
                // Validated in `with_http_client`, so `ok()` never drops one.
                breaker: config
                    .get_circuit_breaker()
                    .and_then(|c| CircuitBreaker::new(c.clone()).ok()),
                budget: config.get_retry_budget().as_ref().map(Budget::new),
                last_used: AtomicU64::new(now_ms),
                pinned: AtomicBool::new(false),
            })
        });
        origin.last_used.store(now_ms, Ordering::Relaxed);
        Arc::clone(origin)
    }

    /// Milliseconds from the client's creation to `now`.
    fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.inner.epoch).as_millis())
            .unwrap_or(u64::MAX)
    }

    /// Before a new origin is added: drops the origins idle for longer than
    /// `origin_idle_timeout` (at most once per timeout), and at the cap the
    /// least recently used ones, down to three quarters of it. Origins with
    /// a call in flight (their `Arc` is shared) or a breaker handed out are
    /// kept.
    fn sweep(&self, origins: &mut HashMap<Box<str>, Arc<Origin>>, now_ms: u64) {
        let config = &self.inner.config;
        let idle_ms = u64::try_from(config.origin_idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let droppable =
            |o: &Arc<Origin>| Arc::strong_count(o) == 1 && !o.pinned.load(Ordering::Relaxed);
        let last_sweep = self.inner.last_sweep.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last_sweep) >= idle_ms || origins.len() >= config.max_origins {
            self.inner.last_sweep.store(now_ms, Ordering::Relaxed);
            origins.retain(|_, o| {
                !droppable(o)
                    || now_ms.saturating_sub(o.last_used.load(Ordering::Relaxed)) < idle_ms
            });
        }
        if origins.len() < config.max_origins {
            return;
        }
        let keep = config.max_origins - config.max_origins / 4 - 1;
        let mut by_age: Vec<(u64, Box<str>)> = origins
            .iter()
            .filter(|(_, o)| droppable(o))
            .map(|(k, o)| (o.last_used.load(Ordering::Relaxed), k.clone()))
            .collect();
        by_age.sort_unstable();
        let excess = origins.len().saturating_sub(keep);
        for (_, key) in by_age.into_iter().take(excess) {
            origins.remove(&key);
        }
    }

    /// Credentials in the URL become a (sensitive) basic `Authorization`
    /// header, as `reqwest::Client::request` does, so they never reach the
    /// connection pool's keys and logs. A request built with
    /// `reqwest::Request::new` keeps them in the URL otherwise.
    fn move_credentials(&self, request: &mut reqwest::Request) {
        let url = request.url();
        if url.username().is_empty() && url.password().is_none() {
            return;
        }
        // reqwest's builder does the percent-decoding and base64 encoding.
        if let Ok(moved) = self.inner.http.request(Method::GET, url.clone()).build() {
            if let Some(auth) = moved.headers().get(header::AUTHORIZATION)
                && !request.headers().contains_key(header::AUTHORIZATION)
            {
                let auth = auth.clone();
                request.headers_mut().insert(header::AUTHORIZATION, auth);
            }
            *request.url_mut() = moved.url().clone();
        }
    }

    /// Default headers, sensitive marks and a generated idempotency key.
    fn prepare(&self, request: &mut reqwest::Request) {
        self.move_credentials(request);
        let generate_key = self.inner.config.get_generate_idempotency_keys()
            && (request.method() == Method::POST || request.method() == Method::PATCH);
        let headers = request.headers_mut();
        for name in self.inner.default_headers.keys() {
            if !headers.contains_key(name) {
                for value in self.inner.default_headers.get_all(name) {
                    headers.append(name.clone(), value.clone());
                }
            }
        }
        for (name, value) in headers.iter_mut() {
            if is_sensitive_header(name) {
                value.set_sensitive(true);
            }
        }
        if generate_key && !headers.contains_key(IDEMPOTENCY_KEY) {
            let key = uuid::Uuid::new_v4().to_string();
            if let Ok(value) = HeaderValue::from_str(&key) {
                headers.insert(IDEMPOTENCY_KEY, value);
            }
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origins = self
            .inner
            .origins
            .read()
            .map(|o| o.len())
            .unwrap_or_else(|e| e.into_inner().len());
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("origins", &origins)
            .finish()
    }
}

// ===== the pipeline =====

/// How one attempt ended: a response (with its body when the call reads
/// it, see [`CallOptions::read_body`]), or a failure.
enum Attempt {
    Response(Response, Option<Bytes>),
    Failed(Failure),
}

struct Failure {
    kind: Kind,
    source: Option<reqwest::Error>,
    /// The call's deadline, not only the attempt's limit, was reached.
    deadline: bool,
    /// The status of the head, when the body is what failed.
    status: Option<StatusCode>,
}

impl Attempt {
    fn status(&self) -> Option<StatusCode> {
        match self {
            Attempt::Response(resp, _) => Some(resp.status()),
            Attempt::Failed(failure) => failure.status,
        }
    }
}

/// Why reading a body failed.
pub(crate) enum BodyRead {
    TooLarge,
    Failed(reqwest::Error),
}

/// Reads `resp`'s body, at most `limit` bytes. With `best_effort` (the body
/// of a final non-2xx response, read for the caller's error message) a read
/// error or an oversized body keeps what was read instead of failing.
pub(crate) async fn read_body(
    resp: &mut Response,
    limit: u64,
    best_effort: bool,
) -> Result<Bytes, BodyRead> {
    if !best_effort && resp.content_length().is_some_and(|len| len > limit) {
        return Err(BodyRead::TooLarge);
    }
    let mut first: Option<Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    let mut len: u64 = 0;
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) if best_effort => break,
            Err(e) => return Err(BodyRead::Failed(e)),
        };
        len += chunk.len() as u64;
        if len > limit {
            if !best_effort {
                return Err(BodyRead::TooLarge);
            }
            let room = usize::try_from(limit - (len - chunk.len() as u64)).unwrap_or(0);
            let chunk = chunk.slice(..room.min(chunk.len()));
            push_chunk(&mut first, &mut rest, chunk);
            break;
        }
        push_chunk(&mut first, &mut rest, chunk);
    }
    Ok(match first {
        // One chunk (the common case for small bodies): no copy.
        Some(only) if rest.is_empty() => only,
        _ => Bytes::from(rest),
    })
}

/// Collects chunks: the first is kept as is, later ones are copied after it.
fn push_chunk(first: &mut Option<Bytes>, rest: &mut Vec<u8>, chunk: Bytes) {
    match first {
        None if rest.is_empty() => *first = Some(chunk),
        _ => {
            if let Some(first) = first.take() {
                rest.extend_from_slice(&first);
            }
            rest.extend_from_slice(&chunk);
        }
    }
}

/// Reads the body of a 2xx response as part of its attempt: a failed read
/// turns the attempt into a failure (for the breaker and the retry
/// decision), as a failed head would be.
async fn read_within_attempt(
    attempt: Attempt,
    limit_bytes: u64,
    limit: Duration,
    remaining: Duration,
) -> Attempt {
    let Attempt::Response(mut resp, None) = attempt else {
        return attempt;
    };
    let status = resp.status();
    if !status.is_success() {
        return Attempt::Response(resp, None);
    }
    match read_body(&mut resp, limit_bytes, false).await {
        Ok(body) => Attempt::Response(resp, Some(body)),
        Err(BodyRead::TooLarge) => Attempt::Failed(Failure {
            kind: Kind::BodyTooLarge(limit_bytes),
            source: None,
            deadline: false,
            status: Some(status),
        }),
        Err(BodyRead::Failed(e)) => {
            let (kind, deadline) = if e.is_timeout() {
                (Kind::AttemptTimeout(limit), limit >= remaining)
            } else {
                (Kind::Body, false)
            };
            Attempt::Failed(Failure {
                kind,
                source: Some(e.without_url()),
                deadline,
                status: Some(status),
            })
        }
    }
}

/// The OpenTelemetry `error.type` of an attempt whose response status (if
/// any) is `status`: the status of a 4xx or 5xx response, or the kind of
/// failure.
fn error_type<'a>(attempt: &Attempt, status: &'a Option<StatusCode>) -> Option<&'a str> {
    match (attempt, status) {
        (Attempt::Failed(failure), _) => Some(failure.error_type()),
        (Attempt::Response(..), Some(status)) => {
            (status.is_client_error() || status.is_server_error()).then(|| status.as_str())
        }
        (Attempt::Response(..), None) => None,
    }
}

/// Where the call's own events go: into the caller's `parent` span when
/// the call was given one (it is not entered while the call runs), else
/// the current span.
#[derive(Clone, Copy)]
struct Scope<'a>(Option<&'a Span>);

impl Scope<'_> {
    fn in_scope<R>(self, f: impl FnOnce() -> R) -> R {
        match self.0 {
            Some(parent) => parent.in_scope(f),
            None => f(),
        }
    }
}

impl Failure {
    fn error_type(&self) -> &'static str {
        match self.kind {
            Kind::Timeout | Kind::AttemptTimeout(_) => "timeout",
            Kind::Connect => "connect",
            Kind::BodyTooLarge(_) => "body_too_large",
            Kind::Request | Kind::Config(..) => "request",
            _ => "transport",
        }
    }

    /// What the breaker makes of it: the server's fault unless the request
    /// itself was invalid.
    fn outcome(&self) -> Outcome {
        match self.kind {
            // Our limit, not the server's health.
            Kind::Request | Kind::Config(..) | Kind::BodyTooLarge(_) => Outcome::Ignored,
            _ => Outcome::Failure,
        }
    }

    /// The error as the caller sees it.
    fn into_error(self, method: &Method, url: &Url, attempts: u32) -> Error {
        let (kind, attempt_limit) = match self.kind {
            Kind::AttemptTimeout(limit) => (Kind::Timeout, Some(limit)),
            kind => (kind, None),
        };
        let err = Error::new(kind)
            .with_method(method.clone())
            .with_clean_url(url.clone())
            .with_attempts(attempts);
        match (self.source, attempt_limit) {
            (Some(source), Some(limit)) => {
                err.with_source(Error::new(Kind::AttemptTimeout(limit)).with_source(source))
            }
            (None, Some(limit)) => err.with_source(Error::new(Kind::AttemptTimeout(limit))),
            (Some(source), None) => err.with_source(source),
            (None, None) => err,
        }
    }
}

fn classify(
    result: Result<Response, reqwest::Error>,
    limit: Duration,
    remaining: Duration,
) -> Attempt {
    let e = match result {
        Ok(resp) => return Attempt::Response(resp, None),
        Err(e) => e,
    };
    let (kind, deadline) = if e.is_timeout() {
        // The request's timer is `min(attempt_timeout, remaining)`: it is
        // the call's deadline when the remaining time was the smaller.
        (Kind::AttemptTimeout(limit), limit >= remaining)
    } else if e.is_connect() {
        (Kind::Connect, false)
    } else if e.is_builder() {
        (Kind::Request, false)
    } else {
        (Kind::Transport, false)
    };
    Attempt::Failed(Failure {
        kind,
        source: Some(e.without_url()),
        deadline,
        status: None,
    })
}

/// What the breaker makes of a status (DESIGN.md §2).
fn status_outcome(status: StatusCode) -> Outcome {
    if status.is_success() || status.is_redirection() {
        Outcome::Success
    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Outcome::Failure
    } else {
        Outcome::Ignored
    }
}

/// What the retry loop does after an attempt.
enum Next {
    /// Return the attempt's result.
    Return(&'static str),
    /// Retry after this wait.
    Retry(Duration),
    /// The breaker opened: stop with a circuit-open error.
    CircuitOpen(crate::CircuitOpen),
    /// The budget refused the retry.
    BudgetExhausted,
}

// Integer attributes are recorded as `i64`: `tracing-opentelemetry` turns
// an unsigned field into a string through `Debug` formatting, which is
// both slower and the wrong type for the OpenTelemetry conventions.
macro_rules! attempt_span {
    ($parent:expr, $name:literal, $method:expr, $url:expr) => {
        match $parent {
            Some(parent) => tracing::info_span!(
                target: "svc_httpclient",
                parent: parent,
                $name,
                "otel.kind" = "client",
                "otel.name" = $method.as_str(),
                "otel.status_code" = Empty,
                "http.request.method" = $method.as_str(),
                "server.address" = $url.host_str().unwrap_or_default(),
                "server.port" = i64::from($url.port_or_known_default().unwrap_or_default()),
                "url.full" = &*svc_discovery::url_full($url),
                "http.response.status_code" = Empty,
                "http.request.resend_count" = Empty,
                "error.type" = Empty,
            ),
            None => tracing::info_span!(
                target: "svc_httpclient",
                $name,
                "otel.kind" = "client",
                "otel.name" = $method.as_str(),
                "otel.status_code" = Empty,
                "http.request.method" = $method.as_str(),
                "server.address" = $url.host_str().unwrap_or_default(),
                "server.port" = i64::from($url.port_or_known_default().unwrap_or_default()),
                "url.full" = &*svc_discovery::url_full($url),
                "http.response.status_code" = Empty,
                "http.request.resend_count" = Empty,
                "error.type" = Empty,
            ),
        }
    };
}

/// One client span per attempt (OpenTelemetry HTTP client conventions),
/// a child of `parent` when it is given and enabled, else of the caller's
/// current span.
fn attempt_span(parent: Option<&Span>, method: &Method, url: &Url, resend_count: u32) -> Span {
    let parent = parent.and_then(Span::id);
    let parent = parent.as_ref();
    let span = match *method {
        Method::GET => attempt_span!(parent, "HTTP GET", method, url),
        Method::POST => attempt_span!(parent, "HTTP POST", method, url),
        Method::PUT => attempt_span!(parent, "HTTP PUT", method, url),
        Method::DELETE => attempt_span!(parent, "HTTP DELETE", method, url),
        Method::PATCH => attempt_span!(parent, "HTTP PATCH", method, url),
        Method::HEAD => attempt_span!(parent, "HTTP HEAD", method, url),
        _ => attempt_span!(parent, "HTTP", method, url),
    };
    if resend_count > 0 {
        span.record("http.request.resend_count", i64::from(resend_count));
    }
    span
}

/// Polls `fut` inside `span`, as `fut.instrument(span)` does, but borrows
/// the span: no clone of the span (a subscriber call to clone and another
/// to close it) and no entering of the span to drop the finished future.
/// With an OpenTelemetry layer every enter and exit of a span costs about
/// as much as a small allocation-heavy function, once per poll.
pub(crate) async fn in_span<F: Future>(span: &Span, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        let _entered = span.enter();
        fut.as_mut().poll(cx)
    })
    .await
}

impl Client {
    /// The whole call: deadline, retry loop, breaker, attempts. The attempt
    /// spans and the call's events are children of `parent` when given
    /// (it need not be entered), else of the current span.
    pub(crate) async fn run(
        &self,
        request: reqwest::Request,
        opts: CallOptions,
        parent: Option<&Span>,
    ) -> Result<(Response, Option<Bytes>), Error> {
        let result = self.run_attempts(request, opts, parent).await;
        if let Err(err) = &result
            && err.attempts() == 0
        {
            // Nothing was sent (open circuit, deadline already passed): the
            // call completed without I/O, so without ever returning
            // `Pending`. Charge tokio's cooperative budget as tokio's own
            // primitives do, so a caller looping on the rejection yields
            // to the other tasks of its worker (timers included).
            tokio::task::coop::consume_budget().await;
        }
        result
    }

    async fn run_attempts(
        &self,
        mut request: reqwest::Request,
        opts: CallOptions,
        parent: Option<&Span>,
    ) -> Result<(Response, Option<Bytes>), Error> {
        let scope = Scope(parent);
        let config = &self.inner.config;
        let start = Instant::now();
        let timeout = opts.timeout.unwrap_or(config.get_timeout());
        let deadline = start
            .checked_add(timeout)
            .unwrap_or_else(|| start + Duration::from_secs(60 * 60 * 24 * 365));
        self.prepare(&mut request);
        let method = request.method().clone();
        let url = svc_discovery::strip_userinfo(request.url()).into_owned();
        if let Some(missing) = &self.inner.roots_missing
            && url.scheme() == "https"
        {
            let err = Error::new(Kind::TlsRoots)
                .with_method(method)
                .with_clean_url(url)
                .with_source(RootsMissing::clone(missing));
            return Err(self.failed_without_origin(err, scope));
        }
        let origin = self.origin(request.url(), start);
        let replay = replay_allowed(&method, request.headers(), opts.retry_unsafe);
        let replayable_body = request.body().is_none_or(|b| b.as_bytes().is_some());
        let max_attempts = if replayable_body {
            opts.max_retries
                .unwrap_or(config.get_max_retries())
                .saturating_add(1)
        } else {
            1
        };
        if let Some(budget) = &origin.budget {
            budget.deposit();
        }

        let mut template = Some(request);
        let mut sent: u32 = 0;
        let mut last_status: Option<StatusCode> = None;
        loop {
            let permit = match &origin.breaker {
                Some(breaker) => match breaker.try_acquire() {
                    Ok(permit) => Some(permit),
                    Err(open) => {
                        let err = Error::new(Kind::CircuitOpen(open))
                            .with_method(method.clone())
                            .with_clean_url(url.clone())
                            .with_attempts(sent)
                            .with_status(last_status);
                        return Err(self.failed(err, &origin, scope));
                    }
                },
                None => None,
            };
            let attempt_start = Instant::now();
            let remaining = deadline.saturating_duration_since(attempt_start);
            if remaining.is_zero() {
                let err = Error::new(Kind::Timeout)
                    .with_method(method.clone())
                    .with_clean_url(url.clone())
                    .with_attempts(sent)
                    .with_status(last_status);
                return Err(self.failed(err, &origin, scope));
            }
            let limit = config.get_attempt_timeout().min(remaining);
            let next_request = if sent + 1 < max_attempts {
                template.as_ref().and_then(reqwest::Request::try_clone)
            } else {
                template.take()
            };
            let Some(mut req) = next_request else {
                // Unreachable: a body that cannot be cloned gets one attempt.
                let err = Error::new(Kind::Request)
                    .with_method(method.clone())
                    .with_clean_url(url.clone())
                    .with_attempts(sent);
                return Err(self.failed(err, &origin, scope));
            };
            // One timer per attempt, reqwest's own: it bounds the attempt
            // from connecting to the end of the response body, so reading
            // the body of the returned response stays within the attempt's
            // limit too. (A second, tokio, timer would double the cost of
            // the pipeline on a healthy call.)
            *req.timeout_mut() = Some(limit);

            let resend_count = sent;
            sent += 1;
            let span = &attempt_span(parent, &method, &url, resend_count);
            let started = AttemptStart {
                resend_count,
                span,
                parent,
            };
            // Everything about the attempt, the observer's end hook
            // included, runs in its last poll, inside the span: no extra
            // enter and exit of the span (costly under OpenTelemetry).
            let (attempt, outcome, next) = in_span(span, async {
                if let Some(observer) = config.get_observer() {
                    observer.on_attempt_start(&mut req, &started);
                }
                let result = self.inner.http.execute(req).await;
                let mut attempt = classify(result, limit, remaining);
                if let Some(limit_bytes) = opts.read_body {
                    attempt = read_within_attempt(attempt, limit_bytes, limit, remaining).await;
                }
                let status = attempt.status();
                let outcome = match &attempt {
                    Attempt::Failed(failure) => failure.outcome(),
                    Attempt::Response(resp, _) => status_outcome(resp.status()),
                };
                if let Some(permit) = permit {
                    permit.record(outcome);
                }
                if status.is_some() {
                    last_status = status;
                }
                let next = self.next_step(&attempt, &origin, replay, sent, max_attempts, deadline);
                let error_type = error_type(&attempt, &status);
                if let Some(status) = status {
                    span.record("http.response.status_code", i64::from(status.as_u16()));
                }
                if let Some(error_type) = error_type {
                    span.record("error.type", error_type);
                    span.record("otel.status_code", "ERROR");
                }
                if let Some(observer) = config.get_observer() {
                    observer.on_attempt_end(&AttemptEnd {
                        method: &method,
                        url: &url,
                        resend_count,
                        status,
                        error_type,
                        duration: attempt_start.elapsed(),
                        outcome,
                        will_retry: matches!(next, Next::Retry(_)),
                    });
                }
                (attempt, outcome, next)
            })
            .await;
            let status = attempt.status();
            let error_type = error_type(&attempt, &status);

            match (next, attempt) {
                (Next::Retry(wait), attempt) => {
                    scope.in_scope(|| {
                        tracing::debug!(
                            target: "svc_httpclient",
                            method = %method,
                            url = %svc_discovery::Redacted::new(&url),
                            attempt = sent,
                            reason = error_type.unwrap_or("unknown"),
                            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            "retrying request",
                        );
                    });
                    // Release the connection before sleeping.
                    drop(attempt);
                    tokio::time::sleep(wait).await;
                }
                (Next::Return(why), Attempt::Response(resp, body)) => {
                    if outcome == Outcome::Failure {
                        self.log_failed_response(scope, &method, &url, sent, resp.status(), why);
                    }
                    return Ok((resp, body));
                }
                (Next::Return(_), Attempt::Failed(failure)) => {
                    let err = failure
                        .into_error(&method, &url, sent)
                        .with_status(last_status);
                    return Err(self.failed(err, &origin, scope));
                }
                (Next::CircuitOpen(open), attempt) => {
                    let mut err = Error::new(Kind::CircuitOpen(open))
                        .with_method(method.clone())
                        .with_clean_url(url.clone())
                        .with_attempts(sent)
                        .with_status(last_status);
                    // The last failure is the cause, so `is_timeout()` or
                    // `is_connect()` answer for it too.
                    if let Attempt::Failed(failure) = attempt {
                        err = err.with_source(failure.into_error(&method, &url, sent));
                    }
                    return Err(self.failed(err, &origin, scope));
                }
                (Next::BudgetExhausted, Attempt::Response(resp, body)) => {
                    self.log_failed_response(
                        scope,
                        &method,
                        &url,
                        sent,
                        resp.status(),
                        "retry budget exhausted",
                    );
                    return Ok((resp, body));
                }
                (Next::BudgetExhausted, Attempt::Failed(failure)) => {
                    let source = failure.into_error(&method, &url, sent);
                    let err = Error::new(Kind::BudgetExhausted)
                        .with_method(method.clone())
                        .with_clean_url(url.clone())
                        .with_attempts(sent)
                        .with_status(last_status)
                        .with_source(source);
                    return Err(self.failed(err, &origin, scope));
                }
            }
        }
    }

    /// Decides whether and when to retry after `attempt`.
    fn next_step(
        &self,
        attempt: &Attempt,
        origin: &Origin,
        replay: bool,
        sent: u32,
        max_attempts: u32,
        deadline: Instant,
    ) -> Next {
        let config = &self.inner.config;
        let retryable = match attempt {
            Attempt::Response(resp, _) => replay && config.is_retry_status(resp.status()),
            // Nothing was sent: safe to retry whatever the method.
            Attempt::Failed(f) if matches!(f.kind, Kind::Connect) => true,
            Attempt::Failed(f) => {
                replay
                    && !f.deadline
                    && matches!(
                        f.kind,
                        Kind::Timeout | Kind::AttemptTimeout(_) | Kind::Transport | Kind::Body
                    )
            }
        };
        if !retryable {
            return Next::Return("not retryable");
        }
        if sent >= max_attempts {
            return Next::Return("retries exhausted");
        }
        let mut wait = config.get_backoff().delay(sent - 1);
        if let Attempt::Response(resp, _) = attempt
            && honours_retry_after(resp.status())
            && let Some(retry_after) = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
        {
            wait = wait.max(retry_after.min(config.get_max_retry_after()));
        }
        if Instant::now()
            .checked_add(wait)
            .is_none_or(|at| at >= deadline)
        {
            return Next::Return("the wait would pass the deadline");
        }
        if let Some(breaker) = &origin.breaker
            && breaker.state() == State::Open
        {
            match breaker.try_acquire() {
                Err(open) => return Next::CircuitOpen(open),
                // It just turned half-open: leave the trial to the retry.
                Ok(permit) => drop(permit),
            }
        }
        if let Some(budget) = &origin.budget
            && !budget.withdraw()
        {
            return Next::BudgetExhausted;
        }
        Next::Retry(wait)
    }

    /// As [`failed`](Client::failed), for a call that never got to its
    /// origin's state.
    fn failed_without_origin(&self, err: Error, scope: Scope<'_>) -> Error {
        if self.inner.config.get_log_failures() {
            scope.in_scope(|| {
                tracing::warn!(
                    target: "svc_httpclient",
                    method = err.inner_method().map(Method::as_str).unwrap_or_default(),
                    url = err.url().map(svc_discovery::redact).unwrap_or_default(),
                    cause = %chain_to_string(&err),
                    "http call failed",
                );
            });
        }
        err
    }

    /// Logs the failed call once (unless `log_failures` is off), and hands
    /// its error back.
    fn failed(&self, err: Error, origin: &Origin, scope: Scope<'_>) -> Error {
        if !self.inner.config.get_log_failures() {
            return err;
        }
        scope.in_scope(|| {
            tracing::warn!(
                target: "svc_httpclient",
                method = err.inner_method().map(Method::as_str).unwrap_or_default(),
                url = err.url().map(svc_discovery::redact).unwrap_or_default(),
                origin = &*origin.key,
                attempts = err.attempts(),
                cause = %chain_to_string(&err),
                "http call failed",
            );
        });
        err
    }

    fn log_failed_response(
        &self,
        scope: Scope<'_>,
        method: &Method,
        url: &Url,
        attempts: u32,
        status: StatusCode,
        why: &str,
    ) {
        if !self.inner.config.get_log_failures() {
            return;
        }
        scope.in_scope(|| {
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
