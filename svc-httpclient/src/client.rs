//! The client: its constructors, its connection pool, and the state it
//! shares between clones (the configuration and the per-origin map).
//!
//! A call goes through [`crate::call`]; this module only prepares the
//! request (default headers, credentials moved out of the URL, a generated
//! idempotency key) and hands it over.
//!
//! Redirects are not followed (`redirect::Policy::none()`): a 3xx is
//! returned to the caller and counts as a success. Following a redirect to
//! another origin would charge that origin's outcome to this origin's
//! breaker, and services rarely redirect each other. A client given through
//! [`Client::with_http_client`] keeps its own redirect policy.

use std::fmt;
use std::sync::Arc;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{IntoUrl, Method, Response};
use tokio::time::Instant;
use tracing::Span;
use url::Url;

use crate::config::{Config, is_sensitive_header};
use crate::endpoint::{EndpointSet, EndpointState};
use crate::error::{Error, error_chain};
use crate::origin::{Origin, Origins};
use crate::request::{CallOptions, RequestBuilder};
use crate::retry::IDEMPOTENCY_KEY;
use crate::{CircuitBreaker, State};

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
    origins: Origins,
    /// The pool was built without root certificates, because the machine
    /// has none: `https` calls fail at once with this as their cause.
    roots_missing: Option<Arc<RootsMissing>>,
    /// The pool is the client's own (not a caller's): endpoints from a host
    /// name's addresses may get pools of their own.
    own_pool: bool,
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
            format!("could not be built: {}", error_chain(&first)),
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
        Client::build(config, http, roots_missing, true)
    }

    /// A client with `config` sharing this client's connection pool (the
    /// cheap way to give each sibling its own settings), and what it found
    /// out about the machine's root certificates.
    pub fn with_config(&self, config: Config) -> Result<Client, Error> {
        Client::build(
            config,
            self.inner.http.clone(),
            self.inner.roots_missing.clone(),
            self.inner.own_pool,
        )
    }

    /// A client sending through `http`, to share one connection pool
    /// between clients. `http` keeps its own redirect policy and TLS
    /// settings; its own timeouts apply inside each attempt.
    ///
    /// A host name given to [`Client::balance`] stays one endpoint with
    /// such a client: a `reqwest::Client` cannot be copied with another
    /// resolver, so the client cannot give each address of the name a pool
    /// that connects there while checking the certificate of the name.
    /// Lists of base URLs are balanced as with any client.
    pub fn with_http_client(config: Config, http: reqwest::Client) -> Result<Client, Error> {
        Client::build(config, http, None, false)
    }

    fn build(
        config: Config,
        http: reqwest::Client,
        roots_missing: Option<Arc<RootsMissing>>,
        own_pool: bool,
    ) -> Result<Client, Error> {
        config.validate()?;
        let breaker = config.origin_breaker();
        if let Some(breaker) = &breaker {
            breaker
                .validate()
                .map_err(|e| Error::config("circuit_breaker", e.to_string()).with_source(e))?;
        }
        Ok(Client {
            inner: Arc::new(ClientRef {
                http,
                default_headers: config.effective_default_headers(),
                config,
                origins: Origins::new(breaker),
                roots_missing,
                own_pool,
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
        crate::call::run(self.clone(), Ok(request), opts, None::<Span>)
            .await
            .map(|(resp, _)| resp)
    }

    /// The breaker of `url`'s origin, created if needed; `None` when the
    /// breaker is disabled. The returned breaker shares state with the one
    /// the client uses, and the client keeps that origin for its whole life
    /// (it is never dropped by [`Config::max_origins`]).
    pub fn breaker(&self, url: &Url) -> Option<CircuitBreaker> {
        let origin = self.origin(url, Instant::now());
        origin.pin();
        origin.breaker.clone()
    }

    /// How many origins the client keeps a breaker and a budget for (at
    /// most [`Config::max_origins`], plus those with calls in flight or a
    /// breaker handed out).
    pub fn origin_count(&self) -> usize {
        self.inner.origins.len()
    }

    /// The state of `url`'s origin breaker (`Closed` if no call went there
    /// yet); `None` when the breaker is disabled.
    pub fn circuit_state(&self, url: &Url) -> Option<State> {
        self.inner.origins.state(url)
    }

    /// Spreads the calls to `url`'s origin over `endpoints`, its replicas:
    /// each attempt goes to one of them, chosen by power of two choices
    /// over latency and in-flight attempts, and an endpoint that keeps
    /// failing is ejected for a while ([`EndpointsConfig`](crate::EndpointsConfig)).
    /// The origin keeps one breaker and one retry budget for all of them;
    /// the breaker opens only when the service fails as a whole.
    ///
    /// `endpoints` are base URLs with the scheme of `url` (their paths are
    /// not used: a call keeps its path). `url`'s own origin is always one
    /// of the endpoints (the first), whether `endpoints` lists it or not;
    /// repeated origins count once. An attempt to another one gets its
    /// scheme, host and port, and so its `Host` header, certificate name
    /// and connections.
    ///
    /// With one endpoint whose host is a name (not an IP address), and
    /// [`EndpointsConfig::resolve`](crate::EndpointsConfig::resolve) on,
    /// the name is resolved in the background (first on the first call,
    /// then every `refresh_interval`), and when it has several addresses (a
    /// Kubernetes headless Service) each is an endpoint: the URL, `Host`,
    /// SNI and certificate check keep the name, and each address gets a
    /// connection pool of its own. A name with one address, or an IP
    /// address, is called exactly as without this method.
    ///
    /// The origin is kept for the life of the client. Calling it again for
    /// the same origin changes nothing.
    ///
    /// ```
    /// use svc_httpclient::{Client, Config, reqwest::Url};
    ///
    /// let client = Client::new(Config::default())?;
    /// let urls = svc_discovery::parse_service_urls(
    ///     "AUTH_SVC_URL",
    ///     "http://10.0.0.7:8001,http://10.0.0.8:8001,http://10.0.0.9:8001",
    /// )
    /// .unwrap();
    /// client.balance(&urls[0], &urls)?;
    /// assert_eq!(client.endpoints(&urls[0]).len(), 3);
    /// # Ok::<(), svc_httpclient::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When `endpoints` is empty, or one of them has another scheme than
    /// `url` or no host.
    pub fn balance(&self, url: &Url, endpoints: &[Url]) -> Result<(), Error> {
        if endpoints.is_empty() {
            return Err(Error::config("endpoints", "must list at least one url"));
        }
        if let Some(bad) = endpoints
            .iter()
            .find(|e| e.scheme() != url.scheme() || e.host().is_none())
        {
            return Err(Error::config(
                "endpoints",
                format!(
                    "{} has another scheme than {} or no host",
                    svc_discovery::redact(bad),
                    svc_discovery::redact(url)
                ),
            ));
        }
        let config = &self.inner.config.endpoints;
        let origin = self.origin(url, Instant::now());
        origin.pin();
        if origin.endpoints.get().is_some() {
            return Ok(());
        }
        let mut urls: Vec<Url> = Vec::with_capacity(endpoints.len());
        // The origin's own URL first: it is called as without a set.
        urls.push(url.clone());
        for endpoint in endpoints {
            if crate::origin::origin_key(endpoint) != crate::origin::origin_key(url)
                && !urls
                    .iter()
                    .any(|u| crate::origin::origin_key(u) == crate::origin::origin_key(endpoint))
            {
                urls.push(endpoint.clone());
            }
        }
        let set = if urls.len() >= 2 {
            Some(EndpointSet::from_urls(&origin.key, &urls, config.clone()))
        } else if config.resolve && self.inner.own_pool {
            EndpointSet::from_host(
                &origin.key,
                url,
                config.clone(),
                self.inner.roots_missing.is_some(),
            )
        } else {
            None
        };
        if let Some(set) = set {
            let _ = origin.endpoints.set(Arc::new(set));
        }
        Ok(())
    }

    /// The endpoints of `url`'s origin and their state (address, ejection,
    /// in-flight attempts, latency), for `/debug` pages; empty when the
    /// origin has no set of endpoints ([`Client::balance`]).
    pub fn endpoints(&self, url: &Url) -> Vec<EndpointState> {
        self.inner
            .origins
            .find(url)
            .and_then(|origin| origin.endpoints.get().map(|set| set.states()))
            .unwrap_or_default()
    }

    /// Resolves the host name of `url`'s origin now (when its endpoints
    /// come from one, see [`Client::balance`]) and applies the answer, as
    /// the background task does; the number of endpoints after it, 0 when
    /// the origin has no set. A failed or empty answer keeps the last good
    /// set (and is logged). For startup, to begin with every replica known.
    pub async fn refresh_endpoints(&self, url: &Url) -> usize {
        let Some(set) = self
            .inner
            .origins
            .find(url)
            .and_then(|origin| origin.endpoints.get().cloned())
        else {
            return 0;
        };
        set.refresh().await
    }

    /// The connection pool.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Why `https` calls cannot be made, if the machine has no roots.
    pub(crate) fn roots_missing(&self) -> Option<&RootsMissing> {
        self.inner.roots_missing.as_deref()
    }

    /// `url`'s origin state, created if needed, marked as used at `now`.
    pub(crate) fn origin(&self, url: &Url, now: Instant) -> Arc<Origin> {
        self.inner.origins.get(url, now, &self.inner.config)
    }

    /// Credentials in the URL become a (sensitive) basic `Authorization`
    /// header, as `reqwest::Client::request` does, so they never reach the
    /// connection pool's keys and logs. A request built with
    /// `reqwest::Request::new` keeps them in the URL otherwise.
    ///
    /// Whether the URL is now without credentials (it keeps them only if
    /// reqwest could not rebuild it).
    fn move_credentials(&self, request: &mut reqwest::Request) -> bool {
        let url = request.url();
        if url.username().is_empty() && url.password().is_none() {
            return true;
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
            return true;
        }
        false
    }

    /// Default headers, sensitive marks and a generated idempotency key;
    /// the URL's credentials moved to a header. Whether the URL is now
    /// without credentials ([`Client::move_credentials`]).
    pub(crate) fn prepare(&self, request: &mut reqwest::Request) -> bool {
        let clean = self.move_credentials(request);
        let generate_key = self.inner.config.generate_idempotency_keys
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
        clean
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("origins", &self.inner.origins.len())
            .finish()
    }
}
