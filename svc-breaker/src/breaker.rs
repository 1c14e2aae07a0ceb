//! The breaker: one atomic state word, epochs, and RAII permits.
//!
//! # Why one word
//!
//! Everything a decision needs lives in a single `AtomicU64`:
//!
//! ```text
//!  63                         24 23                3 2     0
//! +-----------------------------+-------------------+-------+
//! |          payload (40)       |    epoch (21)     | tag(3)|
//! +-----------------------------+-------------------+-------+
//! closed:    consecutive failures
//! half-open: successes (20) | trials in flight (20)
//! open:      deadline, in whole milliseconds since the breaker's origin
//!            (rounded up)
//! ```
//!
//! The tag is closed, open, half-open, forced-open, disabled, or clearing
//! (open, its period over, while the failure-rate window is emptied on the
//! way to half-open). Because the
//! whole state is one value, every change is one compare-and-swap from a
//! state that was read to the state that follows it, and a transition can
//! never be half-applied: there is no window in which a reader sees "open"
//! with the previous period's deadline, or "half-open" with the previous
//! period's trial count.
//!
//! Every time in the word and in a permit is relative to the breaker's
//! origin, the clock's reading when the breaker was built: a [`Clock`] may
//! count from any origin (wall time since 1970, a century ago), and the
//! 40-bit deadline still covers about 34 years of the breaker's life.
//!
//! The closed path, the common case, is one load to acquire and one load to
//! record a success (plus a statistics counter in a cell owned by the
//! calling thread, see `metrics.rs`): no atomic read-modify-write at all,
//! and no write to a shared cache line unless the state changes or a
//! failure is counted. Open rejections are a load and a clock read.
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
//! # Why permits
//!
//! A half-open trial slot is taken by incrementing the in-flight count with
//! a CAS, so exactly `half_open_max_calls` callers win however many race.
//! The slot is handed back by the permit, which records exactly once: by
//! `record*`, which consumes it, or by `Drop`, which records
//! [`Outcome::Ignored`]. A cancelled future drops its permit, so a caller
//! that goes away can never wedge the circuit in half-open (resilience4j
//! #544, Polly #1979, gobreaker #122).
//!
//! # What is not in the word
//!
//! The failure-rate window (a ring of atomics, see `window.rs`), the number
//! of consecutive re-opens for the open backoff (a separate atomic tagged
//! with the epoch that wrote it, so a late writer cannot overwrite a newer
//! value), and statistics. The transition listener is called by the thread
//! whose CAS made the transition, after the CAS, holding nothing.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64 as StatU64;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, FailureRate};
use crate::error::{CircuitOpen, ConfigError};
use crate::loom::{AtomicU64, Ordering};
use crate::metrics::{Counter, Counters, Metrics};
use crate::permit::{OwnedPermit, Permit};
use crate::transition::{Outcome, Reason, State, Transition};
use crate::window::Window;

// ===== the state word =====

const TAG_MASK: u64 = 0b111;
const EPOCH_SHIFT: u32 = 3;
const EPOCH_BITS: u32 = 21;
const EPOCH_MASK: u64 = (1 << EPOCH_BITS) - 1;
const PAYLOAD_SHIFT: u32 = EPOCH_SHIFT + EPOCH_BITS;
const PAYLOAD_MASK: u64 = (1 << (64 - PAYLOAD_SHIFT)) - 1;
const HALF_BITS: u32 = 20;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Tag {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
    ForcedOpen = 3,
    Disabled = 4,
    // Open, its period over, and one thread clearing the failure-rate window
    // before it turns the circuit half-open (see `Shared::half_open`).
    Clearing = 5,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Word(u64);

impl Word {
    fn new(tag: Tag, epoch: u32, payload: u64) -> Word {
        Word(
            tag as u64
                | (u64::from(epoch) & EPOCH_MASK) << EPOCH_SHIFT
                | (payload & PAYLOAD_MASK) << PAYLOAD_SHIFT,
        )
    }

    fn half_open(epoch: u32, in_flight: u32, successes: u32) -> Word {
        let payload =
            u64::from(in_flight) & HALF_MASK | (u64::from(successes) & HALF_MASK) << HALF_BITS;
        Word::new(Tag::HalfOpen, epoch, payload)
    }

    fn tag(self) -> Tag {
        match self.0 & TAG_MASK {
            0 => Tag::Closed,
            1 => Tag::Open,
            2 => Tag::HalfOpen,
            3 => Tag::ForcedOpen,
            4 => Tag::Disabled,
            _ => Tag::Clearing,
        }
    }

    fn epoch(self) -> u32 {
        // Masked to 21 bits: lossless.
        ((self.0 >> EPOCH_SHIFT) & EPOCH_MASK) as u32
    }

    fn next_epoch(self) -> u32 {
        self.epoch().wrapping_add(1) & EPOCH_MASK as u32
    }

    fn payload(self) -> u64 {
        self.0 >> PAYLOAD_SHIFT
    }

    fn in_flight(self) -> u32 {
        (self.payload() & HALF_MASK) as u32
    }

    fn successes(self) -> u32 {
        ((self.payload() >> HALF_BITS) & HALF_MASK) as u32
    }

    fn deadline(self) -> Duration {
        Duration::from_millis(self.payload())
    }

    fn state(self) -> State {
        match self.tag() {
            Tag::Closed | Tag::Disabled => State::Closed,
            Tag::Open | Tag::ForcedOpen | Tag::Clearing => State::Open,
            Tag::HalfOpen => State::HalfOpen,
        }
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Word")
            .field("tag", &self.tag())
            .field("epoch", &self.epoch())
            .field("payload", &self.payload())
            .finish()
    }
}

/// Whether epoch `a` is later than `b`, modulo wrapping.
fn newer(a: u32, b: u32) -> bool {
    let d = u64::from(a.wrapping_sub(b)) & EPOCH_MASK;
    d != 0 && d < 1 << (EPOCH_BITS - 1)
}

/// `d` in whole milliseconds, rounded up, saturating at the payload width.
fn ceil_millis(d: Duration) -> u64 {
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(ms).unwrap_or(u64::MAX).min(PAYLOAD_MASK)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Stores `epoch << shift | value` in `cell` unless it holds a newer epoch
/// already (0 is "never written"): a thread that made a transition and was
/// delayed cannot overwrite what a later transition wrote.
fn store_newer(cell: &AtomicU64, shift: u32, epoch: u32, value: u64) {
    let new = u64::from(epoch) << shift | value;
    let mut current = cell.load(Ordering::Acquire);
    loop {
        let stored_epoch = (current >> shift) as u32;
        if stored_epoch != 0 && !newer(epoch, stored_epoch) {
            return;
        }
        match cell.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

// ===== shared state =====

enum Policy {
    Consecutive(u32),
    Rate(RatePolicy),
}

struct RatePolicy {
    window: Window,
    threshold_percent: u64,
    min_calls: u32,
    slow_threshold_percent: Option<u64>,
}

impl RatePolicy {
    fn new(rate: &FailureRate) -> Self {
        RatePolicy {
            window: Window::new(rate.window),
            threshold_percent: u64::from(rate.threshold_percent),
            min_calls: rate.effective_min_calls(),
            slow_threshold_percent: rate
                .slow_call_duration
                .map(|_| u64::from(rate.slow_call_threshold_percent)),
        }
    }

    fn tripped(&self) -> Option<Reason> {
        let c = self.window.counts();
        if c.calls < self.min_calls {
            return None;
        }
        let calls = u64::from(c.calls);
        if u64::from(c.failures) * 100 >= self.threshold_percent * calls {
            return Some(Reason::FailureRate);
        }
        match self.slow_threshold_percent {
            Some(p) if u64::from(c.slow) * 100 >= p * calls => Some(Reason::SlowCallRate),
            _ => None,
        }
    }
}

/// The default clock without dynamic dispatch: an open circuit reads the
/// clock on every rejection.
enum AnyClock {
    System(SystemClock),
    Custom(Arc<dyn Clock>),
}

impl AnyClock {
    #[inline]
    fn now(&self) -> Duration {
        match self {
            AnyClock::System(clock) => clock.now(),
            AnyClock::Custom(clock) => clock.now(),
        }
    }
}

/// What a permit remembers: a word of flags and epoch, and the call's start.
///
/// ```text
///  63          23   22    21   20        0
/// +--------------+------+-----+-----------+
/// |   (unused)   | done |trial|  epoch    |
/// +--------------+------+-----+-----------+
/// start: nanoseconds since the breaker's origin, plus 1 (0: untimed)
/// ```
///
/// The start is only recorded when a slow-call threshold is configured, at
/// full precision: a call is compared to the threshold exactly, never to a
/// start rounded to the millisecond. 64 bits of nanoseconds cover 584 years.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant {
    bits: u64,
    start: u64,
}

const GRANT_TRIAL: u64 = 1 << EPOCH_BITS;
const GRANT_DONE: u64 = 1 << (EPOCH_BITS + 1);

impl Grant {
    #[inline]
    fn untimed(epoch: u32, trial: bool) -> Grant {
        Grant {
            bits: u64::from(epoch) & EPOCH_MASK | if trial { GRANT_TRIAL } else { 0 },
            start: 0,
        }
    }

    fn timed(epoch: u32, trial: bool, start: Duration) -> Grant {
        Grant {
            start: nanos(start).saturating_add(1),
            ..Grant::untimed(epoch, trial)
        }
    }

    #[inline]
    pub(crate) fn epoch(self) -> u32 {
        (self.bits & EPOCH_MASK) as u32
    }

    #[inline]
    pub(crate) fn trial(self) -> bool {
        self.bits & GRANT_TRIAL != 0
    }

    #[inline]
    pub(crate) fn done(self) -> bool {
        self.bits & GRANT_DONE != 0
    }

    /// Marks the grant recorded; returns it as it was.
    #[inline]
    pub(crate) fn take(&mut self) -> Grant {
        let before = *self;
        self.bits |= GRANT_DONE;
        before
    }

    fn started(self) -> Option<Duration> {
        match self.start {
            0 => None,
            n => Some(Duration::from_nanos(n - 1)),
        }
    }
}

struct Shared {
    word: AtomicU64,
    // Consecutive-failures policy and no call timing: a closed-path success
    // with no failures to reset is one load and a counter.
    fast: bool,
    policy: Policy,
    slow_call_duration: Option<Duration>,
    config: Config,
    clock: AnyClock,
    // The clock's reading in `new()`: every time kept by the breaker is
    // relative to it, so any clock origin works.
    origin: Duration,
    counters: Counters,
    // `epoch << 32 | consecutive opens since the circuit last closed`,
    // written only by the thread whose CAS made a transition, and only if its
    // epoch is newer than the stored one.
    reopens: AtomicU64,
    // With `max_half_open_wait`: `epoch << 40 | deadline in ms` of the
    // current half-open period, written by the thread that entered it, and
    // only if its epoch is newer. A half-open word whose epoch is not the
    // stored one has just been entered (its deadline is being written).
    half_open_until: AtomicU64,
    // Statistics and jitter only: never part of a decision.
    since: StatU64,
    rng: StatU64,
}

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
        let clock = match &config.clock {
            Some(clock) => AnyClock::Custom(Arc::clone(clock)),
            None => AnyClock::System(SystemClock::new()),
        };
        let policy = match &config.failure_rate {
            Some(rate) => Policy::Rate(RatePolicy::new(rate)),
            None => Policy::Consecutive(config.failure_threshold),
        };
        let now = clock.now();
        static SEED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seed = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed)
            ^ nanos(now).rotate_left(29)
            | 1;
        let fast = matches!(policy, Policy::Consecutive(_))
            && config
                .failure_rate
                .and_then(|r| r.slow_call_duration)
                .is_none();
        Ok(CircuitBreaker {
            shared: Arc::new(Shared {
                word: AtomicU64::new(Word::new(Tag::Closed, 0, 0).0),
                fast,
                slow_call_duration: config.failure_rate.and_then(|r| r.slow_call_duration),
                policy,
                config,
                clock,
                origin: now,
                counters: Counters::new(),
                reopens: AtomicU64::new(0),
                half_open_until: AtomicU64::new(0),
                since: StatU64::new(0),
                rng: StatU64::new(seed),
            }),
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

// ===== impl Shared =====

impl Shared {
    #[inline]
    fn load(&self) -> Word {
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
    fn is_slow(&self, grant: Grant, outcome: Outcome, elapsed: Option<Duration>) -> bool {
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
    fn still_open(&self, w: Word) -> Result<(), CircuitOpen> {
        let now = self.now();
        let deadline = w.deadline();
        if now < deadline {
            return Err(self.reject(CircuitOpen::new(self.retry_after(deadline, now))));
        }
        Ok(())
    }

    #[inline]
    fn reject(&self, open: CircuitOpen) -> CircuitOpen {
        self.counters.add(Counter::Rejection, false);
        open
    }

    #[inline]
    fn acquire(&self) -> Result<(Grant, Option<Transition>), CircuitOpen> {
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
    fn current(&self) -> Word {
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
    fn apply(&self, grant: Grant, outcome: Outcome, slow: bool) -> Option<Transition> {
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
            store_newer(&self.half_open_until, 40, next.epoch(), until);
        }
        Ok(next)
    }

    /// Whether the half-open word `w` has outlived `max_half_open_wait`.
    /// Reads the clock only when that is configured.
    fn half_open_expired(&self, w: Word) -> bool {
        if self.config.max_half_open_wait.is_none() {
            return false;
        }
        let until = self.half_open_until.load(Ordering::Acquire);
        (until >> 40) as u32 == w.epoch()
            && self.now() >= Duration::from_millis(until & ((1 << 40) - 1))
    }

    /// One attempt to open the circuit from `from`; `None` if another
    /// thread changed the word first.
    fn open(&self, from: Word, reason: Reason) -> Option<Transition> {
        let now = self.now();
        let reopens = if from.tag() == Tag::HalfOpen {
            // Consecutive opens since the circuit last closed.
            (self.reopens.load(Ordering::Acquire) & 0xFFFF_FFFF) as u32
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
        store_newer(&self.reopens, 32, epoch, u64::from(count));
    }

    fn manual(&self, tag: Tag, reason: Reason) {
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
    fn notify(&self, t: &Transition) {
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

    fn metrics(&self) -> Metrics {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_round_trips() {
        let w = Word::half_open(EPOCH_MASK as u32, HALF_MASK as u32, 7);
        assert_eq!(w.tag(), Tag::HalfOpen);
        assert_eq!(w.epoch(), EPOCH_MASK as u32);
        assert_eq!(w.in_flight(), HALF_MASK as u32);
        assert_eq!(w.successes(), 7);
        assert_eq!(w.next_epoch(), 0);

        let open = Word::new(Tag::Open, 5, PAYLOAD_MASK);
        assert_eq!(open.tag(), Tag::Open);
        assert_eq!(open.epoch(), 5);
        assert_eq!(open.payload(), PAYLOAD_MASK);
        assert_eq!(
            Word::new(Tag::Closed, 3, u64::from(u32::MAX)).payload(),
            u64::from(u32::MAX)
        );
    }

    #[test]
    fn epochs_compare_modulo_wrap() {
        assert!(newer(1, 0));
        assert!(!newer(0, 1));
        assert!(!newer(4, 4));
        assert!(newer(0, EPOCH_MASK as u32));
    }

    #[test]
    fn deadlines_round_up_and_saturate() {
        assert_eq!(ceil_millis(Duration::from_secs(30)), 30_000);
        assert_eq!(ceil_millis(Duration::from_nanos(30_000_000_001)), 30_001);
        assert_eq!(ceil_millis(Duration::MAX), PAYLOAD_MASK);
    }

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
