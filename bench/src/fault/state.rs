//! What the fault server saw, shared between its handler (which counts)
//! and the soak (which reads the counts once the storm is over).

use super::{Delays, Fault, Mode};
use crate::lock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the fault server saw; shared with the handler.
#[derive(Debug)]
pub struct FaultState {
    mode: AtomicU8,
    pub(super) delays: Delays,
    started: Instant,
    pub(super) requests: AtomicU64,
    pub(super) outage_requests: AtomicU64,
    pub(super) budget_requests: AtomicU64,
    pub(super) budget_outage_requests: AtomicU64,
    pub(super) loop_requests: AtomicU64,
    pub(super) bad_body_requests: AtomicU64,
    pub(super) by_fault: Mutex<HashMap<Fault, u64>>,
    /// Arrivals of POSTs without an `Idempotency-Key`, by call id.
    pub(super) unkeyed_posts: Mutex<HashMap<u64, u32>>,
    /// Arrivals of POSTs with an `Idempotency-Key`, by call id.
    pub(super) keyed_posts: Mutex<HashMap<u64, u32>>,
    /// Arrival times of requests outside [`BUDGET_PREFIX`](super::BUDGET_PREFIX), in microseconds
    /// since `started`.
    arrivals: Mutex<Vec<u64>>,
}

impl FaultState {
    /// A state in [`Mode::Mixed`].
    pub fn new(delays: Delays) -> Arc<FaultState> {
        Arc::new(FaultState {
            mode: AtomicU8::new(0),
            delays,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            outage_requests: AtomicU64::new(0),
            budget_requests: AtomicU64::new(0),
            budget_outage_requests: AtomicU64::new(0),
            loop_requests: AtomicU64::new(0),
            bad_body_requests: AtomicU64::new(0),
            by_fault: Mutex::default(),
            unkeyed_posts: Mutex::default(),
            keyed_posts: Mutex::default(),
            arrivals: Mutex::default(),
        })
    }

    /// Switches the answers of the following requests.
    pub fn set_mode(&self, mode: Mode) {
        let value = match mode {
            Mode::Mixed => 0,
            Mode::Outage => 1,
            Mode::BadBodies => 2,
        };
        self.mode.store(value, Ordering::SeqCst);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        match self.mode.load(Ordering::SeqCst) {
            0 => Mode::Mixed,
            1 => Mode::Outage,
            _ => Mode::BadBodies,
        }
    }

    /// The instant the arrival times are measured from.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Requests received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests received while in [`Mode::Outage`] (those under
    /// [`LOOP_PREFIX`](super::LOOP_PREFIX) excepted).
    pub fn outage_requests(&self) -> u64 {
        self.outage_requests.load(Ordering::SeqCst)
    }

    /// Requests under [`BUDGET_PREFIX`](super::BUDGET_PREFIX) received.
    pub fn budget_requests(&self) -> u64 {
        self.budget_requests.load(Ordering::SeqCst)
    }

    /// Requests under [`BUDGET_PREFIX`](super::BUDGET_PREFIX) received while in [`Mode::Outage`].
    pub fn budget_outage_requests(&self) -> u64 {
        self.budget_outage_requests.load(Ordering::SeqCst)
    }

    /// Requests under [`LOOP_PREFIX`](super::LOOP_PREFIX) received, in any mode.
    pub fn loop_requests(&self) -> u64 {
        self.loop_requests.load(Ordering::SeqCst)
    }

    /// Requests answered in [`Mode::BadBodies`] (those under [`LOOP_PREFIX`](super::LOOP_PREFIX)
    /// excepted).
    pub fn bad_body_requests(&self) -> u64 {
        self.bad_body_requests.load(Ordering::SeqCst)
    }

    /// Requests answered with each fault (mixed mode only).
    pub fn by_fault(&self) -> Vec<(Fault, u64)> {
        let map = lock(&self.by_fault);
        Fault::ALL
            .iter()
            .map(|f| (*f, map.get(f).copied().unwrap_or(0)))
            .collect()
    }

    /// POSTs without an `Idempotency-Key` that arrived more than once:
    /// `(call id, arrivals)`, sorted.
    pub fn replayed_unkeyed_posts(&self) -> Vec<(u64, u32)> {
        let mut replayed: Vec<(u64, u32)> = lock(&self.unkeyed_posts)
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (*id, *n))
            .collect();
        replayed.sort_unstable();
        replayed
    }

    /// Distinct POSTs without an `Idempotency-Key` that arrived.
    pub fn unkeyed_posts(&self) -> usize {
        lock(&self.unkeyed_posts).len()
    }

    /// `(distinct keyed POSTs, their total arrivals)`: replays of these are
    /// allowed, and show that the client does retry a keyed POST.
    pub fn keyed_posts(&self) -> (usize, u64) {
        let map = lock(&self.keyed_posts);
        (map.len(), map.values().map(|n| u64::from(*n)).sum())
    }

    /// The longest time without any request (outside [`BUDGET_PREFIX`](super::BUDGET_PREFIX))
    /// arriving between `from` and `to` (both measured from [`FaultState::started`]), and when it began.
    pub fn longest_silence(&self, from: Duration, to: Duration) -> (Duration, Duration) {
        let mut arrivals = lock(&self.arrivals).clone();
        arrivals.sort_unstable();
        let from_us = duration_us(from);
        let to_us = duration_us(to);
        let mut previous = from_us;
        let mut longest = (0, from_us);
        for t in arrivals
            .into_iter()
            .filter(|t| *t >= from_us && *t <= to_us)
        {
            if t - previous > longest.0 {
                longest = (t - previous, previous);
            }
            previous = t;
        }
        if to_us.saturating_sub(previous) > longest.0 {
            longest = (to_us - previous, previous);
        }
        (
            Duration::from_micros(longest.0),
            Duration::from_micros(longest.1),
        )
    }

    /// When the last request (outside [`BUDGET_PREFIX`](super::BUDGET_PREFIX)) arrived, from
    /// [`FaultState::started`].
    pub fn last_arrival(&self) -> Option<Duration> {
        lock(&self.arrivals)
            .iter()
            .max()
            .map(|us| Duration::from_micros(*us))
    }

    pub(super) fn record_arrival(&self) {
        let now = duration_us(self.started.elapsed());
        lock(&self.arrivals).push(now);
    }
}

fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_silence_spans_the_ends_and_the_gaps() {
        let state = FaultState::new(Delays {
            slow: Duration::ZERO,
            hang: Duration::ZERO,
        });
        lock(&state.arrivals).extend([1_000_000, 1_100_000, 2_600_000, 2_700_000]);
        let (gap, at) = state.longest_silence(Duration::from_secs(1), Duration::from_secs(3));
        assert_eq!(gap, Duration::from_millis(1500));
        assert_eq!(at, Duration::from_millis(1100));
        // The tail counts as silence too.
        let (gap, at) = state.longest_silence(Duration::from_secs(1), Duration::from_secs(5));
        assert_eq!(gap, Duration::from_millis(2300));
        assert_eq!(at, Duration::from_millis(2700));
    }
}
