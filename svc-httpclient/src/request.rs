//! Building one call.
//!
//! A thin layer over [`reqwest::RequestBuilder`]: the body is encoded once
//! when the call is sent (JSON and bytes become a reusable buffer that every
//! retry replays), and errors such as a bad URL or a body that fails to
//! encode are deferred to `send`, where they become an
//! [`Error::is_request`](crate::Error::is_request) error without any I/O.

use std::borrow::Borrow;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Response;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::client::Client;
use crate::error::{Error, Kind};
use crate::retry::IDEMPOTENCY_KEY;

/// The default limit of a body read by [`RequestBuilder::bytes`],
/// [`text`](RequestBuilder::text) and [`decode`](RequestBuilder::decode):
/// 16 MiB.
pub const DEFAULT_BODY_LIMIT: u64 = 16 * 1024 * 1024;

/// Per-call settings that override the client's.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallOptions {
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_retries: Option<u32>,
    pub(crate) retry_unsafe: bool,
    /// Read the body of a 2xx response inside its attempt, at most this
    /// many bytes: a failed read is then a failed attempt (breaker, retry).
    pub(crate) read_body: Option<u64>,
    /// The limit of the body read; `None` is [`DEFAULT_BODY_LIMIT`].
    pub(crate) body_limit: Option<u64>,
    /// A deadline from outside the call ([`crate::deadline`]).
    pub(crate) deadline: Option<tokio::time::Instant>,
    /// The header that tells each attempt's budget to the service.
    pub(crate) deadline_header: Option<&'static HeaderName>,
}

/// A request being built. Send it with `.await` (it implements
/// [`IntoFuture`]) or [`send`](RequestBuilder::send).
///
/// ```no_run
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), svc_httpclient::Error> {
/// # let client = svc_httpclient::Client::new(Default::default())?;
/// let resp = client
///     .get("http://search-svc:8004/search")
///     .query(&[("q", "rust")])
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
    inner: reqwest::RequestBuilder,
    opts: CallOptions,
}

impl RequestBuilder {
    pub(crate) fn new(client: Client, inner: reqwest::RequestBuilder) -> RequestBuilder {
        RequestBuilder {
            client,
            inner,
            opts: CallOptions::default(),
        }
    }

    fn map(mut self, f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        self.inner = f(self.inner);
        self
    }

    /// Adds a header. An invalid name or value fails the call at `send`.
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

    /// Appends query parameters, serialized with `serde_urlencoded`.
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

    /// Sets `Authorization: Bearer {token}`, marked sensitive (never logged).
    pub fn bearer_auth(self, token: impl fmt::Display) -> Self {
        self.map(|b| b.bearer_auth(token))
    }

    /// The whole-call timeout of this call (retries and backoff included),
    /// instead of the client's `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.opts.timeout = Some(timeout);
        self
    }

    /// A deadline for this call from outside it, such as the budget a
    /// server received from its own caller: the call ends by the earlier of
    /// this and its `timeout`, retries and backoff included. When this one
    /// is the earlier, a call with no time left fails at once (no I/O, no
    /// breaker permit), an attempt it cuts short is not a breaker failure,
    /// and the error is [`Error::is_deadline_exceeded`] (and
    /// [`Error::is_timeout`]).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    ///
    /// # async fn run(client: svc_httpclient::Client) -> Result<(), svc_httpclient::Error> {
    /// let budget_end = Instant::now() + Duration::from_millis(250);
    /// let resp = client.get("http://auth-svc:8001/users/1").deadline(budget_end).await?;
    /// # let _ = resp;
    /// # Ok(())
    /// # }
    /// ```
    pub fn deadline(mut self, deadline: tokio::time::Instant) -> Self {
        self.opts.deadline = Some(deadline);
        self
    }

    /// With a [`deadline`](RequestBuilder::deadline), sends each attempt's
    /// budget, `min(attempt_timeout, remaining)` in whole milliseconds
    /// (rounded down), in the header `name`, replacing one of that name.
    /// Without a deadline nothing is sent. The name is a `static` (build it
    /// with the `const fn` [`HeaderName::from_static`]).
    ///
    /// ```
    /// use svc_httpclient::header::HeaderName;
    ///
    /// static BUDGET: HeaderName = HeaderName::from_static("svc-timeout-ms");
    /// # let client = svc_httpclient::Client::new(Default::default()).unwrap();
    /// let request = client
    ///     .get("http://auth-svc:8001/users/1")
    ///     .deadline(tokio::time::Instant::now())
    ///     .deadline_header(&BUDGET);
    /// # let _ = request;
    /// ```
    pub fn deadline_header(mut self, name: &'static HeaderName) -> Self {
        self.opts.deadline_header = Some(name);
        self
    }

    /// Sets the `Idempotency-Key` header, which makes a POST or PATCH
    /// retryable: the server uses the key to detect a replay.
    pub fn idempotency_key(self, key: impl Into<String>) -> Self {
        self.header(IDEMPOTENCY_KEY, key.into())
    }

    /// Declares the request safe to send more than once, so a POST or PATCH
    /// is retried like an idempotent request. Only for requests whose
    /// duplicates the server tolerates.
    pub fn retry_unsafe(mut self, allowed: bool) -> Self {
        self.opts.retry_unsafe = allowed;
        self
    }

    /// Retries of this call, instead of the client's `max_retries`.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.opts.max_retries = Some(n);
        self
    }

    /// The most bytes [`bytes`](RequestBuilder::bytes),
    /// [`text`](RequestBuilder::text), [`decode`](RequestBuilder::decode)
    /// and [`send_buffered`](RequestBuilder::send_buffered) read
    /// (default [`DEFAULT_BODY_LIMIT`]); a larger body fails the call with
    /// [`Error::is_body_too_large`] and is not retried.
    pub fn body_limit(mut self, bytes: u64) -> Self {
        self.opts.body_limit = Some(bytes);
        self
    }

    /// Sends the request through the pipeline and hands the response to
    /// the caller with its body unread.
    ///
    /// The breaker and the retries see the response **head** only: a body
    /// that then stalls, resets or is cut short is the caller's to notice
    /// (and is bounded by the attempt's timeout, which covers the body).
    /// To have body failures count as failed attempts, and be retried, let
    /// the client read the body: [`bytes`](RequestBuilder::bytes),
    /// [`text`](RequestBuilder::text), [`decode`](RequestBuilder::decode)
    /// or [`send_buffered`](RequestBuilder::send_buffered).
    pub fn send(self) -> impl Future<Output = Result<Response, Error>> + Send + 'static {
        let (client, request, opts) = self.into_parts();
        Head {
            call: crate::call::run(client, request, opts, None::<tracing::Span>),
        }
    }

    /// Sends the request and reads the whole body of a 2xx response as
    /// part of its attempt: a body that stalls, resets or is cut short is a
    /// failure for the breaker and is retried when the request may be
    /// retried, within the budget and the deadline. The body of a final
    /// non-2xx response is read too, without affecting the outcome (up to
    /// the limit, and what could be read if it fails).
    ///
    /// The response's extensions hold its [`url::Url`].
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), svc_httpclient::Error> {
    /// # let client = svc_httpclient::Client::new(Default::default())?;
    /// let resp = client.get("http://auth-svc:8001/users/123").send_buffered().await?;
    /// println!("{} with {} bytes", resp.status(), resp.body().len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send_buffered(self) -> Result<http::Response<Bytes>, Error> {
        self.buffered(None::<tracing::Span>).await
    }

    /// [`send_buffered`](RequestBuilder::send_buffered) with the attempt
    /// spans under `parent`, as [`send_with_parent`](RequestBuilder::send_with_parent).
    pub async fn send_buffered_with_parent<P>(
        self,
        parent: P,
    ) -> Result<http::Response<Bytes>, Error>
    where
        P: Borrow<tracing::Span> + Send,
    {
        self.buffered(Some(parent)).await
    }

    /// Sends the request and returns the body of its 2xx response, read
    /// within the attempt (see [`send_buffered`](RequestBuilder::send_buffered)).
    /// A final response outside 2xx fails with [`Error::is_status`].
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), svc_httpclient::Error> {
    /// # let client = svc_httpclient::Client::new(Default::default())?;
    /// let avatar = client.get("http://media-svc:8005/avatars/123").bytes().await?;
    /// # let _ = avatar;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn bytes(self) -> Result<Bytes, Error> {
        let resp = self.buffered(None::<tracing::Span>).await?;
        success(resp).map(http::Response::into_body)
    }

    /// As [`bytes`](RequestBuilder::bytes), as text (invalid UTF-8 is
    /// replaced with `U+FFFD`).
    pub async fn text(self) -> Result<String, Error> {
        let body = self.bytes().await?;
        Ok(match String::from_utf8(body.to_vec()) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// As [`bytes`](RequestBuilder::bytes), decoded as JSON into `T` (an
    /// empty body decodes as JSON `null`). A body that is not JSON of type
    /// `T` fails with [`Error::is_decode`] and is not retried.
    ///
    /// (`json` is the request-body setter, as in reqwest.)
    ///
    /// ```no_run
    /// # #[derive(serde::Deserialize)] struct User { id: String }
    /// # async fn run() -> Result<(), svc_httpclient::Error> {
    /// # let client = svc_httpclient::Client::new(Default::default())?;
    /// let user: User = client.get("http://auth-svc:8001/users/123").decode().await?;
    /// # let _ = user;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn decode<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        let resp = success(self.buffered(None::<tracing::Span>).await?)?;
        let url = resp.extensions().get::<url::Url>().cloned();
        let body = resp.into_body();
        let json: &[u8] = if body.is_empty() { b"null" } else { &body };
        serde_json::from_slice(json).map_err(|e| {
            let err = Error::new(Kind::Decode).with_source(e);
            match &url {
                Some(url) => err.with_clean_url(url.clone()),
                None => err,
            }
        })
    }

    async fn buffered<P: Borrow<tracing::Span> + Send>(
        mut self,
        parent: Option<P>,
    ) -> Result<http::Response<Bytes>, Error> {
        let limit = self.opts.body_limit.unwrap_or(DEFAULT_BODY_LIMIT);
        self.opts.read_body = Some(limit);
        let (client, request, opts) = self.into_parts();
        let (mut resp, body) = crate::call::run(client, request, opts, parent).await?;
        let body = match body {
            Some(body) => body,
            // A non-2xx answer: its body is for the caller's message only.
            None => crate::attempt::read_body(&mut resp, limit, true)
                .await
                .unwrap_or_default(),
        };
        let url = resp.url().clone();
        let mut out = http::Response::new(body);
        *out.status_mut() = resp.status();
        *out.version_mut() = resp.version();
        *out.headers_mut() = std::mem::take(resp.headers_mut());
        out.extensions_mut().insert(url);
        Ok(out)
    }

    /// Sends the request with its attempt spans (and the call's log events)
    /// children of `parent` rather than of the current span. `parent` is
    /// not entered while the call runs, which saves two subscriber calls
    /// per poll when the caller wraps each call in a span of its own (as
    /// the `svc-client` facade does with `svc.call`). A disabled `parent`
    /// falls back to the current span. `parent` is borrowed (`&Span`) or
    /// owned (`Span`, for a caller that wraps the call in a future of its
    /// own).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), svc_httpclient::Error> {
    /// # let client = svc_httpclient::Client::new(Default::default())?;
    /// let call = tracing::info_span!("load_user", user.id = 123);
    /// let resp = client
    ///     .get("http://auth-svc:8001/users/123")
    ///     .send_with_parent(&call)
    ///     .await?;
    /// # let _ = resp;
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_with_parent<P>(
        self,
        parent: P,
    ) -> impl Future<Output = Result<Response, Error>> + Send
    where
        P: Borrow<tracing::Span> + Send,
    {
        let (client, request, opts) = self.into_parts();
        Head {
            call: crate::call::run(client, request, opts, Some(parent)),
        }
    }

    /// The client, the built request (or the builder's error) and the
    /// call's options.
    fn into_parts(
        self,
    ) -> (
        Client,
        Result<reqwest::Request, reqwest::Error>,
        CallOptions,
    ) {
        (self.client, self.inner.build(), self.opts)
    }
}

pin_project_lite::pin_project! {
    /// The future of [`RequestBuilder::send`]: the call, whose response is
    /// handed over with its body unread. A wrapper rather than an `async`
    /// block, so that the call's state is not copied into a second future.
    struct Head<F> {
        #[pin]
        call: F,
    }
}

impl<F> Future for Head<F>
where
    F: Future<Output = Result<(Response, Option<Bytes>), Error>>,
{
    type Output = Result<Response, Error>;

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.project()
            .call
            .poll(cx)
            .map(|result| result.map(|(resp, _)| resp))
    }
}

/// `resp` if its status is 2xx, else the error of `bytes()` and friends.
fn success(resp: http::Response<Bytes>) -> Result<http::Response<Bytes>, Error> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let mut err = Error::new(Kind::Status(status)).with_status(Some(status));
    if let Some(url) = resp.extensions().get::<url::Url>() {
        err = err.with_clean_url(url.clone());
    }
    Err(err)
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
        // The inner request is not shown: its headers may hold secrets the
        // caller did not mark sensitive.
        f.debug_struct("RequestBuilder")
            .field("timeout", &self.opts.timeout)
            .field("max_retries", &self.opts.max_retries)
            .field("retry_unsafe", &self.opts.retry_unsafe)
            .finish_non_exhaustive()
    }
}
