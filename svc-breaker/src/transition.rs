//! States, outcomes and the transitions between states.

use std::fmt;
use std::time::Duration;

/// The state of a circuit, as the seed's table describes it.
///
/// Manual control maps onto these three: a circuit held open by
/// [`force_open`](crate::CircuitBreaker::force_open) reports `Open`, a
/// [`disable`](crate::CircuitBreaker::disable)d one reports `Closed`; ask
/// [`is_forced_open`](crate::CircuitBreaker::is_forced_open) and
/// [`is_disabled`](crate::CircuitBreaker::is_disabled) to tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls pass through.
    Closed,
    /// Calls fail at once with [`CircuitOpen`](crate::CircuitOpen).
    Open,
    /// A limited number of trial calls pass; the rest fail fast.
    HalfOpen,
}

impl State {
    /// `"closed"`, `"open"` or `"half-open"`, for logs and metrics labels
    /// (the [`Display`](fmt::Display) form too).
    ///
    /// ```
    /// use svc_breaker::State;
    ///
    /// assert_eq!(State::HalfOpen.as_str(), "half-open");
    /// assert_eq!(State::Open.to_string(), State::Open.as_str());
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one call did to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The dependency is healthy.
    Success,
    /// The dependency failed (counts toward opening).
    Failure,
    /// No effect on the state (a client error, a cancelled call). A
    /// half-open trial slot is freed.
    Ignored,
}

/// Why the breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// `failure_threshold` consecutive failures while closed.
    ConsecutiveFailures,
    /// The failure rate over the window reached its threshold.
    FailureRate,
    /// The slow-call rate over the window reached its threshold.
    SlowCallRate,
    /// The open period elapsed; trials are allowed.
    ResetTimeout,
    /// `success_threshold` trials succeeded.
    TrialsSucceeded,
    /// A trial failed (or was slow).
    TrialFailed,
    /// The circuit stayed half-open longer than
    /// [`max_half_open_wait`](crate::Config::max_half_open_wait): counted
    /// as a failed trial.
    HalfOpenTimeout,
    /// [`force_open`](crate::CircuitBreaker::force_open) was called.
    ForcedOpen,
    /// [`disable`](crate::CircuitBreaker::disable) was called.
    Disabled,
    /// [`reset`](crate::CircuitBreaker::reset) was called.
    Reset,
}

impl Reason {
    /// A short lower-case description.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::ConsecutiveFailures => "consecutive failures",
            Reason::FailureRate => "failure rate",
            Reason::SlowCallRate => "slow-call rate",
            Reason::ResetTimeout => "reset timeout elapsed",
            Reason::TrialsSucceeded => "trials succeeded",
            Reason::TrialFailed => "trial failed",
            Reason::HalfOpenTimeout => "half-open wait elapsed",
            Reason::ForcedOpen => "forced open",
            Reason::Disabled => "disabled",
            Reason::Reset => "reset",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One state change, as given to the
/// [`on_transition`](crate::Config::on_transition) listener.
///
/// Manual control can produce a transition between equal states (e.g.
/// [`reset`](crate::CircuitBreaker::reset) of a closed circuit, which still
/// clears its counts); [`reason`](Transition::reason) tells why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub(crate) from: State,
    pub(crate) to: State,
    pub(crate) reason: Reason,
    pub(crate) at: Duration,
    pub(crate) epoch: u32,
    pub(crate) open_for: Option<Duration>,
}

impl Transition {
    /// The state before.
    pub fn from(&self) -> State {
        self.from
    }

    /// The state after.
    pub fn to(&self) -> State {
        self.to
    }

    /// Why it happened.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// When it happened, on the breaker's clock.
    pub fn at(&self) -> Duration {
        self.at
    }

    /// The epoch the breaker entered (every transition increments it).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// For a transition to `Open` by the breaker itself: how long the
    /// circuit will stay open. `None` otherwise.
    pub fn open_for(&self) -> Option<Duration> {
        self.open_for
    }
}
