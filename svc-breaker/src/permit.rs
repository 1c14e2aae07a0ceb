//! Permits: the right to make one call, recorded exactly once.

use std::fmt;
use std::time::Duration;

use crate::breaker::CircuitBreaker;
use crate::transition::Outcome;
use crate::word::Grant;

/// Permission to make one call, from
/// [`CircuitBreaker::try_acquire`](crate::CircuitBreaker::try_acquire).
///
/// Record the call's outcome exactly once; recording consumes the permit.
/// Dropping it unrecorded (an early return, a panic, a cancelled future)
/// counts as [`Outcome::Ignored`] and frees its half-open trial slot, so no
/// caller can leave the circuit stuck in half-open.
///
/// A permit remembers the epoch it was granted in: if the circuit changed
/// state since, its outcome is counted in the metrics but cannot change the
/// state.
///
/// # Example
///
/// ```
/// use svc_breaker::{CircuitBreaker, Outcome};
///
/// # fn send() -> Result<u16, std::io::Error> { Ok(503) }
/// let breaker = CircuitBreaker::default();
/// if let Ok(permit) = breaker.try_acquire() {
///     match send() {
///         Ok(status) if status >= 500 || status == 429 => permit.record_failure(),
///         Ok(status) if status >= 400 => permit.record(Outcome::Ignored),
///         Ok(_) => permit.record_success(),
///         Err(_) => permit.record_failure(),
///     }
/// }
/// ```
#[must_use = "record the outcome of the call, or drop the permit to ignore it"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    // Epoch, trial flag and the "recorded" flag in one word, and the exact
    // start of a timed call.
    grant: Grant,
}

impl<'a> Permit<'a> {
    #[inline]
    pub(crate) fn new(breaker: &'a CircuitBreaker, grant: Grant) -> Self {
        Permit { breaker, grant }
    }

    /// Turns this permit into one that owns a clone of the breaker.
    pub fn into_owned(mut self) -> OwnedPermit {
        let grant = self.grant.take();
        OwnedPermit::new(self.breaker.clone(), grant)
    }
}

/// A [`Permit`] that owns a clone of its breaker, so it is `'static` and can
/// move into a spawned task or thread. From
/// [`CircuitBreaker::try_acquire_owned`](crate::CircuitBreaker::try_acquire_owned).
///
/// # Example
///
/// ```
/// use svc_breaker::CircuitBreaker;
///
/// let breaker = CircuitBreaker::default();
/// let permit = breaker.try_acquire_owned()?;
/// std::thread::spawn(move || {
///     // ... make the call ...
///     permit.record_success();
/// })
/// .join()
/// .unwrap();
/// assert_eq!(breaker.metrics().successes(), 1);
/// # Ok::<(), svc_breaker::CircuitOpen>(())
/// ```
#[must_use = "record the outcome of the call, or drop the permit to ignore it"]
pub struct OwnedPermit {
    breaker: CircuitBreaker,
    grant: Grant,
}

impl OwnedPermit {
    pub(crate) fn new(breaker: CircuitBreaker, grant: Grant) -> Self {
        OwnedPermit { breaker, grant }
    }

    /// The breaker this permit belongs to.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

// ===== what both permits do =====

/// Recording, the grant's accessors, `Drop` and `Debug`, written once for
/// both permits: each has a `breaker` (borrowed or owned) and a `grant`.
macro_rules! permit_common {
    ($permit:ty, $name:literal) => {
        impl $permit {
            /// The call succeeded.
            #[inline(always)]
            pub fn record_success(self) {
                self.record(Outcome::Success);
            }

            /// The call failed.
            #[inline]
            pub fn record_failure(self) {
                self.record(Outcome::Failure);
            }

            /// Records `outcome`. If the failure-rate policy has a slow-call
            /// threshold, the call is timed exactly, with the breaker's
            /// clock, from the permit's creation.
            #[inline(always)]
            pub fn record(mut self, outcome: Outcome) {
                let grant = self.grant.take();
                self.breaker.finish(grant, outcome, None);
            }

            /// Records `outcome` for a call that took `elapsed` (used instead
            /// of the permit's own timing by a slow-call threshold).
            pub fn record_with_duration(mut self, outcome: Outcome, elapsed: Duration) {
                let grant = self.grant.take();
                self.breaker.finish(grant, outcome, Some(elapsed));
            }

            /// Whether this permit holds a half-open trial slot.
            pub fn is_trial(&self) -> bool {
                self.grant.trial()
            }

            /// The epoch this permit was granted in.
            pub fn epoch(&self) -> u32 {
                self.grant.epoch()
            }
        }

        impl Drop for $permit {
            #[inline]
            fn drop(&mut self) {
                if !self.grant.done() {
                    self.breaker.finish(self.grant, Outcome::Ignored, None);
                }
            }
        }

        impl fmt::Debug for $permit {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct($name)
                    .field("epoch", &self.grant.epoch())
                    .field("trial", &self.grant.trial())
                    .finish()
            }
        }
    };
}

permit_common!(Permit<'_>, "Permit");
permit_common!(OwnedPermit, "OwnedPermit");
