//! Time, injected.
//!
//! The breaker never calls `Instant::now()` itself: it asks a [`Clock`]. In
//! production that is [`SystemClock`]; in tests a [`ManualClock`] makes a 30 s
//! reset timeout take microseconds and makes every boundary exact.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock: the time elapsed since a fixed origin of the clock's
/// choosing.
///
/// The origin may be anything (the process start, the Unix epoch, a
/// century ago): the breaker reads the clock once when it is built and keeps
/// every time relative to that reading.
///
/// Implementations must never go backwards. The breaker reads the clock only
/// off the closed-path fast path: when the circuit is open, on a transition,
/// and to time calls when a slow-call threshold is configured.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use svc_breaker::Clock;
///
/// /// A clock frozen at one instant.
/// struct Frozen(Duration);
///
/// impl Clock for Frozen {
///     fn now(&self) -> Duration {
///         self.0
///     }
/// }
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Time elapsed since this clock's origin.
    fn now(&self) -> Duration;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }
}

/// The default clock: [`Instant`], measured from the clock's creation.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to, for tests.
///
/// Clones share the same time, so a test keeps one clone and gives another
/// to the breaker. It starts at zero.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use svc_breaker::{CircuitBreaker, Config, ManualClock, State};
///
/// let clock = ManualClock::new();
/// let breaker = CircuitBreaker::with_clock(Config::default().failure_threshold(1), clock.clone())?;
/// breaker.try_acquire()?.record_failure();
/// assert_eq!(breaker.state(), State::Open);
///
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(breaker.state(), State::HalfOpen);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// Moves the clock forward by `by` (saturating at about 584 years).
    pub fn advance(&self, by: Duration) {
        let by = nanos(by);
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_add(by))
            });
    }

    /// Sets the clock to `to`. Moving it backwards is allowed for tests of
    /// misbehaving clocks; the breaker tolerates it (an open circuit simply
    /// stays open longer).
    pub fn set(&self, to: Duration) {
        self.nanos.store(nanos(to), Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

// ===== the breaker's view of its clock =====

/// The default clock without dynamic dispatch: an open circuit reads the
/// clock on every rejection.
pub(crate) enum AnyClock {
    System(SystemClock),
    Custom(Arc<dyn Clock>),
}

impl AnyClock {
    #[inline]
    pub(crate) fn now(&self) -> Duration {
        match self {
            AnyClock::System(clock) => clock.now(),
            AnyClock::Custom(clock) => clock.now(),
        }
    }
}

/// `d` in whole nanoseconds, saturating at about 584 years.
#[inline]
pub(crate) fn nanos(d: Duration) -> u64 {
    // No u128 arithmetic: this is on the rejection path.
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}
