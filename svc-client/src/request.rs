//! [`RequestBuilder`]: one call to the service, built then sent.
//!
//! As `svc_httpclient::RequestBuilder`, whose builder it wraps: errors of the
//! builder (an invalid path, header or body) are reported when the request
//! is sent. Sending wraps the attempts in the call's `svc.call` span, and
//! hands the end of the call to [`observe`](crate::observe) (one log line,
//! one metric point, the span's status).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tracing::Span;
use tracing::field::Empty;
use url::Url;

use crate::client::{Client, Shared};
use crate::decode::{buffered_success, decode_buffered};
use crate::error::Error;
use crate::header::{HeaderMap, HeaderName, HeaderValue};
use crate::observe::finish;
use crate::{Method, Response};

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
    pub(crate) fn new(
        client: Client,
        method: Method,
        path: Box<str>,
        inner: Result<svc_httpclient::RequestBuilder, Error>,
    ) -> RequestBuilder {
        RequestBuilder {
            client,
            method,
            path,
            inner,
        }
    }

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
    pub fn send(self) -> impl Future<Output = Result<Response, Error>> + Send + 'static {
        // The attempt spans are children of `svc.call` without the span
        // being entered on every poll of the call: under an OpenTelemetry
        // layer each enter and exit is a subscriber call that attaches and
        // detaches an OpenTelemetry context.
        Sent::new(self, |builder, span| builder.send_with_parent(span))
    }

    /// Sends the request and reads the whole body within the attempt (at
    /// most the client's [`decode_limit`](crate::ClientConfig::decode_limit)): a
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
                    Some(url) => same_origin(&shared, url).map(|()| resp),
                    None => Ok(resp),
                }),
            Err(err) => rejected(err).await,
        };
        let result = finish(&shared, &span, &method, &path, result, |r| r.status());
        result.map_err(|e| e.with_service(&shared.service))
    }

    /// Sends the request and decodes a 2xx JSON response into `T`, the
    /// body read within the attempt (see [`send_buffered`](RequestBuilder::send_buffered)),
    /// with the client's [`decode_limit`](crate::ClientConfig::decode_limit); the
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
        // Inside a request with a budget: the call ends by it, less the
        // margin, and tells the service each attempt's budget
        // (crate::deadline). One task-local lookup, none when turned off.
        let inner =
            match crate::deadline::for_call(shared.propagate_deadline, shared.deadline_margin) {
                Some(at) => inner.map(|b| {
                    b.deadline(at)
                        .deadline_header(&crate::deadline::HEADER_NAME)
                }),
                None => inner,
            };
        // Without a `svc.call` span (the default) the attempt spans are
        // children of the caller's span: `send_with_parent` falls back to
        // the current span for a disabled parent. A call made outside any
        // span still gets one, so that its retries share one trace.
        // No subscriber takes `info` spans at all: no span (a disabled one
        // would still check the `log` levels on every record with
        // `tracing`'s `log` feature on).
        let span = if !tracing::level_enabled!(tracing::Level::INFO) {
            Span::none()
        } else if shared.call_span || !in_a_span() {
            tracing::info_span!(
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
            )
        } else {
            Span::none()
        };
        (shared, span, method, path, inner)
    }
}

/// Whether the current thread is inside a span the subscriber knows of
/// (without cloning it, as `Span::current()` would).
fn in_a_span() -> bool {
    // `Current::is_known` is also true for "no span": ask for its id.
    tracing::dispatcher::get_default(|dispatch| dispatch.current_span().id().is_some())
}

/// Checks that a response came from the service: a `reqwest::Client` given
/// with `http_client` may follow a redirect to another host, whose answer
/// is then not the service's.
fn same_origin(shared: &Shared, url: &Url) -> Result<(), Error> {
    if !shared.check_origin {
        return Ok(());
    }
    // Any replica of the service.
    let same = shared.endpoints.iter().any(|base| {
        base.scheme() == url.scheme()
            && base.host_str() == url.host_str()
            && base.port_or_known_default() == url.port_or_known_default()
    });
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

pin_project_lite::pin_project! {
    /// The future of [`RequestBuilder::send`]: the call, then its end
    /// ([`finish`]). A wrapper rather than an `async fn`, so that the
    /// call's state is not copied into a second future (which `IntoFuture`
    /// then boxes). The call starts (its span, its clock) when it is first
    /// polled, as an `async fn` would: a future made outside the caller's
    /// span and polled inside it (`.instrument(span)`) is the span's.
    struct Sent<G, F> {
        #[pin]
        state: State<G, F>,
    }
}

pin_project_lite::pin_project! {
    /// Where a [`Sent`] is.
    #[project = StateProj]
    enum State<G, F> {
        /// Not polled yet: the request and how to send it.
        Unstarted {
            builder: Option<RequestBuilder>,
            send: Option<G>,
        },
        /// Sent (or rejected): the call's parts for its end, and what it
        /// waits for.
        Running {
            shared: Arc<Shared>,
            span: Span,
            method: Method,
            path: Box<str>,
            #[pin]
            inner: Inner<F>,
        },
    }
}

pin_project_lite::pin_project! {
    /// What a running [`Sent`] waits for.
    #[project = InnerProj]
    enum Inner<F> {
        /// The call through svc-httpclient.
        Call {
            #[pin]
            call: F,
        },
        /// A call rejected before it reached svc-httpclient (an invalid
        /// path): without I/O, so it consumes tokio's cooperative budget (as
        /// svc-httpclient does for its own fail-fast paths) and a caller
        /// looping on the error cannot starve its runtime.
        Rejected {
            err: Option<Error>,
            budget: Pin<Box<dyn Future<Output = ()> + Send>>,
        },
    }
}

impl<G, F> Sent<G, F>
where
    G: FnOnce(svc_httpclient::RequestBuilder, Span) -> F,
{
    /// `builder`'s call, which `send` sends with the call's span as the
    /// parent of its attempts.
    fn new(builder: RequestBuilder, send: G) -> Self {
        Sent {
            state: State::Unstarted {
                builder: Some(builder),
                send: Some(send),
            },
        }
    }
}

impl<G, F> Future for Sent<G, F>
where
    G: FnOnce(svc_httpclient::RequestBuilder, Span) -> F,
    F: Future<Output = Result<Response, svc_httpclient::Error>>,
{
    type Output = Result<Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let StateProj::Unstarted { builder, send } = self.as_mut().project().state.project() {
            let (builder, send) = (builder.take(), send.take());
            let (Some(builder), Some(send)) = (builder, send) else {
                unreachable!("an unstarted call has its request")
            };
            let (shared, span, method, path, inner) = builder.start();
            let inner = match inner {
                Ok(builder) => Inner::Call {
                    call: send(builder, span.clone()),
                },
                Err(err) => Inner::Rejected {
                    err: Some(err),
                    budget: Box::pin(tokio::task::coop::consume_budget()),
                },
            };
            self.as_mut().project().state.set(State::Running {
                shared,
                span,
                method,
                path,
                inner,
            });
        }
        let StateProj::Running {
            shared,
            span,
            method,
            path,
            inner,
        } = self.project().state.project()
        else {
            unreachable!("started above")
        };
        let result = match inner.project() {
            InnerProj::Call { call } => ready!(call.poll(cx))
                .map_err(Error::from)
                .and_then(|resp| same_origin(shared, resp.url()).map(|()| resp)),
            InnerProj::Rejected { err, budget } => {
                ready!(budget.as_mut().poll(cx));
                Err(err.take().expect("a rejected call ends once"))
            }
        };
        Poll::Ready(finish(shared, span, method, path, result, Response::status))
    }
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
