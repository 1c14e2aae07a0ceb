//! The outage suite: every client, fresh, against its own server answering
//! 503 to everything; how many requests a logical call costs and when
//! callers start failing fast.

use super::Sizes;
use super::clients::{Ended, Kind, Profile, build};
use crate::fault::{self, Delays, FaultState, Mode};
use crate::report::{Flat, human_ns, table};
use crate::stats::nanos;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use svc_demo::net;

/// What one client did against the all-503 server.
struct OutageResult {
    calls: usize,
    requests: u64,
    /// Calls answered without I/O (circuit open).
    fast: usize,
    /// From the outage's start, when calls started failing fast for good:
    /// every later call was refused by the open circuit in under 1 ms;
    /// `None` if they never did.
    fail_fast_after: Option<Duration>,
    /// From the outage's start, when the last request reached the server.
    last_request: Option<Duration>,
    mean_call: Duration,
    wall: Duration,
}

async fn outage_run(kind: Kind, sizes: &Sizes) -> Result<OutageResult, String> {
    let state = FaultState::new(Delays {
        slow: Duration::ZERO,
        hang: Duration::ZERO,
    });
    state.set_mode(Mode::Outage);
    let server = net::spawn(fault::router(Arc::clone(&state)))
        .await
        .map_err(|e| format!("cannot bind the outage server: {e}"))?;
    let base = server.url();
    let client = build(kind, &base, Profile::Outage)?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..sizes.outage_callers {
        let client = client.clone();
        let base = base.clone();
        let next = Arc::clone(&next);
        let total = sizes.outage_calls as u64;
        tasks.spawn(async move {
            let mut seen = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let at = started.elapsed();
                let call = Instant::now();
                let ended = client.get(&base, "/ok").await;
                seen.push((at, call.elapsed(), ended));
            }
            seen
        });
    }
    let mut calls = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        calls.extend(joined.map_err(|e| format!("{}: outage task failed: {e}", kind.name()))?);
    }
    let wall = started.elapsed();
    calls.sort_by_key(|(at, _, _)| *at);
    let fast = calls
        .iter()
        .filter(|(_, _, e)| *e == Ended::CircuitOpen)
        .count();
    // The earliest start after which every call was refused by the open
    // circuit in under 1 ms (a call whose attempts were sent takes longer:
    // a round trip plus a backoff).
    let mut fail_fast_after = None;
    for (at, took, ended) in calls.iter().rev() {
        if *ended == Ended::CircuitOpen && *took < Duration::from_millis(1) {
            fail_fast_after = Some(*at);
        } else {
            break;
        }
    }
    let offset = started.saturating_duration_since(state.started());
    let last_request = state.last_arrival().map(|t| t.saturating_sub(offset));
    let total: Duration = calls.iter().map(|(_, took, _)| *took).sum();
    let result = OutageResult {
        calls: calls.len(),
        requests: state.requests(),
        fast,
        fail_fast_after,
        last_request,
        mean_call: total / u32::try_from(calls.len().max(1)).unwrap_or(u32::MAX),
        wall,
    };
    server.shutdown().await;
    Ok(result)
}

/// Runs the outage against every client; writes their figures and
/// returns the text table.
pub(super) async fn suite(
    sizes: &Sizes,
    flat: &mut Flat,
    md: &mut String,
) -> Result<String, String> {
    println!(
        "outage: {} logical GETs from {} concurrent callers per client against a server answering 503 to everything",
        sizes.outage_calls, sizes.outage_callers
    );
    let _ = writeln!(md, "### Outage: a server answering 503 to everything\n");
    let _ = writeln!(
        md,
        "{} logical GETs per client from {} concurrent callers, each client fresh against its own \
         all-503 server. The facade and svc-httpclient run with their defaults (3 retries, \
         100 ms × 2ⁿ backoff with full jitter capped at 5 s, retry budget 20% + 10/s, breaker \
         opening after 5 consecutive failures for 30 s). reqwest-retry runs with 3 retries and its \
         `ExponentialBackoff` **shortened to the same 100 ms base and 5 s cap** (its defaults are \
         1 s and 30 min, which would make this run take minutes and not change the count of \
         requests). reqwest-builtin-retry is reqwest 0.13's own retry (`reqwest::retry::for_host`, \
         3 retries, 5xx retryable): it has a budget (20% extra load by default) but no backoff and \
         no breaker. \"Fails fast after\" is the start time, from the beginning of the outage, after \
         which every call was refused by the open circuit in under 1 ms (\"never\" for clients \
         without a breaker: each of their calls sends at least one request); \"last request\" \
         is when the server received its last request. With a breaker, requests per call \
         depend on how many calls are made: once it opens (after 5 failures, some of them \
         retries) no request is sent for 30 s, so more calls only lower the figure; without \
         one, every call costs 1 + retries.\n",
        sizes.outage_calls, sizes.outage_callers
    );
    let _ = writeln!(
        md,
        "| client | requests per logical call | requests sent | calls ended by the open circuit | fails fast after | last request | mean call time | wall time |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for kind in Kind::OUTAGE {
        let r = outage_run(kind, sizes).await?;
        let name = kind.name();
        let per_call = r.requests as f64 / r.calls.max(1) as f64;
        let after = match r.fail_fast_after {
            Some(t) => format!("{:.0} ms", t.as_secs_f64() * 1e3),
            None => "never".to_owned(),
        };
        flat.num(format!("outage.{name}.calls"), r.calls as f64);
        flat.num(format!("outage.{name}.requests"), r.requests as f64);
        flat.num(format!("outage.{name}.per_call"), per_call);
        flat.num(format!("outage.{name}.fast_calls"), r.fast as f64);
        match r.fail_fast_after {
            Some(t) => flat.num(
                format!("outage.{name}.fail_fast_after_ms"),
                t.as_secs_f64() * 1e3,
            ),
            None => flat.text(format!("outage.{name}.fail_fast_after_ms"), "never"),
        }
        if let Some(t) = r.last_request {
            flat.num(
                format!("outage.{name}.last_request_ms"),
                t.as_secs_f64() * 1e3,
            );
        }
        flat.num(format!("outage.{name}.mean_call_ns"), nanos(r.mean_call));
        flat.num(format!("outage.{name}.wall_ns"), nanos(r.wall));
        let _ = writeln!(
            md,
            "| {name} | {per_call:.3} | {} | {} of {} | {after} | {} | {} | {:.2} s |",
            r.requests,
            r.fast,
            r.calls,
            r.last_request
                .map(|t| format!("{:.0} ms", t.as_secs_f64() * 1e3))
                .unwrap_or_else(|| "none".to_owned()),
            human_ns(nanos(r.mean_call)),
            r.wall.as_secs_f64()
        );
        rows.push(vec![
            name.to_owned(),
            format!("{per_call:.3}"),
            r.requests.to_string(),
            format!("{}/{}", r.fast, r.calls),
            after,
            human_ns(nanos(r.mean_call)),
        ]);
    }
    let _ = writeln!(md);
    Ok(table(
        &[
            "client",
            "req/call",
            "requests",
            "fast/calls",
            "fails fast after",
            "mean call",
        ],
        &rows,
    ))
}
