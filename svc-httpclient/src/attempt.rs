//! One attempt, and what it means: for the breaker, for the retry
//! decision, and for the caller.
//!
//! An attempt is one request on the wire, bounded by its own limit
//! (`min(attempt_timeout, remaining)`, reqwest's per-request timer, which
//! covers the body too). Its result is classified once, here, into an
//! [`Attempt`]: a response, or a [`Failure`] that knows its kind, whether
//! the call's deadline (not only the attempt's limit) ran out, and the
//! status of the head when only the body failed. Everything after reads
//! that classification: the breaker's [`Outcome`], the retry decision
//! ([`crate::retry`]), the span's `error.type`, and the caller's [`Error`].
//!
//! A body the client reads for the caller (`bytes()`, `decode()`, ...) is
//! read inside the attempt: a 2xx head followed by a body that stalls or is
//! cut short is a failed attempt, as a failed head would be. Counting only
//! the head would keep the breaker closed on a service that answers `200`
//! and then resets every connection.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Response, StatusCode};
use tracing::Span;

use crate::Outcome;
use crate::call::Call;
use crate::error::{Error, Kind};

/// How one attempt ended: a response (with its body when the call reads
/// it, see [`CallOptions::read_body`](crate::request::CallOptions)), or a
/// failure.
pub(crate) enum Attempt {
    Response(Response, Option<Bytes>),
    Failed(Failure),
}

/// An attempt that got no usable response.
pub(crate) struct Failure {
    pub(crate) kind: Kind,
    source: Option<reqwest::Error>,
    /// The call's deadline, not only the attempt's limit, was reached.
    pub(crate) deadline: bool,
    /// The status of the head, when the body is what failed.
    status: Option<StatusCode>,
}

// ===== impl Attempt =====

impl Attempt {
    /// The status of the response head, if one arrived.
    pub(crate) fn status(&self) -> Option<StatusCode> {
        match self {
            Attempt::Response(resp, _) => Some(resp.status()),
            Attempt::Failed(failure) => failure.status,
        }
    }

    /// The OpenTelemetry `error.type` of the attempt, given its `status`
    /// ([`Attempt::status`]): the status of a 4xx or 5xx response, or the
    /// kind of failure ([`Error::error_type`]'s vocabulary).
    pub(crate) fn error_type<'a>(&'a self, status: &'a Option<StatusCode>) -> Option<&'a str> {
        match (self, status) {
            (Attempt::Failed(failure), _) => Some(failure.kind.error_type()),
            (Attempt::Response(..), Some(status)) => {
                (status.is_client_error() || status.is_server_error()).then(|| status.as_str())
            }
            (Attempt::Response(..), None) => None,
        }
    }

    /// What the breaker makes of it.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Attempt::Failed(failure) => failure.outcome(),
            Attempt::Response(resp, _) => status_outcome(resp.status()),
        }
    }
}

/// What the breaker makes of a status (DESIGN.md §2).
pub(crate) fn status_outcome(status: StatusCode) -> Outcome {
    if status.is_success() || status.is_redirection() {
        Outcome::Success
    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Outcome::Failure
    } else {
        Outcome::Ignored
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
    let kind = if e.is_connect() {
        Kind::Connect
    } else if e.is_builder() {
        Kind::Request
    } else {
        Kind::Transport
    };
    Attempt::Failed(Failure::new(e, kind, limit, remaining, None))
}

// ===== impl Sending =====

/// One attempt on the wire, from its start hook to its end hook, polled
/// inside its span.
///
/// Hand-written rather than an `async` block: the pipeline's future is
/// moved (and boxed) by every caller, and each byte of its state is copied
/// with it. An `async` block keeps its inputs and its locals apart and
/// nests its callees' futures whole; here the request, the in-flight
/// response and the body read share one slot ([`Stage`]), which keeps the
/// call's future small.
///
/// `start` runs in the first poll (it injects the trace context and
/// starts the request: reqwest builds the request when it is executed),
/// `end` in the last one, both inside the span, so that an attempt enters
/// and exits its span once per poll and never more.
pub(crate) struct Sending<'a, S, F, E> {
    span: &'a Span,
    stage: Stage<S, F>,
    end: Option<E>,
    /// Read the body of a 2xx response, at most this many bytes.
    read_body: Option<u64>,
    limit: Duration,
    remaining: Duration,
}

/// Where an attempt is: the one slot its request, its response head and
/// its body read take in turn.
enum Stage<S, F> {
    Start(S),
    Head(F),
    /// Boxed: the body read's state is large and only buffered calls have
    /// it.
    Body(Pin<Box<dyn Future<Output = Attempt> + Send>>),
    Done,
}

impl<'a, S, F, E, T> Sending<'a, S, F, E>
where
    S: FnOnce() -> F + Unpin,
    F: Future<Output = Result<Response, reqwest::Error>> + Unpin,
    E: FnOnce(Attempt) -> T + Unpin,
{
    /// The attempt `start` sends (its timer already set to `limit`; see
    /// [`Sending`]), classified and handed to `end`. `remaining` is what
    /// was left of the call's deadline when the attempt started.
    pub(crate) fn new(
        span: &'a Span,
        start: S,
        read_body: Option<u64>,
        limit: Duration,
        remaining: Duration,
        end: E,
    ) -> Self {
        Sending {
            span,
            stage: Stage::Start(start),
            end: Some(end),
            read_body,
            limit,
            remaining,
        }
    }
}

impl<S, F, E, T> Future for Sending<'_, S, F, E>
where
    S: FnOnce() -> F + Unpin,
    F: Future<Output = Result<Response, reqwest::Error>> + Unpin,
    E: FnOnce(Attempt) -> T + Unpin,
{
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        let _entered = this.span.enter();
        loop {
            let attempt = match &mut this.stage {
                Stage::Start(_) => {
                    let Stage::Start(start) = std::mem::replace(&mut this.stage, Stage::Done)
                    else {
                        unreachable!("matched above")
                    };
                    this.stage = Stage::Head(start());
                    continue;
                }
                Stage::Head(head) => {
                    let attempt =
                        classify(ready!(Pin::new(head).poll(cx)), this.limit, this.remaining);
                    match (this.read_body, attempt) {
                        (Some(limit_bytes), Attempt::Response(resp, None))
                            if resp.status().is_success() =>
                        {
                            this.stage = Stage::Body(Box::pin(read_within_attempt(
                                resp,
                                limit_bytes,
                                this.limit,
                                this.remaining,
                            )));
                            continue;
                        }
                        (_, attempt) => attempt,
                    }
                }
                Stage::Body(body) => ready!(body.as_mut().poll(cx)),
                Stage::Done => panic!("an attempt polled after it completed"),
            };
            this.stage = Stage::Done;
            let end = this.end.take().expect("an attempt ends once");
            return Poll::Ready(end(attempt));
        }
    }
}

// ===== impl Failure =====

impl Failure {
    /// The failure of reqwest's error `e`: a timeout if it is one, else
    /// `kind`. The request's timer is `min(attempt_timeout, remaining)`: it
    /// is the call's deadline when the remaining time was the smaller.
    fn new(
        e: reqwest::Error,
        kind: Kind,
        limit: Duration,
        remaining: Duration,
        status: Option<StatusCode>,
    ) -> Failure {
        let (kind, deadline) = if e.is_timeout() {
            (Kind::AttemptTimeout(limit), limit >= remaining)
        } else {
            (kind, false)
        };
        Failure {
            kind,
            source: Some(e.without_url()),
            deadline,
            status,
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

    /// The error as the caller sees it: an attempt's timeout is the call's
    /// `Timeout`, with the attempt's limit as its source.
    pub(crate) fn into_error(self, call: &Call<'_>) -> Error {
        let (kind, attempt_limit) = match self.kind {
            Kind::AttemptTimeout(limit) => (Kind::Timeout, Some(limit)),
            kind => (kind, None),
        };
        let err = call.error(kind);
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

// ===== body reads =====

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
    mut resp: Response,
    limit_bytes: u64,
    limit: Duration,
    remaining: Duration,
) -> Attempt {
    let status = resp.status();
    match read_body(&mut resp, limit_bytes, false).await {
        Ok(body) => Attempt::Response(resp, Some(body)),
        Err(BodyRead::TooLarge) => Attempt::Failed(Failure {
            kind: Kind::BodyTooLarge(limit_bytes),
            source: None,
            deadline: false,
            status: Some(status),
        }),
        Err(BodyRead::Failed(e)) => {
            Attempt::Failed(Failure::new(e, Kind::Body, limit, remaining, Some(status)))
        }
    }
}
