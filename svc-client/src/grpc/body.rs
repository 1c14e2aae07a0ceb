//! The two bodies of a gRPC call: the request body, kept so a retry can
//! send it again, and the response body, which ends the attempt when the
//! status arrives.
//!
//! # Replaying the request
//!
//! `http::Request<Body>` is not `Clone`, and its body is a stream. As
//! linkerd2-proxy's `ReplayBody` does, the caller's body lives in a slot
//! that every attempt's body shares ([`Replay`]): an attempt polls the
//! caller's body through the slot and, for a method the caller marked
//! idempotent, keeps a copy of each chunk (up to [`REPLAY_LIMIT`]), so the
//! next attempt first replays the copies and then goes on reading. Only one
//! attempt reads at a time: starting an attempt makes the bodies of the
//! earlier ones fail, so a late poll from a connection being torn down
//! cannot steal the next attempt's data.
//!
//! A method that is not idempotent keeps no copy: it can be retried only
//! while no attempt has read anything of its body, which is the case when
//! the connection could not be made.
//!
//! # Ending the attempt
//!
//! A gRPC status is in the response head only for a trailers-only
//! response; otherwise it is in the trailers after the messages.
//! [`ResponseBody`] carries the attempt until then: the trailers (or the
//! end of the stream without them, `UNKNOWN`), a stream error, or the
//! attempt's deadline end it; dropping the body earlier is a cancellation,
//! which leaves the breaker unchanged. For a streaming response that is
//! when the stream ends.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;
use tonic::Status;

use super::attempt::{Attempt, End};
use super::classify;
use crate::error::GrpcProblem;

/// How much of an idempotent call's request body is kept to be replayed
/// (64 KiB). A larger body is sent once: the call is not retried after
/// its first attempt started reading it.
pub const REPLAY_LIMIT: usize = 64 * 1024;

// ===== request =====

/// The caller's request body, shared by the attempts of one call.
#[derive(Clone)]
pub(crate) struct Replay(Arc<Mutex<Slot>>);

struct Slot {
    /// The caller's body; `None` once it ended.
    inner: Option<tonic::body::Body>,
    /// The chunks read so far, while they are kept.
    chunks: Vec<Bytes>,
    trailers: Option<HeaderMap>,
    kept: usize,
    /// How many bytes may be kept (0: none).
    limit: usize,
    /// Everything read so far is kept, so the body can be sent again.
    replayable: bool,
    /// Some attempt read something of the caller's body.
    touched: bool,
    /// The attempt allowed to read.
    generation: u64,
}

impl Replay {
    /// Keeps `body` for the attempts of a call; up to `limit` bytes of it
    /// are kept to be replayed.
    pub(crate) fn new(body: tonic::body::Body, limit: usize) -> Replay {
        Replay(Arc::new(Mutex::new(Slot {
            inner: Some(body),
            chunks: Vec::new(),
            trailers: None,
            kept: 0,
            limit,
            replayable: true,
            touched: false,
            generation: 0,
        })))
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The body of the next attempt; the bodies of earlier attempts stop.
    pub(crate) fn body(&self) -> tonic::body::Body {
        let generation = {
            let mut slot = self.slot();
            slot.generation += 1;
            slot.generation
        };
        tonic::body::Body::new(ReplayBody {
            replay: self.clone(),
            generation,
            next_chunk: 0,
            trailers_sent: false,
        })
    }

    /// No attempt has read anything of the body yet.
    pub(crate) fn untouched(&self) -> bool {
        !self.slot().touched
    }

    /// The next attempt can send the whole body again.
    pub(crate) fn replayable(&self) -> bool {
        let slot = self.slot();
        !slot.touched || (slot.limit > 0 && slot.replayable)
    }
}

/// One attempt's view of the caller's body.
struct ReplayBody {
    replay: Replay,
    generation: u64,
    /// The next kept chunk to replay.
    next_chunk: usize,
    trailers_sent: bool,
}

impl Body for ReplayBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let mut slot = this.replay.slot();
        if slot.generation != this.generation {
            return Poll::Ready(Some(Err(Status::cancelled(
                "request body superseded by a retry",
            ))));
        }
        if let Some(chunk) = slot.chunks.get(this.next_chunk) {
            this.next_chunk += 1;
            return Poll::Ready(Some(Ok(Frame::data(chunk.clone()))));
        }
        if let Some(inner) = slot.inner.as_mut() {
            match ready!(Pin::new(inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    slot.touched = true;
                    match frame.into_data() {
                        Ok(data) => {
                            slot.keep(data.clone());
                            this.next_chunk = slot.chunks.len();
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        Err(frame) => {
                            if let Some(trailers) = frame.trailers_ref() {
                                slot.trailers = Some(trailers.clone());
                            }
                            this.trailers_sent = true;
                            return Poll::Ready(Some(Ok(frame)));
                        }
                    }
                }
                Some(Err(status)) => {
                    slot.touched = true;
                    slot.replayable = false;
                    return Poll::Ready(Some(Err(status)));
                }
                None => slot.inner = None,
            }
        }
        match &slot.trailers {
            Some(trailers) if !this.trailers_sent => {
                this.trailers_sent = true;
                Poll::Ready(Some(Ok(Frame::trailers(trailers.clone()))))
            }
            _ => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        let slot = self.replay.slot();
        slot.generation == self.generation
            && self.next_chunk >= slot.chunks.len()
            && slot.inner.is_none()
            && (slot.trailers.is_none() || self.trailers_sent)
    }
}

impl Slot {
    /// Keeps a copy of `data` while the body stays within the limit.
    fn keep(&mut self, data: Bytes) {
        if !self.replayable {
            return;
        }
        self.kept = self.kept.saturating_add(data.len());
        if self.kept > self.limit {
            self.replayable = false;
            self.chunks = Vec::new();
        } else if !data.is_empty() {
            self.chunks.push(data);
        }
    }
}

// ===== response =====

/// The response body of a call through a [`Channel`](super::Channel): the
/// service's messages and trailers, unchanged. It records the call's
/// outcome (breaker, span, metrics) when the status arrives, fails with
/// `DEADLINE_EXCEEDED` when the call's time runs out first, and counts as
/// cancelled (no breaker effect) when dropped before.
pub struct ResponseBody {
    inner: tonic::body::Body,
    /// The attempt, until its status is known.
    attempt: Option<Box<Attempt>>,
    deadline: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
}

impl ResponseBody {
    /// A body whose status is already known.
    pub(crate) fn done(inner: tonic::body::Body) -> ResponseBody {
        ResponseBody {
            inner,
            attempt: None,
            deadline: None,
            timed_out: false,
        }
    }

    /// A body whose status comes in the trailers; `attempt` ends then.
    pub(crate) fn pending(
        inner: tonic::body::Body,
        attempt: Attempt,
        deadline: tokio::time::Instant,
    ) -> ResponseBody {
        ResponseBody {
            inner,
            attempt: Some(Box::new(attempt)),
            deadline: Some(Box::pin(tokio::time::sleep_until(deadline))),
            timed_out: false,
        }
    }

    fn end(&mut self, end: End) {
        self.deadline = None;
        if let Some(mut attempt) = self.attempt.take() {
            attempt.finish(end);
            attempt.finish_call(end);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if this.attempt.is_some() && frame.is_trailers() {
                    let code = classify::trailer_status(frame.trailers_ref());
                    this.end(End::Status(code));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(status))) => {
                this.end(End::Failed(GrpcProblem::Transport));
                Poll::Ready(Some(Err(status)))
            }
            Poll::Ready(None) => {
                this.end(End::Status(tonic::Code::Unknown));
                Poll::Ready(None)
            }
            Poll::Pending => {
                if let Some(deadline) = this.deadline.as_mut()
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    this.timed_out = true;
                    let status = this.attempt.as_ref().map(|a| a.timed_out());
                    this.end(End::Failed(GrpcProblem::Timeout));
                    return Poll::Ready(status.map(Err));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("status_pending", &self.attempt.is_some())
            .finish_non_exhaustive()
    }
}
