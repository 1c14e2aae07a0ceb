//! Statistics: per-thread counter cells on the hot path, a snapshot for
//! readers.
//!
//! Every recorded call bumps a counter. One shared counter would make every
//! core fight over one cache line, which is exactly the contention a
//! lock-free breaker must not reintroduce; even an uncontended atomic
//! read-modify-write costs more than the rest of the closed path. So:
//!
//! - The first [`OWNED`] threads that record anything each claim a process-
//!   wide slot number (released when the thread exits). In every breaker,
//!   the cell of that number belongs to that thread alone, which therefore
//!   counts with a plain load and store, no read-modify-write. A slot is
//!   claimed with an acquire CAS and released with a release store, so a
//!   thread that inherits a slot continues from its predecessor's counts.
//! - Further threads share [`SHARED`] striped cells with `fetch_add`.
//!
//! A snapshot sums the cells. Counters are statistics only: no decision
//! reads them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::transition::State;

/// Cells owned by one thread each.
#[cfg(not(loom))]
const OWNED: usize = 28;
/// Cells shared (with `fetch_add`) by the threads beyond the first `OWNED`.
#[cfg(not(loom))]
const SHARED: usize = 4;
// Under loom every thread shares one cell: the counters are not modelled.
#[cfg(loom)]
const OWNED: usize = 0;
#[cfg(loom)]
const SHARED: usize = 1;
/// A power of two, so that a cell index needs no bounds check: `i & MASK`.
const CELLS: usize = OWNED + SHARED;
const MASK: usize = CELLS - 1;
const _: () = assert!(CELLS.is_power_of_two());

#[derive(Default)]
#[repr(align(128))]
struct Cell {
    successes: AtomicU64,
    failures: AtomicU64,
    ignored: AtomicU64,
    slow: AtomicU64,
    rejections: AtomicU64,
}

pub(crate) struct Counters {
    cells: [Cell; CELLS],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    Success,
    Failure,
    Ignored,
    Rejection,
}

/// The current thread's cell: below `OWNED` the thread's own, from `OWNED`
/// on a shared one.
#[cfg(not(loom))]
mod slot {
    use super::{OWNED, SHARED};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    static CLAIMED: [AtomicBool; OWNED] = [const { AtomicBool::new(false) }; OWNED];
    static NEXT_SHARED: AtomicUsize = AtomicUsize::new(0);
    const UNCLAIMED: usize = usize::MAX;

    /// A thread's claim on an owned slot, released when the thread exits.
    struct Claim(usize);

    impl Claim {
        fn new() -> Claim {
            for (i, claimed) in CLAIMED.iter().enumerate() {
                if claimed
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Claim(i);
                }
            }
            Claim(OWNED + NEXT_SHARED.fetch_add(1, Ordering::Relaxed) % SHARED)
        }
    }

    impl Drop for Claim {
        fn drop(&mut self) {
            // Whatever this thread counts from now on goes to a shared cell,
            // before the slot can be claimed by another thread.
            INDEX.set(OWNED);
            if self.0 < OWNED {
                // Release: the next owner sees every count made under this claim.
                CLAIMED[self.0].store(false, Ordering::Release);
            }
        }
    }

    thread_local! {
        // Read on every count: `const` and without a destructor, so reading
        // it is one thread-local load, with no lazy-initialisation check.
        static INDEX: Cell<usize> = const { Cell::new(UNCLAIMED) };
        // Holds the claim and releases it at thread exit.
        static CLAIM: Claim = Claim::new();
    }

    #[inline]
    pub(super) fn current() -> usize {
        match INDEX.get() {
            UNCLAIMED => claim(),
            i => i,
        }
    }

    #[cold]
    #[inline(never)]
    fn claim() -> usize {
        // While the thread-local is being torn down, count in a shared cell.
        let i = CLAIM.try_with(|c| c.0).unwrap_or(OWNED);
        INDEX.set(i);
        i
    }
}

#[cfg(loom)]
mod slot {
    pub(super) fn current() -> usize {
        super::OWNED
    }
}

#[inline]
fn bump(value: &AtomicU64, slot: usize) {
    if slot < OWNED {
        // Only this thread writes this cell: no read-modify-write needed.
        value.store(value.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    } else {
        value.fetch_add(1, Ordering::Relaxed);
    }
}

/// Summed counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) successes: u64,
    pub(crate) failures: u64,
    pub(crate) ignored: u64,
    pub(crate) slow: u64,
    pub(crate) rejections: u64,
}

impl Counter {
    pub(crate) fn of(outcome: crate::Outcome) -> Counter {
        match outcome {
            crate::Outcome::Success => Counter::Success,
            crate::Outcome::Failure => Counter::Failure,
            crate::Outcome::Ignored => Counter::Ignored,
        }
    }
}

impl Counters {
    pub(crate) fn new() -> Self {
        Counters {
            cells: Default::default(),
        }
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter, slow: bool) {
        let slot = slot::current();
        let cell = &self.cells[slot & MASK];
        let value = match counter {
            Counter::Success => &cell.successes,
            Counter::Failure => &cell.failures,
            Counter::Ignored => &cell.ignored,
            Counter::Rejection => &cell.rejections,
        };
        bump(value, slot);
        if slow {
            bump(&cell.slow, slot);
        }
    }

    pub(crate) fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in &self.cells {
            t.successes += s.successes.load(Ordering::Relaxed);
            t.failures += s.failures.load(Ordering::Relaxed);
            t.ignored += s.ignored.load(Ordering::Relaxed);
            t.slow += s.slow.load(Ordering::Relaxed);
            t.rejections += s.rejections.load(Ordering::Relaxed);
        }
        t
    }
}

/// A snapshot of a breaker's state and counters, from
/// [`CircuitBreaker::metrics`](crate::CircuitBreaker::metrics).
///
/// The counters are cumulative since the breaker was created (export them
/// as monotonic counters); the rates describe the current window. A snapshot
/// taken while other threads record is not a single atomic instant: each
/// counter is exact, but two counters may be a few calls apart.
///
/// # Example
///
/// ```
/// use svc_breaker::{CircuitBreaker, State};
///
/// let breaker = CircuitBreaker::default();
/// breaker.try_acquire()?.record_success();
/// breaker.try_acquire()?.record_failure();
/// let m = breaker.metrics();
/// assert_eq!(m.state(), State::Closed);
/// assert_eq!((m.calls(), m.successes(), m.failures()), (2, 1, 1));
/// assert_eq!(m.consecutive_failures(), 1);
/// assert_eq!(m.failure_rate(), 50.0);
/// # Ok::<(), svc_breaker::CircuitOpen>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    pub(crate) state: State,
    pub(crate) forced_open: bool,
    pub(crate) disabled: bool,
    pub(crate) epoch: u32,
    pub(crate) totals: Totals,
    pub(crate) consecutive_failures: u32,
    pub(crate) window: Option<crate::window::Counts>,
    pub(crate) half_open_in_flight: u32,
    pub(crate) half_open_successes: u32,
    pub(crate) time_in_state: Duration,
    pub(crate) retry_after: Option<Duration>,
}

impl Metrics {
    /// The state (see [`State`] for forced-open and disabled circuits).
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the circuit is held open by hand.
    pub fn is_forced_open(&self) -> bool {
        self.forced_open
    }

    /// Whether the breaker is disabled (lets everything through).
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// The current epoch (incremented by every transition).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Calls that were let through and finished: successes, failures and
    /// ignored outcomes (dropped permits included).
    pub fn calls(&self) -> u64 {
        self.totals.successes + self.totals.failures + self.totals.ignored
    }

    /// Calls recorded as successes.
    pub fn successes(&self) -> u64 {
        self.totals.successes
    }

    /// Calls recorded as failures.
    pub fn failures(&self) -> u64 {
        self.totals.failures
    }

    /// Calls recorded as ignored, including dropped permits.
    pub fn ignored(&self) -> u64 {
        self.totals.ignored
    }

    /// Calls at or over the slow-call duration (only counted when the
    /// failure-rate policy has a slow-call threshold).
    pub fn slow_calls(&self) -> u64 {
        self.totals.slow
    }

    /// Calls rejected with [`CircuitOpen`](crate::CircuitOpen).
    pub fn rejections(&self) -> u64 {
        self.totals.rejections
    }

    /// The current failure rate in percent (0.0..=100.0): over the window
    /// for the failure-rate policy, over all calls since creation for the
    /// consecutive-failures policy. 0.0 before any call.
    pub fn failure_rate(&self) -> f64 {
        match self.window {
            Some(w) => percent(u64::from(w.failures), u64::from(w.calls)),
            None => percent(
                self.totals.failures,
                self.totals.failures + self.totals.successes,
            ),
        }
    }

    /// The slow-call rate in percent over the window (0.0 without a
    /// failure-rate policy).
    pub fn slow_call_rate(&self) -> f64 {
        self.window
            .map_or(0.0, |w| percent(u64::from(w.slow), u64::from(w.calls)))
    }

    /// Calls in the failure-rate window (0 without that policy).
    pub fn window_calls(&self) -> u32 {
        self.window.map_or(0, |w| w.calls)
    }

    /// The current run of consecutive failures (consecutive-failures policy,
    /// closed state).
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Trial calls in flight (half-open only).
    pub fn half_open_in_flight(&self) -> u32 {
        self.half_open_in_flight
    }

    /// Successful trials so far (half-open only).
    pub fn half_open_successes(&self) -> u32 {
        self.half_open_successes
    }

    /// Time since the last transition.
    pub fn time_in_state(&self) -> Duration {
        self.time_in_state
    }

    /// While open: how long until a trial is allowed.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}
