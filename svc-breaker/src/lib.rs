//! A circuit breaker for any transport.
//!
//! This is the foundation skeleton: the public API of DESIGN.md §5 with a
//! simple implementation. The svc-breaker issue replaces the inside with a
//! lock-free one and adds policies, metrics and listeners.
#![deny(missing_docs)]

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Breaker settings. The defaults are the seed's: open after 5 consecutive
/// failures, wait 30 s, one trial call, one success closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    failure_threshold: u32,
    reset_timeout: Duration,
    half_open_max_calls: u32,
    success_threshold: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            failure_threshold: 5,
            reset_timeout: Duration::from_secs(30),
            half_open_max_calls: 1,
            success_threshold: 1,
        }
    }
}

impl Config {
    /// Consecutive failures that open the circuit (default 5).
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.failure_threshold = n;
        self
    }
    /// How long the circuit stays open before a trial (default 30 s).
    pub fn reset_timeout(mut self, d: Duration) -> Self {
        self.reset_timeout = d;
        self
    }
    /// Concurrent trial calls in half-open (default 1).
    pub fn half_open_max_calls(mut self, n: u32) -> Self {
        self.half_open_max_calls = n;
        self
    }
    /// Successful trials that close the circuit (default 1).
    pub fn success_threshold(mut self, n: u32) -> Self {
        self.success_threshold = n;
        self
    }
}

/// Why a [`Config`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(&'static str);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
impl std::error::Error for ConfigError {}

/// The state of a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls pass through.
    Closed,
    /// Calls fail at once with [`CircuitOpen`].
    Open,
    /// A limited number of trial calls pass; the rest fail fast.
    HalfOpen,
}

/// What one call did to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The dependency is healthy.
    Success,
    /// The dependency failed (counts toward opening).
    Failure,
    /// No effect (a client error, a cancelled call).
    Ignored,
}

/// The error returned while the circuit is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitOpen {
    retry_after: Duration,
}

impl CircuitOpen {
    /// How long until a trial call will be allowed.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

impl std::fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("circuit breaker is open")
    }
}
impl std::error::Error for CircuitOpen {}

#[derive(Debug)]
struct Inner {
    state: State,
    epoch: u64,
    failures: u32,
    successes: u32,
    in_flight_trials: u32,
    opened_at: Instant,
}

/// A circuit breaker. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: Arc<Config>,
    inner: Arc<Mutex<Inner>>,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker::new(Config::default()).unwrap_or_else(|_| unreachable!())
    }
}

impl CircuitBreaker {
    /// A breaker with `config`, or an error naming the invalid setting.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        if config.failure_threshold == 0 {
            return Err(ConfigError("failure_threshold must be at least 1"));
        }
        if config.half_open_max_calls == 0 {
            return Err(ConfigError("half_open_max_calls must be at least 1"));
        }
        if config.success_threshold == 0 {
            return Err(ConfigError("success_threshold must be at least 1"));
        }
        Ok(CircuitBreaker {
            config: Arc::new(config),
            inner: Arc::new(Mutex::new(Inner {
                state: State::Closed,
                epoch: 0,
                failures: 0,
                successes: 0,
                in_flight_trials: 0,
                opened_at: Instant::now(),
            })),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state.
    pub fn state(&self) -> State {
        let mut inner = self.lock();
        self.advance(&mut inner);
        inner.state
    }

    fn advance(&self, inner: &mut Inner) {
        if inner.state == State::Open && inner.opened_at.elapsed() >= self.config.reset_timeout {
            inner.state = State::HalfOpen;
            inner.epoch += 1;
            inner.successes = 0;
            inner.in_flight_trials = 0;
        }
    }

    /// A permit to make one call, or [`CircuitOpen`].
    pub fn try_acquire(&self) -> Result<Permit<'_>, CircuitOpen> {
        let mut inner = self.lock();
        self.advance(&mut inner);
        match inner.state {
            State::Closed => Ok(Permit {
                breaker: self,
                epoch: inner.epoch,
                trial: false,
            }),
            State::HalfOpen if inner.in_flight_trials < self.config.half_open_max_calls => {
                inner.in_flight_trials += 1;
                Ok(Permit {
                    breaker: self,
                    epoch: inner.epoch,
                    trial: true,
                })
            }
            State::HalfOpen => Err(CircuitOpen {
                retry_after: Duration::ZERO,
            }),
            State::Open => Err(CircuitOpen {
                retry_after: self
                    .config
                    .reset_timeout
                    .saturating_sub(inner.opened_at.elapsed()),
            }),
        }
    }

    fn record(&self, epoch: u64, trial: bool, outcome: Outcome) {
        let mut inner = self.lock();
        if inner.epoch != epoch {
            return;
        }
        if trial {
            inner.in_flight_trials = inner.in_flight_trials.saturating_sub(1);
        }
        match (inner.state, outcome) {
            (State::Closed, Outcome::Success) => inner.failures = 0,
            (State::Closed, Outcome::Failure) => {
                inner.failures += 1;
                if inner.failures >= self.config.failure_threshold {
                    self.open(&mut inner);
                }
            }
            (State::HalfOpen, Outcome::Success) => {
                inner.successes += 1;
                if inner.successes >= self.config.success_threshold {
                    inner.state = State::Closed;
                    inner.epoch += 1;
                    inner.failures = 0;
                }
            }
            (State::HalfOpen, Outcome::Failure) => self.open(&mut inner),
            _ => {}
        }
    }

    fn open(&self, inner: &mut Inner) {
        inner.state = State::Open;
        inner.epoch += 1;
        inner.opened_at = Instant::now();
        inner.failures = 0;
    }
}

/// Permission to make one call. Record its outcome exactly once; dropping
/// it unrecorded counts as [`Outcome::Ignored`] and frees a half-open slot.
#[derive(Debug)]
#[must_use = "record the outcome of the call, or drop the permit to ignore it"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    epoch: u64,
    trial: bool,
}

impl Permit<'_> {
    /// The call succeeded.
    pub fn record_success(self) {
        self.record(Outcome::Success);
    }
    /// The call failed.
    pub fn record_failure(self) {
        self.record(Outcome::Failure);
    }
    /// Records `outcome`.
    pub fn record(self, outcome: Outcome) {
        let this = std::mem::ManuallyDrop::new(self);
        this.breaker.record(this.epoch, this.trial, outcome);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breaker
            .record(self.epoch, self.trial, Outcome::Ignored);
    }
}
