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

use std::time::Duration;

/// The client settings and margins the soak runs with.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Concurrent callers.
    pub callers: usize,
    /// The facade's whole-call `timeout`.
    pub timeout: Duration,
    /// The facade's `attempt_timeout`.
    pub attempt_timeout: Duration,
    /// The breaker's `reset_timeout`.
    pub reset_timeout: Duration,
    /// Scheduling slack added to every time bound (a loaded 2-core machine
    /// running a debug build delays timers and tasks).
    pub margin: Duration,
    /// Largest acceptable RSS growth after the warm-up, in bytes.
    pub rss_growth: u64,
    /// Largest acceptable server requests per logical call in outages.
    pub outage_amplification: f64,
    /// The retry budget of the budget-only client: retries may add this
    /// fraction of its calls...
    pub budget_percent: f64,
    /// ...plus this many retries per second of the run, plus a reserve of
    /// `budget_per_sec × budget_ttl` at the start.
    pub budget_per_sec: f64,
    /// The budget's window.
    pub budget_ttl: Duration,
    /// Tasks that call again at once whenever their call fails fast (0: no
    /// starvation check).
    pub loopers: usize,
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response (any status).
    Response(u16),
    /// Rejected by the open circuit, without I/O.
    CircuitOpen,
    /// The whole-call or attempt timeout elapsed.
    Timeout,
    /// A 2xx head whose body could not be read (cut short, stalled, reset)
    /// or was not JSON.
    BadBody,
    /// Another error (reset, truncated, connect, budget...).
    Error,
    /// The soak dropped the call's future before it finished.
    Cancelled,
}

/// What kind of request a call was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// A GET, read and decoded as JSON.
    Get,
    /// A POST without an `Idempotency-Key` (must never be sent twice).
    Post,
    /// A POST with an `Idempotency-Key` (may be replayed).
    KeyedPost,
}

/// One logical call.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    /// When it started, from the start of the storm.
    pub started: Duration,
    /// How long until the facade returned (or the soak cancelled it), the
    /// body read and decoded included: callers read bodies through the
    /// library (`decode`), so a stalled body is part of the call.
    pub elapsed: Duration,
    /// The request.
    pub kind: CallKind,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether it started while the server was in an outage.
    pub in_outage: bool,
    /// Whether it was made by the budget-only client (no breaker).
    pub budget_only: bool,
}

/// A breaker state, as the soak saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breaker {
    /// Calls pass.
    Closed,
    /// Calls fail fast.
    Open,
    /// A trial is allowed.
    HalfOpen,
}

/// Everything the soak observed.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    /// Panics anywhere in the process (the panic hook counts them), plus
    /// caller tasks that ended in a panic.
    pub panics: u64,
    /// Every logical call.
    pub calls: Vec<Call>,
    /// Breaker transitions `(when, to)`, from the start of the storm.
    pub transitions: Vec<(Duration, Breaker)>,
    /// When the callers stopped starting calls.
    pub storm_end: Duration,
    /// The longest time no request reached the server while callers ran,
    /// and when it began.
    pub longest_silence: (Duration, Duration),
    /// Requests of the breaker client the server received while in an outage.
    pub outage_requests: u64,
    /// Requests of the budget-only client the server received.
    pub budget_requests: u64,
    /// How long the budget-only client ran, until its last call returned.
    pub budget_run: Duration,
    /// POSTs without a key that reached the server more than once:
    /// `(call id, arrivals)`.
    pub replayed_posts: Vec<(u64, u32)>,
    /// The most connections the server held at once.
    pub peak_connections: u64,
    /// Connections the server still held after the client was dropped and
    /// every handler had time to finish.
    pub connections_after_drain: u64,
    /// RSS samples `(when, bytes)`.
    pub rss: Vec<(Duration, u64)>,
    /// Samples before this are the warm-up.
    pub warmup: Duration,
    /// Phases in which every body failed after a `200` head, `(from, to)`
    /// from the start of the storm; only those that ended before the storm.
    pub bad_body_phases: Vec<(Duration, Duration)>,
    /// Requests the server answered with a failing body in those phases.
    pub bad_body_requests: u64,
    /// The ticker's ticks: `(when it was due, how late it ran)`.
    pub ticks: Vec<(Duration, Duration)>,
    /// When loopers were looping on rejected calls without yielding,
    /// `(from, to)`, one per tight loop.
    pub loops: Vec<(Duration, Duration)>,
    /// Fail-fast calls made in those tight loops.
    pub loop_calls: u64,
}

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

/// The storm did what it is for: calls succeeded, failed, hit an open
/// circuit, and some were cancelled (else the other checks prove nothing).
pub fn storm_ran(seen: &Observations) -> Option<Violation> {
    let count = |f: &dyn Fn(&Call) -> bool| seen.calls.iter().filter(|c| f(c)).count();
    let ok = count(&|c| matches!(c.outcome, Outcome::Response(200..=299)));
    let open = count(&|c| c.outcome == Outcome::CircuitOpen);
    let cancelled = count(&|c| c.outcome == Outcome::Cancelled);
    let outage = count(&|c| c.in_outage);
    let posts = count(&|c| c.kind == CallKind::Post);
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
    let looping = |due: Duration, late: Duration| {
        seen.loops
            .iter()
            .any(|(from, to)| due <= *to && due + late >= *from)
    };
    let late: Vec<(Duration, Duration)> = seen
        .ticks
        .iter()
        .copied()
        .filter(|(due, late)| *late > limits.margin && looping(*due, *late))
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

/// During outages the server saw fewer requests per logical call than the
/// limit.
pub fn amplification_within_budget(limits: &Limits, seen: &Observations) -> Option<Violation> {
    let calls = seen
        .calls
        .iter()
        .filter(|c| c.in_outage && !c.budget_only)
        .count();
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
    let calls = seen.calls.iter().filter(|c| c.budget_only).count();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            callers: 10,
            timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_millis(300),
            reset_timeout: Duration::from_secs(1),
            margin: Duration::from_millis(250),
            rss_growth: 1 << 20,
            outage_amplification: 1.5,
            budget_percent: 0.2,
            budget_per_sec: 10.0,
            budget_ttl: Duration::from_secs(10),
            loopers: 2,
        }
    }

    fn call(ms: u64, kind: CallKind, outcome: Outcome, in_outage: bool) -> Call {
        Call {
            started: Duration::from_millis(ms),
            elapsed: Duration::from_millis(5),
            kind,
            outcome,
            in_outage,
            budget_only: false,
        }
    }

    fn healthy() -> Observations {
        Observations {
            calls: vec![
                call(0, CallKind::Get, Outcome::Response(200), false),
                call(1, CallKind::Post, Outcome::Response(201), false),
                call(2, CallKind::Get, Outcome::CircuitOpen, true),
                call(3, CallKind::KeyedPost, Outcome::Cancelled, true),
            ],
            transitions: vec![
                (Duration::from_millis(100), Breaker::Open),
                (Duration::from_millis(1100), Breaker::HalfOpen),
                (Duration::from_millis(1200), Breaker::Closed),
                (Duration::from_millis(2000), Breaker::Open),
                (Duration::from_millis(3000), Breaker::HalfOpen),
            ],
            storm_end: Duration::from_secs(3),
            longest_silence: (Duration::from_millis(1100), Duration::from_millis(100)),
            outage_requests: 2,
            peak_connections: 12,
            rss: vec![
                (Duration::from_secs(1), 10 << 20),
                (Duration::from_secs(2), 10 << 20),
                (Duration::from_secs(3), (10 << 20) + 4096),
            ],
            warmup: Duration::from_secs(1),
            bad_body_phases: vec![(Duration::from_millis(1500), Duration::from_millis(3000))],
            bad_body_requests: 40,
            ticks: vec![
                (Duration::from_millis(10), Duration::from_millis(1)),
                (Duration::from_millis(1250), Duration::from_millis(240)),
                (Duration::from_millis(2900), Duration::from_millis(20)),
            ],
            loops: vec![(Duration::from_millis(1200), Duration::from_millis(1300))],
            loop_calls: 5000,
            ..Observations::default()
        }
    }

    fn names(v: &[Violation]) -> Vec<&'static str> {
        v.iter().map(|v| v.invariant).collect()
    }

    #[test]
    fn a_healthy_run_passes() {
        assert_eq!(check(&limits(), &healthy()), Vec::new());
    }

    #[test]
    fn an_idle_storm_is_a_violation() {
        let mut seen = healthy();
        seen.calls.retain(|c| c.outcome != Outcome::Cancelled);
        seen.outage_requests = 1;
        assert_eq!(names(&check(&limits(), &seen)), ["storm-ran"]);
    }

    #[test]
    fn panics_are_violations() {
        let mut seen = healthy();
        seen.panics = 2;
        assert_eq!(names(&check(&limits(), &seen)), ["no-panic"]);
    }

    #[test]
    fn late_calls_are_violations_but_cancelled_calls_are_not() {
        let mut seen = healthy();
        seen.calls[3].elapsed = Duration::from_secs(9);
        assert!(check(&limits(), &seen).is_empty());
        seen.calls[0].elapsed = Duration::from_millis(2251);
        // A body that stalled: a 2xx head, then the body failed late.
        seen.calls[1].elapsed = Duration::from_secs(3);
        seen.calls[1].outcome = Outcome::BadBody;
        let v = check(&limits(), &seen);
        assert_eq!(names(&v), ["call-within-timeout"]);
        assert!(v[0].detail.contains("2 call(s)"), "{}", v[0].detail);
        assert!(v[0].detail.contains("the slowest 3s"), "{}", v[0].detail);
        assert!(v[0].detail.contains("BadBody"), "{}", v[0].detail);
    }

    #[test]
    fn a_breaker_that_never_opens_on_failing_bodies_is_a_violation() {
        let mut seen = healthy();
        // The only opening in the phase is one from the phase before
        // (within attempt_timeout of its start).
        seen.transitions[3].0 = Duration::from_millis(1700);
        seen.transitions[4].0 = Duration::from_millis(2700);
        let v = check(&limits(), &seen);
        assert_eq!(names(&v), ["breaker-opens-on-bad-bodies"]);
        assert!(v[0].detail.contains("Open at 1.700s"), "{}", v[0].detail);
        // None at all.
        seen.transitions.truncate(3);
        let v = check(&limits(), &seen);
        assert_eq!(names(&v), ["breaker-opens-on-bad-bodies"]);
        assert!(v[0].detail.contains("then: none"), "{}", v[0].detail);
        // An opening within the margin after the phase counts.
        seen.transitions
            .push((Duration::from_millis(3250), Breaker::Open));
        assert!(check(&limits(), &seen).is_empty());
        // No such phase in the storm: nothing to check.
        seen.transitions.truncate(3);
        seen.bad_body_phases.clear();
        assert!(check(&limits(), &seen).is_empty());
    }

    #[test]
    fn a_tick_late_by_more_than_the_margin_while_loopers_loop_is_a_violation() {
        let mut seen = healthy();
        // Late, but not while a looper looped.
        seen.ticks
            .push((Duration::from_millis(500), Duration::from_millis(400)));
        assert!(check(&limits(), &seen).is_empty());
        // Due before the loop began, and still waiting when it began.
        seen.ticks
            .push((Duration::from_millis(1100), Duration::from_millis(300)));
        let v = check(&limits(), &seen);
        assert_eq!(names(&v), ["runtime-not-starved"]);
        assert!(v[0].detail.contains("due at 1.100s"), "{}", v[0].detail);
        assert!(v[0].detail.contains("300ms late"), "{}", v[0].detail);
    }

    #[test]
    fn loopers_that_never_looped_are_a_violation() {
        let mut seen = healthy();
        seen.loops.clear();
        let v = check(&limits(), &seen);
        assert_eq!(names(&v), ["runtime-not-starved"]);
        assert!(
            v[0].detail.contains("nothing was checked"),
            "{}",
            v[0].detail
        );
        // Without loopers there is nothing to check.
        let mut no_loopers = limits();
        no_loopers.loopers = 0;
        assert!(check(&no_loopers, &seen).is_empty());
    }

    #[test]
    fn a_replayed_unkeyed_post_is_a_violation() {
        let mut seen = healthy();
        seen.replayed_posts = vec![(17, 2)];
        let v = check(&limits(), &seen);
        assert_eq!(names(&v), ["no-unkeyed-post-replay"]);
        assert!(v[0].detail.contains("call 17 arrived 2 times"));
    }

    #[test]
    fn a_breaker_stuck_open_or_half_open_is_a_violation() {
        let mut seen = healthy();
        // Open for 1.3 s: longer than reset_timeout + margin.
        seen.transitions[1].0 = Duration::from_millis(1400);
        seen.transitions[2].0 = Duration::from_millis(1500);
        assert_eq!(names(&check(&limits(), &seen)), ["breaker-never-stuck"]);

        let mut seen = healthy();
        // Half-open until the end of the storm, 2.9 s.
        seen.transitions.truncate(2);
        seen.bad_body_phases.clear();
        seen.storm_end = Duration::from_millis(4000);
        assert_eq!(names(&check(&limits(), &seen)), ["breaker-never-stuck"]);

        let mut seen = healthy();
        seen.longest_silence = (Duration::from_millis(1600), Duration::from_secs(1));
        assert_eq!(names(&check(&limits(), &seen)), ["breaker-never-stuck"]);

        // Opened by a call still in flight after the storm ended, half-open
        // only when a late call asked: not judged past the end.
        let mut seen = healthy();
        seen.transitions
            .push((Duration::from_millis(3200), Breaker::Open));
        seen.transitions
            .push((Duration::from_millis(4800), Breaker::HalfOpen));
        assert!(check(&limits(), &seen).is_empty());
        // Open from 2.0 s to 3.6 s, 1.0 s of it before the end: not stuck.
        seen.transitions.truncate(5);
        seen.transitions[4].0 = Duration::from_millis(3600);
        assert!(check(&limits(), &seen).is_empty());
    }

    #[test]
    fn memory_growth_after_the_warmup_is_bounded() {
        let mut seen = healthy();
        seen.rss.push((Duration::from_secs(4), (12 << 20) + 1));
        let v = check(&limits(), &seen);
        assert_eq!(names(&v), ["memory-bounded"]);
        // Growth during the warm-up does not count.
        let mut seen = healthy();
        seen.rss.insert(0, (Duration::ZERO, 1 << 20));
        assert!(check(&limits(), &seen).is_empty());
    }

    #[test]
    fn too_many_or_leaked_connections_are_violations() {
        let mut seen = healthy();
        seen.peak_connections = 41;
        seen.connections_after_drain = 1;
        let v = check(&limits(), &seen);
        assert_eq!(names(&v), ["connections-bounded", "connections-bounded"]);
    }

    #[test]
    fn budget_only_retries_are_bounded() {
        let mut seen = healthy();
        let mut budget = call(5, CallKind::Get, Outcome::Response(503), true);
        budget.budget_only = true;
        seen.calls.extend(std::iter::repeat_n(budget, 1000));
        seen.budget_run = Duration::from_secs(10);
        // 1000 calls: bound 1000 × 1.2 + 10 × (10 + 11) = 1410.
        seen.budget_requests = 1410;
        assert!(check(&limits(), &seen).is_empty());
        seen.budget_requests = 1411;
        let v = check(&limits(), &seen);
        assert_eq!(names(&v), ["retries-within-budget"]);
        assert!(v[0].detail.contains("bound 1410"), "{}", v[0].detail);
    }

    #[test]
    fn outage_amplification_is_bounded() {
        let mut seen = healthy();
        seen.outage_requests = 3; // 3 requests for 2 outage calls: 1.5
        assert_eq!(
            names(&check(&limits(), &seen)),
            ["amplification-within-budget"]
        );
    }
}
