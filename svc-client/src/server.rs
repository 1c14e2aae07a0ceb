//! The server side of a service: one tower layer for axum and tonic servers.
//!
//! [`layer()`] gives every request a server span that continues the
//! caller's trace (W3C `traceparent`/`tracestate`, see
//! [`continue_trace`](crate::continue_trace)), so a handler's own spans and
//! its calls through a [`Client`](crate::Client) or a gRPC channel join the
//! caller's trace; and it keeps the caller's **deadline** for the request
//! ([`crate::deadline`]): the handler reads it with
//! [`deadline::remaining()`], its calls end by
//! it, and a request that arrives with no budget left is answered at once
//! without running the handler (see "Deadlines and shedding" below). It is a plain [`tower_layer::Layer`] over
//! `http::Request<B>` → `http::Response<B>`, so the same value goes on an
//! axum `Router` and on a tonic `Server`:
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # fn axum_app() {
//! use axum::{Router, routing::get};
//!
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "alice" }))
//!     .layer(svc_client::server::layer());
//! # let _ = app;
//! # }
//! ```
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // tonic 0.14: every RPC of every service added to this server.
//! let (_reporter, health) = tonic_health::server::health_reporter();
//! tonic::transport::Server::builder()
//!     .layer(svc_client::server::layer())
//!     .add_service(health)
//!     .serve("127.0.0.1:50051".parse()?)
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # The span
//!
//! `otel.kind = "server"`, and:
//!
//! | request | OpenTelemetry name | attributes |
//! |---|---|---|
//! | HTTP | `{method} {route}` (`GET /users/{id}`), the method alone when no route matched | `http.request.method`, `url.path`, `http.route` |
//! | gRPC (`content-type: application/grpc*`, path `/{service}/{method}`) | `{service}/{method}` (`grpc.health.v1.Health/Check`) | `rpc.system = "grpc"`, `rpc.service`, `rpc.method`, `http.request.method`, `url.path` |
//!
//! The route is axum's `MatchedPath`, present when the layer runs inside
//! the router (`Router::layer`, feature `axum`). The response head sets
//! `http.response.status_code` and, for gRPC, `rpc.grpc.status_code` from a
//! `grpc-status` header. `otel.status_code = "ERROR"` marks a 5xx, and the
//! gRPC codes OpenTelemetry counts as server errors: `UNKNOWN`,
//! `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE` and
//! `DATA_LOSS`; the caller's own mistakes (`NOT_FOUND`, `INVALID_ARGUMENT`,
//! ...) are not errors of this server.
//!
//! **What the layer sees of gRPC.** The span ends with the response head,
//! and a layer sees the head only. A handler that fails at once returns a
//! "trailers-only" response, whose `grpc-status` is in the head: it is
//! recorded. A status sent after a body (every successful unary call, and
//! a stream that fails midway) travels in the trailers, which this layer
//! does not read: `rpc.grpc.status_code` is then absent.
//!
//! The layer is the same code as
//! [`trace_middleware`](crate::trace_middleware) (feature `axum`), which
//! stays for `axum::middleware::from_fn` (the trace only: no deadline).
//!
//! # Deadlines and shedding
//!
//! The caller's budget is read from `svc-timeout-ms`, `grpc-timeout` and
//! `x-envoy-expected-rq-timeout-ms` (the smallest valid one; bad values
//! are ignored with a `debug` event; the table and the reasons are in
//! [`crate::deadline`]), capped at [`max_budget`](ServerLayer::max_budget)
//! (default 30 s). A request without any of them has no deadline. Then:
//!
//! - **Shedding**: a budget of zero (the caller has already given up), or
//!   below [`min_budget`](ServerLayer::min_budget) (default zero: only an
//!   expired one), is answered without calling the inner service:
//!   `504 Gateway Timeout` with an empty body, or for a gRPC request
//!   `200` with `content-type: application/grpc` and `grpc-status: 4`
//!   (`DEADLINE_EXCEEDED`, trailers-only). Each is counted (feature
//!   `metrics`: `svc.server.shed`, a counter of `{request}` with
//!   `svc.shed.reason` = `expired` or `below_min_budget`) and leaves a
//!   `debug` event. [`shed(false)`](ServerLayer::shed) turns it off.
//! - **The deadline** (`arrival + budget`) is the request's while its
//!   handler runs: around the inner service's `call` and every poll of its
//!   future, so the handler and what it awaits see it (a task it spawns
//!   does not: [`deadline::propagate`]).
//! - **At the deadline**, a handler still running is dropped (its caller
//!   has stopped waiting) and answered as a shed request is, as tonic's
//!   own server timeout does. The deadline bounds the handler until it
//!   returns its response head: a streaming body is not cut. Handlers that must not be cancelled mid-way
//!   turn it off with [`cancel_at_deadline(false)`](ServerLayer::cancel_at_deadline)
//!   and watch [`deadline::remaining()`]
//!   themselves.
//!
//! A shed request does not call the inner service, whose `poll_ready` has
//! already said it is ready: the readiness it reserved (a concurrency
//! permit, a buffer slot) is kept for the next request, which is what
//! tower's contract allows (a `call` is owed only to the next request).
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # fn app() {
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//!
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "alice" }))
//!     .layer(
//!         svc_client::server::layer()
//!             .max_budget(Duration::from_secs(5)) // our own limit
//!             .min_budget(Duration::from_millis(10)), // less is not worth starting
//!     );
//! # let _ = app;
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_layer::Layer;
use tower_service::Service;

use crate::deadline;
use crate::trace::ServerSpan;

/// The layer: a server span per request, continuing the caller's trace,
/// and the caller's deadline. See the [module docs](self).
///
/// # Example
///
/// ```
/// # #[cfg(feature = "axum")]
/// # fn app() {
/// use axum::{Router, routing::get};
///
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "alice" }))
///     .layer(svc_client::server::layer());
/// # let _ = app;
/// # }
/// ```
pub fn layer() -> ServerLayer {
    ServerLayer::default()
}

/// The default [`ServerLayer::max_budget`]: the clients' default timeout.
pub const DEFAULT_MAX_BUDGET: Duration = Duration::from_secs(30);

/// The [`layer()`]: wraps a service in a [`ServerService`]. Its setters
/// are chainable and take `self` by value.
///
/// | setting | default |
/// |---|---|
/// | [`max_budget`](ServerLayer::max_budget) | 30 s: a longer budget from a caller is cut to it |
/// | [`min_budget`](ServerLayer::min_budget) | zero: only an expired budget is shed |
/// | [`shed`](ServerLayer::shed) | on |
/// | [`cancel_at_deadline`](ServerLayer::cancel_at_deadline) | on |
/// | `meter` (feature `metrics`) | the global meter provider's, when the layer is built |
#[derive(Clone)]
pub struct ServerLayer {
    settings: Arc<Settings>,
}

/// What every [`ServerService`] of a layer shares.
struct Settings {
    max_budget: Duration,
    min_budget: Duration,
    shed: bool,
    cancel_at_deadline: bool,
    #[cfg(feature = "metrics")]
    shed_counter: opentelemetry::metrics::Counter<u64>,
}

impl Settings {
    fn change(self: &mut Arc<Self>) -> &mut Settings {
        if Arc::get_mut(self).is_none() {
            let copy = Settings {
                max_budget: self.max_budget,
                min_budget: self.min_budget,
                shed: self.shed,
                cancel_at_deadline: self.cancel_at_deadline,
                #[cfg(feature = "metrics")]
                shed_counter: self.shed_counter.clone(),
            };
            *self = Arc::new(copy);
        }
        Arc::get_mut(self).expect("made unique above")
    }
}

#[cfg(feature = "metrics")]
fn shed_counter(meter: &opentelemetry::metrics::Meter) -> opentelemetry::metrics::Counter<u64> {
    meter
        .u64_counter("svc.server.shed")
        .with_unit("{request}")
        .with_description(
            "Requests answered without running the handler: the caller's deadline had passed.",
        )
        .build()
}

impl Default for ServerLayer {
    fn default() -> Self {
        ServerLayer {
            settings: Arc::new(Settings {
                max_budget: DEFAULT_MAX_BUDGET,
                min_budget: Duration::ZERO,
                shed: true,
                cancel_at_deadline: true,
                #[cfg(feature = "metrics")]
                shed_counter: shed_counter(&opentelemetry::global::meter_with_scope(
                    opentelemetry::InstrumentationScope::builder("svc-client")
                        .with_version(env!("CARGO_PKG_VERSION"))
                        .build(),
                )),
            }),
        }
    }
}

impl ServerLayer {
    /// The longest budget a caller may give this service (default 30 s):
    /// a larger one is cut to it. It is this service's own limit on how
    /// long it works for one request; a request without a budget header
    /// has no deadline.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let layer = svc_client::server::layer().max_budget(Duration::from_secs(5));
    /// # let _ = layer;
    /// ```
    pub fn max_budget(mut self, max: Duration) -> Self {
        self.settings.change().max_budget = max;
        self
    }

    /// The smallest budget worth starting the handler for (default zero:
    /// only a budget that has run out is shed). A request that arrives with
    /// less is answered 504 (`DEADLINE_EXCEEDED`) at once.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // Our answer takes at least 20 ms: less is wasted work.
    /// let layer = svc_client::server::layer().min_budget(Duration::from_millis(20));
    /// # let _ = layer;
    /// ```
    pub fn min_budget(mut self, min: Duration) -> Self {
        self.settings.change().min_budget = min;
        self
    }

    /// Whether a request arriving without enough budget is answered
    /// without running its handler (default `true`). With `false` the
    /// handler runs and sees a deadline that has passed.
    ///
    /// ```
    /// let layer = svc_client::server::layer().shed(false);
    /// # let _ = layer;
    /// ```
    pub fn shed(mut self, on: bool) -> Self {
        self.settings.change().shed = on;
        self
    }

    /// Whether a handler still running at the request's deadline is
    /// dropped and answered 504 (`DEADLINE_EXCEEDED`) (default `true`).
    /// With `false`, the handler runs on; it sees
    /// [`deadline::remaining()`] reach zero.
    ///
    /// ```
    /// let layer = svc_client::server::layer().cancel_at_deadline(false);
    /// # let _ = layer;
    /// ```
    pub fn cancel_at_deadline(mut self, on: bool) -> Self {
        self.settings.change().cancel_at_deadline = on;
        self
    }

    /// The meter of the `svc.server.shed` counter, instead of the global
    /// meter provider's.
    #[cfg(feature = "metrics")]
    pub fn meter(mut self, meter: &opentelemetry::metrics::Meter) -> Self {
        self.settings.change().shed_counter = shed_counter(meter);
        self
    }
}

impl fmt::Debug for ServerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &*self.settings;
        f.debug_struct("ServerLayer")
            .field("max_budget", &s.max_budget)
            .field("min_budget", &s.min_budget)
            .field("shed", &s.shed)
            .field("cancel_at_deadline", &s.cancel_at_deadline)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerService {
            inner,
            settings: Arc::clone(&self.settings),
        }
    }
}

/// A service (an axum router, a tonic server's routes) whose every request
/// runs inside a server span continuing the caller's trace, under the
/// caller's deadline. Built by [`layer()`].
///
/// `poll_ready` is the inner service's; errors are the inner service's,
/// unchanged. A shed request is answered with a default (empty) body.
#[derive(Clone)]
pub struct ServerService<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S> ServerService<S> {
    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for ServerService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<http::Request<B>> for ServerService<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let server = ServerSpan::new(&request);
        let settings = &*self.settings;
        let budget = server
            .span
            .in_scope(|| deadline::budget(request.headers(), settings.max_budget));
        let Some(budget) = budget else {
            // The handler's synchronous part runs in the span too.
            let future = server.span.in_scope(|| self.inner.call(request));
            return ResponseFuture {
                state: State::Inner {
                    future,
                    deadline: None,
                    timer: None,
                },
                server,
            };
        };
        if settings.shed && (budget.is_zero() || budget < settings.min_budget) {
            let reason = if budget.is_zero() {
                "expired"
            } else {
                "below_min_budget"
            };
            server.span.in_scope(|| {
                tracing::debug!(
                    target: "svc_client",
                    reason,
                    budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
                    "request shed: the caller's deadline leaves no time for it"
                );
            });
            #[cfg(feature = "metrics")]
            settings.shed_counter.add(
                1,
                &[opentelemetry::KeyValue::new("svc.shed.reason", reason)],
            );
            return ResponseFuture {
                state: State::Respond {
                    response: Some(out_of_time(server.grpc)),
                },
                server,
            };
        }
        let at = Instant::now() + budget;
        let future = server
            .span
            .in_scope(|| deadline::sync_scope(at, || self.inner.call(request)));
        ResponseFuture {
            state: State::Inner {
                future,
                deadline: Some(at),
                // Boxed: only requests with a deadline have a timer.
                timer: settings
                    .cancel_at_deadline
                    .then(|| Box::pin(tokio::time::sleep_until(at))),
            },
            server,
        }
    }
}

/// The answer to a request out of time: `504`, or gRPC's
/// `DEADLINE_EXCEEDED` (trailers-only).
fn out_of_time<B: Default>(grpc: bool) -> http::Response<B> {
    let mut response = http::Response::new(B::default());
    if grpc {
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", http::HeaderValue::from_static("4"));
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static("deadline%20exceeded"),
        );
    } else {
        *response.status_mut() = http::StatusCode::GATEWAY_TIMEOUT;
    }
    response
}

pin_project! {
    /// The response future of [`ServerService`]: the inner service's,
    /// polled inside the request's span and under its deadline, which
    /// records the response head.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
        server: ServerSpan,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        /// The inner service is handling the request.
        Inner {
            #[pin]
            future: F,
            deadline: Option<Instant>,
            timer: Option<Pin<Box<Sleep>>>,
        },
        /// Answered without calling the inner service, or after dropping
        /// its future at the deadline (`None` once returned).
        Respond { response: Option<http::Response<B>> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Default,
{
    type Output = Result<http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let result = match this.state.as_mut().project() {
            StateProj::Inner {
                future,
                deadline,
                timer,
            } => {
                let _entered = this.server.span.enter();
                let polled = match *deadline {
                    Some(at) => deadline::sync_scope(at, || future.poll(cx)),
                    None => future.poll(cx),
                };
                match polled {
                    Poll::Ready(result) => result,
                    Poll::Pending => {
                        let expired = timer
                            .as_mut()
                            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
                        if !expired {
                            return Poll::Pending;
                        }
                        tracing::debug!(
                            target: "svc_client",
                            "request cancelled: its deadline passed while the handler ran"
                        );
                        // Drops the handler's future.
                        this.state.set(State::Respond { response: None });
                        Ok(out_of_time(this.server.grpc))
                    }
                }
            }
            StateProj::Respond { response } => match response.take() {
                Some(response) => Ok(response),
                None => panic!("`ResponseFuture` polled after completion"),
            },
        };
        if let Ok(response) = &result {
            this.server.record(response);
        }
        Poll::Ready(result)
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("span", &self.server.span)
            .finish_non_exhaustive()
    }
}
