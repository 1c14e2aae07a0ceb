//! The deadline phases: each request is sent with a 300 ms budget
//! (`svc-timeout-ms`) while auth-svc takes 800 ms. What counts is the work
//! done after the caller gave up: for every request, how long auth-svc was
//! still busy with it past the request's deadline (auth-svc's [`Work`]
//! records, matched by trace id, against the driver's send time plus the
//! budget, both wall-clock).

use super::checks::{Check, check};
use super::load::{Report, Sample};
use super::plan::{BUDGET, Kind, Plan};
use super::summary::pct;
use crate::backend::Work;
use crate::stats::Outcome;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Scheduling slack on a loaded machine for "answered within the budget".
const SLACK: Duration = Duration::from_millis(30);

/// What one deadline phase shows.
#[derive(Clone, Debug, Default)]
pub(super) struct Late {
    /// Requests of the phase sent with a budget.
    pub(super) requests: u64,
    /// Of those, answered by profile-svc within the budget (plus [`SLACK`]).
    pub(super) in_time: u64,
    /// Of those, whose work auth-svc recorded.
    pub(super) matched: u64,
    /// auth-svc's work past the requests' deadlines, in total.
    pub(super) late_ms: f64,
    /// Of the matched, those whose work auth-svc stopped at the deadline.
    pub(super) cut: u64,
}

impl Late {
    /// auth-svc's mean work past the deadline per matched request.
    pub(super) fn mean_ms(&self) -> f64 {
        if self.matched == 0 {
            0.0
        } else {
            self.late_ms / self.matched as f64
        }
    }
}

/// How long auth-svc's `work` for `sample` went on past its deadline.
fn late_ms(sample: &Sample, budget: Duration, work: &Work) -> f64 {
    let deadline = sample.sent_unix_ms + budget.as_secs_f64() * 1e3;
    (work.ended_unix_ms - deadline).max(0.0)
}

impl Report {
    /// The figures of the phase at `index`.
    pub(super) fn late(&self, index: usize) -> Late {
        let mut late = Late::default();
        for s in self.phase_samples(index) {
            let Some(budget) = s.budget else { continue };
            late.requests += 1;
            // An answer (a profile, or an HTTP status), in time.
            let answered = s.outcome != Outcome::Error
                || s.detail.as_deref().is_some_and(|d| d.starts_with("status"));
            if answered && s.latency <= budget + SLACK {
                late.in_time += 1;
            }
            if let Some(work) = self.auth_work.get(&s.trace_sent) {
                late.matched += 1;
                late.late_ms += late_ms(s, budget, work);
                late.cut += u64::from(work.cut_by_deadline);
            }
        }
        late
    }

    /// Sets each second's [`auth_late_ms`](crate::chart::Point::auth_late_ms):
    /// the mean for the requests whose deadline fell in it.
    pub(super) fn fill_late_work(&mut self) {
        let mut by_second = BTreeMap::<u64, (f64, u64)>::new();
        for s in &self.samples {
            let (Some(budget), Some(work)) = (s.budget, self.auth_work.get(&s.trace_sent)) else {
                continue;
            };
            // Points are numbered by the second they end.
            let second = (s.sent_at + budget).as_secs() + 1;
            let entry = by_second.entry(second).or_default();
            entry.0 += late_ms(s, budget, work);
            entry.1 += 1;
        }
        for point in &mut self.points {
            if let Some((total, n)) = by_second.get(&(point.t as u64)) {
                point.auth_late_ms = Some(total / *n as f64);
            }
        }
    }

    /// The deadline phases' checks, once both have run.
    pub(super) fn deadline_checks(&self, plan: &Plan) -> Vec<Check> {
        let index = |kind| plan.phases.iter().position(|p| p.kind == kind);
        let (Some(on), Some(off)) = (index(Kind::AuthSlow), index(Kind::AuthSlowUnbounded)) else {
            return Vec::new();
        };
        let (on, off) = (self.late(on), self.late(off));
        let budget_ms = BUDGET.as_millis();
        vec![
            check(
                format!("auth slow: ≥ 95% answered within the {budget_ms} ms budget"),
                on.requests > 0 && on.in_time * 100 >= on.requests * 95,
                format!(
                    "{} of {} (504 from profile-svc, auth-svc being out of time)",
                    on.in_time, on.requests
                ),
            ),
            check(
                "auth slow: auth-svc stops its work at the deadline (≤ 20 ms past it per request)",
                on.matched * 10 >= on.requests * 8 && on.mean_ms() <= 20.0,
                format!(
                    "{:.1} ms past the deadline per request ({} of {} requests' work seen, {} stopped at the deadline)",
                    on.mean_ms(),
                    on.matched,
                    on.requests,
                    on.cut
                ),
            ),
            check(
                "no propagation: auth-svc works on for nobody (≥ 200 ms past the deadline per request, 10× more)",
                off.matched * 10 >= off.requests * 8
                    && off.mean_ms() >= 200.0
                    && off.mean_ms() >= 10.0 * on.mean_ms().max(1.0),
                format!(
                    "{:.1} ms past the deadline per request, vs {:.1} ms with propagation",
                    off.mean_ms(),
                    on.mean_ms()
                ),
            ),
        ]
    }

    /// The summary's lines on the deadline phases.
    pub(super) fn deadline_summary(&self, plan: &Plan) -> String {
        let mut out = String::new();
        let rows: Vec<(&str, Late)> = plan
            .phases
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p.kind {
                Kind::AuthSlow => Some(("propagation on ", self.late(i))),
                Kind::AuthSlowUnbounded => Some(("propagation off", self.late(i))),
                _ => None,
            })
            .collect();
        if rows.is_empty() {
            return out;
        }
        let _ = writeln!(
            out,
            "\nauth-svc busy past the callers' deadline ({} ms budget, auth-svc takes {} ms):",
            BUDGET.as_millis(),
            super::plan::AUTH_SLOW_MS
        );
        for (label, late) in rows {
            let _ = writeln!(
                out,
                "  {label}: {:>8.1} s in total, {:>6.1} ms per request ({} requests, {} matched, {} answered in time, {} stopped at the deadline)",
                late.late_ms / 1e3,
                late.mean_ms(),
                late.requests,
                late.matched,
                pct(if late.requests == 0 {
                    0.0
                } else {
                    late.in_time as f64 / late.requests as f64
                }),
                late.cut
            );
        }
        out
    }
}
