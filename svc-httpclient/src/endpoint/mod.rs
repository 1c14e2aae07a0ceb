//! Many endpoints (replicas) behind one origin: the set, the choice of an
//! endpoint for each attempt, outlier ejection, and re-resolution.
//!
//! ```text
//! origin (scheme, host, port) ── service breaker, retry budget
//!   └─ EndpointSet (when the origin has several endpoints)
//!        ├─ balance: P2C over peak EWMA × (in-flight + 1)   (balance.rs)
//!        ├─ eject: consecutive failures, growing periods      (eject.rs)
//!        └─ resolve: a host name's addresses, re-resolved     (resolve.rs)
//! ```
//!
//! An origin without several endpoints has no set, and its attempts take
//! exactly the path they took before sets existed. A host name that
//! resolves to one address has a set that is not `balanced`: its attempts
//! check one flag and go as before.
//!
//! Each endpoint is reached in one of two ways:
//!
//! - an entry of a list of base URLs (`{NAME}_URL=http://a:1,http://b:1`)
//!   is its own URL: the attempt's scheme, host and port are replaced by the
//!   endpoint's, so it gets the `Host` header, certificate name and pooled
//!   connections of that URL;
//! - an address of a host name keeps the URL (and so the `Host` header, SNI
//!   and certificate checks on the name) and gets a connection pool of its
//!   own that connects to that address (`ClientBuilder::resolve`). That
//!   needs a pool the client builds itself: with a caller's pool
//!   ([`Client::with_http_client`](crate::Client::with_http_client)) a host
//!   name stays one endpoint, resolved by that pool.

mod balance;
pub(crate) mod config;
mod eject;
pub(crate) mod resolve;

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use crate::Outcome;
use balance::PeakEwma;
pub(crate) use config::EndpointsConfig;

/// The endpoints of one origin.
pub(crate) struct EndpointSet {
    /// The origin's key, for logs.
    origin: Box<str>,
    /// The host name resolved again, when the set comes from DNS.
    dns: Option<Dns>,
    current: RwLock<Arc<[Arc<Endpoint>]>>,
    /// `current` is used: it is not the origin's URL alone.
    balanced: AtomicBool,
    /// The first resolution was started (or there is none to start).
    refreshing: AtomicBool,
    pub(crate) config: EndpointsConfig,
    /// The origin of the nanosecond clock of `Endpoint::ejected_until`.
    epoch: Instant,
    /// Held while deciding an ejection, so that two at once cannot pass
    /// the cap together.
    eject_lock: Mutex<()>,
}

/// A host name whose addresses are the endpoints.
struct Dns {
    host: String,
    port: u16,
    /// The URL's origin (for the endpoint that stands for the name).
    url: Url,
    /// The pool has no root certificates (`https` fails anyway).
    no_roots: bool,
}

/// One endpoint and its live state.
pub(crate) struct Endpoint {
    /// `host:port` (the address for one from DNS), for logs, metrics and
    /// spans.
    pub(crate) label: Box<str>,
    target: Target,
    /// `network.peer.address`, when known before connecting.
    peer: Option<Box<str>>,
    in_flight: AtomicU32,
    failures_in_row: AtomicU32,
    /// Nanoseconds since the set's epoch; 0: not ejected.
    ejected_until: AtomicU64,
    stats: Mutex<Stats>,
}

enum Target {
    /// The origin's own URL, as without a set.
    Origin,
    /// Another base URL of the list: scheme, host and port replaced.
    Url(Url),
    /// An address of the host name, with a pool connecting to it.
    Pinned {
        addr: SocketAddr,
        http: reqwest::Client,
    },
}

struct Stats {
    rtt: PeakEwma,
    requests: u64,
    failures: u64,
    /// The current ejection multiplier, and how many ejections in all.
    multiplier: u32,
    times_ejected: u32,
    returned_at: Option<Instant>,
}

/// The state of one endpoint, for `/debug` pages and tests
/// ([`Client::endpoints`](crate::Client::endpoints)).
///
/// ```
/// # async fn run(client: svc_httpclient::Client, url: svc_httpclient::reqwest::Url) {
/// for endpoint in client.endpoints(&url) {
///     println!(
///         "{} ejected={:?} in_flight={} latency={:?}",
///         endpoint.address, endpoint.ejected_for, endpoint.in_flight, endpoint.latency,
///     );
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EndpointState {
    /// `host:port` of the endpoint: its address when it comes from a host
    /// name's resolution, else the host and port of its URL.
    pub address: String,
    /// The endpoint's origin (`scheme://host:port/`; for an address of a
    /// host name, the name's).
    pub url: Url,
    /// How long it stays ejected, if it is.
    pub ejected_for: Option<Duration>,
    /// How many times it was ejected.
    pub times_ejected: u32,
    /// Failures in a row, since its last success.
    pub consecutive_failures: u32,
    /// Attempts in flight.
    pub in_flight: u32,
    /// The peak-EWMA latency estimate.
    pub latency: Duration,
    /// Attempts it served.
    pub requests: u64,
    /// Attempts that failed (the breaker's classification).
    pub failures: u64,
}

/// What an attempt's end did to its endpoint.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Verdict {
    /// A failure while another endpoint is healthy: the service as a whole
    /// is not failing, so the service breaker does not count it.
    pub(crate) absorbed: bool,
    /// The failure ejected the endpoint.
    pub(crate) ejected: bool,
}

/// An endpoint chosen for one attempt, counted in flight until it is
/// dropped (the attempt ended, [`Picked::end`], or was cancelled). One
/// pointer: it is part of every balanced call's future.
pub(crate) struct Picked {
    pub(crate) endpoint: Arc<Endpoint>,
}

// ===== impl EndpointSet =====

impl EndpointSet {
    /// A set over a list of base URLs (two or more).
    pub(crate) fn from_urls(origin: &str, urls: &[Url], config: EndpointsConfig) -> EndpointSet {
        let now = Instant::now();
        let endpoints: Vec<Arc<Endpoint>> = urls
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let target = if i == 0 {
                    Target::Origin
                } else {
                    Target::Url(url.clone())
                };
                Arc::new(Endpoint::new(
                    url_label(url),
                    target,
                    url.host_str()
                        .filter(|_| {
                            matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)))
                        })
                        .map(|h| h.trim_matches(['[', ']']).into()),
                    PeakEwma::new(config.default_rtt, now),
                ))
            })
            .collect();
        EndpointSet::new(origin, None, endpoints, config, true)
    }

    /// A set over the addresses of `url`'s host name: one endpoint (the
    /// name itself) until the first resolution.
    pub(crate) fn from_host(
        origin: &str,
        url: &Url,
        config: EndpointsConfig,
        no_roots: bool,
    ) -> Option<EndpointSet> {
        let Some(url::Host::Domain(host)) = url.host() else {
            return None;
        };
        let port = url.port_or_known_default()?;
        let mut base = url.clone();
        base.set_path("/");
        base.set_query(None);
        let dns = Dns {
            host: host.to_owned(),
            port,
            url: base,
            no_roots,
        };
        let only = Arc::new(Endpoint::new(
            url_label(url),
            Target::Origin,
            None,
            PeakEwma::new(config.default_rtt, Instant::now()),
        ));
        Some(EndpointSet::new(
            origin,
            Some(dns),
            vec![only],
            config,
            false,
        ))
    }

    fn new(
        origin: &str,
        dns: Option<Dns>,
        endpoints: Vec<Arc<Endpoint>>,
        config: EndpointsConfig,
        balanced: bool,
    ) -> EndpointSet {
        let refreshing = dns.is_none();
        EndpointSet {
            origin: origin.into(),
            dns,
            current: RwLock::new(endpoints.into()),
            balanced: AtomicBool::new(balanced),
            refreshing: AtomicBool::new(refreshing),
            config,
            epoch: Instant::now(),
            eject_lock: Mutex::new(()),
        }
    }

    fn snapshot(&self) -> Arc<[Arc<Endpoint>]> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The endpoint for the next attempt, `None` when the origin's URL is
    /// used as is (one endpoint). `avoid` is the endpoint whose failure
    /// the attempt retries: another is preferred when one may serve.
    pub(crate) fn pick(&self, avoid: Option<&Endpoint>, now: Instant) -> Option<Picked> {
        if !self.balanced.load(Ordering::Relaxed) {
            return None;
        }
        let endpoints = self.snapshot();
        let now_ns = self.nanos(now);
        self.return_expired(&endpoints, now, now_ns);
        let serving = |e: &Endpoint| !e.is_ejected(now_ns);
        let avoided = |e: &Endpoint| avoid.is_some_and(|a| std::ptr::eq(a, e));
        let preferred = |e: &Endpoint| serving(e) && !avoided(e);
        let count = |f: &dyn Fn(&Endpoint) -> bool| endpoints.iter().filter(|e| f(e)).count();
        let (filter, n): (&dyn Fn(&Endpoint) -> bool, usize) = match count(&preferred) {
            0 => match count(&serving) {
                0 => (&|_| true, endpoints.len()),
                n => (&serving, n),
            },
            n => (&preferred, n),
        };
        let nth = |i: usize| {
            endpoints
                .iter()
                .filter(|e| filter(e))
                .nth(i)
                .expect("fewer than n candidates")
        };
        let chosen = if n == 1 {
            nth(0)
        } else {
            let (a, b) = balance::two_of(n);
            let (a, b) = (nth(a), nth(b));
            if b.cost(now, self.config.decay) < a.cost(now, self.config.decay) {
                b
            } else {
                a
            }
        };
        chosen.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Picked {
            endpoint: Arc::clone(chosen),
        })
    }

    /// Whether this call should resolve the host name first: the first
    /// call to a set from DNS does (the others go to the name meanwhile).
    pub(crate) fn resolves_first(&self) -> bool {
        !self.refreshing.load(Ordering::Relaxed) && !self.refreshing.swap(true, Ordering::Relaxed)
    }

    /// The first resolution (waited for at most `within`, the call's
    /// remaining time), then the background task that repeats it, spawned
    /// on the current runtime. A resolution that takes longer goes on in
    /// the task, and the calls go to the name meanwhile. Without a runtime,
    /// or when the call is dropped first, the next call starts again.
    pub(crate) async fn first_refresh(self: Arc<Self>, within: Duration) {
        /// Lets the next call start again unless `done`.
        struct Again<'a>(&'a AtomicBool, bool);
        impl Drop for Again<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    self.0.store(false, Ordering::Relaxed);
                }
            }
        }
        let mut again = Again(&self.refreshing, false);
        let resolved = tokio::time::timeout(within, self.refresh()).await.is_ok();
        again.1 = resolve::spawn_refresh(&self, !resolved);
    }

    /// Every endpoint's state.
    pub(crate) fn states(&self) -> Vec<EndpointState> {
        let now = Instant::now();
        let now_ns = self.nanos(now);
        let base = self.dns.as_ref().map(|d| &d.url);
        self.snapshot()
            .iter()
            .map(|e| e.state(now, now_ns, self.config.decay, base))
            .collect()
    }

    /// Resolves the host name now and applies the answer; the number of
    /// endpoints after it. A set that does not come from DNS is left as is.
    pub(crate) async fn refresh(&self) -> usize {
        let Some(dns) = &self.dns else {
            return self.snapshot().len();
        };
        let interval = self.config.refresh_interval;
        let answer =
            tokio::time::timeout(interval, self.config.resolver.resolve(&dns.host, dns.port)).await;
        match answer {
            Ok(Ok(addrs)) => self.apply(dns, addrs),
            Ok(Err(e)) => {
                tracing::warn!(
                    target: "svc_httpclient",
                    origin = &*self.origin,
                    host = dns.host.as_str(),
                    error = %e,
                    endpoints = self.snapshot().len(),
                    "resolving endpoints failed; keeping the last good set",
                );
            }
            Err(_) => {
                tracing::warn!(
                    target: "svc_httpclient",
                    origin = &*self.origin,
                    host = dns.host.as_str(),
                    timeout_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
                    endpoints = self.snapshot().len(),
                    "resolving endpoints timed out; keeping the last good set",
                );
            }
        }
        self.snapshot().len()
    }

    /// Applies a resolver's answer: one endpoint per distinct address,
    /// keeping the state of those already known.
    fn apply(&self, dns: &Dns, mut addrs: Vec<SocketAddr>) {
        for addr in &mut addrs {
            addr.set_port(dns.port);
        }
        addrs.sort_unstable();
        addrs.dedup();
        let old = self.snapshot();
        if addrs.is_empty() {
            tracing::warn!(
                target: "svc_httpclient",
                origin = &*self.origin,
                host = dns.host.as_str(),
                endpoints = old.len(),
                "the resolver found no address; keeping the last good set",
            );
            return;
        }
        let known = |addr: &SocketAddr| {
            old.iter()
                .find(|e| matches!(e.target, Target::Pinned { addr: a, .. } if a == *addr))
        };
        // One address is the name itself, left to the pool as without a
        // set, unless the caller resolves names its own way.
        // So is a name of this machine only (`localhost`: 127.0.0.1 and
        // ::1 are one server, listening on one of them or both).
        let by_name = !self.config.custom_resolver
            && (addrs.len() == 1 || addrs.iter().all(|a| a.ip().is_loopback()));
        let unchanged = if by_name {
            old.len() == 1 && matches!(old[0].target, Target::Origin)
        } else {
            old.len() == addrs.len() && addrs.iter().all(|a| known(a).is_some())
        };
        if unchanged {
            return;
        }
        let now = Instant::now();
        let next: Vec<Arc<Endpoint>> = if by_name {
            // One address: the name itself, as without a set.
            vec![Arc::new(Endpoint::new(
                url_label(&dns.url),
                Target::Origin,
                None,
                PeakEwma::new(self.config.default_rtt, now),
            ))]
        } else {
            let start = self.lowest_estimate(&old, now);
            addrs
                .iter()
                .filter_map(|addr| match known(addr) {
                    Some(endpoint) => Some(Arc::clone(endpoint)),
                    None => match pinned_pool(&dns.host, *addr, dns.no_roots) {
                        Ok(http) => Some(Arc::new(Endpoint::new(
                            addr.to_string().into(),
                            Target::Pinned { addr: *addr, http },
                            Some(addr.ip().to_string().into()),
                            PeakEwma::new(Duration::from_nanos(start as u64), now),
                        ))),
                        Err(e) => {
                            tracing::warn!(
                                target: "svc_httpclient",
                                origin = &*self.origin,
                                endpoint = %addr,
                                error = %e,
                                "could not build the connection pool of an endpoint; skipping it",
                            );
                            None
                        }
                    },
                })
                .collect()
        };
        if next.is_empty() {
            return;
        }
        let added = next
            .iter()
            .filter(|e| !old.iter().any(|o| Arc::ptr_eq(o, e)))
            .count();
        let removed = old
            .iter()
            .filter(|o| !next.iter().any(|e| Arc::ptr_eq(o, e)))
            .count();
        tracing::info!(
            target: "svc_httpclient",
            origin = &*self.origin,
            host = dns.host.as_str(),
            endpoints = next.len(),
            added,
            removed,
            "endpoints changed",
        );
        let balanced = !by_name;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next.into();
        self.balanced.store(balanced, Ordering::Relaxed);
    }

    /// The lowest latency estimate of the endpoints that serve, for one
    /// that joins or comes back: it starts as a peer, so it gets traffic
    /// and is measured, rather than as a stranger that loses every
    /// comparison. The default when there is none.
    fn lowest_estimate(&self, endpoints: &[Arc<Endpoint>], now: Instant) -> f64 {
        let now_ns = self.nanos(now);
        endpoints
            .iter()
            .filter(|e| !e.is_ejected(now_ns))
            .map(|e| e.lock().rtt.estimate(now, self.config.decay))
            .reduce(f64::min)
            .unwrap_or(self.config.default_rtt.as_nanos() as f64)
            .max(1.0)
    }
}

impl fmt::Debug for EndpointSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointSet")
            .field("origin", &self.origin)
            .field("endpoints", &self.snapshot().len())
            .finish_non_exhaustive()
    }
}

/// A pool of its own that connects to `addr` for `host`: the URL, the
/// `Host` header, SNI and the certificate check keep the name.
fn pinned_pool(
    host: &str,
    addr: SocketAddr,
    no_roots: bool,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(host, addr);
    if no_roots {
        builder = builder.tls_certs_only(Vec::new());
    }
    builder.build()
}

/// `host:port` of a URL.
fn url_label(url: &Url) -> Box<str> {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}").into(),
        None => host.into(),
    }
}

// ===== impl Endpoint =====

impl Endpoint {
    fn new(label: Box<str>, target: Target, peer: Option<Box<str>>, rtt: PeakEwma) -> Endpoint {
        Endpoint {
            label,
            target,
            peer,
            in_flight: AtomicU32::new(0),
            failures_in_row: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            stats: Mutex::new(Stats {
                rtt,
                requests: 0,
                failures: 0,
                multiplier: 0,
                times_ejected: 0,
                returned_at: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_ejected(&self, now_ns: u64) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && until > now_ns
    }

    fn cost(&self, now: Instant, decay: Duration) -> f64 {
        let estimate = self.lock().rtt.estimate(now, decay);
        balance::cost(estimate, self.in_flight.load(Ordering::Relaxed))
    }

    /// Sends `request` to this endpoint.
    pub(crate) fn apply(&self, request: &mut reqwest::Request) {
        if let Target::Url(url) = &self.target {
            retarget(request.url_mut(), url);
        }
    }

    /// The URL an attempt to this endpoint requests, for its span.
    pub(crate) fn url<'u>(&self, url: &'u Url) -> Cow<'u, Url> {
        match &self.target {
            Target::Url(target) => {
                let mut url = url.clone();
                retarget(&mut url, target);
                Cow::Owned(url)
            }
            Target::Origin | Target::Pinned { .. } => Cow::Borrowed(url),
        }
    }

    /// The pool of this endpoint, when it has its own.
    pub(crate) fn http(&self) -> Option<&reqwest::Client> {
        match &self.target {
            Target::Pinned { http, .. } => Some(http),
            Target::Origin | Target::Url(_) => None,
        }
    }

    /// Its `network.peer.address`, when known before connecting.
    pub(crate) fn peer(&self) -> Option<&str> {
        self.peer.as_deref()
    }

    fn state(
        &self,
        now: Instant,
        now_ns: u64,
        decay: Duration,
        base: Option<&Url>,
    ) -> EndpointState {
        let stats = self.lock();
        let until = self.ejected_until.load(Ordering::Relaxed);
        let url = match (&self.target, base) {
            (Target::Url(url), _) => origin_of(url),
            (_, Some(base)) => base.clone(),
            (_, None) => Url::parse(&format!("http://{}/", self.label))
                .unwrap_or_else(|_| Url::parse("http://invalid/").expect("a valid url")),
        };
        EndpointState {
            address: self.label.to_string(),
            url,
            ejected_for: (until != 0 && until > now_ns)
                .then(|| Duration::from_nanos(until - now_ns)),
            times_ejected: stats.times_ejected,
            consecutive_failures: self.failures_in_row.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            latency: Duration::from_nanos(stats.rtt.estimate(now, decay) as u64),
            requests: stats.requests,
            failures: stats.failures,
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.label)
            .finish_non_exhaustive()
    }
}

/// `url` with `target`'s scheme, host and port.
fn retarget(url: &mut Url, target: &Url) {
    if url.scheme() != target.scheme() {
        let _ = url.set_scheme(target.scheme());
    }
    let _ = url.set_host(target.host_str());
    let _ = url.set_port(target.port());
}

/// `scheme://host:port/` of a URL, without credentials.
fn origin_of(url: &Url) -> Url {
    let mut origin = svc_discovery::strip_userinfo(url).into_owned();
    origin.set_path("/");
    origin.set_query(None);
    origin.set_fragment(None);
    origin
}

// ===== impl Picked =====

impl Picked {
    /// Records how the attempt ended (`outcome`, after `rtt`) in `set`, the
    /// set it was picked from.
    pub(crate) fn end(
        self,
        set: &EndpointSet,
        outcome: Outcome,
        rtt: Duration,
    ) -> (Verdict, Arc<Endpoint>) {
        let verdict = set.record(&self.endpoint, outcome, rtt, Instant::now());
        (verdict, Arc::clone(&self.endpoint))
    }
}

impl Drop for Picked {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
