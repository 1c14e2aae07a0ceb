//! [`Channel`]: a tonic channel to one sibling service, through the
//! facade's breaker, deadline, retries, trace propagation and metrics.
//!
//! ```text
//! Channel::call(request) ─ deadline: min(timeout, the request's grpc-timeout, the served request's deadline - margin)
//!   └─ retry loop: budget, backoff (ClientConfig), replayable body
//!        └─ breaker permit ─ span `gRPC` (package.Service/Method) ─ traceparent, grpc-timeout
//!             └─ tonic::transport::Channel (lazy connect)
//!                  └─ status: head (trailers-only) or ResponseBody (trailers)
//! ```

use std::collections::HashSet;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::time::Instant;
use tonic::Status;
use tonic::transport::{ClientTlsConfig, Endpoint};
use tower_service::Service;
use tracing::Span;
use url::Url;

use super::attempt::{Attempt, Call, End};
use super::body::{REPLAY_LIMIT, Replay, ResponseBody};
use super::{classify, timeout};
use crate::error::{Error, GrpcProblem};
use crate::{Client, ClientConfig, Registry, State};

#[cfg(feature = "metrics")]
use crate::metrics::RpcDuration;

/// A gRPC channel to one sibling service, for any tonic-generated client:
/// discovery, a circuit breaker, a deadline, retries, trace propagation and
/// metrics, configured once with the same [`ClientConfig`] as a
/// [`Client`].
///
/// Cheap to clone; clones share the breaker, the retry budget and the
/// connection. The connection is made on the first call (and remade when
/// it breaks), so creating a channel at startup needs no running service.
///
/// Per call:
///
/// - **Deadline**: `timeout` of the config, or the request's own
///   (`tonic::Request::set_timeout`) when shorter, bounds the whole call,
///   retries included; each attempt gets `min(attempt_timeout, remaining)`,
///   sent to the service as `grpc-timeout` and enforced here, until the
///   response's status arrives. For long-lived streams, give the channel a
///   `timeout` as long as the stream may live. Inside a request with a
///   budget ([`crate::deadline`]), the call also ends by that deadline less
///   [`deadline_margin`](crate::ClientConfig::deadline_margin); with nothing
///   left it fails at once with `DEADLINE_EXCEEDED`
///   ([`Error::is_deadline_exceeded`](crate::Error::is_deadline_exceeded)
///   through [`Error::from_status`](crate::Error::from_status)), without
///   I/O or breaker effect, and an attempt that deadline cuts short is not
///   a breaker failure. The deadline is read when the call is made
///   (`Service::call`) in the caller's task: behind a `tower::buffer`,
///   whose worker task makes the calls, the request's deadline is not seen
///   (set the request's own timeout instead).
/// - **Breaker**: `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`,
///   `INTERNAL`, `UNKNOWN` and transport failures count as failures, `OK`
///   as a success; any other status is the caller's problem and leaves the
///   breaker alone (like a 4xx), and so does a call cancelled before its
///   status arrived. The status is read from the response head when the
///   service answers trailers-only, else from the trailers: a streaming
///   response is counted when the stream ends.
/// - **Open circuit**: the call fails at once with `UNAVAILABLE`, its
///   message naming the service and when to retry, and
///   `grpc-retry-pushback-ms` in its metadata;
///   [`Error::from_status`] gives the facade's error
///   ([`Error::is_circuit_open`], [`Error::retry_after`]).
/// - **Retries** (`max_retries`, backoff and retry budget of the config):
///   a call whose connection could not be made is retried whatever the
///   method, since nothing was sent. A method marked
///   [`idempotent`](Channel::idempotent) is also retried after
///   `UNAVAILABLE`, a transport failure or an attempt timeout, when the
///   status came in the response head and its request body is at most
///   [`REPLAY_LIMIT`](super::REPLAY_LIMIT) bytes.
/// - **Traces**: one client span per attempt under the caller's span
///   (`rpc.*` conventions) and its W3C `traceparent` in the request's
///   metadata.
/// - **Metrics** (feature `metrics`): `rpc.client.duration` per attempt;
///   `svc.client.calls` and the breaker's state and transitions, the same
///   instruments as the HTTP client's.
///
/// `https` URLs use TLS (rustls) with the system's root certificates; for
/// other TLS settings (client certificates, a private CA), build a
/// `tonic::transport::Channel` and hand it over with
/// [`with_transport`](Channel::with_transport).
///
/// # Example
///
/// ```no_run
/// use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
/// use svc_client::grpc::Channel;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // At startup: reads AUTH_SVC_URL, e.g. http://auth-svc:50051.
/// let channel = Channel::new("auth-svc")?.idempotent(["/grpc.health.v1.Health/Check"]);
/// let mut health = HealthClient::new(channel);
///
/// let resp = health.check(HealthCheckRequest::default()).await?;
/// println!("{:?}", resp.into_inner().status());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Channel {
    shared: Arc<Shared>,
    idempotent: Arc<HashSet<Box<str>>>,
    /// The caller's own transport ([`Channel::with_transport`]).
    transport: Option<tonic::transport::Channel>,
}

/// What every clone of a [`Channel`] shares.
pub(crate) struct Shared {
    /// The facade client of the same service and configuration: its
    /// service name, breaker (with the transition log and metrics) and
    /// instruments.
    pub(crate) client: Client,
    /// One per replica (the first is the base URL's).
    endpoints: Vec<Endpoint>,
    /// The connection, made lazily on the first call (tonic spawns its
    /// worker on the runtime of that call): over several replicas, tonic's
    /// balancer.
    transport: OnceLock<tonic::transport::Channel>,
    policy: svc_httpclient::RetryPolicy,
    pub(crate) server_address: Box<str>,
    pub(crate) server_port: u16,
    #[cfg(feature = "metrics")]
    pub(crate) rpc_duration: RpcDuration,
}

// ===== impl Channel =====

impl Channel {
    /// A channel to `service` with the default [`ClientConfig`], its URL
    /// read from the environment (`auth-svc` → `AUTH_SVC_URL`), as
    /// [`Client::new`] does. A list of replicas in the variable
    /// (`http://a:50051,http://b:50051`) is spread over by tonic's balancer
    /// (power of two choices over pending requests, one connection per
    /// replica); the HTTP [`Client`]'s peak-EWMA balancing and outlier
    /// ejection are not applied to gRPC, and the breaker, retries and
    /// metrics see the replicas as one service. A host name is resolved by
    /// tonic's connector, one connection to one of its addresses.
    ///
    /// # Errors
    ///
    /// As [`Client::new`]; [`Error::is_config`] when the URL has a path (a
    /// gRPC service is addressed by scheme, host and port) or its TLS
    /// settings cannot be built (no root certificates for an `https` URL).
    pub fn new(service: &str) -> Result<Channel, Error> {
        Channel::with_config(service, ClientConfig::default())
    }

    /// A channel to `service` with `config`, its URL read from the
    /// environment.
    ///
    /// # Errors
    ///
    /// As [`Channel::new`], and [`Error::is_config`] for an invalid `config`.
    pub fn with_config(service: &str, config: ClientConfig) -> Result<Channel, Error> {
        let replicas = svc_discovery::endpoints(service).map_err(Error::from)?;
        Channel::build(service, replicas, config)
    }

    /// A channel to `service` with `config`, its URL taken from `registry`.
    ///
    /// # Errors
    ///
    /// As [`Channel::with_config`].
    ///
    /// # Example
    ///
    /// ```
    /// use svc_client::{ClientConfig, Registry, grpc::Channel};
    ///
    /// let registry = Registry::from_vars([("AUTH_SVC_URL", "http://127.0.0.1:50051")]);
    /// let channel = Channel::from_registry(&registry, "auth-svc", ClientConfig::default())?;
    /// assert_eq!(channel.service(), "auth-svc");
    ///
    /// let with_path = Registry::from_vars([("AUTH_SVC_URL", "http://127.0.0.1:50051/api")]);
    /// let err = Channel::from_registry(&with_path, "auth-svc", ClientConfig::default()).unwrap_err();
    /// assert!(err.is_config());
    /// # Ok::<(), svc_client::Error>(())
    /// ```
    pub fn from_registry(
        registry: &Registry,
        service: &str,
        config: ClientConfig,
    ) -> Result<Channel, Error> {
        let replicas = registry.endpoints(service).map_err(Error::from)?;
        Channel::build(service, replicas, config)
    }

    /// A channel over `replicas` (discovery's list: one URL or more, the
    /// same scheme and path).
    fn build(service: &str, replicas: Vec<Url>, config: ClientConfig) -> Result<Channel, Error> {
        let Some(base_url) = replicas.first().cloned() else {
            return Err(Error::config("base_url", "no endpoint"));
        };
        if !matches!(base_url.path(), "" | "/") {
            return Err(Error::config(
                "base_url",
                "a gRPC service is addressed by scheme, host and port: remove the path from its URL",
            ));
        }
        let endpoints = replicas
            .iter()
            .map(tonic_endpoint)
            .collect::<Result<Vec<_>, _>>()?;
        let client = Client::build(service, base_url, config)?;
        let url = client.base_url();
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or_default();
        let policy = client.inner.http.retry_policy(url);
        let shared = Shared {
            endpoints,
            transport: OnceLock::new(),
            policy,
            server_address: Box::from(host),
            server_port: port,
            #[cfg(feature = "metrics")]
            rpc_duration: client.inner.instruments.rpc_duration(),
            client,
        };
        Ok(Channel {
            shared: Arc::new(shared),
            idempotent: Arc::new(HashSet::new()),
            transport: None,
        })
    }

    /// Marks `methods` (`/package.Service/Method`, the leading `/`
    /// optional) idempotent: calling them twice does no more than calling
    /// them once, so a call of theirs may be retried after `UNAVAILABLE`, a
    /// transport failure or an attempt timeout, not only when the
    /// connection could not be made. Adds to the methods marked before;
    /// applies to this channel and the clones made from it afterwards.
    ///
    /// ```
    /// # use svc_client::{ClientConfig, Registry, grpc::Channel};
    /// # let registry = Registry::from_vars([("AUTH_SVC_URL", "http://127.0.0.1:50051")]);
    /// let channel = Channel::from_registry(&registry, "auth-svc", ClientConfig::default())?
    ///     .idempotent(["/grpc.health.v1.Health/Check", "auth.v1.Users/Get"]);
    /// assert!(channel.is_idempotent("/auth.v1.Users/Get"));
    /// assert!(!channel.is_idempotent("/auth.v1.Users/Delete"));
    /// # Ok::<(), svc_client::Error>(())
    /// ```
    pub fn idempotent<I>(mut self, methods: I) -> Channel
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut set = HashSet::clone(&self.idempotent);
        for method in methods {
            let method = method.as_ref();
            let path = if method.starts_with('/') {
                Box::from(method)
            } else {
                format!("/{method}").into_boxed_str()
            };
            set.insert(path);
        }
        self.idempotent = Arc::new(set);
        self
    }

    /// Whether calls of `path` (`/package.Service/Method`) may be retried
    /// as idempotent.
    pub fn is_idempotent(&self, path: &str) -> bool {
        self.idempotent.contains(path)
    }

    /// Sends through `transport` instead of the channel's own connection:
    /// for TLS settings of your own (client certificates, a private CA) or
    /// any other `tonic::transport::Endpoint` setting. It must reach the
    /// same service: the breaker, spans and metrics are the service's.
    ///
    /// ```no_run
    /// use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    ///
    /// # fn run(ca_pem: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
    /// let endpoint = Endpoint::from_static("https://auth-svc:50051")
    ///     .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)))?;
    /// let channel = svc_client::grpc::Channel::new("auth-svc")?
    ///     .with_transport(endpoint.connect_lazy());
    /// # let _ = channel;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_transport(mut self, transport: tonic::transport::Channel) -> Channel {
        self.transport = Some(transport);
        self
    }

    /// The service this channel calls, as given to the constructor.
    pub fn service(&self) -> &str {
        self.shared.client.service()
    }

    /// The service's URL (`scheme://host:port/`).
    pub fn base_url(&self) -> &Url {
        self.shared.client.base_url()
    }

    /// The state of the service's circuit breaker; `None` when the breaker
    /// is disabled.
    pub fn circuit_state(&self) -> Option<State> {
        self.shared.client.circuit_state()
    }

    /// The service's circuit breaker (shared by every clone); `None` when
    /// disabled. For manual control such as `force_open`.
    pub fn breaker(&self) -> Option<&svc_breaker::CircuitBreaker> {
        self.shared.client.breaker()
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("service", &self.service())
            .field("base_url", &svc_discovery::Redacted::new(self.base_url()))
            .field("circuit_state", &self.circuit_state())
            .field("idempotent", &self.idempotent)
            .field("own_transport", &self.transport.is_some())
            .finish_non_exhaustive()
    }
}

// ===== impl Service =====

impl Service<http::Request<tonic::body::Body>> for Channel {
    type Response = http::Response<ResponseBody>;
    type Error = Status;
    type Future = ResponseFuture;

    /// Always ready: each call waits for the connection itself, within its
    /// deadline (a clone of the transport per call, as tower's
    /// clone-in-call convention goes), so a service that is down fails the
    /// call with a status instead of the channel with an error.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> ResponseFuture {
        // The caller's span, while the caller's task runs.
        let parent = Span::current();
        let idempotent = self.is_idempotent(request.uri().path());
        let shared = Arc::clone(&self.shared);
        let transport = self.transport.clone();
        // The request's deadline, read in the caller's task (crate::deadline).
        let client = &shared.client.inner;
        let outer = crate::deadline::for_call(client.propagate_deadline, client.deadline_margin);
        ResponseFuture {
            inner: Box::pin(call(shared, transport, request, idempotent, parent, outer)),
        }
    }
}

/// The response future of a [`Channel`] call.
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, Status>> + Send>>,
}

impl Future for ResponseFuture {
    type Output = Result<http::Response<ResponseBody>, Status>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

// ===== the call =====

/// A deadline this far away is "no deadline" (a `timeout` of
/// `Duration::MAX` would overflow `Instant`).
const FAR_FUTURE: std::time::Duration = std::time::Duration::from_secs(60 * 60 * 24 * 365);

/// What the last attempt left for the caller when the call stops.
enum Last {
    Response(http::Response<tonic::body::Body>, tonic::Code),
    Failed(GrpcProblem, Option<tonic::transport::Error>),
}

/// The tonic endpoint of one replica's URL: its authority alone (the URL
/// may carry credentials, which are not tonic's business), with TLS for
/// `https` checking the certificate against the URL's host.
fn tonic_endpoint(url: &Url) -> Result<Endpoint, Error> {
    let host = url.host_str().unwrap_or_default();
    let origin = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    let mut endpoint = Endpoint::from_shared(origin)
        .map_err(|e| Error::config("base_url", format!("not a gRPC endpoint: {e}")))?;
    if url.scheme() == "https" {
        let tls = ClientTlsConfig::new()
            .with_native_roots()
            .domain_name(host.trim_start_matches('[').trim_end_matches(']'));
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| Error::config("tls", format!("could not be set up: {e}")))?;
    }
    Ok(endpoint)
}

async fn call(
    shared: Arc<Shared>,
    transport: Option<tonic::transport::Channel>,
    request: http::Request<tonic::body::Body>,
    idempotent: bool,
    parent: Span,
    outer: Option<Instant>,
) -> Result<http::Response<ResponseBody>, Status> {
    let transport = transport.unwrap_or_else(|| {
        shared
            .transport
            .get_or_init(|| match &shared.endpoints[..] {
                [one] => one.connect_lazy(),
                many => tonic::transport::Channel::balance_list(many.iter().cloned()),
            })
            .clone()
    });
    let start = Instant::now();
    let (parts, body) = request.into_parts();
    let call = Arc::new(Call {
        shared: Arc::clone(&shared),
        path: Box::from(parts.uri.path()),
    });
    let policy = &shared.policy;
    let mut budget = policy.timeout();
    if let Some(value) = parts.headers.get(timeout::GRPC_TIMEOUT) {
        match timeout::parse(value) {
            Ok(asked) => budget = budget.min(asked),
            Err(problem) => tracing::debug!(
                target: "svc_client",
                service = shared.client.service(),
                rpc = &*call.path,
                %problem,
                "the request's grpc-timeout is ignored"
            ),
        }
    }
    let deadline = start
        .checked_add(budget)
        .unwrap_or_else(|| start + FAR_FUTURE);
    // The request's deadline, when it is the earlier: out of time is then
    // `DeadlineExceeded`, not a failure of the service.
    let (deadline, by_outer) = match outer {
        Some(outer) if outer <= deadline => (outer, true),
        _ => (deadline, false),
    };
    if by_outer && deadline <= start {
        // Nothing left: no I/O, no permit, no budget deposit.
        call.finish(End::Failed(GrpcProblem::DeadlineExceeded), 0);
        tokio::task::coop::consume_budget().await;
        return Err(call.status(GrpcProblem::DeadlineExceeded, 0, None));
    }
    let out_of_time = if by_outer {
        GrpcProblem::DeadlineExceeded
    } else {
        GrpcProblem::Timeout
    };
    policy.deposit();
    let replay = Replay::new(body, if idempotent { REPLAY_LIMIT } else { 0 });
    let max_attempts = policy.max_retries().saturating_add(1);
    let breaker = shared.client.breaker();
    let mut sent = 0u32;

    loop {
        let permit = match breaker.map(svc_breaker::CircuitBreaker::try_acquire_owned) {
            None => None,
            Some(Ok(permit)) => Some(permit),
            Some(Err(open)) => {
                let problem = GrpcProblem::CircuitOpen(open);
                call.finish(End::Failed(problem), sent);
                if sent == 0 {
                    // Completed without I/O: yield to the runtime's budget
                    // as tokio's own primitives do.
                    tokio::task::coop::consume_budget().await;
                }
                return Err(call.status(problem, sent, None));
            }
        };
        let now = Instant::now();
        let remaining = deadline.saturating_duration_since(now);
        if remaining.is_zero() {
            // No attempt: the permit goes back with no effect.
            drop(permit);
            call.finish(End::Failed(out_of_time), sent);
            return Err(call.status(out_of_time, sent, None));
        }
        let limit = policy.attempt_timeout().min(remaining);
        let attempt_deadline = now + limit;
        // The attempt ends at the call's deadline: running out is the call's.
        let timed_out = if attempt_deadline >= deadline {
            out_of_time
        } else {
            GrpcProblem::Timeout
        };

        let mut request = http::Request::from_parts(parts.clone(), replay.body());
        request
            .headers_mut()
            .insert(timeout::GRPC_TIMEOUT, timeout::format(limit));
        sent += 1;
        let mut attempt = Attempt::start(&call, &parent, permit, sent);
        crate::trace::inject_nearest(attempt.span(), Some(&parent), request.headers_mut());

        let result =
            tokio::time::timeout_at(attempt_deadline, send(transport.clone(), request)).await;
        let (last, retryable) = match result {
            Err(_elapsed) => {
                attempt.finish(End::Failed(timed_out));
                let retry = idempotent && replay.replayable();
                (Last::Failed(timed_out, None), retry)
            }
            Ok(Err(err)) => {
                let connect = is_connect(&err);
                let problem = if connect {
                    GrpcProblem::Connect
                } else if Instant::now() >= attempt_deadline {
                    // The stream broke when the time ran out (the service
                    // gave up at the same deadline): a timeout.
                    timed_out
                } else {
                    GrpcProblem::Transport
                };
                attempt.finish(End::Failed(problem));
                // Nothing of the body was read: nothing was sent.
                let retry = (connect && replay.untouched()) || (idempotent && replay.replayable());
                (Last::Failed(problem, Some(err)), retry)
            }
            Ok(Ok(response)) => {
                match classify::head_status(response.status(), response.headers()) {
                    Some(code) => {
                        // `DEADLINE_EXCEEDED` at the very end of a budget the
                        // request's deadline set: the service gave up at the
                        // budget we sent it, not a failure of its own
                        // (svc_httpclient's rule for a 504, crate::deadline).
                        let slack = (limit / 10).max(std::time::Duration::from_millis(2));
                        let gave_up = code == tonic::Code::DeadlineExceeded
                            && matches!(timed_out, GrpcProblem::DeadlineExceeded)
                            && Instant::now() + slack >= attempt_deadline;
                        attempt.finish(if gave_up {
                            End::Failed(GrpcProblem::DeadlineExceeded)
                        } else {
                            End::Status(code)
                        });
                        let retry =
                            idempotent && classify::is_retryable(code) && replay.replayable();
                        (Last::Response(response, code), retry)
                    }
                    None => {
                        // The status comes in the trailers: the body ends the
                        // attempt, and the call, when it sees it.
                        return Ok(response
                            .map(|body| ResponseBody::pending(body, attempt, attempt_deadline)));
                    }
                }
            }
        };

        if retryable && sent < max_attempts && breaker.is_none_or(|b| b.state() != State::Open) {
            let wait = policy.backoff().delay(sent - 1);
            if Instant::now() + wait < deadline && policy.withdraw() {
                tracing::debug!(
                    target: "svc_client",
                    service = shared.client.service(),
                    rpc = &*call.path,
                    attempt = sent,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "retrying gRPC call"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
        }

        return match last {
            Last::Response(response, code) => {
                call.finish(End::Status(code), sent);
                Ok(response.map(ResponseBody::done))
            }
            Last::Failed(problem, err) => {
                call.finish(End::Failed(problem), sent);
                Err(call.status(problem, sent, err.map(|e| Box::new(e) as _)))
            }
        };
    }
}

/// Waits for the transport, then sends one attempt.
async fn send(
    mut transport: tonic::transport::Channel,
    request: http::Request<tonic::body::Body>,
) -> Result<http::Response<tonic::body::Body>, tonic::transport::Error> {
    poll_fn(|cx| transport.poll_ready(cx)).await?;
    transport.call(request).await
}

/// Whether the connection could not be made (so nothing was sent).
fn is_connect(err: &tonic::transport::Error) -> bool {
    let first: &(dyn std::error::Error + 'static) = err;
    std::iter::successors(Some(first), |e| e.source()).any(|e| {
        e.is::<tonic::ConnectError>()
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}
