//! Checks on the breaker's states over time: never stuck open or half-open,
//! and open in every phase where every body failed.

use super::{Breaker, Limits, Observations, Violation, violation};

/// The breaker never stayed open past `reset_timeout` (plus the margin)
/// nor half-open past one call's `timeout` (plus the margin) while callers
/// were calling, and the server never went without requests for longer
/// than an open period plus one attempt (plus the margin).
pub fn breaker_never_stuck(limits: &Limits, seen: &Observations) -> Vec<Violation> {
    let mut out = Vec::new();
    let open_bound = limits.reset_timeout + limits.margin;
    let half_open_bound = limits.timeout + limits.margin;
    // The state in force from each transition to the next (or to the end).
    // A period cut short by the end of the storm, or begun after it (a call
    // still in flight), is judged up to the end of the storm only: past it
    // no caller starts calls, and an open breaker moves to half-open only
    // when asked.
    let mut periods = Vec::new();
    for (i, (at, state)) in seen.transitions.iter().enumerate() {
        let until = seen
            .transitions
            .get(i + 1)
            .map_or(seen.storm_end, |(next, _)| (*next).min(seen.storm_end));
        periods.push((*at, *state, until.saturating_sub(*at)));
    }
    for (at, state, lasted) in periods {
        let bound = match state {
            Breaker::Open => open_bound,
            Breaker::HalfOpen => half_open_bound,
            Breaker::Closed => continue,
        };
        if lasted > bound {
            out.push(violation(
                "breaker-never-stuck",
                format!(
                    "{state:?} at {:.3}s lasted {lasted:?} while callers were calling (bound {bound:?})",
                    at.as_secs_f64()
                ),
            ));
        }
    }
    let silence_bound = limits.reset_timeout + limits.attempt_timeout + limits.margin;
    let (silence, from) = seen.longest_silence;
    if silence > silence_bound {
        out.push(violation(
            "breaker-never-stuck",
            format!(
                "no request reached the server for {silence:?} from {:.3}s (bound: reset_timeout \
                 + attempt_timeout + margin = {silence_bound:?})",
                from.as_secs_f64()
            ),
        ));
    }
    out
}

/// In every phase where every body failed after a `200` head, the breaker
/// opened: a transition to open between `attempt_timeout` after the phase
/// began (earlier ones may come from attempts of the phase before) and the
/// margin after it ended. A client that reads the body within the attempt
/// counts each failed body as a failure; one that returns at the head sees
/// only successes, and the circuit stays closed against a dependency that
/// never delivers a body.
pub fn breaker_opens_on_bad_bodies(limits: &Limits, seen: &Observations) -> Vec<Violation> {
    let mut out = Vec::new();
    for (from, to) in &seen.bad_body_phases {
        let (lo, hi) = (*from + limits.attempt_timeout, *to + limits.margin);
        let opened = seen
            .transitions
            .iter()
            .any(|(at, state)| *state == Breaker::Open && *at >= lo && *at <= hi);
        if !opened {
            let during: Vec<String> = seen
                .transitions
                .iter()
                .filter(|(at, _)| *at >= *from && *at <= hi)
                .map(|(at, state)| format!("{state:?} at {:.3}s", at.as_secs_f64()))
                .collect();
            out.push(violation(
                "breaker-opens-on-bad-bodies",
                format!(
                    "every body failed after a 200 head from {:.3}s to {:.3}s ({} such answers in \
                     all such phases), but the breaker did not open between {:.3}s and {:.3}s \
                     (transitions then: {})",
                    from.as_secs_f64(),
                    to.as_secs_f64(),
                    seen.bad_body_requests,
                    lo.as_secs_f64(),
                    hi.as_secs_f64(),
                    if during.is_empty() {
                        "none".to_owned()
                    } else {
                        during.join(", ")
                    }
                ),
            ));
        }
    }
    out
}
