//! The server side of a service: one tower layer for axum and tonic servers.
//!
//! [`layer()`] gives every request a server span that continues the
//! caller's trace (W3C `traceparent`/`tracestate`, see
//! [`continue_trace`](crate::continue_trace)), so a handler's own spans and
//! its calls through a [`Client`](crate::Client) or a gRPC channel join the
//! caller's trace. It is a plain [`tower_layer::Layer`] over
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
//! stays for `axum::middleware::from_fn`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::trace::ServerSpan;

/// The layer: a server span per request, continuing the caller's trace.
/// See the [module docs](self).
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
    ServerLayer { _private: () }
}

/// The [`layer()`]: wraps a service in a [`ServerService`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerLayer {
    _private: (),
}

impl<S> Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerService { inner }
    }
}

/// A service (an axum router, a tonic server's routes) whose every request
/// runs inside a server span continuing the caller's trace. Built by
/// [`layer()`].
///
/// `poll_ready` is the inner service's; errors are the inner service's,
/// unchanged.
#[derive(Debug, Clone)]
pub struct ServerService<S> {
    inner: S,
}

impl<S> ServerService<S> {
    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResBody> Service<http::Request<B>> for ServerService<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let server = ServerSpan::new(&request);
        // The handler's synchronous part runs in the span too.
        let future = server.span.in_scope(|| self.inner.call(request));
        ResponseFuture {
            state: State::Inner { future },
            server,
        }
    }
}

pin_project! {
    /// The response future of [`ServerService`]: the inner service's,
    /// polled inside the request's span, which records the response head.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
        server: ServerSpan,
    }
}

pin_project! {
    #[project = StateProj]
    // `Respond` is the seam for answering before the handler (issue 14:
    // deadlines and shedding); nothing builds it yet.
    #[allow(dead_code)]
    enum State<F, B> {
        /// The inner service is handling the request.
        Inner { #[pin] future: F },
        /// Answered without calling the inner service (`None` once
        /// returned). Nothing answers this way yet: it is where a request
        /// refused before its handler (an expired deadline, shedding) goes.
        Respond { response: Option<http::Response<B>> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.state.project() {
            StateProj::Inner { future } => {
                let _entered = this.server.span.enter();
                match future.poll(cx) {
                    Poll::Ready(result) => result,
                    Poll::Pending => return Poll::Pending,
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
