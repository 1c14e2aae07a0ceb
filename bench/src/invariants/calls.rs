//! Checks on the logical calls: that the storm exercised the client, that
//! nothing panicked, that every call ended in time, that no unkeyed POST was
//! replayed, and that retries stayed within their budgets.

use super::{Call, CallKind, Limits, Observations, Outcome, Violation, violation};

/// The storm did what it is for: calls succeeded, failed, hit an open
/// circuit, and some were cancelled (else the other checks prove nothing).
pub fn storm_ran(seen: &Observations) -> Option<Violation> {
    let ok = seen.count(|c| matches!(c.outcome, Outcome::Response(200..=299)));
    let open = seen.count(|c| c.outcome == Outcome::CircuitOpen);
    let cancelled = seen.count(|c| c.outcome == Outcome::Cancelled);
    let outage = seen.count(|c| c.in_outage);
    let posts = seen.count(|c| c.kind == CallKind::Post);
    if ok == 0 || open == 0 || cancelled == 0 || outage == 0 || posts == 0 {
        return Some(violation(
            "storm-ran",
            format!(
                "the storm did not exercise the client: {} calls, {ok} 2xx, {open} circuit-open, \
                 {cancelled} cancelled, {outage} during outages, {posts} unkeyed POSTs",
                seen.calls.len()
            ),
        ));
    }
    None
}

/// No panic anywhere.
pub fn no_panic(seen: &Observations) -> Option<Violation> {
    (seen.panics > 0).then(|| violation("no-panic", format!("{} panic(s)", seen.panics)))
}

/// Every call the soak did not cancel returned within `timeout` (plus the
/// margin), reading and decoding the body included: bodies that stall,
/// reset or are cut short must end within the call's timeout too.
pub fn calls_within_timeout(limits: &Limits, seen: &Observations) -> Option<Violation> {
    let bound = limits.timeout + limits.margin;
    let late: Vec<&Call> = seen
        .calls
        .iter()
        .filter(|c| c.outcome != Outcome::Cancelled && c.elapsed > bound)
        .collect();
    let worst = late.iter().max_by_key(|c| c.elapsed)?;
    Some(violation(
        "call-within-timeout",
        format!(
            "{} call(s), body read included, took longer than timeout {:?} + margin {:?}; \
             the slowest {:?}, started at {:.3}s ({:?}, {:?})",
            late.len(),
            limits.timeout,
            limits.margin,
            worst.elapsed,
            worst.started.as_secs_f64(),
            worst.kind,
            worst.outcome
        ),
    ))
}

/// No POST without an `Idempotency-Key` reached the server twice.
pub fn no_unkeyed_post_replayed(seen: &Observations) -> Option<Violation> {
    let first = seen.replayed_posts.first()?;
    Some(violation(
        "no-unkeyed-post-replay",
        format!(
            "{} POST(s) without an Idempotency-Key reached the server more than once \
             (call {} arrived {} times)",
            seen.replayed_posts.len(),
            first.0,
            first.1
        ),
    ))
}

/// During outages the server saw fewer requests per logical call than the
/// limit.
pub fn amplification_within_budget(limits: &Limits, seen: &Observations) -> Option<Violation> {
    let calls = seen.count(|c| c.in_outage && !c.budget_only);
    if calls == 0 {
        return None; // `storm-ran` reports it.
    }
    let ratio = seen.outage_requests as f64 / calls as f64;
    (ratio >= limits.outage_amplification).then(|| {
        violation(
            "amplification-within-budget",
            format!(
                "{} requests for {calls} logical calls during outages: {ratio:.2} per call (bound < {})",
                seen.outage_requests, limits.outage_amplification
            ),
        )
    })
}

/// The budget-only client (breaker off, 3 retries) sent no more requests
/// than its retry budget allows over the whole run: one per call, plus
/// `budget_percent` of the calls, plus `budget_per_sec` per second, plus
/// the initial reserve (`budget_per_sec × budget_ttl`), plus one slot of the
/// budget's ring (`budget_ttl / 10`) for expiry granularity. Without a budget,
/// every call failing during an outage would cost four requests.
pub fn retries_within_budget(limits: &Limits, seen: &Observations) -> Option<Violation> {
    let calls = seen.count(|c| c.budget_only);
    if calls == 0 {
        return None;
    }
    let calls = calls as f64;
    let bound = calls * (1.0 + limits.budget_percent)
        + limits.budget_per_sec
            * (seen.budget_run.as_secs_f64() + limits.budget_ttl.as_secs_f64() * 1.1);
    (seen.budget_requests as f64 > bound).then(|| {
        violation(
            "retries-within-budget",
            format!(
                "the budget-only client sent {} requests for {calls} calls in {:.1}s (bound {bound:.0}: \
                 calls × {:.2} + {}/s × (run + 1.1 × ttl))",
                seen.budget_requests,
                seen.budget_run.as_secs_f64(),
                1.0 + limits.budget_percent,
                limits.budget_per_sec
            ),
        )
    })
}
