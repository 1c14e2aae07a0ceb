//! Checks on what the client costs the process and the server: runtime
//! threads not starved by fail-fast loops, bounded memory, bounded and
//! released connections.

use super::{Limits, Observations, Violation, violation};
use std::time::Duration;

/// While loopers called again at once on every rejected call, the runtime
/// still ran its other tasks: no tick of the ticker that was due (or ran
/// late) during a tight loop ran later than the margin. A fail-fast path
/// that never returns `Pending` nor consumes tokio's cooperative budget lets
/// such a loop hold its worker thread for as long as it spins. Also a
/// violation: loopers that never looped (nothing was checked), or no ticks.
pub fn runtime_not_starved(limits: &Limits, seen: &Observations) -> Option<Violation> {
    if limits.loopers == 0 {
        return None;
    }
    if seen.loops.is_empty() || seen.loop_calls == 0 || seen.ticks.is_empty() {
        return Some(violation(
            "runtime-not-starved",
            format!(
                "nothing was checked: {} tight loop(s) of {} looper(s), {} fail-fast call(s) in \
                 them, {} tick(s)",
                seen.loops.len(),
                limits.loopers,
                seen.loop_calls,
                seen.ticks.len()
            ),
        ));
    }
    let late: Vec<(Duration, Duration)> = seen
        .ticks
        .iter()
        .copied()
        .filter(|(due, late)| *late > limits.margin && seen.looping(*due, *late))
        .collect();
    let (due, worst) = late.iter().copied().max_by_key(|(_, late)| *late)?;
    Some(violation(
        "runtime-not-starved",
        format!(
            "{} tick(s) ran later than the margin {:?} while loopers looped on rejected calls \
             ({} fail-fast calls in {} tight loops); the latest was due at {:.3}s and ran {worst:?} late",
            late.len(),
            limits.margin,
            seen.loop_calls,
            seen.loops.len(),
            due.as_secs_f64()
        ),
    ))
}

/// RSS after the warm-up never grew by more than the limit.
pub fn memory_bounded(limits: &Limits, seen: &Observations) -> Option<Violation> {
    let baseline = seen
        .rss
        .iter()
        .filter(|(t, _)| *t <= seen.warmup)
        .map(|(_, b)| *b)
        .next_back()?;
    let (at, peak) = seen
        .rss
        .iter()
        .filter(|(t, _)| *t > seen.warmup)
        .max_by_key(|(_, b)| *b)?;
    let growth = peak.saturating_sub(baseline);
    (growth > limits.rss_growth).then(|| {
        violation(
            "memory-bounded",
            format!(
                "RSS grew by {} KiB after the warm-up (from {} KiB to {} KiB at {:.1}s; bound {} KiB)",
                growth / 1024,
                baseline / 1024,
                peak / 1024,
                at.as_secs_f64(),
                limits.rss_growth / 1024
            ),
        )
    })
}

/// The server never held more than four connections per caller (one in use
/// plus the abandoned ones of timed-out attempts whose handlers are still
/// sleeping), and none was left once the client was dropped.
pub fn connections_bounded(limits: &Limits, seen: &Observations) -> Vec<Violation> {
    let mut out = Vec::new();
    let bound = 4 * limits.callers as u64;
    if seen.peak_connections > bound {
        out.push(violation(
            "connections-bounded",
            format!(
                "the server held {} connections at once (bound 4 per caller = {bound})",
                seen.peak_connections
            ),
        ));
    }
    if seen.connections_after_drain > 0 {
        out.push(violation(
            "connections-bounded",
            format!(
                "{} connection(s) still open after the client was dropped and handlers finished",
                seen.connections_after_drain
            ),
        ));
    }
    out
}
