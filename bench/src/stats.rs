//! Latency statistics: nearest-rank percentiles over recorded samples.

use std::time::Duration;

/// The summary of a set of latency samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// How many samples were recorded.
    pub count: usize,
    /// The smallest sample.
    pub min: Duration,
    /// The arithmetic mean.
    pub mean: Duration,
    /// The median (nearest rank).
    pub p50: Duration,
    /// The 90th percentile (nearest rank).
    pub p90: Duration,
    /// The 99th percentile (nearest rank).
    pub p99: Duration,
    /// The largest sample.
    pub max: Duration,
}

impl Summary {
    /// Summarises `samples`; `None` when there are none.
    ///
    /// ```
    /// use std::time::Duration;
    /// use svc_bench::stats::Summary;
    ///
    /// let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
    /// let summary = Summary::from_samples(samples).unwrap();
    /// assert_eq!(summary.p50, Duration::from_millis(50));
    /// assert_eq!(summary.p99, Duration::from_millis(99));
    /// ```
    pub fn from_samples(mut samples: Vec<Duration>) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        let count = samples.len();
        // `count` fits in u32 for any run we make; saturate rather than wrap.
        let mean = total / u32::try_from(count).unwrap_or(u32::MAX);
        Some(Summary {
            count,
            min: samples[0],
            mean,
            p50: percentile(&samples, 50.0),
            p90: percentile(&samples, 90.0),
            p99: percentile(&samples, 99.0),
            max: samples[count - 1],
        })
    }
}

/// The nearest-rank percentile `p` (0..=100) of `sorted` (ascending).
///
/// The smallest sample such that at least `p`% of the samples are less than
/// or equal to it. Returns `Duration::ZERO` for an empty slice.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Nanoseconds of `d` as a float, for reports and ratios.
pub fn nanos(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn nearest_rank_matches_the_textbook_example() {
        // The classic nearest-rank example: 15, 20, 35, 40, 50.
        let sorted = ms(&[15, 20, 35, 40, 50]);
        assert_eq!(percentile(&sorted, 5.0), Duration::from_millis(15));
        assert_eq!(percentile(&sorted, 30.0), Duration::from_millis(20));
        assert_eq!(percentile(&sorted, 40.0), Duration::from_millis(20));
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(35));
        assert_eq!(percentile(&sorted, 100.0), Duration::from_millis(50));
    }

    #[test]
    fn extremes_and_empty_input() {
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
        let sorted = ms(&[7]);
        assert_eq!(percentile(&sorted, 0.0), Duration::from_millis(7));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(7));
        assert_eq!(percentile(&sorted, 250.0), Duration::from_millis(7));
        assert!(Summary::from_samples(Vec::new()).is_none());
    }

    #[test]
    fn summary_sorts_its_input_and_takes_the_mean() {
        let summary = Summary::from_samples(ms(&[30, 10, 20, 40])).unwrap();
        assert_eq!(summary.count, 4);
        assert_eq!(summary.min, Duration::from_millis(10));
        assert_eq!(summary.max, Duration::from_millis(40));
        assert_eq!(summary.mean, Duration::from_millis(25));
        assert_eq!(summary.p50, Duration::from_millis(20));
        assert_eq!(summary.p99, Duration::from_millis(40));
    }

    #[test]
    fn p99_of_a_thousand_samples_is_the_990th() {
        let samples: Vec<Duration> = (1..=1000).rev().map(Duration::from_micros).collect();
        let summary = Summary::from_samples(samples).unwrap();
        assert_eq!(summary.p99, Duration::from_micros(990));
        assert_eq!(summary.p90, Duration::from_micros(900));
        assert_eq!(summary.p50, Duration::from_micros(500));
    }
}
