//! `CircuitBreakerLayer`: the breaker as a tower middleware (feature `tower`).
//!
//! tower is how the Rust ecosystem composes clients: a tonic channel, a
//! hyper client, any `tower::Service`. This layer gives one of them the
//! breaker without hand-written permits: each `call` takes a permit, and the
//! response future records what the [`Classify`] says the result means.
//!
//! How `poll_ready` behaves, and why, is on [`CircuitBreakerLayer`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tower_layer::Layer;
use tower_service::Service;

use crate::breaker::CircuitBreaker;
use crate::error::{CircuitOpen, Error};
use crate::permit::{OwnedPermit, Permit};
use crate::transition::Outcome;

// ===== classification =====

/// What a service's result means for the breaker: the [`Outcome`] of one
/// call, from its `Result<Response, Error>`.
///
/// Implemented by every `Fn(&Result<R, E>) -> Outcome` (give one to
/// [`CircuitBreakerLayer::classify`]) and by [`OkIsSuccess`], the default.
pub trait Classify<R, E> {
    /// The outcome of a call that returned `result`.
    fn classify(&self, result: &Result<R, E>) -> Outcome;
}

impl<R, E, F> Classify<R, E> for F
where
    F: Fn(&Result<R, E>) -> Outcome,
{
    #[inline]
    fn classify(&self, result: &Result<R, E>) -> Outcome {
        self(result)
    }
}

/// The default [`Classify`]: `Ok` is a success, `Err` a failure, as in
/// [`CircuitBreaker::call`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OkIsSuccess;

impl<R, E> Classify<R, E> for OkIsSuccess {
    #[inline]
    fn classify(&self, result: &Result<R, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

// ===== boxed errors =====

/// A boxed error, as tower middleware (`Buffer`, `Timeout`) and tonic use.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<E: Into<BoxError>> Error<E> {
    /// The error as tower's `BoxError`: the [`CircuitOpen`] of an open
    /// circuit, or the inner error as it was.
    ///
    /// `Error<E>` is a `std::error::Error` only when `E` is, and tower's
    /// own middleware fails with a `Box<dyn Error + Send + Sync>`, which is
    /// not. Over such a service, `ServiceBuilder::map_err(Error::into_boxed)`
    /// gives a stack whose error is a `BoxError` again, as tonic's clients
    /// and most tower code expect. Downcast it to [`CircuitOpen`] to tell a
    /// rejection apart.
    ///
    /// # Example
    ///
    /// ```
    /// use svc_breaker::{CircuitOpen, CircuitBreaker, Error};
    ///
    /// let breaker = CircuitBreaker::default();
    /// breaker.force_open();
    /// let open: Error<Box<dyn std::error::Error + Send + Sync>> =
    ///     Error::Open(breaker.try_acquire().unwrap_err());
    /// assert!(open.into_boxed().downcast_ref::<CircuitOpen>().is_some());
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
    pub fn into_boxed(self) -> BoxError {
        match self {
            Error::Open(open) => Box::new(open),
            Error::Inner(e) => e.into(),
        }
    }
}

// ===== impl CircuitBreakerLayer =====

/// A tower layer putting a [`CircuitBreaker`] in front of a service.
///
/// Every service it builds shares the one breaker (clones of a breaker
/// share state), so a layer applied to each connection of a pool guards
/// them together.
///
/// The service's error is [`Error<S::Error>`](Error): [`Error::Open`] when
/// the circuit was open and the inner service was not called,
/// [`Error::Inner`] for the inner service's own error. Over a service
/// failing with tower's `BoxError` (`Timeout`, `Buffer`), which is not a
/// `std::error::Error`, add `.map_err(Error::into_boxed)` outside the layer
/// to get a `BoxError` stack again, as tonic's clients expect.
///
/// # Where the decision is taken: `call`, not `poll_ready`
///
/// `poll_ready` asks the inner service only. Readiness is about capacity
/// (a buffer slot, a connection, a concurrency permit), and tower lets a
/// caller poll for readiness and then never call (a `select!` that picked
/// another branch, a balancer probing its endpoints). Taking the permit there
/// would hold a half-open trial slot for a call that may never be made, and
/// an "open" answer from `poll_ready` would, by tower's contract, tell the
/// caller to discard the service for good. So `call` takes the permit: when
/// the circuit is open it answers [`Error::Open`] at once and the inner
/// service is not called (its reserved capacity, if any, stays reserved for
/// the next `call`, as tower allows).
///
/// An error from the inner `poll_ready` is returned as [`Error::Inner`] and
/// **is not recorded**: no permit is held, and tower says a service whose
/// `poll_ready` failed is broken for good and must be dropped, so it is not
/// one call's outcome. (A `tower::buffer::Buffer`, which tonic's `Channel`
/// is, reports a dead worker this way; connection errors come from the
/// response future and do count.)
///
/// # Cost
///
/// The inner future is boxed: one allocation per admitted call (a rejected
/// call allocates nothing). Polling it in place would need pin projection,
/// which takes `unsafe` code or a macro crate, and this crate forbids the
/// one and depends on nothing but tower's two contract crates. tonic's
/// channel already boxes every call, so the box is small next to a call.
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
/// use svc_breaker::{CircuitBreaker, CircuitBreakerLayer, Config, Error, Outcome, State};
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut f = std::pin::pin!(f);
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// // Any tower service; here one answering an HTTP-like status.
/// #[derive(Clone)]
/// struct Backend;
/// impl Service<u16> for Backend {
///    type Response = u16;
///    type Error = Infallible;
///    type Future = std::future::Ready<Result<u16, Infallible>>;
///    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
///        std::task::Poll::Ready(Ok(()))
///    }
///    fn call(&mut self, status: u16) -> Self::Future {
///        std::future::ready(Ok(status))
///    }
/// }
///
/// let breaker = CircuitBreaker::new(Config::default().failure_threshold(2))?;
/// let layer = CircuitBreakerLayer::new(breaker.clone()).classify(
///    |result: &Result<u16, Infallible>| match result {
///        Ok(status) if *status >= 500 => Outcome::Failure,
///        _ => Outcome::Success,
///    },
/// );
/// let mut service = layer.layer(Backend);
///
/// for _ in 0..2 {
///    assert_eq!(block_on(service.call(503)), Ok(503));
/// }
/// assert_eq!(breaker.state(), State::Open);
/// // Open: answered at once, `Backend` is not called.
/// assert!(matches!(block_on(service.call(200)), Err(Error::Open(_))));
/// # Ok::<(), svc_breaker::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct CircuitBreakerLayer<C = OkIsSuccess> {
    breaker: CircuitBreaker,
    classify: C,
}

impl CircuitBreakerLayer {
    /// A layer guarding services with `breaker`: `Ok` is a success, `Err` a
    /// failure (change it with [`classify`](Self::classify)).
    pub fn new(breaker: CircuitBreaker) -> Self {
        CircuitBreakerLayer {
            breaker,
            classify: OkIsSuccess,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Decides what a result means for the breaker, e.g. that a "not found"
    /// says nothing about the dependency's health, or that an `Ok` response
    /// with a 503 inside is a failure. `classify` is cloned into each call's
    /// future; closures are cheap to clone.
    ///
    /// # Example
    ///
    /// ```
    /// use std::io::{Error, ErrorKind};
    /// use svc_breaker::{CircuitBreaker, CircuitBreakerLayer, Outcome};
    ///
    /// let layer = CircuitBreakerLayer::new(CircuitBreaker::default()).classify(
    ///     |result: &Result<String, Error>| match result {
    ///         Ok(_) => Outcome::Success,
    ///         Err(e) if e.kind() == ErrorKind::NotFound => Outcome::Ignored,
    ///         Err(_) => Outcome::Failure,
    ///     },
    /// );
    /// # let _ = layer;
    /// ```
    pub fn classify<R, E, F>(self, classify: F) -> CircuitBreakerLayer<F>
    where
        F: Fn(&Result<R, E>) -> Outcome + Clone,
    {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify,
        }
    }

    /// The breaker the layer's services share.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<C> fmt::Debug for CircuitBreakerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

// ===== impl CircuitBreakerService =====

/// A service guarded by a circuit breaker, built by [`CircuitBreakerLayer`]
/// (or [`CircuitBreakerService::new`]).
///
/// `poll_ready` is the inner service's; `call` takes a permit or answers
/// [`Error::Open`] without calling the inner service (why: see
/// [`CircuitBreakerLayer`]).
#[derive(Clone)]
pub struct CircuitBreakerService<S, C = OkIsSuccess> {
    inner: S,
    breaker: CircuitBreaker,
    classify: C,
}

impl<S> CircuitBreakerService<S> {
    /// `inner` guarded by `breaker`, with the default classification (`Ok`
    /// is a success, `Err` a failure).
    pub fn new(inner: S, breaker: CircuitBreaker) -> Self {
        CircuitBreakerService {
            inner,
            breaker,
            classify: OkIsSuccess,
        }
    }
}

impl<S, C> CircuitBreakerService<S, C> {
    /// The breaker guarding this service.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The inner service.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    /// The inner service's readiness; an error is [`Error::Inner`] and is
    /// not recorded (no permit is held, and the service is broken for good).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.breaker.try_acquire().map(Permit::into_owned) {
            Ok(permit) => ResponseFuture {
                state: FutureState::Called {
                    future: Box::pin(self.inner.call(request)),
                    permit: Some(permit),
                    classify: self.classify.clone(),
                },
            },
            Err(open) => ResponseFuture {
                state: FutureState::Open(open),
            },
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for CircuitBreakerService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

// ===== impl ResponseFuture =====

/// The response future of [`CircuitBreakerService`].
///
/// It holds the call's permit: dropping it before it completes (a timeout,
/// a cancelled request) records [`Outcome::Ignored`] and frees a half-open
/// trial slot.
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture<F, C> {
    state: FutureState<F, C>,
}

enum FutureState<F, C> {
    /// The circuit was open: the inner service was not called.
    Open(CircuitOpen),
    Called {
        future: Pin<Box<F>>,
        /// `None` once recorded.
        permit: Option<OwnedPermit>,
        classify: C,
    },
}

// Sound without `unsafe`: the inner future is pinned in its own box, and no
// field is ever pinned through a `Pin<&mut ResponseFuture>`, so moving the
// classifier or the permit is fine whatever their types.
impl<F, C> Unpin for ResponseFuture<F, C> {}

impl<F, T, E, C> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classify<T, E>,
{
    type Output = Result<T, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            FutureState::Open(open) => Poll::Ready(Err(Error::Open(*open))),
            FutureState::Called {
                future,
                permit,
                classify,
            } => {
                let result = ready!(future.as_mut().poll(cx));
                if let Some(permit) = permit.take() {
                    permit.record(classify.classify(&result));
                }
                Poll::Ready(result.map_err(Error::Inner))
            }
        }
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            FutureState::Open(open) => f.debug_tuple("ResponseFuture::Open").field(open).finish(),
            FutureState::Called { permit, .. } => f
                .debug_struct("ResponseFuture::Called")
                .field("permit", permit)
                .finish_non_exhaustive(),
        }
    }
}
