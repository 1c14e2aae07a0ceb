//! The summary printed and written at the end of a run.

use super::checks::Check;
use super::load::Report;
use super::plan::Plan;
use crate::stats::fmt_latency;
use std::fmt::Write as _;

impl Report {
    pub(super) fn summary(&self, plan: &Plan, checks: &[Check]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<17} {:>5} {:>8} {:>7} {:>9} {:>7} {:>7} {:>8} {:>8} {:>13}  per auth replica",
            "phase",
            "secs",
            "requests",
            "ok",
            "degraded",
            "failed",
            "(503)",
            "p50",
            "p99",
            "reached auth",
        );
        for (index, phase) in plan.phases.iter().enumerate() {
            let mut t = self.tally(self.phase_samples(index));
            let reached = match self.auth_calls[index] {
                Some(r) => format!("{r} ({})", pct_short(r, t.total())),
                None => "?".to_owned(),
            };
            let replicas = match self.replica_calls.get(index) {
                Some(calls) if calls.len() > 1 => calls
                    .iter()
                    .map(|n| n.map_or("?".to_owned(), |n| n.to_string()))
                    .collect::<Vec<_>>()
                    .join("/"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "{:<17} {:>5} {:>8} {:>7} {:>9} {:>7} {:>7} {:>8} {:>8} {:>13}  {replicas}",
                phase.name,
                phase.secs,
                t.total(),
                pct_short(t.ok, t.total()),
                pct_short(t.degraded, t.total()),
                pct_short(t.failed(), t.total()),
                format!("({})", pct_short(t.unavailable, t.total())),
                fmt_latency(t.latency(50.0)),
                fmt_latency(t.latency(99.0)),
                reached,
            );
        }
        for (index, phase) in plan.phases.iter().enumerate() {
            let mut kinds = std::collections::BTreeMap::<&str, u64>::new();
            for s in self.phase_samples(index) {
                if let Some(detail) = &s.detail {
                    *kinds.entry(detail.as_str()).or_default() += 1;
                }
            }
            if !kinds.is_empty() {
                let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} x{n}")).collect();
                let _ = writeln!(out, "  {} other failures: {}", phase.name, kinds.join(", "));
            }
        }
        out.push_str(&self.deadline_summary(plan));
        let _ = writeln!(out);
        for c in checks {
            let _ = writeln!(
                out,
                "{} {}: {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            );
            for note in &c.notes {
                let _ = writeln!(out, "       {note}");
            }
        }
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        let _ = writeln!(out);
        if failed.is_empty() {
            let _ = writeln!(out, "every expectation held ({} checks)", checks.len());
        } else {
            let _ = writeln!(
                out,
                "{} of {} expectations failed: {}",
                failed.len(),
                checks.len(),
                failed.join("; ")
            );
        }
        out
    }
}

pub(super) fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

pub(super) fn pct_short(count: u64, total: u64) -> String {
    if total == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", count as f64 * 100.0 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(pct_short(1, 3), "33.3%");
        assert_eq!(pct_short(0, 0), "-");
        assert_eq!(pct(0.995), "99.5%");
    }
}
