//! [`Client`]: one sibling service, found by name, called by path.
//!
//! ```text
//! Client::get(path) ─ join onto the base URL (reject paths that leave it)
//!   └─ span `svc.call` (service, method, path), with `call_span(true)` or
//!      outside any span
//!        └─ svc-httpclient: deadline, retries, budget, breaker
//!             └─ span `HTTP GET` per attempt ─ observer: traceparent, duration metric
//! ```

use std::fmt;
use std::sync::{Arc, OnceLock};

use url::Url;

use crate::config::{ClientConfig, Pool};
use crate::error::Error;
use crate::observe::{FacadeObserver, log_transition};
use crate::paths;
use crate::request::RequestBuilder;
use crate::{CircuitBreaker, Method, Registry, State};

#[cfg(feature = "metrics")]
use crate::metrics::Instruments;

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
/// [`Response::status`](crate::Response::status) or use [`decode_response`](crate::decode_response).
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
    pub(crate) inner: Arc<Shared>,
}

/// What every clone of a [`Client`] shares.
pub(crate) struct Shared {
    pub(crate) service: Arc<str>,
    pub(crate) base_url: Url,
    /// Every base URL of the service (its replicas), `base_url` first.
    pub(crate) endpoints: Box<[Url]>,
    pub(crate) http: svc_httpclient::Client,
    pub(crate) breaker: Option<CircuitBreaker>,
    pub(crate) decode_limit: u64,
    /// Whether each call gets a `svc.call` span ([`ClientConfig::call_span`]).
    pub(crate) call_span: bool,
    /// The pool is the caller's (`http_client`): it may follow a redirect
    /// to another host, so every response's origin is checked.
    pub(crate) check_origin: bool,
    /// [`ClientConfig::propagate_deadline`].
    pub(crate) propagate_deadline: bool,
    /// [`ClientConfig::deadline_margin`].
    pub(crate) deadline_margin: std::time::Duration,
    #[cfg(feature = "metrics")]
    pub(crate) instruments: Instruments,
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
        let endpoints = svc_discovery::endpoints(service).map_err(Error::from)?;
        Client::balanced(service, endpoints, config)
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
        let endpoints = registry.endpoints(service).map_err(Error::from)?;
        Client::balanced(service, endpoints, config)
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
        // Discovery's checks, so a URL given here passes the same ones as
        // `{NAME}_URL`.
        let base_url = svc_discovery::parse_service_url("base_url", base_url.as_str())
            .map_err(Error::base_url)?;
        Client::balanced(service, vec![base_url], config)
    }

    /// A client of the replicas `endpoints` (the first is the base URL):
    /// [`Client::build`], with the calls spread over them and, for one URL
    /// with a host name, over its addresses
    /// ([`svc_httpclient::Client::balance`]).
    fn balanced(service: &str, endpoints: Vec<Url>, config: ClientConfig) -> Result<Client, Error> {
        Client::build_with(service, endpoints, config, true)
    }

    #[cfg(feature = "grpc")]
    pub(crate) fn build(
        service: &str,
        base_url: Url,
        config: ClientConfig,
    ) -> Result<Client, Error> {
        Client::build_with(service, vec![base_url], config, false)
    }

    /// [`Client::build`] over `endpoints` (the base URL first), balanced
    /// over them when `balance` is set.
    fn build_with(
        service: &str,
        endpoints: Vec<Url>,
        config: ClientConfig,
        balance: bool,
    ) -> Result<Client, Error> {
        let Some(base_url) = endpoints.first().cloned() else {
            return Err(Error::config("base_url", "no endpoint"));
        };
        config.validate()?;
        let service: Arc<str> = Arc::from(service);
        let ClientConfig {
            http: http_config,
            decode_limit,
            call_span,
            pool,
            propagate_deadline,
            deadline_margin,
            #[cfg(feature = "metrics")]
            meter,
        } = config;

        #[cfg(feature = "metrics")]
        let instruments = Instruments::new(&service, &base_url, meter.as_ref());

        let http_config = {
            let service = Arc::clone(&service);
            #[cfg(feature = "metrics")]
            let instruments = instruments.clone();
            http_config.on_transition(move |t: &svc_breaker::Transition| {
                #[cfg(feature = "metrics")]
                instruments.record_transition(t.from(), t.to());
                log_transition(&service, t.from(), t.to());
            })
        };
        // The facade logs each failed call once, with the service and the
        // path; the inner client would log it a second time. Its observer
        // is added last, so it is the outermost: it injects the trace
        // context before any observer of the caller sees the request.
        let http_config = http_config
            .peer_service(Arc::clone(&service))
            .log_failures(false)
            .observer(FacadeObserver {
                #[cfg(feature = "metrics")]
                instruments: instruments.clone(),
            });
        // Our pools never follow redirects; a caller's may.
        let check_origin = matches!(pool, Pool::Custom(_));
        let http = match pool {
            Pool::Shared => shared_pool().and_then(|pool| pool.with_config(http_config)),
            Pool::Own => svc_httpclient::Client::new(http_config),
            Pool::Custom(http) => svc_httpclient::Client::with_http_client(http_config, http),
        }
        .map_err(Error::http_config)?;
        let breaker = http.breaker(&base_url);
        if balance {
            http.balance(&base_url, &endpoints)
                .map_err(Error::http_config)?;
        }

        let shared = Arc::new(Shared {
            service,
            endpoints: endpoints.into(),
            base_url,
            http,
            breaker,
            decode_limit,
            call_span,
            check_origin,
            propagate_deadline,
            deadline_margin,
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

    /// The service's replicas and the state of each (address, ejection,
    /// in-flight attempts, latency estimate), for a `/debug` page. Empty
    /// when the service is one endpoint called as it is (one URL with an IP
    /// address, or a host name with one address).
    ///
    /// ```
    /// use svc_client::{Client, ClientConfig, Registry};
    ///
    /// let registry = Registry::from_vars([(
    ///     "AUTH_SVC_URL",
    ///     "http://10.0.0.7:8001,http://10.0.0.8:8001,http://10.0.0.9:8001",
    /// )]);
    /// let auth = Client::from_registry(&registry, "auth-svc", ClientConfig::default())?;
    /// let replicas = auth.endpoints();
    /// assert_eq!(replicas.len(), 3);
    /// assert_eq!(replicas[1].address, "10.0.0.8:8001");
    /// assert!(replicas.iter().all(|r| r.ejected_for.is_none()));
    /// # Ok::<(), svc_client::Error>(())
    /// ```
    pub fn endpoints(&self) -> Vec<svc_httpclient::EndpointState> {
        self.inner.http.endpoints(&self.inner.base_url)
    }

    /// The service's base URL; every path is joined under it. With several
    /// replicas, the first one's: a call's path is joined under it, and its
    /// scheme, host and port are those of the replica that serves the
    /// attempt.
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
        RequestBuilder::new(
            self.clone(),
            method,
            Box::from(first_chars(path, 200)),
            inner,
        )
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
