//! The soak's invariants, as pure functions of what it observed, so each
//! check is unit-tested against data that violates it.
//!
//! | name | holds when |
//! |---|---|
//! | `storm-ran` | calls succeeded, hit an open circuit, were cancelled, ran in outages |
//! | `no-panic` | nothing panicked |
//! | `call-within-timeout` | every call, body read included, returned within `timeout` + margin |
//! | `no-unkeyed-post-replay` | no POST without an `Idempotency-Key` reached the server twice |
//! | `breaker-never-stuck` | open ≤ `reset_timeout`, half-open ≤ `timeout`, no long silence |
//! | `breaker-opens-on-bad-bodies` | the circuit opened in every phase where every body failed |
//! | `runtime-not-starved` | while callers looped on rejected calls, no tick was late by more than the margin |
//! | `memory-bounded` | RSS after the warm-up grew less than the limit |
//! | `connections-bounded` | at most four connections per caller, none left after the drop |
//! | `amplification-within-budget` | few requests per call during outages |
//! | `retries-within-budget` | the breaker-less client stayed within its retry budget |
//!
//! The checks are grouped by what they look at, one module each, so that a
//! new check lands next to the ones it resembles and each file stays short
//! enough to read whole:
//!
//! - `observed`: what the soak hands over ([`Observations`], [`Limits`]);
//! - `calls`: the logical calls (the storm ran, no panic, time bounds,
//!   POST replays, amplification and the retry budget);
//! - `breaker`: the breaker's states over time;
//! - `resources`: the runtime, memory and connections.
//!
//! This module only gathers them ([`check`]) and names a violation.

mod breaker;
mod calls;
mod observed;
mod resources;
#[cfg(test)]
mod tests;

pub use breaker::{breaker_never_stuck, breaker_opens_on_bad_bodies};
pub use calls::{
    amplification_within_budget, calls_within_timeout, no_panic, no_unkeyed_post_replayed,
    retries_within_budget, storm_ran,
};
pub use observed::{Breaker, Call, CallKind, Limits, Observations, Outcome};
pub use resources::{connections_bounded, memory_bounded, runtime_not_starved};

/// A violated invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's name.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

fn violation(invariant: &'static str, detail: String) -> Violation {
    Violation { invariant, detail }
}

/// Checks every invariant; empty when all hold.
pub fn check(limits: &Limits, seen: &Observations) -> Vec<Violation> {
    let mut out = Vec::new();
    out.extend(storm_ran(seen));
    out.extend(no_panic(seen));
    out.extend(calls_within_timeout(limits, seen));
    out.extend(no_unkeyed_post_replayed(seen));
    out.extend(breaker_never_stuck(limits, seen));
    out.extend(breaker_opens_on_bad_bodies(limits, seen));
    out.extend(runtime_not_starved(limits, seen));
    out.extend(memory_bounded(limits, seen));
    out.extend(connections_bounded(limits, seen));
    out.extend(amplification_within_budget(limits, seen));
    out.extend(retries_within_budget(limits, seen));
    out
}
