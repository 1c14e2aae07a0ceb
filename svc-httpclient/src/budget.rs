//! The retry budget: why a retrying client needs one.
//!
//! Retries help when failures are rare and independent. During an outage
//! they do the opposite: with `max_retries = 3`, every call becomes four
//! requests, so a service that is already failing receives four times its
//! normal load and cannot recover (a *retry storm*; chains of retrying
//! services multiply it again at every hop, istio #27419). The circuit
//! breaker stops this only after it opens, and it is per client.
//!
//! A budget caps retries at a fraction of recent calls: each call deposits
//! `retry_percent` of a token, each retry withdraws one token, and a retry
//! with no token left is not made. A reserve of `min_per_sec × ttl` tokens
//! lets a client that makes few calls still retry. This is Finagle's
//! `RetryBudget` and tower's `TpsBudget`; tokens expire after `ttl`, kept
//! in a ring of ten slots.
//!
//! A deposit is made on every call, healthy or not, so it must be cheap: it
//! takes an uncontended mutex for a few integer operations and reads the
//! clock. The clock is `tokio::time::Instant`, so paused-time tests work.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::RetryBudget;

/// Fixed-point scale: one retry costs `SCALE` units.
const SCALE: i64 = 1000;
const SLOTS: usize = 10;

#[derive(Debug)]
pub(crate) struct Budget {
    deposit: i64,
    reserve: i64,
    slot_len: Duration,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    slots: [i64; SLOTS],
    current: usize,
    slot_start: Instant,
    sum: i64,
}

impl Budget {
    pub(crate) fn new(config: &RetryBudget) -> Budget {
        let ttl = config.ttl;
        // Rounded to whole units; 0.2 -> 200 units per call.
        let deposit = (config.retry_percent * SCALE as f64).round() as i64;
        let reserve = i64::from(config.min_per_sec)
            .saturating_mul(i64::try_from(ttl.as_secs()).unwrap_or(60))
            .saturating_mul(SCALE);
        Budget {
            deposit,
            reserve,
            slot_len: ttl / SLOTS as u32,
            window: Mutex::new(Window {
                slots: [0; SLOTS],
                current: 0,
                slot_start: Instant::now(),
                sum: 0,
            }),
        }
    }

    fn window(&self, now: Instant) -> std::sync::MutexGuard<'_, Window> {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        window.expire(self.slot_len, now);
        window
    }

    /// Records a call (its first attempt) that started at `now` (the
    /// caller's clock read, not another).
    pub(crate) fn deposit(&self, now: Instant) {
        let mut window = self.window(now);
        let current = window.current;
        window.slots[current] += self.deposit;
        window.sum += self.deposit;
    }

    /// Takes one retry from the budget; `false` when none is left.
    pub(crate) fn withdraw(&self) -> bool {
        let mut window = self.window(Instant::now());
        if window.sum + self.reserve < SCALE {
            return false;
        }
        let current = window.current;
        window.slots[current] -= SCALE;
        window.sum -= SCALE;
        true
    }
}

impl Window {
    /// Drops the slots older than the window.
    fn expire(&mut self, slot_len: Duration, now: Instant) {
        let elapsed = now.saturating_duration_since(self.slot_start);
        if elapsed < slot_len {
            return;
        }
        let passed = (elapsed.as_nanos() / slot_len.as_nanos().max(1)) as u64;
        for _ in 0..passed.min(SLOTS as u64) {
            self.current = (self.current + 1) % SLOTS;
            self.sum -= self.slots[self.current];
            self.slots[self.current] = 0;
        }
        let advance = slot_len
            .checked_mul(u32::try_from(passed).unwrap_or(u32::MAX))
            .unwrap_or(elapsed);
        self.slot_start += advance.min(elapsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(percent: f64, min_per_sec: u32) -> Budget {
        Budget::new(
            &RetryBudget::default()
                .retry_percent(percent)
                .min_per_sec(min_per_sec),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn retries_are_a_fraction_of_calls() {
        let b = budget(0.2, 0);
        assert!(!b.withdraw(), "no calls yet, no reserve");
        for _ in 0..10 {
            b.deposit(Instant::now());
        }
        assert!(b.withdraw());
        assert!(b.withdraw());
        assert!(!b.withdraw(), "20% of 10 calls is 2 retries");
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_allows_retries_without_calls() {
        let b = budget(0.2, 10);
        let allowed = (0..1000).filter(|_| b.withdraw()).count();
        assert_eq!(allowed, 100, "10/s over a 10 s window");
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_and_withdrawals_expire_after_the_window() {
        let b = budget(1.0, 0);
        for _ in 0..5 {
            b.deposit(Instant::now());
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!b.withdraw(), "deposits expired");

        let b = budget(0.0, 1);
        let first = (0..100).filter(|_| b.withdraw()).count();
        assert_eq!(first, 10);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!b.withdraw(), "withdrawals still in the window");
        tokio::time::advance(Duration::from_secs(6)).await;
        let again = (0..100).filter(|_| b.withdraw()).count();
        assert_eq!(again, 10, "withdrawals expired");
    }
}
