//! Outcomes and latency percentiles of the demo's requests.

use std::time::Duration;

/// What the user got for one `GET /profiles/{id}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// 200 with the full profile.
    Ok,
    /// 200 with the profile but without messages (`degraded: true`).
    Degraded,
    /// 503 with `Retry-After`: auth's circuit is open, answered at once.
    Unavailable,
    /// Anything else: another status, a transport error, a timeout.
    Error,
}

impl Outcome {
    /// Whether the user got no profile.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Unavailable | Outcome::Error)
    }
}

/// The `p`-th percentile (0.0..=100.0) of sorted values, nearest-rank
/// method (the one percentile of the workspace: `svc-bench` uses it too): the smallest value such that at least `p`% of the values are
/// less than or equal to it. `None` for no values.
///
/// ```
/// use std::time::Duration;
/// use svc_demo::stats::percentile;
///
/// let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
/// assert_eq!(percentile(&ms, 50.0), Some(Duration::from_millis(50)));
/// assert_eq!(percentile(&ms, 99.0), Some(Duration::from_millis(99)));
/// assert_eq!(percentile(&[], 50.0), None);
/// ```
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Counts by outcome and the latencies of a set of requests.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// 200, full profile.
    pub ok: u64,
    /// 200, degraded.
    pub degraded: u64,
    /// 503 circuit open.
    pub unavailable: u64,
    /// Other failures.
    pub error: u64,
    latencies: Vec<Duration>,
    sorted: bool,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Tally::default()
    }

    /// Adds one request.
    pub fn add(&mut self, outcome: Outcome, latency: Duration) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Degraded => self.degraded += 1,
            Outcome::Unavailable => self.unavailable += 1,
            Outcome::Error => self.error += 1,
        }
        self.latencies.push(latency);
        self.sorted = false;
    }

    /// How many requests.
    pub fn total(&self) -> u64 {
        self.ok + self.degraded + self.unavailable + self.error
    }

    /// Requests that got no profile (503 and other failures).
    pub fn failed(&self) -> u64 {
        self.unavailable + self.error
    }

    /// `count / total`, 0.0 when empty.
    pub fn fraction(&self, count: u64) -> f64 {
        match self.total() {
            0 => 0.0,
            total => count as f64 / total as f64,
        }
    }

    /// The `p`-th latency percentile (see [`percentile`]).
    pub fn latency(&mut self, p: f64) -> Option<Duration> {
        if !self.sorted {
            self.latencies.sort_unstable();
            self.sorted = true;
        }
        percentile(&self.latencies, p)
    }
}

/// Formats a latency for the console and the summary: `1.2ms`, `35ms`, `1.20s`, `-`.
pub fn fmt_latency(latency: Option<Duration>) -> String {
    match latency {
        None => "-".to_owned(),
        Some(d) if d < Duration::from_millis(10) => format!("{:.1}ms", d.as_secs_f64() * 1e3),
        Some(d) if d < Duration::from_secs(1) => format!("{}ms", d.as_millis()),
        Some(d) => format!("{:.2}s", d.as_secs_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn percentile_nearest_rank() {
        let one = [ms(7)];
        assert_eq!(percentile(&one, 0.0), Some(ms(7)));
        assert_eq!(percentile(&one, 100.0), Some(ms(7)));
        let four = [ms(1), ms(2), ms(3), ms(4)];
        assert_eq!(percentile(&four, 25.0), Some(ms(1)));
        assert_eq!(percentile(&four, 26.0), Some(ms(2)));
        assert_eq!(percentile(&four, 50.0), Some(ms(2)));
        assert_eq!(percentile(&four, 75.0), Some(ms(3)));
        assert_eq!(percentile(&four, 99.0), Some(ms(4)));
        assert_eq!(percentile(&four, 0.0), Some(ms(1)));
        assert_eq!(percentile(&four, 250.0), Some(ms(4)));
    }

    #[test]
    fn nearest_rank_matches_the_textbook_example() {
        // The classic nearest-rank example: 15, 20, 35, 40, 50.
        let sorted = [ms(15), ms(20), ms(35), ms(40), ms(50)];
        assert_eq!(percentile(&sorted, 5.0), Some(ms(15)));
        assert_eq!(percentile(&sorted, 30.0), Some(ms(20)));
        assert_eq!(percentile(&sorted, 40.0), Some(ms(20)));
        assert_eq!(percentile(&sorted, 50.0), Some(ms(35)));
        assert_eq!(percentile(&sorted, 100.0), Some(ms(50)));
    }

    #[test]
    fn extremes_and_empty_input() {
        assert_eq!(percentile(&[], 50.0), None);
        let sorted = [ms(7)];
        assert_eq!(percentile(&sorted, 0.0), Some(ms(7)));
        assert_eq!(percentile(&sorted, 99.0), Some(ms(7)));
        assert_eq!(percentile(&sorted, 250.0), Some(ms(7)));
    }

    #[test]
    fn p99_sees_the_tail() {
        // 98 fast requests and 2 slow ones: p50 fast, p99 slow.
        let mut tally = Tally::new();
        for _ in 0..98 {
            tally.add(Outcome::Ok, ms(2));
        }
        tally.add(Outcome::Error, ms(900));
        tally.add(Outcome::Error, ms(950));
        assert_eq!(tally.latency(50.0), Some(ms(2)));
        assert_eq!(tally.latency(99.0), Some(ms(900)));
        assert_eq!(tally.latency(100.0), Some(ms(950)));
    }

    #[test]
    fn tally_counts_by_outcome() {
        let mut tally = Tally::new();
        assert_eq!(tally.fraction(0), 0.0);
        assert_eq!(tally.latency(50.0), None);
        tally.add(Outcome::Ok, ms(1));
        tally.add(Outcome::Degraded, ms(1));
        tally.add(Outcome::Unavailable, ms(1));
        tally.add(Outcome::Error, ms(1));
        assert_eq!(tally.total(), 4);
        assert_eq!(tally.failed(), 2);
        assert_eq!(tally.fraction(tally.ok), 0.25);
        assert!(Outcome::Unavailable.is_failure());
        assert!(!Outcome::Degraded.is_failure());
    }

    #[test]
    fn latency_formatting() {
        assert_eq!(fmt_latency(None), "-");
        assert_eq!(fmt_latency(Some(Duration::from_micros(1234))), "1.2ms");
        assert_eq!(fmt_latency(Some(ms(35))), "35ms");
        assert_eq!(fmt_latency(Some(ms(1200))), "1.20s");
    }
}
