//! When a closed circuit opens: after consecutive failures, or on the
//! failure (or slow-call) rate over a window of recent calls.
//!
//! The consecutive count lives in the state word itself; the rate policy
//! keeps its window beside the word (see `window.rs`), and the state
//! machine asks it after each recorded call whether it has tripped.

use crate::config::FailureRate;
use crate::transition::Reason;
use crate::window::Window;

pub(crate) enum Policy {
    Consecutive(u32),
    Rate(RatePolicy),
}

pub(crate) struct RatePolicy {
    pub(crate) window: Window,
    threshold_percent: u64,
    min_calls: u32,
    slow_threshold_percent: Option<u64>,
}

impl RatePolicy {
    pub(crate) fn new(rate: &FailureRate) -> Self {
        RatePolicy {
            window: Window::new(rate.window),
            threshold_percent: u64::from(rate.threshold_percent),
            min_calls: rate.effective_min_calls(),
            slow_threshold_percent: rate
                .slow_call_duration
                .map(|_| u64::from(rate.slow_call_threshold_percent)),
        }
    }

    pub(crate) fn tripped(&self) -> Option<Reason> {
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
