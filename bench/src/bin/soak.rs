//! `soak`: a bounded fault storm against the `svc-client` facade.
//!
//! Hundreds of callers (GETs decoded as JSON, POSTs without and with an
//! `Idempotency-Key`) run against a local fault-injecting server that
//! alternates mixed faults (healthy answers, 5xx, 429 with `Retry-After`,
//! slow answers, hangs, resets, truncated bodies, invalid JSON, 404) with
//! outages (503 to everything), while the soak cancels some calls at
//! random. Then it checks the invariants of `svc_bench::invariants` and
//! exits non-zero naming each one that was violated.
//!
//! Usage: `soak [--quick] [--duration SECS] [--callers N] [--margin-ms MS] [--seed N]`

use serde_json::Value;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use svc_bench::fault::{self, CALL_ID, Delays, Fault, FaultState, Mode};
use svc_bench::invariants::{self, Breaker, Call, CallKind, Limits, Observations, Outcome};
use svc_bench::{mem, server, stats};
use svc_client::{CircuitBreakerConfig, Client, ClientConfig, Registry};

/// Panics anywhere in the process, counted by the panic hook.
static PANICS: AtomicU64 = AtomicU64::new(0);

/// `--sabotage replay-posts`: unkeyed POSTs are marked safe to replay.
static REPLAY_POSTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Calls recorded by the callers so far.
static RECORDED: AtomicU64 = AtomicU64::new(0);

/// Resident bytes one recorded call may account for (its record, twice).
const RECORD_BYTES: u64 = 2 * std::mem::size_of::<Call>() as u64;

const USAGE: &str = "usage: soak [--quick] [--duration SECS] [--callers N] [--margin-ms MS] [--seed N] \
                     [--sabotage replay-posts]";

#[derive(Debug)]
struct Args {
    duration: Duration,
    callers: usize,
    margin: Duration,
    seed: u64,
    /// Marks the unkeyed POSTs as safe to replay, so that the soak must
    /// report `no-unkeyed-post-replay`: shows the check can fail.
    replay_posts: bool,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        duration: Duration::from_secs(60),
        callers: 200,
        margin: Duration::from_millis(500),
        seed: fastrand::u64(..),
        replay_posts: false,
    };
    let mut args = args;
    let number = |name: &str, value: Option<String>| -> Result<u64, String> {
        value
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("`{name}` needs a whole number\n{USAGE}"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => parsed.duration = Duration::from_secs(10),
            "--duration" => {
                let secs = number("--duration", args.next())?;
                if secs < 5 {
                    return Err(
                        "`--duration` must be at least 5 seconds (one mixed phase and one outage)"
                            .to_owned(),
                    );
                }
                parsed.duration = Duration::from_secs(secs);
            }
            "--callers" => parsed.callers = number("--callers", args.next())?.max(1) as usize,
            "--margin-ms" => {
                parsed.margin = Duration::from_millis(number("--margin-ms", args.next())?)
            }
            "--seed" => parsed.seed = number("--seed", args.next())?,
            "--sabotage" => match args.next().as_deref() {
                Some("replay-posts") => parsed.replay_posts = true,
                _ => return Err(format!("`--sabotage` takes `replay-posts`\n{USAGE}")),
            },
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown option `{other}`\n{USAGE}")),
        }
    }
    Ok(parsed)
}

/// The client settings: short, so that many breaker cycles fit in seconds.
const TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(300);
const RESET_TIMEOUT: Duration = Duration::from_secs(1);
/// Mixed faults, then an outage, repeated.
const MIXED: Duration = Duration::from_millis(3000);
const OUTAGE: Duration = Duration::from_millis(1500);

/// Whether the server is in an outage at `t` from the start of the storm.
fn in_outage(t: Duration) -> bool {
    let cycle = MIXED + OUTAGE;
    let into = Duration::from_nanos((t.as_nanos() % cycle.as_nanos()) as u64);
    into >= MIXED
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("soak: {message}");
            return ExitCode::from(2);
        }
    };
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("soak: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(storm(&args)) {
        Ok(violations) if violations.is_empty() => {
            println!("\nsoak: every invariant held");
            ExitCode::SUCCESS
        }
        Ok(violations) => {
            eprintln!("\nsoak: {} invariant(s) violated:", violations.len());
            for v in &violations {
                eprintln!("  {}: {}", v.invariant, v.detail);
            }
            eprintln!(
                "  (rerun with --seed {} for the same caller choices)",
                args.seed
            );
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("soak: could not run: {err}");
            ExitCode::FAILURE
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn storm(args: &Args) -> Result<Vec<invariants::Violation>, String> {
    let limits = Limits {
        callers: args.callers + budget_callers(args.callers),
        timeout: TIMEOUT,
        attempt_timeout: ATTEMPT_TIMEOUT,
        reset_timeout: RESET_TIMEOUT,
        margin: args.margin,
        rss_growth: 32 << 20,
        outage_amplification: 1.5,
        // svc-httpclient's default budget (DESIGN.md §4).
        budget_percent: 0.2,
        budget_per_sec: 10.0,
        budget_ttl: Duration::from_secs(10),
    };
    if args.replay_posts {
        REPLAY_POSTS.store(true, Ordering::Relaxed);
        println!(
            "soak: SABOTAGE: unkeyed POSTs are marked safe to replay; expect no-unkeyed-post-replay"
        );
    }
    println!(
        "soak: {} callers (+{} on a budget-only facade) for {:?} against a fault-injecting server on 127.0.0.1 (seed {})",
        args.callers,
        budget_callers(args.callers),
        args.duration,
        args.seed
    );
    println!(
        "      facade: timeout {TIMEOUT:?}, attempt_timeout {ATTEMPT_TIMEOUT:?}, max_retries 3, \
         breaker 5 failures / reset {RESET_TIMEOUT:?}, default retry budget; \
         phases: {MIXED:?} mixed faults, {OUTAGE:?} outage (all 503), repeated"
    );

    let state = FaultState::new(Delays {
        slow: ATTEMPT_TIMEOUT + Duration::from_millis(200),
        hang: TIMEOUT + Duration::from_secs(1),
    });
    let server = server::spawn(fault::router(Arc::clone(&state)))
        .await
        .map_err(|e| format!("cannot bind the fault server: {e}"))?;

    let start = Instant::now();
    let transitions: Arc<Mutex<Vec<(Duration, Breaker)>>> = Arc::default();
    let seen = Arc::clone(&transitions);
    let breaker = CircuitBreakerConfig::default()
        .reset_timeout(RESET_TIMEOUT)
        .on_transition(move |t: &svc_breaker::Transition| {
            let to = match t.to() {
                svc_breaker::State::Closed => Breaker::Closed,
                svc_breaker::State::Open => Breaker::Open,
                svc_breaker::State::HalfOpen => Breaker::HalfOpen,
            };
            lock(&seen).push((start.elapsed(), to));
        });
    let config = ClientConfig::default()
        .timeout(TIMEOUT)
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .circuit_breaker(Some(breaker))
        // Its own pool, so that dropping the client must close every connection.
        .shared_pool(false);
    let registry = Registry::from_vars([("SOAK_SVC_URL", server.url())]);
    let client = Client::from_registry(&registry, "soak-svc", config)
        .map_err(|e| format!("cannot build the facade: {e}"))?;
    // A second facade without a breaker: only its retry budget stands
    // between an outage and four requests per call.
    let budget_config = ClientConfig::default()
        .timeout(TIMEOUT)
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .circuit_breaker(None)
        .shared_pool(false);
    let budget_client = Client::from_registry(&registry, "soak-svc", budget_config)
        .map_err(|e| format!("cannot build the budget-only facade: {e}"))?;

    // The server's mode follows the schedule.
    let schedule = {
        let state = Arc::clone(&state);
        let duration = args.duration;
        tokio::spawn(async move {
            let mut t = Duration::ZERO;
            while t < duration {
                state.set_mode(Mode::Mixed);
                t += MIXED;
                tokio::time::sleep_until((start + t).into()).await;
                if t >= duration {
                    break;
                }
                state.set_mode(Mode::Outage);
                t += OUTAGE;
                tokio::time::sleep_until((start + t).into()).await;
            }
            state.set_mode(Mode::Mixed);
        })
    };

    // RSS every 100 ms while the storm runs, net of the soak's own records
    // of every call (which grow with the run by design): each record is
    // counted twice, for the spare capacity a growing `Vec` keeps.
    let rss: Arc<Mutex<Vec<(Duration, u64)>>> = Arc::default();
    let raw_peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let rss = Arc::clone(&rss);
        let raw_peak = Arc::clone(&raw_peak);
        let duration = args.duration;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while start.elapsed() < duration {
                tick.tick().await;
                if let Some(bytes) = mem::rss_bytes() {
                    raw_peak.fetch_max(bytes, Ordering::Relaxed);
                    let records = RECORDED.load(Ordering::Relaxed) * RECORD_BYTES;
                    lock(&rss).push((start.elapsed(), bytes.saturating_sub(records)));
                }
            }
        })
    };

    let ids = Arc::new(AtomicU64::new(0));
    let mut callers = tokio::task::JoinSet::new();
    for i in 0..args.callers {
        let client = client.clone();
        let ids = Arc::clone(&ids);
        let rng = fastrand::Rng::with_seed(args.seed.wrapping_add(i as u64));
        let duration = args.duration;
        callers.spawn(caller(client, ids, rng, start, duration, false));
    }
    for i in 0..budget_callers(args.callers) {
        let client = budget_client.clone();
        let ids = Arc::clone(&ids);
        let rng = fastrand::Rng::with_seed(args.seed.wrapping_add(1_000_000 + i as u64));
        let duration = args.duration;
        callers.spawn(caller(client, ids, rng, start, duration, true));
    }
    let mut calls = Vec::new();
    while let Some(joined) = callers.join_next().await {
        match joined {
            Ok(mut mine) => calls.append(&mut mine),
            Err(err) if err.is_panic() => {
                // The hook counted it already; a panic inside a caller task.
                eprintln!("soak: a caller task panicked");
            }
            Err(err) => return Err(format!("a caller task failed: {err}")),
        }
    }
    let _ = schedule.await;
    let _ = sampler.await;
    let callers_done = start.elapsed();

    let offset = start.saturating_duration_since(state.started());
    let silence = state.longest_silence(offset, offset + args.duration);
    let peak_connections = server.stats().peak_open();
    let budget_run = calls
        .iter()
        .filter(|c| c.budget_only)
        .map(|c| c.started + c.elapsed)
        .max()
        .unwrap_or_default();
    let transitions = lock(&transitions).clone();
    let final_state = client.circuit_state();

    // Drop the client: its pool must close every connection once the
    // handlers still sleeping (hangs) have finished.
    drop(client);
    drop(budget_client);
    let drain_deadline = Instant::now() + TIMEOUT + Duration::from_secs(3);
    while server.stats().open() > 0 && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connections_after_drain = server.stats().open();

    let observations = Observations {
        panics: PANICS.load(Ordering::SeqCst),
        calls,
        transitions,
        storm_end: args.duration,
        longest_silence: (silence.0, silence.1.saturating_sub(offset)),
        outage_requests: state.outage_requests() - state.budget_outage_requests(),
        budget_requests: state.budget_requests(),
        budget_run,
        replayed_posts: state.replayed_unkeyed_posts(),
        peak_connections,
        connections_after_drain,
        rss: lock(&rss).clone(),
        warmup: MIXED,
    };
    report(
        &observations,
        &state,
        &server,
        final_state,
        callers_done,
        raw_peak.load(Ordering::Relaxed),
    );
    let violations = invariants::check(&limits, &observations);
    server.shutdown().await;
    Ok(violations)
}

/// Callers of the budget-only client: a quarter of the others.
fn budget_callers(callers: usize) -> usize {
    callers.div_ceil(4)
}

/// One caller: calls until the storm ends, then returns what it saw. The
/// budget-only client's callers make GETs only, under `/budget/`.
async fn caller(
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
        let (outcome, elapsed, body) = match cancel_after {
            Some(after) => match tokio::time::timeout(after, call).await {
                Ok(done) => done,
                Err(_) => (Outcome::Cancelled, start.elapsed() - started, None),
            },
            None => call.await,
        };
        RECORDED.fetch_add(1, Ordering::Relaxed);
        calls.push(Call {
            started,
            elapsed,
            body,
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

/// Sends one request, reads and decodes the body, and classifies the result:
/// `(outcome, time until the facade returned, time reading the body)`.
async fn one_call(
    client: &Client,
    id: u64,
    kind: CallKind,
    budget_only: bool,
) -> (Outcome, Duration, Option<Duration>) {
    let started = Instant::now();
    let body = serde_json::json!({ "id": id, "item": "soak" });
    let result = match kind {
        CallKind::Get if budget_only => {
            client
                .get(&format!("{}items/{id}", fault::BUDGET_PREFIX))
                .send()
                .await
        }
        CallKind::Get => client.get(&format!("/items/{id}")).send().await,
        CallKind::Post => {
            client
                .post("/orders", &body)
                .header(CALL_ID, id.to_string())
                .retry_unsafe(REPLAY_POSTS.load(Ordering::Relaxed))
                .send()
                .await
        }
        CallKind::KeyedPost => {
            client
                .post("/orders", &body)
                .header(CALL_ID, id.to_string())
                .idempotency_key(format!("soak-{id}"))
                .send()
                .await
        }
    };
    let elapsed = started.elapsed();
    match result {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body_started = Instant::now();
            // Bounded so that a body that never ends cannot wedge the soak;
            // the invariant on body time reports it.
            let limit = TIMEOUT + Duration::from_secs(5);
            let _ = tokio::time::timeout(limit, svc_client::decode_response::<Value>(resp)).await;
            (
                Outcome::Response(status),
                elapsed,
                Some(body_started.elapsed()),
            )
        }
        Err(err) if err.is_circuit_open() => (Outcome::CircuitOpen, elapsed, None),
        Err(err) if err.is_timeout() => (Outcome::Timeout, elapsed, None),
        Err(_) => (Outcome::Error, elapsed, None),
    }
}

fn report(
    seen: &Observations,
    state: &FaultState,
    server: &server::Server,
    final_state: Option<svc_client::State>,
    callers_done: Duration,
    raw_peak: u64,
) {
    let count = |f: &dyn Fn(&Call) -> bool| seen.calls.iter().filter(|c| f(c)).count();
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
            count(&|c: &Call| c.kind == kind && c.budget_only == budget && o(c.outcome))
        };
        println!(
            "  {name:<9} 2xx {:>6}  4xx/5xx {:>6}  circuit-open {:>6}  timeout {:>5}  other error {:>5}  cancelled {:>5}",
            of(&|o| matches!(o, Outcome::Response(200..=299))),
            of(&|o| matches!(o, Outcome::Response(s) if s >= 300)),
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
            "  call time: p50 {:?}, p99 {:?}, max {:?} (timeout {TIMEOUT:?})",
            s.p50, s.p99, s.max
        );
    }
    let bodies: Vec<Duration> = seen.calls.iter().filter_map(|c| c.body).collect();
    if let Some(s) = stats::Summary::from_samples(bodies) {
        println!("  body read: p99 {:?}, max {:?}", s.p99, s.max);
    }
    let faults: Vec<String> = state
        .by_fault()
        .iter()
        .map(|(f, n): &(Fault, u64)| format!("{} {n}", f.name()))
        .collect();
    println!(
        "server: {} requests ({} during outages); mixed answers: {}",
        state.requests(),
        state.outage_requests(),
        faults.join(", ")
    );
    let (keyed, keyed_arrivals) = state.keyed_posts();
    println!(
        "  POSTs without a key: {} distinct, {} replayed; with a key: {keyed} distinct, {keyed_arrivals} arrivals",
        state.unkeyed_posts(),
        seen.replayed_posts.len()
    );
    let main_calls = count(&|c| !c.budget_only);
    let outage_calls = count(&|c| c.in_outage && !c.budget_only);
    println!(
        "  amplification (facade with breaker): {:.3} requests per logical call overall, {:.3} during outages ({} calls)",
        (state.requests() - seen.budget_requests) as f64 / main_calls.max(1) as f64,
        seen.outage_requests as f64 / outage_calls.max(1) as f64,
        outage_calls
    );
    let budget_calls = count(&|c| c.budget_only);
    let budget_outage_calls = count(&|c| c.in_outage && c.budget_only);
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
    let opens = seen
        .transitions
        .iter()
        .filter(|(_, s)| *s == Breaker::Open)
        .count();
    let half = seen
        .transitions
        .iter()
        .filter(|(_, s)| *s == Breaker::HalfOpen)
        .count();
    let closes = seen
        .transitions
        .iter()
        .filter(|(_, s)| *s == Breaker::Closed)
        .count();
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
    println!("panics: {}", seen.panics);
    println!("(GET* = the budget-only client: no breaker, retry budget only)");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn options() {
        assert_eq!(args(&[]).unwrap().duration, Duration::from_secs(60));
        assert_eq!(
            args(&["--quick"]).unwrap().duration,
            Duration::from_secs(10)
        );
        let a = args(&[
            "--duration",
            "30",
            "--callers",
            "50",
            "--margin-ms",
            "100",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(
            (a.duration, a.callers, a.margin, a.seed),
            (Duration::from_secs(30), 50, Duration::from_millis(100), 7)
        );
        assert!(
            args(&["--duration", "2"])
                .unwrap_err()
                .contains("at least 5")
        );
        assert!(args(&["--duration"]).unwrap_err().contains("--duration"));
        assert!(args(&["--loud"]).unwrap_err().contains("`--loud`"));
        assert!(args(&["--sabotage", "replay-posts"]).unwrap().replay_posts);
        assert!(!args(&[]).unwrap().replay_posts);
        assert!(args(&["--sabotage", "x"]).is_err());
    }

    #[test]
    fn schedule_alternates_mixed_and_outage() {
        assert!(!in_outage(Duration::ZERO));
        assert!(!in_outage(Duration::from_millis(2999)));
        assert!(in_outage(Duration::from_millis(3000)));
        assert!(in_outage(Duration::from_millis(4499)));
        assert!(!in_outage(Duration::from_millis(4500)));
        assert!(in_outage(Duration::from_millis(7600)));
    }
}
