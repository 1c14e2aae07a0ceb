//! The breaker: the public [`CircuitBreaker`], its fast paths, and RAII
//! permits.
//!
//! The state lives in one atomic word (its layout and why: `word.rs`);
//! every change of it is made by the state machine (`machine.rs`), which
//! also explains the epochs. This file holds what a caller touches: acquire,
//! record, manual control, metrics.
//!
//! The closed path, the common case, is one load to acquire and one load to
//! record a success (plus a statistics counter in a cell owned by the
//! calling thread, see `metrics.rs`): no atomic read-modify-write at all,
//! and no write to a shared cache line unless the state changes or a
//! failure is counted. Open rejections are a load and a clock read.
//!
//! # Why permits
//!
//! A half-open trial slot is taken by incrementing the in-flight count with
//! a CAS, so exactly `half_open_max_calls` callers win however many race.
//! The slot is handed back by the permit, which records exactly once: by
//! `record*`, which consumes it, or by `Drop`, which records
//! [`Outcome::Ignored`]. A cancelled future drops its permit, so a caller
//! that goes away can never wedge the circuit in half-open (resilience4j
//! #544, Polly #1979, gobreaker #122).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{CircuitOpen, ConfigError};
use crate::machine::Shared;
use crate::metrics::{Counter, Metrics};
use crate::permit::{OwnedPermit, Permit};
use crate::transition::{Outcome, Reason, State};
use crate::word::{Grant, Tag, Word};

/// A circuit breaker. Cheap to clone; clones share state.
///
/// Acquire a [`Permit`] before each call and record the call's outcome on
/// it, or let [`call`](CircuitBreaker::call) do both around a future.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use svc_breaker::{CircuitBreaker, Config, Outcome, State};
///
/// let breaker = CircuitBreaker::new(
///     Config::default()
///         .failure_threshold(3)
///         .reset_timeout(Duration::from_secs(15)),
/// )?;
///
/// for _ in 0..3 {
///     match breaker.try_acquire() {
///         Ok(permit) => permit.record(Outcome::Failure), // e.g. a 503
///         Err(open) => unreachable!("{open}"),
///     }
/// }
/// assert_eq!(breaker.state(), State::Open);
/// let open = breaker.try_acquire().unwrap_err();
/// assert!(open.retry_after() <= Duration::from_secs(15));
/// # Ok::<(), svc_breaker::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

impl Default for CircuitBreaker {
    /// The seed's breaker: 5 consecutive failures, 30 s, 1 trial, 1 success.
    fn default() -> Self {
        match CircuitBreaker::new(Config::default()) {
            Ok(breaker) => breaker,
            Err(e) => unreachable!("the default config is valid: {e}"),
        }
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.shared.load();
        f.debug_struct("CircuitBreaker")
            .field("state", &w.state())
            .field("forced_open", &(w.tag() == Tag::ForcedOpen))
            .field("disabled", &(w.tag() == Tag::Disabled))
            .field("epoch", &w.epoch())
            .field("config", &self.shared.config)
            .finish()
    }
}

impl CircuitBreaker {
    /// A closed breaker with `config`, or an error naming the invalid
    /// setting.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(CircuitBreaker {
            shared: Arc::new(Shared::new(config)),
        })
    }

    /// [`new`](CircuitBreaker::new) with a clock, e.g. a
    /// [`ManualClock`](crate::ManualClock) in tests.
    pub fn with_clock(config: Config, clock: impl Clock) -> Result<Self, ConfigError> {
        CircuitBreaker::new(config.clock(clock))
    }

    /// The configuration this breaker was built with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The current state. An open circuit whose period has elapsed becomes
    /// half-open here (and the listener hears of it), as it would on the
    /// next [`try_acquire`](CircuitBreaker::try_acquire).
    pub fn state(&self) -> State {
        self.shared.current().state()
    }

    /// Whether the circuit is held open by [`force_open`](Self::force_open).
    pub fn is_forced_open(&self) -> bool {
        self.shared.load().tag() == Tag::ForcedOpen
    }

    /// Whether the breaker is [`disable`](Self::disable)d.
    pub fn is_disabled(&self) -> bool {
        self.shared.load().tag() == Tag::Disabled
    }

    /// A permit to make one call, or [`CircuitOpen`] without any allocation.
    ///
    /// Closed: always granted. Open: rejected until the open period has
    /// elapsed, then the circuit turns half-open and this call is the first
    /// trial. Half-open: granted while fewer than `half_open_max_calls`
    /// trials are in flight.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, CircuitOpen> {
        // The closed path, small enough to inline: one load.
        let w = self.shared.load();
        if self.shared.fast && matches!(w.tag(), Tag::Closed | Tag::Disabled) {
            return Ok(Permit::new(self, Grant::untimed(w.epoch(), false)));
        }
        if w.tag() == Tag::Open {
            self.shared.still_open(w)?;
        }
        self.try_acquire_slow()
    }

    #[inline(never)]
    fn try_acquire_slow(&self) -> Result<Permit<'_>, CircuitOpen> {
        let (grant, transition) = self.shared.acquire()?;
        // The permit exists before the listener runs: if the listener
        // panics, the permit's drop hands the trial slot back.
        let permit = Permit::new(self, grant);
        if let Some(t) = transition {
            self.shared.notify(&t);
        }
        Ok(permit)
    }

    /// [`try_acquire`](CircuitBreaker::try_acquire) for a permit that owns a
    /// clone of the breaker, to move into a spawned task.
    #[inline]
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, CircuitOpen> {
        let (grant, transition) = self.shared.acquire()?;
        let permit = OwnedPermit::new(self.clone(), grant);
        if let Some(t) = transition {
            self.shared.notify(&t);
        }
        Ok(permit)
    }

    /// Holds the circuit open until [`reset`](Self::reset) (or
    /// [`disable`](Self::disable)): every call is rejected with a
    /// [`CircuitOpen`] whose [`is_forced`](CircuitOpen::is_forced) is true.
    /// Permits in flight become stale. [`state`](Self::state) reports
    /// [`State::Open`].
    pub fn force_open(&self) {
        self.shared.manual(Tag::ForcedOpen, Reason::ForcedOpen);
    }

    /// Lets every call through whatever happens, still counting outcomes in
    /// the [`metrics`](Self::metrics), until [`reset`](Self::reset) (or
    /// [`force_open`](Self::force_open)). [`state`](Self::state) reports
    /// [`State::Closed`].
    pub fn disable(&self) {
        self.shared.manual(Tag::Disabled, Reason::Disabled);
    }

    /// Back to a fresh closed state: failure counts, the rate window and the
    /// open backoff are cleared, and permits in flight become stale.
    pub fn reset(&self) {
        self.shared.manual(Tag::Closed, Reason::Reset);
    }

    /// A snapshot of the state and counters.
    pub fn metrics(&self) -> Metrics {
        self.shared.metrics()
    }

    /// Records a permit's outcome. Only the closed-path success is inline;
    /// everything else is out of line, so that this stays small at every
    /// call site (each `record*` and each permit's drop).
    #[inline(always)]
    pub(crate) fn finish(&self, grant: Grant, outcome: Outcome, elapsed: Option<Duration>) {
        let s = &*self.shared;
        if s.fast && !grant.trial() && outcome == Outcome::Success {
            // The closed path: a success with no failure count to reset.
            s.counters.add(Counter::Success, false);
            let w = s.load();
            // The common case first, in one comparison: still closed, in the
            // permit's epoch, with no failure count to reset.
            if w == Word::new(Tag::Closed, grant.epoch(), 0) {
                return;
            }
            if w.epoch() != grant.epoch()
                || w.tag() == Tag::Disabled
                || (w.tag() == Tag::Closed && w.payload() == 0)
            {
                return;
            }
            return self.apply(grant, outcome, false);
        }
        self.finish_slow(grant, outcome, elapsed);
    }

    #[inline(never)]
    fn finish_slow(&self, grant: Grant, outcome: Outcome, elapsed: Option<Duration>) {
        let s = &*self.shared;
        let slow = s.is_slow(grant, outcome, elapsed);
        s.counters.add(Counter::of(outcome), slow);
        if outcome == Outcome::Ignored && !grant.trial() {
            return;
        }
        self.apply(grant, outcome, slow);
    }

    #[inline(never)]
    fn apply(&self, grant: Grant, outcome: Outcome, slow: bool) {
        if let Some(t) = self.shared.apply(grant, outcome, slow) {
            self.shared.notify(&t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let word = std::mem::size_of::<usize>();
        assert_eq!(std::mem::size_of::<CircuitOpen>(), 8);
        assert_eq!(std::mem::size_of::<CircuitBreaker>(), word);
        // The breaker, the grant's flags and epoch, and the exact start of a
        // timed call.
        assert_eq!(std::mem::size_of::<Permit<'_>>(), word + 16);
        assert_eq!(
            std::mem::size_of::<Result<Permit<'_>, CircuitOpen>>(),
            word + 16
        );
        assert_eq!(std::mem::size_of::<OwnedPermit>(), word + 16);
    }
}
