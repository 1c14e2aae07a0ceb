//! Configuration: the seed's defaults, the optional failure-rate policy and
//! open-duration backoff, and validation that turns bad input into a
//! [`ConfigError`] before any traffic flows.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::ConfigError;
use crate::transition::Transition;

/// Largest `half_open_max_calls` and `success_threshold`: both are packed in
/// 20 bits of the breaker's state word.
pub const MAX_HALF_OPEN_CALLS: u32 = (1 << 20) - 1;

/// Largest failure-rate window (one byte per slot).
pub const MAX_WINDOW: u32 = 1_000_000;

pub(crate) type Listener = Arc<dyn Fn(&Transition) + Send + Sync + 'static>;

/// Breaker settings. The defaults are the seed's: open after 5 consecutive
/// failures, stay open exactly 30 s, allow one trial call, close after one
/// successful trial.
///
/// Setters are chainable and named after the settings; nothing is checked
/// until [`CircuitBreaker::new`](crate::CircuitBreaker::new) (or
/// [`Config::validate`]) returns a [`ConfigError`] naming the bad setting.
///
/// Two configs are equal when their settings are equal and they share the
/// same clock and listener (by pointer).
///
/// # From a file (feature `serde`)
///
/// `Config`, [`FailureRate`] and [`OpenBackoff`] deserialize from any serde
/// format (TOML, JSON, YAML) under the setters' names: `failure_threshold`,
/// `reset_timeout`, `half_open_max_calls`, `success_threshold`,
/// `failure_rate` (`threshold_percent`, `window`, `min_calls`,
/// `slow_call_duration`, `slow_call_threshold_percent`), `open_backoff`
/// (`max`, required, `multiplier`, `jitter_percent`), `max_half_open_wait`
/// and `name`. Durations are strings in the format of [`parse_duration`]
/// (`"250ms"`, `"30s"`, `"1m30s"`). A missing field keeps its default, an
/// unknown one is an error, and the result is [validated](Config::validate)
/// while it is read, so a threshold of 0 fails there with the setting
/// named. The clock and the transition listeners are code, not data: they
/// keep their defaults. `Serialize` writes the same format (without them).
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use std::time::Duration;
/// use svc_breaker::Config;
///
/// let config: Config = serde_json::from_str(
///     r#"{ "failure_threshold": 3, "reset_timeout": "1m30s" }"#,
/// )?;
/// assert_eq!(
///     config,
///     Config::default().failure_threshold(3).reset_timeout(Duration::from_secs(90)),
/// );
/// let err = serde_json::from_str::<Config>(r#"{ "failure_threshold": 0 }"#).unwrap_err();
/// assert!(err.to_string().contains("failure_threshold must be at least 1"));
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// [`parse_duration`]: crate::parse_duration
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use svc_breaker::{CircuitBreaker, Config, FailureRate, OpenBackoff};
///
/// let config = Config::default()
///     .failure_rate(FailureRate::new(50, 100).min_calls(20))
///     .reset_timeout(Duration::from_secs(10))
///     .open_backoff(OpenBackoff::new(Duration::from_secs(120)))
///     .half_open_max_calls(3)
///     .success_threshold(2)
///     .on_transition(|t| eprintln!("breaker {:?} -> {:?} ({})", t.from(), t.to(), t.reason()));
/// let breaker = CircuitBreaker::new(config)?;
/// # Ok::<(), svc_breaker::ConfigError>(())
/// ```
#[derive(Clone)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "file::RawConfig", into = "file::RawConfig")
)]
pub struct Config {
    pub(crate) failure_threshold: u32,
    pub(crate) reset_timeout: Duration,
    pub(crate) half_open_max_calls: u32,
    pub(crate) success_threshold: u32,
    pub(crate) failure_rate: Option<FailureRate>,
    pub(crate) open_backoff: Option<OpenBackoff>,
    pub(crate) max_half_open_wait: Option<Duration>,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) listener: Option<Listener>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            failure_threshold: 5,
            reset_timeout: Duration::from_secs(30),
            half_open_max_calls: 1,
            success_threshold: 1,
            failure_rate: None,
            open_backoff: None,
            max_half_open_wait: None,
            name: None,
            clock: None,
            listener: None,
        }
    }
}

impl Config {
    /// Consecutive failures that open a closed circuit (default 5). Any
    /// success resets the count; ignored outcomes leave it alone. Unused when
    /// a [`failure_rate`](Config::failure_rate) policy is set.
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.failure_threshold = n;
        self
    }

    /// How long the circuit stays open before it lets a trial call through
    /// (default 30 s, must be > 0). Exact to the millisecond and never early:
    /// the deadline is stored rounded up to a whole millisecond (and capped
    /// at about 34 years after the breaker was built, whatever the clock's
    /// origin).
    pub fn reset_timeout(mut self, d: Duration) -> Self {
        self.reset_timeout = d;
        self
    }

    /// Concurrent trial calls allowed in half-open (default 1, at most
    /// [`MAX_HALF_OPEN_CALLS`]). Exactly this many are granted however many
    /// callers race for them.
    pub fn half_open_max_calls(mut self, n: u32) -> Self {
        self.half_open_max_calls = n;
        self
    }

    /// Successful trials that close the circuit (default 1, at most
    /// [`MAX_HALF_OPEN_CALLS`]). Any failed trial re-opens it at once.
    pub fn success_threshold(mut self, n: u32) -> Self {
        self.success_threshold = n;
        self
    }

    /// Opens on the failure rate over the last N calls instead of on
    /// consecutive failures (the resilience4j default policy).
    pub fn failure_rate(mut self, policy: FailureRate) -> Self {
        self.failure_rate = Some(policy);
        self
    }

    /// Lets the open period grow on consecutive re-opens (off by default:
    /// every open lasts exactly `reset_timeout`).
    pub fn open_backoff(mut self, backoff: OpenBackoff) -> Self {
        self.open_backoff = Some(backoff);
        self
    }

    /// The longest the circuit may stay half-open (off by default: it stays
    /// half-open until its trials are recorded or dropped). A trial that
    /// never finishes (a transport without a timeout, a leaked
    /// [`OwnedPermit`]) would otherwise hold its slot, and the circuit,
    /// forever. This is resilience4j's `maxWaitDurationInHalfOpenState`.
    ///
    /// Measured from the moment the circuit turned half-open, and, like
    /// `reset_timeout`, never early (rounded up to a whole millisecond).
    /// When it has elapsed the half-open period counts as a failed trial:
    /// the circuit opens again (with [`Reason::HalfOpenTimeout`], for a
    /// period that grows with the [`open_backoff`](Config::open_backoff) as
    /// after any failed trial), which frees every trial slot. The results
    /// of the trials still in flight are stale from then on: they are
    /// counted in the metrics and change nothing. The breaker notices the
    /// expiry when it is next used (an acquire, a record, [`state`] or
    /// [`metrics`]); nothing runs in the background.
    ///
    /// Must be greater than zero; `None` turns it off again.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use svc_breaker::{CircuitBreaker, Config, ManualClock, State};
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::with_clock(
    ///     Config::default()
    ///         .failure_threshold(1)
    ///         .max_half_open_wait(Duration::from_secs(10)),
    ///     clock.clone(),
    /// )?;
    /// breaker.try_acquire()?.record_failure();
    /// clock.advance(Duration::from_secs(30));
    /// let trial = breaker.try_acquire()?; // and it never finishes...
    /// clock.advance(Duration::from_secs(10));
    /// assert_eq!(breaker.state(), State::Open);
    /// trial.record_success(); // too late: no effect
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`OwnedPermit`]: crate::OwnedPermit
    /// [`Reason::HalfOpenTimeout`]: crate::Reason::HalfOpenTimeout
    /// [`state`]: crate::CircuitBreaker::state
    /// [`metrics`]: crate::CircuitBreaker::metrics
    pub fn max_half_open_wait(mut self, wait: impl Into<Option<Duration>>) -> Self {
        self.max_half_open_wait = wait.into();
        self
    }

    /// A name for logs (the `tracing` feature) and `Debug` output, e.g. the
    /// origin the breaker protects.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(Arc::from(name.into()));
        self
    }

    /// The clock the breaker reads (default: a [`SystemClock`] created with
    /// the breaker). Tests pass a [`ManualClock`].
    ///
    /// [`SystemClock`]: crate::SystemClock
    /// [`ManualClock`]: crate::ManualClock
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Calls `listener` after every state transition, on the thread that
    /// caused it, outside any lock (the breaker has none). Several listeners
    /// run in the order they were added. Without a listener a transition
    /// costs no call at all.
    ///
    /// The listener must be quick and must not panic; it may read the
    /// breaker (e.g. [`metrics`](crate::CircuitBreaker::metrics)).
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use svc_breaker::{CircuitBreaker, Config, State};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let breaker = CircuitBreaker::new(
    ///     Config::default()
    ///         .failure_threshold(1)
    ///         .on_transition(move |t| log.lock().unwrap().push((t.from(), t.to()))),
    /// )?;
    /// breaker.try_acquire()?.record_failure();
    /// assert_eq!(*seen.lock().unwrap(), [(State::Closed, State::Open)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_transition(mut self, listener: impl Fn(&Transition) + Send + Sync + 'static) -> Self {
        self.listener = Some(match self.listener.take() {
            None => Arc::new(listener),
            Some(first) => Arc::new(move |t: &Transition| {
                first(t);
                listener(t);
            }),
        });
        self
    }

    /// Checks every setting, as [`CircuitBreaker::new`] does.
    ///
    /// [`CircuitBreaker::new`]: crate::CircuitBreaker::new
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.failure_threshold == 0 {
            return Err(ConfigError::new("failure_threshold", "must be at least 1"));
        }
        if self.reset_timeout.is_zero() {
            return Err(ConfigError::new(
                "reset_timeout",
                "must be greater than zero",
            ));
        }
        check_half_open("half_open_max_calls", self.half_open_max_calls)?;
        check_half_open("success_threshold", self.success_threshold)?;
        if let Some(rate) = &self.failure_rate {
            rate.validate()?;
        }
        if let Some(backoff) = &self.open_backoff {
            backoff.validate(self.reset_timeout)?;
        }
        if self.max_half_open_wait.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::new(
                "max_half_open_wait",
                "must be greater than zero",
            ));
        }
        Ok(())
    }

    /// Builds the breaker: the same as [`CircuitBreaker::new`]`(self)`.
    ///
    /// [`CircuitBreaker::new`]: crate::CircuitBreaker::new
    pub fn build(self) -> Result<crate::CircuitBreaker, ConfigError> {
        crate::CircuitBreaker::new(self)
    }
}

fn check_half_open(setting: &'static str, n: u32) -> Result<(), ConfigError> {
    if n == 0 {
        return Err(ConfigError::new(setting, "must be at least 1"));
    }
    if n > MAX_HALF_OPEN_CALLS {
        return Err(ConfigError::new(setting, "must be at most 1048575"));
    }
    Ok(())
}

impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        fn same<T: ?Sized>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
        }
        self.failure_threshold == other.failure_threshold
            && self.reset_timeout == other.reset_timeout
            && self.half_open_max_calls == other.half_open_max_calls
            && self.success_threshold == other.success_threshold
            && self.failure_rate == other.failure_rate
            && self.open_backoff == other.open_backoff
            && self.max_half_open_wait == other.max_half_open_wait
            && self.name == other.name
            && same(&self.clock, &other.clock)
            && same(&self.listener, &other.listener)
    }
}

impl Eq for Config {}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Config");
        if let Some(name) = &self.name {
            d.field("name", name);
        }
        d.field("failure_threshold", &self.failure_threshold)
            .field("reset_timeout", &self.reset_timeout)
            .field("half_open_max_calls", &self.half_open_max_calls)
            .field("success_threshold", &self.success_threshold)
            .field("failure_rate", &self.failure_rate)
            .field("open_backoff", &self.open_backoff)
            .field("max_half_open_wait", &self.max_half_open_wait)
            .field(
                "clock",
                &if self.clock.is_some() {
                    "custom"
                } else {
                    "system"
                },
            )
            .field("on_transition", &self.listener.is_some())
            .finish()
    }
}

/// The failure-rate policy: open when at least `threshold_percent` of the
/// last `window` recorded calls failed, once `min_calls` calls are in the
/// window. Optionally, calls slower than a duration count as slow, and the
/// circuit also opens when the slow-call rate reaches its own threshold.
///
/// The window is count-based (a ring of the last `window` outcomes), as
/// resilience4j's default. Ignored outcomes do not enter it. It starts empty
/// every time the circuit closes. Defaults: 50 % of the last 100 calls,
/// `min_calls` = `window`, no slow-call threshold.
///
/// A slow *trial* in half-open counts as a failed trial: a dependency that
/// is still too slow has not recovered.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use svc_breaker::{Config, FailureRate};
///
/// // Open when half of the last 50 calls failed (after at least 10 calls),
/// // or when 80 % of them took 2 s or more.
/// let config = Config::default().failure_rate(
///     FailureRate::new(50, 50)
///         .min_calls(10)
///         .slow_calls(Duration::from_secs(2), 80),
/// );
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "file::RawFailureRate", into = "file::RawFailureRate")
)]
pub struct FailureRate {
    pub(crate) threshold_percent: u32,
    pub(crate) window: u32,
    pub(crate) min_calls: Option<u32>,
    pub(crate) slow_call_duration: Option<Duration>,
    pub(crate) slow_call_threshold_percent: u32,
}

impl Default for FailureRate {
    fn default() -> Self {
        FailureRate::new(50, 100)
    }
}

impl FailureRate {
    /// Open at `threshold_percent` (1..=100) failures over the last `window`
    /// calls (1..=[`MAX_WINDOW`]).
    pub fn new(threshold_percent: u32, window: u32) -> Self {
        FailureRate {
            threshold_percent,
            window,
            min_calls: None,
            slow_call_duration: None,
            slow_call_threshold_percent: 100,
        }
    }

    /// The failure percentage that opens the circuit (1..=100).
    pub fn threshold_percent(mut self, percent: u32) -> Self {
        self.threshold_percent = percent;
        self
    }

    /// How many of the most recent calls the rate is computed over.
    pub fn window(mut self, calls: u32) -> Self {
        self.window = calls;
        self
    }

    /// Calls needed in the window before the rate can open the circuit
    /// (1..=`window`; default `window`).
    pub fn min_calls(mut self, calls: u32) -> Self {
        self.min_calls = Some(calls);
        self
    }

    /// Counts calls taking `duration` or longer as slow, and opens the
    /// circuit when `threshold_percent` (1..=100) of the window is slow. The
    /// permit times the call exactly with the breaker's clock, or the caller
    /// passes its own measurement to
    /// [`Permit::record_with_duration`].
    ///
    /// [`Permit::record_with_duration`]: crate::Permit::record_with_duration
    pub fn slow_calls(mut self, duration: Duration, threshold_percent: u32) -> Self {
        self.slow_call_duration = Some(duration);
        self.slow_call_threshold_percent = threshold_percent;
        self
    }

    pub(crate) fn effective_min_calls(&self) -> u32 {
        self.min_calls.unwrap_or(self.window)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=100).contains(&self.threshold_percent) {
            return Err(ConfigError::new(
                "failure_rate.threshold_percent",
                "must be between 1 and 100",
            ));
        }
        if self.window == 0 {
            return Err(ConfigError::new(
                "failure_rate.window",
                "must be at least 1",
            ));
        }
        if self.window > MAX_WINDOW {
            return Err(ConfigError::new(
                "failure_rate.window",
                "must be at most 1000000",
            ));
        }
        match self.min_calls {
            Some(0) => {
                return Err(ConfigError::new(
                    "failure_rate.min_calls",
                    "must be at least 1",
                ));
            }
            Some(n) if n > self.window => {
                return Err(ConfigError::new(
                    "failure_rate.min_calls",
                    "must not exceed failure_rate.window",
                ));
            }
            _ => {}
        }
        if let Some(d) = self.slow_call_duration {
            if d.is_zero() {
                return Err(ConfigError::new(
                    "failure_rate.slow_call_duration",
                    "must be greater than zero",
                ));
            }
            if !(1..=100).contains(&self.slow_call_threshold_percent) {
                return Err(ConfigError::new(
                    "failure_rate.slow_call_threshold_percent",
                    "must be between 1 and 100",
                ));
            }
        }
        Ok(())
    }
}

/// Growth of the open period on consecutive re-opens.
///
/// The first open after the circuit was closed lasts exactly
/// `reset_timeout`. Each time a half-open trial fails and the circuit
/// re-opens, the period is multiplied by `multiplier` (default 2), capped at
/// `max`, and shortened by a random fraction of up to `jitter_percent`
/// (default 20 %) so that a fleet of clients does not probe a recovering
/// service in lockstep, but never below `reset_timeout`. Closing the circuit
/// resets the growth.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use svc_breaker::{Config, OpenBackoff};
///
/// // 30 s, then about 60 s, 120 s, 240 s, 300 s, 300 s ...
/// let config = Config::default().open_backoff(
///     OpenBackoff::new(Duration::from_secs(300)).jitter_percent(10),
/// );
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "file::RawOpenBackoff", into = "file::RawOpenBackoff")
)]
pub struct OpenBackoff {
    pub(crate) max: Duration,
    pub(crate) multiplier: u32,
    pub(crate) jitter_percent: u32,
}

impl OpenBackoff {
    /// Doubling open periods capped at `max` (which must be at least
    /// `reset_timeout`), with 20 % jitter.
    pub fn new(max: Duration) -> Self {
        OpenBackoff {
            max,
            multiplier: 2,
            jitter_percent: 20,
        }
    }

    /// The growth factor per re-open (at least 1; default 2).
    pub fn multiplier(mut self, factor: u32) -> Self {
        self.multiplier = factor;
        self
    }

    /// The largest share of a grown period (0..=100 %) removed at random
    /// (default 20). Zero makes the growth deterministic.
    pub fn jitter_percent(mut self, percent: u32) -> Self {
        self.jitter_percent = percent;
        self
    }

    /// The open period of the `reopens`-th consecutive re-open (0 is the
    /// first open), before jitter.
    pub(crate) fn period(&self, base: Duration, reopens: u32) -> Duration {
        let mut d = base;
        // 64 doublings of a nanosecond exceed any cap; bound the loop for multiplier 1.
        for _ in 0..reopens.min(64) {
            if d >= self.max {
                break;
            }
            d = d.saturating_mul(self.multiplier);
        }
        d.min(self.max)
    }

    fn validate(&self, reset_timeout: Duration) -> Result<(), ConfigError> {
        if self.multiplier == 0 {
            return Err(ConfigError::new(
                "open_backoff.multiplier",
                "must be at least 1",
            ));
        }
        if self.jitter_percent > 100 {
            return Err(ConfigError::new(
                "open_backoff.jitter_percent",
                "must be between 0 and 100",
            ));
        }
        if self.max < reset_timeout {
            return Err(ConfigError::new(
                "open_backoff.max",
                "must be at least reset_timeout",
            ));
        }
        Ok(())
    }
}

// ===== serde =====

/// The file format of [`Config`], [`FailureRate`] and [`OpenBackoff`]
/// (feature `serde`): the settings under the setters' names, durations as
/// strings (`"30s"`), unknown fields rejected, missing ones at their
/// defaults, and the result validated as [`CircuitBreaker::new`] would, so a
/// bad file fails where it is read, naming the setting.
///
/// [`CircuitBreaker::new`]: crate::CircuitBreaker::new
#[cfg(feature = "serde")]
mod file {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    use super::{Config, FailureRate, OpenBackoff};
    use crate::error::ConfigError;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct RawConfig {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure_threshold: Option<u32>,
        #[serde(
            default,
            with = "crate::serde_duration::option",
            skip_serializing_if = "Option::is_none"
        )]
        reset_timeout: Option<Duration>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        half_open_max_calls: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        success_threshold: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure_rate: Option<FailureRate>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        open_backoff: Option<OpenBackoff>,
        #[serde(
            default,
            with = "crate::serde_duration::option",
            skip_serializing_if = "Option::is_none"
        )]
        max_half_open_wait: Option<Duration>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    }

    impl TryFrom<RawConfig> for Config {
        type Error = ConfigError;

        fn try_from(raw: RawConfig) -> Result<Config, ConfigError> {
            let mut config = Config::default();
            if let Some(n) = raw.failure_threshold {
                config = config.failure_threshold(n);
            }
            if let Some(d) = raw.reset_timeout {
                config = config.reset_timeout(d);
            }
            if let Some(n) = raw.half_open_max_calls {
                config = config.half_open_max_calls(n);
            }
            if let Some(n) = raw.success_threshold {
                config = config.success_threshold(n);
            }
            if let Some(rate) = raw.failure_rate {
                config = config.failure_rate(rate);
            }
            if let Some(backoff) = raw.open_backoff {
                config = config.open_backoff(backoff);
            }
            config = config.max_half_open_wait(raw.max_half_open_wait);
            if let Some(name) = raw.name {
                config = config.name(name);
            }
            config.validate()?;
            Ok(config)
        }
    }

    impl From<Config> for RawConfig {
        fn from(config: Config) -> RawConfig {
            RawConfig {
                failure_threshold: Some(config.failure_threshold),
                reset_timeout: Some(config.reset_timeout),
                half_open_max_calls: Some(config.half_open_max_calls),
                success_threshold: Some(config.success_threshold),
                failure_rate: config.failure_rate,
                open_backoff: config.open_backoff,
                max_half_open_wait: config.max_half_open_wait,
                name: config.name.as_deref().map(str::to_owned),
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct RawFailureRate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold_percent: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_calls: Option<u32>,
        #[serde(
            default,
            with = "crate::serde_duration::option",
            skip_serializing_if = "Option::is_none"
        )]
        slow_call_duration: Option<Duration>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slow_call_threshold_percent: Option<u32>,
    }

    impl TryFrom<RawFailureRate> for FailureRate {
        type Error = ConfigError;

        fn try_from(raw: RawFailureRate) -> Result<FailureRate, ConfigError> {
            let mut rate = FailureRate::default();
            if let Some(p) = raw.threshold_percent {
                rate = rate.threshold_percent(p);
            }
            if let Some(n) = raw.window {
                rate = rate.window(n);
            }
            if let Some(n) = raw.min_calls {
                rate = rate.min_calls(n);
            }
            match (raw.slow_call_duration, raw.slow_call_threshold_percent) {
                (Some(d), p) => rate = rate.slow_calls(d, p.unwrap_or(100)),
                (None, Some(_)) => {
                    return Err(ConfigError::new(
                        "failure_rate.slow_call_threshold_percent",
                        "needs failure_rate.slow_call_duration",
                    ));
                }
                (None, None) => {}
            }
            rate.validate()?;
            Ok(rate)
        }
    }

    impl From<FailureRate> for RawFailureRate {
        fn from(rate: FailureRate) -> RawFailureRate {
            let slow = rate.slow_call_duration.is_some();
            RawFailureRate {
                threshold_percent: Some(rate.threshold_percent),
                window: Some(rate.window),
                min_calls: rate.min_calls,
                slow_call_duration: rate.slow_call_duration,
                slow_call_threshold_percent: slow.then_some(rate.slow_call_threshold_percent),
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct RawOpenBackoff {
        #[serde(with = "crate::serde_duration")]
        max: Duration,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        multiplier: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jitter_percent: Option<u32>,
    }

    impl TryFrom<RawOpenBackoff> for OpenBackoff {
        type Error = ConfigError;

        fn try_from(raw: RawOpenBackoff) -> Result<OpenBackoff, ConfigError> {
            let mut backoff = OpenBackoff::new(raw.max);
            if let Some(m) = raw.multiplier {
                backoff = backoff.multiplier(m);
            }
            if let Some(p) = raw.jitter_percent {
                backoff = backoff.jitter_percent(p);
            }
            // `max` against `reset_timeout` is checked with the whole config.
            backoff.validate(Duration::ZERO)?;
            Ok(backoff)
        }
    }

    impl From<OpenBackoff> for RawOpenBackoff {
        fn from(backoff: OpenBackoff) -> RawOpenBackoff {
            RawOpenBackoff {
                max: backoff.max,
                multiplier: Some(backoff.multiplier),
                jitter_percent: Some(backoff.jitter_percent),
            }
        }
    }
}
