//! The scenario's expectations, as checks over what a run observed.

use super::load::{Report, Sample};
use super::plan::{Kind, Plan};
use super::summary::pct;
use crate::profile::DebugClients;
use crate::stats::{Outcome, Tally, fmt_latency};
use std::path::Path;
use std::time::Duration;

/// One expectation of the scenario and whether it held.
#[derive(Clone, Debug)]
pub(super) struct Check {
    pub(super) name: String,
    pub(super) passed: bool,
    pub(super) detail: String,
    /// Lines shown under the check (e.g. one trace's log lines).
    pub(super) notes: Vec<String>,
}

pub(super) fn check(name: impl Into<String>, passed: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        passed,
        detail: detail.into(),
        notes: Vec::new(),
    }
}

/// `HH:MM:SS.mmm service METHOD /path answered status=.. latency_ms=..` from a
/// compact log line of an answered request, `None` for other lines.
pub(super) fn log_excerpt(service: &str, line: &str) -> Option<String> {
    let at = line.find("answered ")?;
    let message = line[at..]
        .split_whitespace()
        .take_while(|word| !word.starts_with("otel."))
        .collect::<Vec<_>>()
        .join(" ");
    let time = line.split_whitespace().next()?;
    let time = time
        .split_once('T')
        .map_or(time, |(_, t)| t.trim_end_matches('Z'));
    let time = &time[..time.len().min(12)];
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .map(|v| v.trim_matches('"'))
    };
    let method = field("http.request.method=").unwrap_or("?");
    let path = field("url.path=").unwrap_or("?");
    Some(format!("{time} {service:<11} {method} {path} {message}"))
}

impl Report {
    pub(super) fn phase_samples(&self, index: usize) -> impl Iterator<Item = &Sample> {
        let (start, end) = self.windows[index];
        self.samples
            .iter()
            .filter(move |s| s.sent_at >= start && s.done_at <= end)
    }

    pub(super) fn tally<'a>(&self, samples: impl Iterator<Item = &'a Sample>) -> Tally {
        let mut tally = Tally::new();
        for s in samples {
            tally.add(s.outcome, s.latency);
        }
        tally
    }

    pub(super) fn checks(&self, plan: &Plan, logs: Option<&Path>) -> Vec<Check> {
        let mut checks = Vec::new();
        for (index, phase) in plan.phases.iter().enumerate() {
            let mut tally = self.tally(self.phase_samples(index));
            let expected = phase.secs * u64::from(plan.rate);
            // The load really ran: at least 80% of the planned requests.
            checks.push(check(
                format!("{}: the load ran", phase.name),
                tally.total() * 10 >= expected * 8,
                format!("{} of {expected} planned requests", tally.total()),
            ));
            match phase.kind {
                Kind::Healthy => {
                    let ok = tally.fraction(tally.ok);
                    checks.push(check(
                        "healthy: ≥ 99% full profiles",
                        ok >= 0.99,
                        format!("{} ok", pct(ok)),
                    ));
                }
                Kind::ReplicaDown => checks.extend(self.replica_down_checks(index, &tally)),
                Kind::ChatDown => {
                    if index > 0 && plan.phases[index - 1].kind == Kind::ReplicaDown {
                        checks.push(self.replica_back_check(index));
                    }
                    let degraded = tally.fraction(tally.degraded);
                    checks.push(check(
                        "chat down: no request failed",
                        tally.failed() == 0,
                        format!("{} failed", tally.failed()),
                    ));
                    checks.push(check(
                        "chat down: ≥ 95% degraded profiles",
                        degraded >= 0.95,
                        format!("{} degraded", pct(degraded)),
                    ));
                }
                Kind::AuthFailing => checks.extend(self.auth_failing_checks(index, &mut tally)),
                Kind::AuthRecovered => checks.extend(self.recovered_checks(index, plan)),
                // Compared with each other below.
                Kind::AuthSlow | Kind::AuthSlowUnbounded => {}
            }
        }
        checks.extend(self.deadline_checks(plan));
        checks.push(self.trace_check(logs));
        checks
    }

    /// One auth replica (the last) answers 500: it is ejected, the others
    /// serve, and the service's breaker never opens.
    pub(super) fn replica_down_checks(&self, index: usize, tally: &Tally) -> Vec<Check> {
        let ok = tally.fraction(tally.ok);
        let after = &self.replica_calls_after_first[index];
        let total: Option<u64> = after.iter().copied().sum();
        let broken = after.last().copied().flatten();
        let shown = after
            .iter()
            .map(|n| n.map_or("?".to_owned(), |n| n.to_string()))
            .collect::<Vec<_>>()
            .join("/");
        vec![
            check(
                "auth replica down: ≥ 99.5% full profiles",
                ok >= 0.995,
                format!("{} ok", pct(ok)),
            ),
            check(
                "auth replica down: the broken replica receives < 5% of auth's requests after the first second",
                matches!((broken, total), (Some(b), Some(t)) if t > 0 && b * 20 < t),
                format!("{shown} per replica"),
            ),
            check(
                "auth replica down: auth's breaker stays closed",
                !self.auth_open_seen[index],
                if self.auth_open_seen[index] {
                    "seen open".to_owned()
                } else {
                    "closed throughout".to_owned()
                },
            ),
        ]
    }

    /// The replica broken in the phase before serves again once healed.
    pub(super) fn replica_back_check(&self, index: usize) -> Check {
        let calls = &self.replica_calls[index];
        let total: Option<u64> = calls.iter().copied().sum();
        let back = calls.last().copied().flatten();
        check(
            "chat down: the healed auth replica serves again",
            back.is_some_and(|b| b > 0),
            match (back, total) {
                (Some(b), Some(t)) => format!("{b} of {t} auth requests"),
                _ => "auth's stats unavailable".to_owned(),
            },
        )
    }

    pub(super) fn auth_failing_checks(&self, index: usize, tally: &mut Tally) -> Vec<Check> {
        let mut checks = Vec::new();
        let first_503 = self
            .phase_samples(index)
            .filter(|s| s.outcome == Outcome::Unavailable)
            .map(|s| s.sent_at)
            .min();
        checks.push(check(
            "auth failing: auth's breaker opened",
            self.auth_open_seen[index] && first_503.is_some(),
            match first_503 {
                Some(t) => format!("first 503 with Retry-After at {:.1}s", t.as_secs_f64()),
                None => "no 503 with Retry-After".to_owned(),
            },
        ));
        if let Some(first) = first_503 {
            let mut after = self.tally(self.phase_samples(index).filter(|s| s.sent_at > first));
            let fast = after.fraction(after.unavailable);
            let p50 = after.latency(50.0);
            checks.push(check(
                "auth failing: once open, ≥ 90% are 503 answered fast (p50 < 50 ms)",
                fast >= 0.90 && p50.is_some_and(|p| p < Duration::from_millis(50)),
                format!("{} 503, p50 {}", pct(fast), fmt_latency(p50)),
            ));
            let waits: Vec<Option<u64>> = self
                .phase_samples(index)
                .filter(|s| s.outcome == Outcome::Unavailable)
                .map(|s| s.retry_after)
                .collect();
            let retry_after_ok = waits
                .iter()
                .all(|r| r.is_some_and(|r| (1..=60).contains(&r)));
            let low = waits.iter().flatten().min().copied().unwrap_or(0);
            let high = waits.iter().flatten().max().copied().unwrap_or(0);
            checks.push(check(
                "auth failing: every 503 carries Retry-After (1-60 s)",
                retry_after_ok,
                format!("{low}-{high} s, from CircuitOpen::retry_after()"),
            ));
        }
        let requests = tally.total();
        let reached = self.auth_calls[index];
        checks.push(check(
            "auth failing: auth receives < 10% of the phase's requests",
            reached.is_some_and(|r| requests > 0 && r * 10 < requests),
            match reached {
                Some(r) => format!("{r} of {requests} reached auth"),
                None => "auth's stats unavailable".to_owned(),
            },
        ));
        checks
    }

    pub(super) fn recovered_checks(&self, index: usize, plan: &Plan) -> Vec<Check> {
        let state = |d: &Option<DebugClients>, chat: bool| {
            d.as_ref()
                .and_then(|d| {
                    if chat {
                        d.chat.as_ref().map(|c| c.state.clone())
                    } else {
                        Some(d.auth.state.clone())
                    }
                })
                .unwrap_or_else(|| "unknown".to_owned())
        };
        let start = state(&self.debug_at_start[index], false);
        let end = state(&self.debug_at_end[index], false);
        let chat_end = state(&self.debug_at_end[index], true);
        let epochs = |d: &Option<DebugClients>| d.as_ref().map(|d| d.auth.epoch);
        let transitions = match (
            epochs(&self.debug_at_start[index]),
            epochs(&self.debug_at_end[index]),
        ) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        };
        let phase_end = self
            .phase_samples(index)
            .map(|s| s.sent_at)
            .max()
            .unwrap_or_default();
        let mut last = self.tally(
            self.phase_samples(index)
                .filter(|s| s.sent_at + plan.settle > phase_end),
        );
        let ok = last.fraction(last.ok);
        vec![
            check(
                "auth recovered: the breaker went from open through half-open to closed",
                start != "closed" && end == "closed" && chat_end == "closed" && transitions >= 1,
                format!(
                    "auth {start} -> {end} ({transitions} transitions), chat {chat_end} at the end"
                ),
            ),
            check(
                format!(
                    "auth recovered: ≥ 95% full profiles in the last {} s",
                    plan.settle.as_secs()
                ),
                ok >= 0.95,
                format!("{} ok, p99 {}", pct(ok), fmt_latency(last.latency(99.0))),
            ),
        ]
    }

    /// A trace id sent in the healthy phase, continued by profile-svc and seen
    /// by auth-svc and chat-svc (their stats and all three logs).
    pub(super) fn trace_check(&self, logs: Option<&Path>) -> Check {
        let name = "one trace crosses all three services";
        let candidates: Vec<&str> = self
            .phase_samples(0)
            .filter(|s| s.outcome == Outcome::Ok)
            .filter(|s| s.trace_returned.as_deref() == Some(s.trace_sent.as_str()))
            .map(|s| s.trace_sent.as_str())
            .filter(|t| self.auth_traces.contains(*t) && self.chat_traces.contains(*t))
            .collect();
        let Some(trace) = candidates.last() else {
            let continued = self
                .phase_samples(0)
                .filter(|s| s.trace_returned.as_deref() == Some(s.trace_sent.as_str()))
                .count();
            return check(
                name,
                false,
                format!(
                    "{continued} healthy requests came back with their own trace id; none seen by both auth-svc and chat-svc"
                ),
            );
        };
        let Some(logs) = logs else {
            return check(
                name,
                true,
                format!("trace {trace}: returned by profile-svc, in auth's and chat's stats"),
            );
        };
        let mut missing = Vec::new();
        let mut notes = Vec::new();
        for service in ["profile-svc", "auth-svc", "chat-svc"] {
            // auth-svc's replicas log to auth-svc.log, auth-svc-2.log, ...
            let mut text =
                std::fs::read_to_string(logs.join(format!("{service}.log"))).unwrap_or_default();
            if service == "auth-svc" {
                for replica in 2..=9 {
                    if let Ok(more) =
                        std::fs::read_to_string(logs.join(format!("{service}-{replica}.log")))
                    {
                        text.push_str(&more);
                    }
                }
            }
            let mut lines = text.lines().filter(|line| line.contains(trace)).peekable();
            if lines.peek().is_none() {
                missing.push(service);
            }
            notes.extend(lines.filter_map(|line| log_excerpt(service, line)));
        }
        // The hops in time order: auth and chat answer before profile does.
        notes.sort();
        let mut trace_check = check(
            name,
            missing.is_empty(),
            if missing.is_empty() {
                format!(
                    "trace {trace}: grep it in {}/ ({} candidates)",
                    logs.display(),
                    candidates.len()
                )
            } else {
                format!(
                    "trace {trace} missing from the logs of {}",
                    missing.join(", ")
                )
            },
        );
        trace_check.notes = notes;
        trace_check
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_excerpts_keep_time_route_and_answer() {
        let line = "2026-11-27T08:33:31.357132Z  INFO HTTP request:request: svc_demo::backend: \
                    answered status=200 latency_ms=0 otel.kind=\"server\" otel.name=GET /users/{id} \
                    http.request.method=GET url.path=/users/3 http.route=\"/users/{id}\" trace_id=19444cd9";
        assert_eq!(
            log_excerpt("auth-svc", line).unwrap(),
            "08:33:31.357 auth-svc    GET /users/3 answered status=200 latency_ms=0"
        );
        assert_eq!(
            log_excerpt("auth-svc", "2026-11-27T08:33:31Z WARN other"),
            None
        );
    }
}
