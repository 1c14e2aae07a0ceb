//! Which endpoint serves an attempt: power of two choices over peak-EWMA
//! latency × (in-flight + 1), the load Finagle and Linkerd balance on.
//!
//! Two endpoints are drawn at random among those that may serve (not
//! ejected, and not the one whose failure the attempt retries, when
//! another is left), and the less loaded one wins. Picking the best of two
//! random ones avoids both the herd that "always the least loaded" sends to
//! one endpoint between two measurements, and the blindness of round
//! robin to a slow replica (Mitzenmacher, "The Power of Two Choices").
//!
//! The latency estimate is a peak EWMA: a response slower than the
//! estimate raises it at once, a faster one pulls it down with weight
//! `1 - e^(-Δt/decay)`, and read without new responses it decays toward
//! zero, so that an endpoint once slow is tried again after a while.
//!
//! A failure counts with its latency like a success. Failures are the
//! business of outlier ejection ([`crate::endpoint::eject`]), which takes
//! a replica answering 503 in a microsecond out after a few of them; a
//! balancer that also shunned failures by latency would keep such a
//! replica at one probe in a long while, never ejected and never known to
//! be failing (we tried: the ejection tests caught it).

use std::time::Duration;

use tokio::time::Instant;

/// A peak-EWMA latency estimate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeakEwma {
    /// The estimate, in nanoseconds, at `stamp`.
    rtt_ns: f64,
    stamp: Instant,
}

impl PeakEwma {
    pub(crate) fn new(rtt: Duration, now: Instant) -> PeakEwma {
        PeakEwma {
            rtt_ns: rtt.as_nanos() as f64,
            stamp: now,
        }
    }

    /// The estimate at `now`: decayed toward zero since the last response.
    pub(crate) fn estimate(&self, now: Instant, decay: Duration) -> f64 {
        self.rtt_ns * self.weight(now, decay)
    }

    /// `e^(-Δt/decay)`: how much of the estimate is left at `now`.
    fn weight(&self, now: Instant, decay: Duration) -> f64 {
        let elapsed = now.saturating_duration_since(self.stamp).as_nanos() as f64;
        (-elapsed / decay.as_nanos() as f64).exp()
    }

    /// Adds a response (or failure) that took `rtt`.
    pub(crate) fn observe(&mut self, rtt: Duration, now: Instant, decay: Duration) {
        let rtt = rtt.as_nanos() as f64;
        let w = self.weight(now, decay);
        self.rtt_ns = if rtt > self.rtt_ns {
            rtt
        } else {
            self.rtt_ns * w + rtt * (1.0 - w)
        };
        self.stamp = now;
    }

    /// Starts again from `rtt` (an endpoint back from ejection, or new).
    pub(crate) fn reset(&mut self, rtt_ns: f64, now: Instant) {
        self.rtt_ns = rtt_ns;
        self.stamp = now;
    }
}

/// The load of an endpoint: its estimate × (in-flight + 1).
pub(crate) fn cost(estimate_ns: f64, in_flight: u32) -> f64 {
    estimate_ns * (f64::from(in_flight) + 1.0)
}

/// Two distinct indices below `n` (n ≥ 2), at random.
pub(crate) fn two_of(n: usize) -> (usize, usize) {
    let a = fastrand::usize(..n);
    let mut b = fastrand::usize(..n - 1);
    if b >= a {
        b += 1;
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECAY: Duration = Duration::from_secs(10);

    #[test]
    fn a_slow_response_raises_the_estimate_at_once() {
        let now = Instant::now();
        let mut ewma = PeakEwma::new(Duration::from_millis(1), now);
        ewma.observe(Duration::from_millis(50), now, DECAY);
        assert_eq!(ewma.estimate(now, DECAY), 50e6);
        // A fast one an instant later barely moves it...
        ewma.observe(
            Duration::from_millis(1),
            now + Duration::from_millis(1),
            DECAY,
        );
        assert!(ewma.estimate(now + Duration::from_millis(1), DECAY) > 49e6);
        // ... and one a decay later most of the way.
        let later = now + DECAY;
        ewma.observe(Duration::from_millis(1), later, DECAY);
        let estimate = ewma.estimate(later, DECAY);
        assert!(estimate < 20e6 && estimate > 1e6, "{estimate}");
    }

    #[test]
    fn idle_decays_it() {
        let now = Instant::now();
        let ewma = PeakEwma::new(Duration::from_millis(20), now);
        assert_eq!(ewma.estimate(now, DECAY), 20e6);
        let idle = ewma.estimate(now + DECAY * 4, DECAY);
        assert!(idle < 1e6, "{idle}");
    }

    #[test]
    fn in_flight_weighs_the_cost() {
        assert_eq!(cost(1e6, 0), 1e6);
        assert_eq!(cost(1e6, 3), 4e6);
    }

    #[test]
    fn two_of_gives_distinct_indices_in_range() {
        for n in 2..6 {
            for _ in 0..200 {
                let (a, b) = two_of(n);
                assert!(a < n && b < n && a != b);
            }
        }
    }
}
