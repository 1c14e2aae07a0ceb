//! A lock-free, cancellation-safe circuit breaker for any transport.
//!
//! # Overview
//!
//! A circuit breaker stops calling a dependency that keeps failing, so that
//! an outage costs the caller a fast error instead of a pile of hung
//! requests, and gives the dependency room to recover. This crate is the
//! breaker inside `svc-httpclient` and `svc-client`, and stands on its own
//! for anything else: a database pool, a gRPC channel, a queue consumer. It
//! depends on `std` only (no async runtime), and its behaviour is the seed's:
//!
//! | State | Behaviour |
//! |---|---|
//! | Closed | calls pass; 5 consecutive failures open the circuit |
//! | Open | every call fails at once with [`CircuitOpen`], for 30 s |
//! | Half-open | one trial call passes, the rest fail fast; a success closes, a failure re-opens |
//!
//! Beyond the seed:
//!
//! - **Permits.** [`CircuitBreaker::try_acquire`] returns a [`Permit`] that
//!   records the call's [`Outcome`] exactly once. Dropping it unrecorded
//!   (a cancelled future, a panic) counts as [`Outcome::Ignored`] and frees
//!   its half-open slot, so no caller can wedge the circuit in half-open.
//!   [`OwnedPermit`] moves into spawned tasks.
//! - **Epochs.** Each transition starts a new epoch; a permit's outcome
//!   changes the state only in the epoch it was granted in, so a late
//!   result from before an opening cannot close the circuit again.
//! - **Lock-free.** The whole state is one atomic word changed by
//!   compare-and-swap (see the `word` module's source for the layout and
//!   why). The closed path is two loads and a per-thread counter, with no
//!   atomic read-modify-write; rejections take no lock and allocate nothing.
//! - **Policies.** Consecutive failures (default) or a [`FailureRate`] over
//!   the last N calls, optionally counting slow calls; `half_open_max_calls`
//!   concurrent trials and `success_threshold` successes to close; an
//!   optional [`OpenBackoff`] growing the open period on repeated re-opens;
//!   an optional [`max_half_open_wait`](Config::max_half_open_wait), after
//!   which a trial that never finished counts as failed.
//! - **Any clock.** Times are kept relative to the clock's reading when the
//!   breaker is built, so a [`Clock`] may count from any origin.
//! - **Control and insight.** [`force_open`](CircuitBreaker::force_open),
//!   [`disable`](CircuitBreaker::disable), [`reset`](CircuitBreaker::reset);
//!   [`metrics`](CircuitBreaker::metrics) snapshots; a
//!   [transition listener](Config::on_transition); an injectable [`Clock`]
//!   ([`ManualClock`] in tests).
//! - **Async.** [`CircuitBreaker::call`] and [`call_with`](CircuitBreaker::call_with)
//!   run a future under a permit on any executor.
//! - **tower.** With the `tower` feature, `CircuitBreakerLayer` guards any
//!   `tower::Service` (a tonic channel, a hyper client).
//!
//! Bad settings are rejected by [`CircuitBreaker::new`] with a [`ConfigError`]
//! naming the setting, never by a panic in the middle of traffic.
//!
//! # Example
//!
//! Services built on `svc-client` get a breaker per dependency without
//! writing any of this; other transports use it directly:
//!
//! ```
//! use std::time::Duration;
//! use svc_breaker::{CircuitBreaker, Config, ManualClock, State};
//!
//! let clock = ManualClock::new(); // in production: leave the default clock
//! let breaker = CircuitBreaker::with_clock(Config::default(), clock.clone())?;
//!
//! // Five consecutive failures open the circuit...
//! for _ in 0..5 {
//!     breaker.try_acquire()?.record_failure();
//! }
//! assert_eq!(breaker.state(), State::Open);
//! let open = breaker.try_acquire().unwrap_err();
//! assert_eq!(open.retry_after(), Duration::from_secs(30));
//!
//! // ... 30 s later one trial goes through, and its success closes it.
//! clock.advance(Duration::from_secs(30));
//! let trial = breaker.try_acquire()?;
//! assert_eq!(breaker.state(), State::HalfOpen);
//! assert!(breaker.try_acquire().is_err(), "only one trial at a time");
//! trial.record_success();
//! assert_eq!(breaker.state(), State::Closed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With a future (any executor):
//!
//! ```
//! use svc_breaker::{CircuitBreaker, Error};
//!
//! # async fn query() -> Result<u32, std::io::Error> { Ok(7) }
//! # async fn run() -> Result<(), Error<std::io::Error>> {
//! let breaker = CircuitBreaker::default();
//! let rows = breaker.call(query()).await?;
//! # let _ = rows;
//! # Ok(())
//! # }
//! ```
//!
//! As a tower layer (feature `tower`), here on a tonic channel; any
//! `tower::Service` works the same way:
//!
//! ```no_run
//! # #[cfg(feature = "tower")]
//! # mod example {
//! use svc_breaker::{CircuitBreaker, CircuitBreakerLayer, Outcome};
//! use tonic::Code;
//! use tonic::body::Body;
//! use tonic::codegen::http::Response;
//! use tonic::transport::{Channel, Error};
//! use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
//! use tower::ServiceBuilder;
//!
//! /// gRPC's view: transport errors and server-side codes fail, `OK`
//! /// succeeds, the caller's own mistakes (`NOT_FOUND`, ...) have no effect.
//! fn classify(result: &Result<Response<Body>, Error>) -> Outcome {
//!     let Ok(response) = result else { return Outcome::Failure };
//!     // An immediate error status comes "trailers-only", in the head; a
//!     // status sent after a body is in the trailers, which a layer does
//!     // not see: such a call counts as a success.
//!     match response.headers().get("grpc-status") {
//!         None => Outcome::Success,
//!         Some(code) => match Code::from_bytes(code.as_bytes()) {
//!             Code::Ok => Outcome::Success,
//!             Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted
//!             | Code::Internal | Code::Unknown => Outcome::Failure,
//!             _ => Outcome::Ignored,
//!         },
//!     }
//! }
//!
//! async fn run() -> Result<(), Box<dyn std::error::Error>> {
//!     let channel = Channel::from_static("http://127.0.0.1:50051").connect_lazy();
//!     let channel = ServiceBuilder::new()
//!         .layer(CircuitBreakerLayer::new(CircuitBreaker::default()).classify(classify))
//!         .service(channel);
//!     // An open circuit fails the call at once: its `Status` has the
//!     // breaker's `Error::Open` as its source.
//!     let mut health = HealthClient::new(channel);
//!     health.check(HealthCheckRequest { service: String::new() }).await?;
//!     Ok(())
//! }
//! # }
//! ```
//!
//! `poll_ready` is the inner service's; the breaker decides in `call`, so a
//! service made ready and never called holds no half-open trial (see
//! `CircuitBreakerLayer`).
//!
//! # Feature flags
//!
//! - `tower` (off): `CircuitBreakerLayer`, the breaker as a tower layer.
//!   Adds only `tower-service` and `tower-layer`.
//! - `tracing` (off): logs every transition with [`tracing`](https://docs.rs/tracing),
//!   at `warn` when the circuit opens and `info` otherwise.
//! - `serde` (off): [`Config`], [`FailureRate`] and [`OpenBackoff`]
//!   deserialize from (and serialize to) files, with durations written as
//!   [`parse_duration`] reads them (`"30s"`); see
//!   [`Config`'s documentation](Config#from-a-file-feature-serde), and
//!   [`serde_duration`] for durations in a service's own settings. Adds
//!   only `serde`.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is **1.88**. Raising it is not a
//! breaking change, but is noted in the changelog.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod breaker;
mod call;
mod clock;
mod config;
mod duration;
mod error;
#[cfg(feature = "tower")]
mod layer;
mod loom;
mod machine;
mod metrics;
mod permit;
mod policy;
mod transition;
mod window;
mod word;

pub use breaker::CircuitBreaker;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, FailureRate, MAX_HALF_OPEN_CALLS, MAX_WINDOW, OpenBackoff};
#[cfg(feature = "serde")]
pub use duration::serde_duration;
pub use duration::{ParseDurationError, format_duration, parse_duration};
pub use error::{CircuitOpen, ConfigError, Error};
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use layer::{
    CircuitBreakerLayer, CircuitBreakerService, Classify, OkIsSuccess, ResponseFuture,
};
pub use metrics::Metrics;
pub use permit::{OwnedPermit, Permit};
pub use transition::{Outcome, Reason, State, Transition};

// The README's examples are compiled and run with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_static<T: Send + Sync + 'static>() {}

    #[test]
    fn public_types_are_thread_safe() {
        assert_send_sync_static::<CircuitBreaker>();
        assert_send_sync_static::<CircuitOpen>();
        assert_send_sync_static::<Config>();
        assert_send_sync_static::<OwnedPermit>();
        assert_send_sync_static::<Metrics>();
        assert_send_sync_static::<Transition>();
        assert_send_sync_static::<Error<std::io::Error>>();
        fn permit_is_send(_: &Permit<'_>)
        where
            for<'a> Permit<'a>: Send,
        {
        }
        let breaker = CircuitBreaker::default();
        permit_is_send(&breaker.try_acquire().unwrap());
    }
}
