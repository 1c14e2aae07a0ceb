//! Errors: the circuit-open rejection, the `call` wrapper, bad configuration.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// The rejection returned while the circuit is open (or half-open with every
/// trial slot taken).
///
/// It is `Copy`, one word and allocation-free, so rejecting a call
/// costs a few atomic loads and nothing else.
///
/// # Example
///
/// ```
/// use svc_breaker::{CircuitBreaker, Config};
///
/// let breaker = CircuitBreaker::new(Config::default())?;
/// breaker.force_open();
/// let open = breaker.try_acquire().unwrap_err();
/// assert!(open.is_forced());
/// println!("try again in {:?}", open.retry_after());
/// # Ok::<(), svc_breaker::ConfigError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CircuitOpen {
    // Nanoseconds to wait (saturating at about 292 years) in the low 63
    // bits, "forced" in the top bit: one word, so that
    // `Result<Permit, CircuitOpen>` is as small as the permit.
    bits: u64,
}

const FORCED: u64 = 1 << 63;

impl CircuitOpen {
    #[inline]
    pub(crate) fn new(retry_after: Duration) -> Self {
        CircuitOpen::from_nanos(crate::clock::nanos(retry_after))
    }

    #[inline]
    pub(crate) fn from_nanos(retry_after: u64) -> Self {
        CircuitOpen {
            bits: retry_after.min(FORCED - 1),
        }
    }

    pub(crate) fn forced(retry_after: Duration) -> Self {
        CircuitOpen {
            bits: CircuitOpen::new(retry_after).bits | FORCED,
        }
    }

    /// How long until a trial call will be allowed: the rest of the open
    /// period, or zero when the circuit is half-open and its trial slots are
    /// taken (a slot may free up at any moment). For a circuit held open by
    /// [`force_open`](crate::CircuitBreaker::force_open) there is no such
    /// time; it is then the configured `reset_timeout`, a polite hint for a
    /// `Retry-After` header.
    pub fn retry_after(&self) -> Duration {
        Duration::from_nanos(self.bits & !FORCED)
    }

    /// Whether the circuit was opened by hand with
    /// [`force_open`](crate::CircuitBreaker::force_open).
    pub fn is_forced(&self) -> bool {
        self.bits & FORCED != 0
    }
}

impl fmt::Debug for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitOpen")
            .field("retry_after", &self.retry_after())
            .field("forced", &self.is_forced())
            .finish()
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_forced() {
            f.write_str("circuit breaker is forced open")
        } else {
            f.write_str("circuit breaker is open")
        }
    }
}

impl StdError for CircuitOpen {}

/// The error of [`CircuitBreaker::call`](crate::CircuitBreaker::call): the
/// circuit was open, or the call itself failed.
///
/// # Example
///
/// ```
/// use svc_breaker::{CircuitBreaker, Error};
///
/// # async fn run(breaker: CircuitBreaker) {
/// match breaker.call(async { Err::<(), _>(std::io::Error::other("boom")) }).await {
///     Err(Error::Open(open)) => println!("skipped, retry in {:?}", open.retry_after()),
///     Err(Error::Inner(e)) => println!("call failed: {e}"),
///     Err(e) => println!("{e}"),
///     Ok(()) => {}
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// The circuit was open; the future was never polled.
    Open(CircuitOpen),
    /// The call ran and returned this error.
    Inner(E),
}

impl<E> Error<E> {
    /// Whether the circuit was open.
    pub fn is_open(&self) -> bool {
        matches!(self, Error::Open(_))
    }

    /// The rejection, if the circuit was open.
    pub fn as_open(&self) -> Option<&CircuitOpen> {
        match self {
            Error::Open(open) => Some(open),
            Error::Inner(_) => None,
        }
    }

    /// The call's own error, if it ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Inner(e) => Some(e),
            Error::Open(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open(open) => fmt::Display::fmt(open, f),
            Error::Inner(e) => fmt::Display::fmt(e, f),
        }
    }
}

/// The inner error is transparent: `Display` prints it and `source()` is its
/// source, so a report does not print the message twice.
impl<E: StdError + 'static> StdError for Error<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Open(_) => None,
            Error::Inner(e) => e.source(),
        }
    }
}

impl<E> From<CircuitOpen> for Error<E> {
    fn from(open: CircuitOpen) -> Self {
        Error::Open(open)
    }
}

/// Why a [`Config`](crate::Config) was rejected. The message names the
/// setting and the rule it broke.
///
/// # Example
///
/// ```
/// use svc_breaker::{CircuitBreaker, Config};
///
/// let err = CircuitBreaker::new(Config::default().failure_threshold(0)).unwrap_err();
/// assert_eq!(err.setting(), "failure_threshold");
/// assert_eq!(err.to_string(), "failure_threshold must be at least 1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigError {
    setting: &'static str,
    rule: &'static str,
}

impl ConfigError {
    pub(crate) fn new(setting: &'static str, rule: &'static str) -> Self {
        ConfigError { setting, rule }
    }

    /// The name of the offending setting, e.g. `"failure_threshold"` or
    /// `"failure_rate.window"`.
    pub fn setting(&self) -> &'static str {
        self.setting
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.setting, self.rule)
    }
}

impl StdError for ConfigError {}
