//! Pairs: each candidate with the baseline measured in the same criterion
//! group, as the suite's `pairs` name them.

use super::{Estimate, Suite};

/// A candidate and the baseline measured in the same group.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Pair {
    /// The criterion group.
    pub(super) scenario: String,
    pub(super) candidate: Estimate,
    pub(super) baseline: Estimate,
}

impl Pair {
    /// candidate / baseline, on the medians (robust to loopback outliers).
    pub(super) fn ratio(&self) -> f64 {
        self.candidate.median_ns / self.baseline.median_ns
    }
}

/// The suite's pairs that both ran, in the suite's order.
pub(super) fn pair_up(suite: &Suite, estimates: &[Estimate]) -> Vec<Pair> {
    let find = |group: &str, function: &str| {
        let id = format!("{group}/{function}");
        estimates.iter().find(|e| e.id == id).cloned()
    };
    suite
        .pairs
        .iter()
        .filter_map(|&(group, candidate, baseline)| {
            Some(Pair {
                scenario: group.to_owned(),
                candidate: find(group, candidate)?,
                baseline: find(group, baseline)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::benchmarks::SUITES;
    use crate::benchmarks::criterion::estimate;

    #[test]
    fn pairs_candidates_with_their_baseline_in_the_same_group() {
        let estimates = [
            estimate("closed_path/failsafe", 22.0),
            estimate("closed_path/failsafe-default", 138.0),
            estimate("closed_path/svc-breaker", 5.5),
            estimate("open_rejection/svc-breaker", 3.0),
            estimate("lonely/svc-breaker", 1.0),
            estimate("unrelated", 1.0),
        ];
        let pairs = pair_up(&SUITES[0], &estimates);
        let names: Vec<(&str, &str)> = pairs
            .iter()
            .map(|p| (p.scenario.as_str(), p.baseline.name()))
            .collect();
        // The plain peer comes before its variant; a pair missing a side
        // (open_rejection without failsafe) is left out.
        assert_eq!(
            names,
            [
                ("closed_path", "failsafe"),
                ("closed_path", "failsafe-default")
            ]
        );
        assert!((pairs[0].ratio() - 0.25).abs() < 1e-9);
        assert_eq!(pairs[0].candidate.name(), "svc-breaker");
    }
}
