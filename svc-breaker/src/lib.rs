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
//! # Feature flags
//!
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

mod breaker;
mod call;
mod clock;
mod config;
mod duration;
mod error;
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
