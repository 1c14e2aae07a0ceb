//! The soak's callers (GETs and POSTs, some cancelled, every body decoded)
//! and its loopers (calling again at once on every fail-fast answer).

use super::schedule::{in_outage, phases};
use super::{LOOP_BURST, LOOP_CALLS, RECORDED, REPLAY_POSTS, TIMEOUT};
use crate::fault::{self, CALL_ID, Mode};
use crate::invariants::{Call, CallKind, Outcome};
use crate::lock;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use svc_client::Client;

/// Callers of the budget-only client: a quarter of the others.
pub(super) fn budget_callers(callers: usize) -> usize {
    callers.div_ceil(4)
}

/// One caller: calls until the storm ends, then returns what it saw. The
/// budget-only client's callers make GETs only, under `/budget/`.
pub(super) async fn caller(
    client: Client,
    ids: Arc<AtomicU64>,
    mut rng: fastrand::Rng,
    start: Instant,
    duration: Duration,
    budget_only: bool,
) -> Vec<Call> {
    let mut calls = Vec::new();
    // Spread the callers' first calls over the first 50 ms.
    tokio::time::sleep(Duration::from_millis(rng.u64(0..50))).await;
    while start.elapsed() < duration {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let kind = match rng.u8(0..100) {
            _ if budget_only => CallKind::Get,
            0..70 => CallKind::Get,
            70..85 => CallKind::Post,
            _ => CallKind::KeyedPost,
        };
        // One call in ten is abandoned after a random time.
        let cancel_after = (rng.u8(0..10) == 0).then(|| Duration::from_millis(rng.u64(1..1500)));
        let started = start.elapsed();
        let in_outage = in_outage(started);
        let call = one_call(&client, id, kind, budget_only);
        let (outcome, elapsed) = match cancel_after {
            Some(after) => match tokio::time::timeout(after, call).await {
                Ok(done) => done,
                Err(_) => (Outcome::Cancelled, start.elapsed() - started),
            },
            None => call.await,
        };
        RECORDED.fetch_add(1, Ordering::Relaxed);
        calls.push(Call {
            started,
            elapsed,
            kind,
            outcome,
            in_outage,
            budget_only,
        });
        // Think time, so that fail-fast answers do not turn into a busy loop.
        tokio::time::sleep(Duration::from_millis(rng.u64(10..60))).await;
    }
    calls
}

/// Sends one request, reads and decodes the body through the library (so
/// that reading it is part of the call, and of its timeout), and classifies
/// the result: `(outcome, time until the facade returned)`.
async fn one_call(
    client: &Client,
    id: u64,
    kind: CallKind,
    budget_only: bool,
) -> (Outcome, Duration) {
    let started = Instant::now();
    let body = serde_json::json!({ "id": id, "item": "soak" });
    let call = async {
        match kind {
            CallKind::Get if budget_only => {
                client
                    .get(&format!("{}items/{id}", fault::BUDGET_PREFIX))
                    .decode::<Value>()
                    .await
            }
            CallKind::Get => client.get(&format!("/items/{id}")).decode::<Value>().await,
            CallKind::Post => {
                client
                    .post("/orders", &body)
                    .header(CALL_ID, id.to_string())
                    .retry_unsafe(REPLAY_POSTS.load(Ordering::Relaxed))
                    .decode::<Value>()
                    .await
            }
            CallKind::KeyedPost => {
                client
                    .post("/orders", &body)
                    .header(CALL_ID, id.to_string())
                    .idempotency_key(format!("soak-{id}"))
                    .decode::<Value>()
                    .await
            }
        }
    };
    // Bounded so that a call (or body) that never ends cannot wedge the
    // soak; `call-within-timeout` reports it.
    let outcome = match tokio::time::timeout(TIMEOUT + Duration::from_secs(5), call).await {
        Ok(result) => classify(&result),
        Err(_) => Outcome::Timeout,
    };
    (outcome, started.elapsed())
}

/// How a decoded call ended: a non-2xx status is a `Response` (decoding
/// turns it into an error); a 2xx whose body could not be read (within the
/// attempt or after it) or was not JSON is a `BadBody`.
fn classify(result: &Result<Value, svc_client::Error>) -> Outcome {
    match result {
        Ok(_) => Outcome::Response(200),
        Err(err) if err.is_circuit_open() => Outcome::CircuitOpen,
        Err(err) if err.is_timeout() => Outcome::Timeout,
        Err(err) => match err.status() {
            Some(status) if status.is_success() => Outcome::BadBody,
            Some(status) if err.is_decode() => Outcome::Response(status.as_u16()),
            _ => Outcome::Error,
        },
    }
}

/// The path the loopers call (under [`fault::LOOP_PREFIX`]).
const LOOP_PATH: &str = "/loop/items/1";

/// One looper: outside outages it waits; in an outage it calls with think
/// time until a call fails fast on the open circuit, then calls again at
/// once, without yielding in between, for as long as calls keep failing fast
/// (at most [`LOOP_BURST`] or [`LOOP_CALLS`] calls, once per outage).
/// Records each tight loop's `(from, to)` and returns its fail-fast calls.
pub(super) async fn looper(
    client: Client,
    mut rng: fastrand::Rng,
    start: Instant,
    duration: Duration,
    loops: Arc<Mutex<Vec<(Duration, Duration)>>>,
) -> u64 {
    let mut fail_fast = 0;
    let mut looped_in = None;
    let outages: Vec<(Duration, Duration)> = phases(duration)
        .into_iter()
        .filter(|(_, _, mode)| *mode == Mode::Outage)
        .map(|(from, to, _)| (from, to))
        .collect();
    while start.elapsed() < duration {
        let now = start.elapsed();
        let Some(outage) = outages.iter().position(|(_, to)| now < *to) else {
            break;
        };
        let (from, _) = outages[outage];
        if now < from || looped_in == Some(outage) {
            // Until the next outage (after this one's tight loop).
            let next = outages.get(outage + 1).map_or(duration, |(from, _)| *from);
            let wake = if now < from { from } else { next };
            tokio::time::sleep_until((start + wake).into()).await;
            continue;
        }
        let rejected = client.get(LOOP_PATH).decode::<Value>().await;
        if rejected.is_err_and(|e| e.is_circuit_open()) {
            looped_in = Some(outage);
            let began = Instant::now();
            let from = start.elapsed();
            let mut n = 1;
            // The anti-pattern: no sleep, no yield, call again.
            while n < LOOP_CALLS && began.elapsed() < LOOP_BURST {
                let again = client.get(LOOP_PATH).decode::<Value>().await;
                if !again.is_err_and(|e| e.is_circuit_open()) {
                    break;
                }
                n += 1;
            }
            lock(&loops).push((from, start.elapsed()));
            fail_fast += n;
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(10..60))).await;
    }
    fail_fast
}
