//! Latency statistics: nearest-rank percentiles over recorded samples
//! (the percentile itself is `svc_demo::stats::percentile`, the one copy).

use std::time::Duration;

use svc_demo::stats::percentile;

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
        // Not empty: every percentile exists.
        let at = |p| percentile(&samples, p).unwrap_or_default();
        Some(Summary {
            count,
            min: samples[0],
            mean,
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: samples[count - 1],
        })
    }
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
    fn no_samples_no_summary() {
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
