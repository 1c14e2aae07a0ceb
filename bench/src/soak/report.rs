//! The figures the soak prints before its verdict: calls by kind and
//! outcome, the server's counts, amplification, connections, the breaker,
//! memory and the loopers.

use super::{LOOPERS, RECORD_BYTES, TICK, TIMEOUT};
use crate::fault::{Fault, FaultState};
use crate::invariants::{Breaker, Call, CallKind, Observations, Outcome};
use crate::stats;
use std::time::Duration;
use svc_demo::net;

pub(super) fn report(
    seen: &Observations,
    state: &FaultState,
    server: &net::Server,
    final_state: Option<svc_client::State>,
    callers_done: Duration,
    raw_peak: u64,
) {
    println!(
        "\nlogical calls: {} (all callers done at {:.1}s)",
        seen.calls.len(),
        callers_done.as_secs_f64()
    );
    for (name, kind, budget) in [
        ("GET", CallKind::Get, false),
        ("POST", CallKind::Post, false),
        ("POST+key", CallKind::KeyedPost, false),
        ("GET*", CallKind::Get, true),
    ] {
        let of = |o: &dyn Fn(Outcome) -> bool| {
            seen.count(|c: &Call| c.kind == kind && c.budget_only == budget && o(c.outcome))
        };
        println!(
            "  {name:<9} 2xx {:>6}  4xx/5xx {:>6}  bad body {:>5}  circuit-open {:>6}  timeout {:>5}  other error {:>5}  cancelled {:>5}",
            of(&|o| matches!(o, Outcome::Response(200..=299))),
            of(&|o| matches!(o, Outcome::Response(s) if s >= 300)),
            of(&|o| o == Outcome::BadBody),
            of(&|o| o == Outcome::CircuitOpen),
            of(&|o| o == Outcome::Timeout),
            of(&|o| o == Outcome::Error),
            of(&|o| o == Outcome::Cancelled),
        );
    }
    let durations: Vec<Duration> = seen
        .calls
        .iter()
        .filter(|c| c.outcome != Outcome::Cancelled)
        .map(|c| c.elapsed)
        .collect();
    if let Some(s) = stats::Summary::from_samples(durations) {
        println!(
            "  call time, body read included: p50 {:?}, p99 {:?}, max {:?} (timeout {TIMEOUT:?})",
            s.p50, s.p99, s.max
        );
    }
    let in_bad_bodies = |c: &Call| {
        seen.bad_body_phases
            .iter()
            .any(|(from, to)| c.started >= *from && c.started < *to)
    };
    let bad: Vec<Duration> = seen
        .calls
        .iter()
        .filter(|c| c.outcome != Outcome::Cancelled && in_bad_bodies(c))
        .map(|c| c.elapsed)
        .collect();
    if let Some(s) = stats::Summary::from_samples(bad) {
        println!(
            "  calls started in bad-body phases: {} (bad body {}, circuit-open {}, timeout {}, other error {}); \
             p99 {:?}, max {:?}",
            s.count,
            seen.count(|c| in_bad_bodies(c) && c.outcome == Outcome::BadBody),
            seen.count(|c| in_bad_bodies(c) && c.outcome == Outcome::CircuitOpen),
            seen.count(|c| in_bad_bodies(c) && c.outcome == Outcome::Timeout),
            seen.count(|c| in_bad_bodies(c) && c.outcome == Outcome::Error),
            s.p99,
            s.max
        );
    }
    let faults: Vec<String> = state
        .by_fault()
        .iter()
        .map(|(f, n): &(Fault, u64)| format!("{} {n}", f.name()))
        .collect();
    println!(
        "server: {} requests ({} during outages, {} with a failing body in bad-body phases, {} from \
         the loopers); mixed answers: {}",
        state.requests(),
        state.outage_requests(),
        state.bad_body_requests(),
        state.loop_requests(),
        faults.join(", ")
    );
    let (keyed, keyed_arrivals) = state.keyed_posts();
    println!(
        "  POSTs without a key: {} distinct, {} replayed; with a key: {keyed} distinct, {keyed_arrivals} arrivals",
        state.unkeyed_posts(),
        seen.replayed_posts.len()
    );
    let main_calls = seen.count(|c| !c.budget_only);
    let outage_calls = seen.count(|c| c.in_outage && !c.budget_only);
    println!(
        "  amplification (facade with breaker): {:.3} requests per logical call overall, {:.3} during outages ({} calls)",
        (state.requests() - seen.budget_requests - state.loop_requests()) as f64
            / main_calls.max(1) as f64,
        seen.outage_requests as f64 / outage_calls.max(1) as f64,
        outage_calls
    );
    let budget_calls = seen.count(|c| c.budget_only);
    let budget_outage_calls = seen.count(|c| c.in_outage && c.budget_only);
    println!(
        "  amplification (facade without breaker, budget only): {:.3} overall ({} requests, {budget_calls} calls), \
         {:.3} during outages ({} requests, {budget_outage_calls} calls)",
        seen.budget_requests as f64 / budget_calls.max(1) as f64,
        seen.budget_requests,
        state.budget_outage_requests() as f64 / budget_outage_calls.max(1) as f64,
        state.budget_outage_requests(),
    );
    println!(
        "  connections: {} accepted, peak {} open, {} reset by the server, {} open after the client was dropped",
        server.stats().accepted(),
        seen.peak_connections,
        server.stats().resets(),
        seen.connections_after_drain
    );
    let times = |state: Breaker| seen.transitions.iter().filter(|(_, s)| *s == state).count();
    let (opens, half, closes) = (
        times(Breaker::Open),
        times(Breaker::HalfOpen),
        times(Breaker::Closed),
    );
    println!(
        "breaker: opened {opens} times, half-open {half}, closed {closes}; final state {final_state:?}; \
         longest silence at the server {:?}",
        seen.longest_silence.0
    );
    let first = seen
        .rss
        .iter()
        .find(|(t, _)| *t > seen.warmup)
        .or(seen.rss.first());
    let peak = seen.rss.iter().map(|(_, b)| *b).max();
    if let (Some((_, first)), Some(peak)) = (first, peak) {
        println!(
            "memory: RSS net of the soak's {} call records ({} bytes each): {} KiB after the warm-up, \
             peak {} KiB; raw RSS peak {} KiB",
            seen.calls.len(),
            RECORD_BYTES,
            first / 1024,
            peak / 1024,
            raw_peak / 1024
        );
    }
    let opened_in = |from: Duration, to: Duration| {
        seen.transitions
            .iter()
            .filter(|(at, s)| *s == Breaker::Open && *at >= from && *at <= to)
            .count()
    };
    let phases: Vec<String> = seen
        .bad_body_phases
        .iter()
        .map(|(from, to)| {
            format!(
                "{:.1}-{:.1}s opened {}",
                from.as_secs_f64(),
                to.as_secs_f64(),
                opened_in(*from, *to)
            )
        })
        .collect();
    println!(
        "  in bad-body phases (every body fails after a 200 head): {}",
        if phases.is_empty() {
            "none completed in this run".to_owned()
        } else {
            phases.join(", ")
        }
    );
    let longest_loop = seen.loops.iter().map(|(from, to)| *to - *from).max();
    println!(
        "loopers: {LOOPERS}, {} tight loop(s) on fail-fast answers, {} fail-fast calls in them, \
         longest loop {:?}",
        seen.loops.len(),
        seen.loop_calls,
        longest_loop.unwrap_or_default()
    );
    let worst = |ticks: &mut dyn Iterator<Item = &(Duration, Duration)>| {
        ticks
            .max_by_key(|(_, late)| *late)
            .map_or("-".to_owned(), |(due, late)| {
                format!("{late:?} (due at {:.3}s)", due.as_secs_f64())
            })
    };
    println!(
        "  ticker every {TICK:?}: {} ticks; latest {}; latest while loopers looped {}",
        seen.ticks.len(),
        worst(&mut seen.ticks.iter()),
        worst(
            &mut seen
                .ticks
                .iter()
                .filter(|(due, late)| seen.looping(*due, *late))
        )
    );
    println!("panics: {}", seen.panics);
    println!("(GET* = the budget-only client: no breaker, retry budget only)");
}
