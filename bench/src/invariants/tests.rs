//! The checks against data that violates each of them, through [`check`]
//! as the soak calls it.

use super::*;
use std::time::Duration;

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
