//! `call` / `call_with` on a hand-polled executor, cancellation included,
//! and the error types.

use std::error::Error as _;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use svc_breaker::{CircuitBreaker, CircuitOpen, Config, Error, ManualClock, Outcome, State};

/// Polls a future to completion on the current thread.
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// Pending on its first poll, then ready with `out`.
struct PendingOnce<T>(Option<T>, bool);

impl<T: Unpin> Future for PendingOnce<T> {
    type Output = T;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if !self.1 {
            self.1 = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.0.take().expect("polled after completion"))
    }
}

fn half_open_breaker() -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let b =
        CircuitBreaker::with_clock(Config::default().failure_threshold(1), clock.clone()).unwrap();
    b.try_acquire().unwrap().record_failure();
    clock.advance(Duration::from_secs(30));
    (b, clock)
}

#[test]
fn ok_is_a_success_and_err_a_failure() {
    let b = CircuitBreaker::new(Config::default().failure_threshold(2)).unwrap();
    assert_eq!(
        block_on(b.call(async { Ok::<_, std::io::Error>(7) })).unwrap(),
        7
    );
    assert_eq!(b.metrics().successes(), 1);
    for _ in 0..2 {
        let err = block_on(b.call(async { Err::<(), _>(std::io::Error::other("boom")) }));
        assert!(matches!(err, Err(Error::Inner(ref e)) if e.to_string() == "boom"));
    }
    assert_eq!(b.state(), State::Open);
}

#[test]
fn open_circuit_never_polls_the_future() {
    let b = CircuitBreaker::new(Config::default()).unwrap();
    b.force_open();
    let polled = Arc::new(AtomicBool::new(false));
    let p = Arc::clone(&polled);
    let result = block_on(b.call(async move {
        p.store(true, Ordering::SeqCst);
        Ok::<(), std::io::Error>(())
    }));
    let err = result.unwrap_err();
    assert!(err.is_open());
    assert!(err.as_open().unwrap().is_forced());
    assert!(!polled.load(Ordering::SeqCst));
    assert_eq!(err.to_string(), "circuit breaker is forced open");
}

#[test]
fn classifier_decides_the_outcome() {
    let b = CircuitBreaker::new(Config::default().failure_threshold(1)).unwrap();
    let not_found_is_ignored = |r: &Result<(), u16>| match r {
        Ok(()) => Outcome::Success,
        Err(404) => Outcome::Ignored,
        Err(_) => Outcome::Failure,
    };
    let r = block_on(b.call_with(not_found_is_ignored, async { Err(404) }));
    assert_eq!(r, Err(Error::Inner(404)));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().ignored(), 1);
    let r = block_on(b.call_with(not_found_is_ignored, async { Err(503) }));
    assert_eq!(r.unwrap_err().into_inner(), Some(503));
    assert_eq!(b.state(), State::Open);

    // A classifier may also turn an `Ok` into a failure.
    let b = CircuitBreaker::new(Config::default().failure_threshold(1)).unwrap();
    let r = block_on(b.call_with(|_: &Result<u16, ()>| Outcome::Failure, async { Ok(500) }));
    assert_eq!(r, Ok(500));
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_cancelled_trial_frees_the_half_open_slot() {
    let (b, _clock) = half_open_breaker();
    {
        let mut fut = pin!(b.call(PendingOnce(Some(Ok::<u8, ()>(1)), false)));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending(), "mid-call");
        assert_eq!(b.metrics().half_open_in_flight(), 1);
        assert!(b.try_acquire().is_err(), "the slot is taken");
        // The caller goes away: the future is dropped mid-await.
    }
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.metrics().half_open_in_flight(), 0);
    assert_eq!(b.metrics().ignored(), 1);
    let r = block_on(b.call(PendingOnce(Some(Ok::<u8, ()>(2)), false)));
    assert_eq!(r, Ok(2));
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_panicking_classifier_releases_the_permit() {
    let (b, _clock) = half_open_breaker();
    let b2 = b.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        block_on(
            b2.call_with(|_: &Result<(), ()>| panic!("classifier bug"), async {
                Ok(())
            }),
        )
    }));
    assert!(result.is_err());
    assert!(
        b.try_acquire().is_ok(),
        "slot freed by the unwinding permit"
    );
}

#[test]
fn call_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let b = CircuitBreaker::default();
    let fut = b.call(async { Ok::<(), std::io::Error>(()) });
    assert_send(&fut);
}

#[derive(Debug)]
struct Wrapped(std::fmt::Error);

impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("query failed")
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn error_is_transparent() {
    let e: Error<Wrapped> = Error::Inner(Wrapped(std::fmt::Error));
    assert_eq!(e.to_string(), "query failed");
    let source = e.source().expect("the inner error's own source");
    assert!(source.is::<std::fmt::Error>());
    let open: Error<Wrapped> = open_error().into();
    assert!(open.source().is_none());
    assert_eq!(open.to_string(), "circuit breaker is open");
}

fn open_error() -> CircuitOpen {
    let b = CircuitBreaker::new(Config::default().failure_threshold(1)).unwrap();
    b.try_acquire().unwrap().record_failure();
    b.try_acquire().unwrap_err()
}

#[test]
fn circuit_open_is_small_copy_and_static() {
    fn assert_traits<T: Copy + Send + Sync + 'static + std::error::Error>() {}
    assert_traits::<CircuitOpen>();
    assert_eq!(std::mem::size_of::<CircuitOpen>(), 8);
}
