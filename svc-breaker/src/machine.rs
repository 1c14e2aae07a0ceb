//! The state machine: which word follows which, each change one
//! compare-and-swap on the state word (see `word.rs` for its layout).
//!
//! # Why epochs
//!
//! Every transition increments the epoch, and every permit remembers the
//! epoch it was granted in. Recording compares the two inside the same CAS
//! that applies the result, so a call that started before a transition
//! (a slow request granted while closed, finishing after the circuit opened
//! and half-opened again) can never change the later state: it is counted
//! in the metrics and otherwise dropped. This is gobreaker's generation
//! counter; Polly #217 shows the bug it prevents. The epoch has 21 bits and
//! wraps: a permit would have to stay in flight across two million
//! transitions to be mistaken for a current one, and even then only a
//! permit of the same kind (a trial in half-open, a closed-state permit in
//! closed) is accepted: a stale closed-state permit can never free a trial
//! slot it did not take.
//!
//! # What is not in the word
//!
//! The failure-rate window (a ring of atomics, see `window.rs`), the number
//! of consecutive re-opens for the open backoff (a separate atomic tagged
//! with the epoch that wrote it, so a late writer cannot overwrite a newer
//! value), and statistics. The transition listener is called by the thread
//! whose CAS made the transition, after the CAS, holding nothing.

use std::sync::Arc;
use std::sync::atomic::AtomicU64 as StatU64;
use std::time::Duration;

use crate::clock::{AnyClock, SystemClock, nanos};
use crate::config::Config;
use crate::error::CircuitOpen;
use crate::loom::{AtomicU64, Ordering};
use crate::metrics::{Counter, Counters, Metrics};
use crate::policy::{Policy, RatePolicy};
#[cfg(feature = "tracing")]
use crate::transition::State;
use crate::transition::{Outcome, Reason, Transition};
use crate::word::{EpochCell, Grant, Tag, Word, ceil_millis};

/// What the clones of one [`CircuitBreaker`](crate::CircuitBreaker) share:
/// the state word and everything beside it.
pub(crate) struct Shared {
    word: AtomicU64,
    // Consecutive-failures policy and no call timing: a closed-path success
    // with no failures to reset is one load and a counter.
    pub(crate) fast: bool,
    policy: Policy,
    slow_call_duration: Option<Duration>,
    pub(crate) config: Config,
    clock: AnyClock,
    // The clock's reading in `new()`: every time kept by the breaker is
    // relative to it, so any clock origin works.
    origin: Duration,
    // The longest open period, in nanoseconds: the cap of `retry_after`.
    longest_open: u64,
    pub(crate) counters: Counters,
    // Consecutive opens since the circuit last closed, with the epoch that
    // wrote them: written only by the thread whose CAS made a transition,
    // and only if its epoch is newer than the stored one.
    reopens: EpochCell,
    // With `max_half_open_wait`: the deadline in ms of the current half-open
    // period, with its epoch, written by the thread that entered it, and
    // only if its epoch is newer. A half-open word whose epoch is not the
    // stored one has just been entered (its deadline is being written).
    half_open_until: EpochCell,
    // Statistics and jitter only: never part of a decision.
    since: StatU64,
    rng: StatU64,
}

// ===== impl Shared =====

impl Shared {
    /// A closed circuit with `config`, which has been validated.
    pub(crate) fn new(config: Config) -> Shared {
        let clock = match &config.clock {
            Some(clock) => AnyClock::Custom(Arc::clone(clock)),
            None => AnyClock::System(SystemClock::new()),
        };
        let policy = match &config.failure_rate {
            Some(rate) => Policy::Rate(RatePolicy::new(rate)),
            None => Policy::Consecutive(config.failure_threshold),
        };
        let now = clock.now();
        let longest_open = nanos(config.open_backoff.map_or(config.reset_timeout, |b| b.max));
        static SEED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seed = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed)
            ^ nanos(now).rotate_left(29)
            | 1;
        let fast = matches!(policy, Policy::Consecutive(_))
            && config
                .failure_rate
                .and_then(|r| r.slow_call_duration)
                .is_none();
        Shared {
            word: AtomicU64::new(Word::new(Tag::Closed, 0, 0).0),
            fast,
            slow_call_duration: config.failure_rate.and_then(|r| r.slow_call_duration),
            policy,
            config,
            clock,
            origin: now,
            longest_open,
            counters: Counters::new(),
            reopens: EpochCell::new(32),
            half_open_until: EpochCell::new(40),
            since: StatU64::new(0),
            rng: StatU64::new(seed),
        }
    }

    #[inline]
    pub(crate) fn load(&self) -> Word {
        Word(self.word.load(Ordering::Acquire))
    }

    /// The time since the breaker's origin.
    #[inline]
    fn now(&self) -> Duration {
        self.clock.now().saturating_sub(self.origin)
    }

    #[inline]
    fn cas(&self, current: Word, new: Word) -> Result<(), Word> {
        self.word
            .compare_exchange(current.0, new.0, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
            .map_err(Word)
    }

    #[inline]
    fn grant(&self, epoch: u32, trial: bool, now: Option<Duration>) -> Grant {
        match self.slow_call_duration {
            None => Grant::untimed(epoch, trial),
            Some(_) => Grant::timed(epoch, trial, now.unwrap_or_else(|| self.now())),
        }
    }

    /// Whether a call counts as slow under the slow-call threshold.
    pub(crate) fn is_slow(
        &self,
        grant: Grant,
        outcome: Outcome,
        elapsed: Option<Duration>,
    ) -> bool {
        match (self.slow_call_duration, outcome) {
            (Some(limit), Outcome::Success | Outcome::Failure) => elapsed
                .or_else(|| grant.started().map(|t0| self.now().saturating_sub(t0)))
                .is_some_and(|e| e >= limit),
            _ => false,
        }
    }

    /// The rejection path, kept small: one clock read, no CAS. `Ok` when
    /// the open period is over (the slow path then makes the transition).
    #[inline(never)]
    pub(crate) fn still_open(&self, w: Word) -> Result<(), CircuitOpen> {
        // In whole nanoseconds: `Duration` arithmetic normalises at every
        // step, and this path is all arithmetic around one clock read.
        let now = nanos(self.now());
        let deadline = w.payload().saturating_mul(1_000_000);
        if now < deadline {
            let left = (deadline - now).min(self.longest_open);
            return Err(self.reject(CircuitOpen::from_nanos(left)));
        }
        Ok(())
    }

    #[inline]
    fn reject(&self, open: CircuitOpen) -> CircuitOpen {
        self.counters.add(Counter::Rejection, false);
        open
    }

    #[inline]
    pub(crate) fn acquire(&self) -> Result<(Grant, Option<Transition>), CircuitOpen> {
        let mut w = self.load();
        loop {
            match w.tag() {
                Tag::Closed | Tag::Disabled => {
                    return Ok((self.grant(w.epoch(), false, None), None));
                }
                Tag::ForcedOpen => {
                    return Err(self.reject(CircuitOpen::forced(self.config.reset_timeout)));
                }
                // Half-open in a moment, with its trial taken by the thread
                // that is clearing the window.
                Tag::Clearing => return Err(self.reject(CircuitOpen::new(Duration::ZERO))),
                Tag::HalfOpen => {
                    if self.half_open_expired(w) {
                        // Rejected below by the open circuit.
                        if let Some(t) = self.open(w, Reason::HalfOpenTimeout) {
                            self.notify(&t);
                        }
                        w = self.load();
                        continue;
                    }
                    if w.in_flight() >= self.config.half_open_max_calls {
                        return Err(self.reject(CircuitOpen::new(Duration::ZERO)));
                    }
                    let next = Word::half_open(w.epoch(), w.in_flight() + 1, w.successes());
                    match self.cas(w, next) {
                        Ok(()) => return Ok((self.grant(w.epoch(), true, None), None)),
                        Err(actual) => w = actual,
                    }
                }
                Tag::Open => {
                    let now = self.now();
                    let deadline = w.deadline();
                    if now < deadline {
                        return Err(self.reject(CircuitOpen::new(self.retry_after(deadline, now))));
                    }
                    // The period is over: this caller turns the circuit
                    // half-open and takes the first trial slot.
                    match self.half_open(w, 1, now) {
                        Ok(next) => {
                            let t = self.enter(w, next, Reason::ResetTimeout, now, None);
                            return Ok((self.grant(next.epoch(), true, Some(now)), Some(t)));
                        }
                        Err(actual) => w = actual,
                    }
                }
            }
        }
    }

    /// The current word, turning an expired open period into half-open and
    /// an expired half-open period into open.
    pub(crate) fn current(&self) -> Word {
        let mut w = self.load();
        loop {
            if w.tag() == Tag::HalfOpen && self.half_open_expired(w) {
                if let Some(t) = self.open(w, Reason::HalfOpenTimeout) {
                    self.notify(&t);
                }
                w = self.load();
                continue;
            }
            if w.tag() != Tag::Open {
                return w;
            }
            let now = self.now();
            if now < w.deadline() {
                return w;
            }
            match self.half_open(w, 0, now) {
                Ok(next) => {
                    let t = self.enter(w, next, Reason::ResetTimeout, now, None);
                    self.notify(&t);
                    return next;
                }
                Err(actual) => w = actual,
            }
        }
    }

    /// Applies a counted outcome to the state.
    pub(crate) fn apply(&self, grant: Grant, outcome: Outcome, slow: bool) -> Option<Transition> {
        let mut w = self.load();
        loop {
            if w.epoch() != grant.epoch() {
                // Granted before a transition: statistics only.
                return None;
            }
            let (next, reason) = match w.tag() {
                // The epoch wraps: a permit of another kind with the same
                // epoch is from 2^21 transitions ago, and as stale as any.
                Tag::Closed | Tag::HalfOpen if grant.trial() != (w.tag() == Tag::HalfOpen) => {
                    return None;
                }
                Tag::Closed => match &self.policy {
                    Policy::Consecutive(threshold) => match outcome {
                        Outcome::Ignored => return None,
                        Outcome::Success if w.payload() == 0 => return None,
                        Outcome::Success => (Word::new(Tag::Closed, w.epoch(), 0), None),
                        Outcome::Failure => {
                            let failures = w.payload() + 1;
                            if failures >= u64::from(*threshold) {
                                match self.open(w, Reason::ConsecutiveFailures) {
                                    Some(t) => return Some(t),
                                    // A racing success (or failure) changed
                                    // the count, or a transition was made:
                                    // count this failure again from there.
                                    None => {
                                        w = self.load();
                                        continue;
                                    }
                                }
                            }
                            (Word::new(Tag::Closed, w.epoch(), failures), None)
                        }
                    },
                    Policy::Rate(rate) => {
                        if outcome == Outcome::Ignored {
                            return None;
                        }
                        rate.window.record(outcome == Outcome::Failure, slow);
                        // The closed word does not change within an epoch
                        // under this policy, so `open` fails only if another
                        // thread already made a transition.
                        return rate.tripped().and_then(|reason| self.open(w, reason));
                    }
                },
                Tag::HalfOpen if self.half_open_expired(w) => {
                    // Too late: the trial failed when the wait ran out.
                    match self.open(w, Reason::HalfOpenTimeout) {
                        Some(t) => return Some(t),
                        None => {
                            w = self.load();
                            continue;
                        }
                    }
                }
                Tag::HalfOpen => {
                    let in_flight = w.in_flight().saturating_sub(1);
                    match outcome {
                        Outcome::Ignored => {
                            (Word::half_open(w.epoch(), in_flight, w.successes()), None)
                        }
                        Outcome::Success if !slow => {
                            let successes = w.successes() + 1;
                            if successes >= self.config.success_threshold {
                                (
                                    Word::new(Tag::Closed, w.next_epoch(), 0),
                                    Some(Reason::TrialsSucceeded),
                                )
                            } else {
                                (Word::half_open(w.epoch(), in_flight, successes), None)
                            }
                        }
                        Outcome::Success | Outcome::Failure => {
                            match self.open(w, Reason::TrialFailed) {
                                Some(t) => return Some(t),
                                None => {
                                    w = self.load();
                                    continue;
                                }
                            }
                        }
                    }
                }
                // A permit granted while disabled: statistics only.
                Tag::Open | Tag::ForcedOpen | Tag::Disabled | Tag::Clearing => return None,
            };
            match self.cas(w, next) {
                Ok(()) => {
                    return reason.map(|reason| self.enter(w, next, reason, self.now(), None));
                }
                Err(actual) => w = actual,
            }
        }
    }

    /// One attempt to turn the expired open word `from` half-open with
    /// `in_flight` trials taken: the new word, or the word that was found
    /// instead.
    ///
    /// Under the failure-rate policy the window is emptied first, by the one
    /// thread that moved the word to `Clearing`, and only then does the
    /// circuit turn half-open. So the clear is over before any trial can be
    /// granted, let alone close the circuit, and no call of the next closed
    /// period can see the failures that opened this one. (Clearing after the
    /// close, slot by slot, let a success recorded meanwhile re-open the
    /// circuit on them.) Writers of the closed period that opened stopped
    /// with the opening, a whole open period ago.
    fn half_open(&self, from: Word, in_flight: u32, now: Duration) -> Result<Word, Word> {
        let next = Word::half_open(from.next_epoch(), in_flight, 0);
        let from = match &self.policy {
            Policy::Rate(rate) => {
                let clearing = Word::new(Tag::Clearing, from.epoch(), from.payload());
                self.cas(from, clearing)?;
                rate.window.clear();
                clearing
            }
            Policy::Consecutive(_) => from,
        };
        // Only a manual transition can move the word from `Clearing`.
        self.cas(from, next)?;
        if let Some(wait) = self.config.max_half_open_wait {
            let until = ceil_millis(now.saturating_add(wait));
            self.half_open_until.store_newer(next.epoch(), until);
        }
        Ok(next)
    }

    /// Whether the half-open word `w` has outlived `max_half_open_wait`.
    /// Reads the clock only when that is configured.
    fn half_open_expired(&self, w: Word) -> bool {
        if self.config.max_half_open_wait.is_none() {
            return false;
        }
        let (epoch, until) = self.half_open_until.load();
        epoch == w.epoch() && self.now() >= Duration::from_millis(until)
    }

    /// One attempt to open the circuit from `from`; `None` if another
    /// thread changed the word first.
    fn open(&self, from: Word, reason: Reason) -> Option<Transition> {
        let now = self.now();
        let reopens = if from.tag() == Tag::HalfOpen {
            // Consecutive opens since the circuit last closed.
            self.reopens.load().1 as u32
        } else {
            0
        };
        let period = self.open_period(reopens);
        let next = Word::new(
            Tag::Open,
            from.next_epoch(),
            ceil_millis(now.saturating_add(period)),
        );
        self.cas(from, next).ok()?;
        self.store_reopens(next.epoch(), reopens.saturating_add(1));
        Some(self.enter(from, next, reason, now, Some(period)))
    }

    /// Time left until `deadline`. The deadline is rounded up to a whole
    /// millisecond, so this is capped at the longest possible period: a
    /// caller is never told to wait longer than `reset_timeout` (or the
    /// backoff's `max`), even though the trial may come up to 1 ms later.
    fn retry_after(&self, deadline: Duration, now: Duration) -> Duration {
        let longest = self
            .config
            .open_backoff
            .map_or(self.config.reset_timeout, |b| b.max);
        deadline.saturating_sub(now).min(longest)
    }

    fn open_period(&self, reopens: u32) -> Duration {
        let base = self.config.reset_timeout;
        match self.config.open_backoff {
            Some(backoff) if reopens > 0 => {
                let grown = backoff.period(base, reopens);
                let jitter =
                    grown.mul_f64(f64::from(backoff.jitter_percent) / 100.0 * self.random_unit());
                grown.saturating_sub(jitter).max(base)
            }
            _ => base,
        }
    }

    /// A number in `[0, 1)` from a xorshift64 generator. Threads racing here
    /// may draw the same number; that is harmless for jitter.
    fn random_unit(&self) -> f64 {
        use std::sync::atomic::Ordering::Relaxed;
        let mut x = self.rng.load(Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn store_reopens(&self, epoch: u32, count: u32) {
        self.reopens.store_newer(epoch, u64::from(count));
    }

    pub(crate) fn manual(&self, tag: Tag, reason: Reason) {
        let mut w = self.load();
        loop {
            if tag != Tag::Closed && w.tag() == tag {
                return;
            }
            if let (Tag::Closed, Policy::Rate(rate)) = (tag, &self.policy) {
                // Before the CAS, so that no call of the new epoch sees the
                // old window.
                rate.window.clear();
            }
            let next = Word::new(tag, w.next_epoch(), 0);
            match self.cas(w, next) {
                Ok(()) => {
                    let t = self.enter(w, next, reason, self.now(), None);
                    self.notify(&t);
                    return;
                }
                Err(actual) => w = actual,
            }
        }
    }

    /// Bookkeeping by the thread whose CAS moved the word from `from` to
    /// `to`.
    fn enter(
        &self,
        from: Word,
        to: Word,
        reason: Reason,
        now: Duration,
        open_for: Option<Duration>,
    ) -> Transition {
        self.since
            .store(nanos(now), std::sync::atomic::Ordering::Relaxed);
        if to.tag() == Tag::Closed {
            self.store_reopens(to.epoch(), 0);
        }
        Transition {
            from: from.state(),
            to: to.state(),
            reason,
            at: self.origin.saturating_add(now),
            epoch: to.epoch(),
            open_for,
        }
    }

    #[inline]
    pub(crate) fn notify(&self, t: &Transition) {
        #[cfg(feature = "tracing")]
        self.log(t);
        if let Some(listener) = &self.config.listener {
            listener(t);
        }
    }

    #[cfg(feature = "tracing")]
    fn log(&self, t: &Transition) {
        let name = self.config.name.as_deref().unwrap_or("");
        match t.to {
            State::Open => tracing::warn!(
                breaker = name,
                from = t.from.as_str(),
                reason = t.reason.as_str(),
                open_for = ?t.open_for,
                "circuit breaker opened"
            ),
            State::HalfOpen => tracing::info!(
                breaker = name,
                from = t.from.as_str(),
                reason = t.reason.as_str(),
                "circuit breaker half-open"
            ),
            State::Closed => tracing::info!(
                breaker = name,
                from = t.from.as_str(),
                reason = t.reason.as_str(),
                "circuit breaker closed"
            ),
        }
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let w = self.current();
        let now = self.now();
        let since = Duration::from_nanos(self.since.load(std::sync::atomic::Ordering::Relaxed));
        let (window, consecutive_failures) = match &self.policy {
            Policy::Rate(rate) => (Some(rate.window.counts()), 0),
            Policy::Consecutive(_) if w.tag() == Tag::Closed => {
                (None, u32::try_from(w.payload()).unwrap_or(u32::MAX))
            }
            Policy::Consecutive(_) => (None, 0),
        };
        let half_open = w.tag() == Tag::HalfOpen;
        Metrics {
            state: w.state(),
            forced_open: w.tag() == Tag::ForcedOpen,
            disabled: w.tag() == Tag::Disabled,
            epoch: w.epoch(),
            totals: self.counters.totals(),
            consecutive_failures,
            window,
            half_open_in_flight: if half_open { w.in_flight() } else { 0 },
            half_open_successes: if half_open { w.successes() } else { 0 },
            time_in_state: now.saturating_sub(since),
            retry_after: match w.tag() {
                Tag::Open => Some(self.retry_after(w.deadline(), now)),
                Tag::Clearing => Some(Duration::ZERO),
                _ => None,
            },
        }
    }
}
