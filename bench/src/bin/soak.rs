//! `soak`: a bounded fault storm against the `svc-client` facade.
//!
//! Hundreds of callers (GETs and POSTs without and with an
//! `Idempotency-Key`, every body read and decoded as JSON through the
//! library's `decode`, so that the body is part of the call) run against a
//! local fault-injecting server whose phases repeat: mixed faults (healthy
//! answers, 5xx, 429 with `Retry-After`, slow answers, hangs, resets, bodies
//! that are truncated, stall or are reset after a `200` head, invalid JSON,
//! 404), an outage (503 to everything), mixed faults again, then bad bodies
//! (a `200` head for everything, then a body that fails). The soak cancels
//! some calls at random.
//!
//! During outages a few dozen loopers (on a facade of their own) call again
//! at once, without yielding, whenever a call fails fast on the open
//! circuit: the seed's "retrying forever" anti-pattern. Each loops for at
//! most [`LOOP_BURST`] per outage. A ticker task due every [`TICK`] records
//! how late it runs; a fail-fast path that never yields to the runtime lets
//! the loopers hold the worker threads, and the ticks run late.
//!
//! Then it checks the invariants of `svc_bench::invariants` (among them
//! `call-within-timeout`, bodies included; `breaker-opens-on-bad-bodies`;
//! `runtime-not-starved`) and exits non-zero naming each one violated.
//!
//! Usage: `soak [--quick] [--duration SECS] [--callers N] [--margin-ms MS] [--seed N]
//! [--sabotage replay-posts|unconstrained-loopers]`
//!
//! The sabotages show that a check can fail: `replay-posts` marks unkeyed
//! POSTs as safe to replay (expect `no-unkeyed-post-replay`);
//! `unconstrained-loopers` runs the loopers outside tokio's cooperative
//! budget, as if the library's fail-fast path never yielded (expect
//! `runtime-not-starved`, and the other time bounds may follow).

use serde_json::Value;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use svc_bench::fault::{self, CALL_ID, Delays, Fault, FaultState, Mode};
use svc_bench::invariants::{self, Breaker, Call, CallKind, Limits, Observations, Outcome};
use svc_bench::{mem, stats};
use svc_client::{CircuitBreakerConfig, Client, ClientConfig, Registry};
use svc_demo::net;

/// Panics anywhere in the process, counted by the panic hook.
static PANICS: AtomicU64 = AtomicU64::new(0);

/// `--sabotage replay-posts`: unkeyed POSTs are marked safe to replay.
static REPLAY_POSTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Loopers: tasks that call again at once whenever a call fails fast.
const LOOPERS: usize = 32;
/// The longest tight loop of one looper in one outage (wall clock): bounds
/// the CPU the loopers burn, and how long they can starve the runtime.
const LOOP_BURST: Duration = Duration::from_millis(100);
/// The most fail-fast calls in one tight loop.
const LOOP_CALLS: u64 = 200_000;
/// The ticker's period.
const TICK: Duration = Duration::from_millis(10);

/// Calls recorded by the callers so far.
static RECORDED: AtomicU64 = AtomicU64::new(0);

/// Resident bytes one recorded call may account for (its record, twice).
const RECORD_BYTES: u64 = 2 * std::mem::size_of::<Call>() as u64;

const USAGE: &str = "usage: soak [--quick] [--duration SECS] [--callers N] [--margin-ms MS] [--seed N] \
                     [--sabotage replay-posts|unconstrained-loopers]";

#[derive(Debug)]
struct Args {
    duration: Duration,
    callers: usize,
    margin: Duration,
    seed: u64,
    /// Marks the unkeyed POSTs as safe to replay, so that the soak must
    /// report `no-unkeyed-post-replay`: shows the check can fail.
    replay_posts: bool,
    /// Runs the loopers outside tokio's cooperative budget, so that the
    /// soak must report `runtime-not-starved`: shows the check can fail.
    unconstrained_loopers: bool,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        duration: Duration::from_secs(60),
        callers: 200,
        margin: Duration::from_millis(500),
        seed: fastrand::u64(..),
        replay_posts: false,
        unconstrained_loopers: false,
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
                Some("unconstrained-loopers") => parsed.unconstrained_loopers = true,
                _ => {
                    return Err(format!(
                        "`--sabotage` takes `replay-posts` or `unconstrained-loopers`\n{USAGE}"
                    ));
                }
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
/// Mixed faults, an outage, mixed faults, bad bodies; repeated.
const MIXED: Duration = Duration::from_millis(3000);
const OUTAGE: Duration = Duration::from_millis(1500);
const BAD_BODIES: Duration = Duration::from_millis(1500);
const CYCLE: [(Mode, Duration); 4] = [
    (Mode::Mixed, MIXED),
    (Mode::Outage, OUTAGE),
    (Mode::Mixed, MIXED),
    (Mode::BadBodies, BAD_BODIES),
];

/// The phases of a storm of `duration`: `(from, to, mode)`, the last one
/// cut at `duration`.
fn phases(duration: Duration) -> Vec<(Duration, Duration, Mode)> {
    let mut out = Vec::new();
    let mut t = Duration::ZERO;
    for (mode, length) in CYCLE.iter().cycle() {
        if t >= duration {
            break;
        }
        let to = (t + *length).min(duration);
        out.push((t, to, *mode));
        t = to;
    }
    out
}

/// The server's mode at `t` from the start of the storm (the schedule
/// repeats past any duration).
fn mode_at(t: Duration) -> Mode {
    let cycle: Duration = CYCLE.iter().map(|(_, d)| *d).sum();
    let mut into = Duration::from_nanos((t.as_nanos() % cycle.as_nanos()) as u64);
    for (mode, length) in CYCLE {
        if into < length {
            return mode;
        }
        into -= length;
    }
    Mode::Mixed
}

/// Whether the server is in an outage at `t` from the start of the storm.
fn in_outage(t: Duration) -> bool {
    mode_at(t) == Mode::Outage
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
        callers: args.callers + budget_callers(args.callers) + LOOPERS,
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
        loopers: LOOPERS,
    };
    if args.replay_posts {
        REPLAY_POSTS.store(true, Ordering::Relaxed);
        println!(
            "soak: SABOTAGE: unkeyed POSTs are marked safe to replay; expect no-unkeyed-post-replay"
        );
    }
    if args.unconstrained_loopers {
        println!(
            "soak: SABOTAGE: the loopers run outside tokio's cooperative budget; expect runtime-not-starved"
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
         phases: {MIXED:?} mixed faults, {OUTAGE:?} outage (all 503), {MIXED:?} mixed, \
         {BAD_BODIES:?} bad bodies (200, then the body fails), repeated"
    );
    println!(
        "      {LOOPERS} loopers on a facade of their own call again at once on every fail-fast \
         answer during outages (at most {LOOP_BURST:?} per outage); a ticker every {TICK:?} \
         records its lateness"
    );

    let state = FaultState::new(Delays {
        slow: ATTEMPT_TIMEOUT + Duration::from_millis(200),
        hang: TIMEOUT + Duration::from_secs(1),
    });
    let server = net::spawn(fault::router(Arc::clone(&state)))
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
    // The loopers' facade: a breaker of its own, so that their calls do not
    // change what the main callers see.
    let loop_config = ClientConfig::default()
        .timeout(TIMEOUT)
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .circuit_breaker(Some(
            CircuitBreakerConfig::default().reset_timeout(RESET_TIMEOUT),
        ))
        .shared_pool(false);
    let loop_client = Client::from_registry(&registry, "soak-svc", loop_config)
        .map_err(|e| format!("cannot build the loopers' facade: {e}"))?;

    // The server's mode follows the schedule.
    let schedule = {
        let state = Arc::clone(&state);
        let duration = args.duration;
        tokio::spawn(async move {
            for (from, to, mode) in phases(duration) {
                tokio::time::sleep_until((start + from).into()).await;
                state.set_mode(mode);
                tokio::time::sleep_until((start + to).into()).await;
            }
            state.set_mode(Mode::Mixed);
        })
    };

    // The ticker: due every TICK, records how late it ran.
    let ticks: Arc<Mutex<Vec<(Duration, Duration)>>> = Arc::default();
    let ticker = {
        let ticks = Arc::clone(&ticks);
        let duration = args.duration;
        tokio::spawn(async move {
            while start.elapsed() < duration {
                let due = Instant::now() + TICK;
                tokio::time::sleep_until(due.into()).await;
                let late = due.elapsed();
                lock(&ticks).push((due.saturating_duration_since(start), late));
            }
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
    let loops: Arc<Mutex<Vec<(Duration, Duration)>>> = Arc::default();
    let mut loopers = tokio::task::JoinSet::new();
    for i in 0..LOOPERS {
        let client = loop_client.clone();
        let rng = fastrand::Rng::with_seed(args.seed.wrapping_add(2_000_000 + i as u64));
        let loops = Arc::clone(&loops);
        let duration = args.duration;
        let task = looper(client, rng, start, duration, loops);
        if args.unconstrained_loopers {
            loopers.spawn(tokio::task::coop::unconstrained(task));
        } else {
            loopers.spawn(task);
        }
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
    let mut loop_calls = 0;
    while let Some(joined) = loopers.join_next().await {
        match joined {
            Ok(n) => loop_calls += n,
            Err(err) if err.is_panic() => eprintln!("soak: a looper task panicked"),
            Err(err) => return Err(format!("a looper task failed: {err}")),
        }
    }
    let _ = schedule.await;
    let _ = sampler.await;
    let _ = ticker.await;
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
    drop(loop_client);
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
        bad_body_phases: phases(args.duration)
            .into_iter()
            .filter(|(from, to, mode)| *mode == Mode::BadBodies && *to - *from == BAD_BODIES)
            .map(|(from, to, _)| (from, to))
            .collect(),
        bad_body_requests: state.bad_body_requests(),
        ticks: lock(&ticks).clone(),
        loops: lock(&loops).clone(),
        loop_calls,
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
async fn looper(
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

fn report(
    seen: &Observations,
    state: &FaultState,
    server: &net::Server,
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
            count(&|c| in_bad_bodies(c) && c.outcome == Outcome::BadBody),
            count(&|c| in_bad_bodies(c) && c.outcome == Outcome::CircuitOpen),
            count(&|c| in_bad_bodies(c) && c.outcome == Outcome::Timeout),
            count(&|c| in_bad_bodies(c) && c.outcome == Outcome::Error),
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
    let main_calls = count(&|c| !c.budget_only);
    let outage_calls = count(&|c| c.in_outage && !c.budget_only);
    println!(
        "  amplification (facade with breaker): {:.3} requests per logical call overall, {:.3} during outages ({} calls)",
        (state.requests() - seen.budget_requests - state.loop_requests()) as f64
            / main_calls.max(1) as f64,
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
    let looping = |due: Duration, late: Duration| {
        seen.loops
            .iter()
            .any(|(from, to)| due <= *to && due + late >= *from)
    };
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
        worst(&mut seen.ticks.iter().filter(|(due, late)| looping(*due, *late)))
    );
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
        let both = args(&[
            "--sabotage",
            "unconstrained-loopers",
            "--sabotage",
            "replay-posts",
        ])
        .unwrap();
        assert!(both.unconstrained_loopers && both.replay_posts);
        assert!(!args(&[]).unwrap().unconstrained_loopers);
        assert!(args(&["--sabotage", "x"]).is_err());
    }

    #[test]
    fn schedule_repeats_mixed_outage_mixed_bad_bodies() {
        let ms = Duration::from_millis;
        assert!(!in_outage(Duration::ZERO));
        assert!(!in_outage(ms(2999)));
        assert!(in_outage(ms(3000)));
        assert!(in_outage(ms(4499)));
        assert!(!in_outage(ms(4500)));
        assert_eq!(mode_at(ms(7499)), Mode::Mixed);
        assert_eq!(mode_at(ms(7500)), Mode::BadBodies);
        assert_eq!(mode_at(ms(8999)), Mode::BadBodies);
        assert_eq!(mode_at(ms(9000)), Mode::Mixed);
        assert!(in_outage(ms(12_100)));
        // The quick run: one outage and one bad-body phase, the end cut.
        let quick = phases(Duration::from_secs(10));
        assert_eq!(
            quick,
            [
                (ms(0), ms(3000), Mode::Mixed),
                (ms(3000), ms(4500), Mode::Outage),
                (ms(4500), ms(7500), Mode::Mixed),
                (ms(7500), ms(9000), Mode::BadBodies),
                (ms(9000), ms(10_000), Mode::Mixed),
            ]
        );
        for (from, to, mode) in phases(Duration::from_secs(60)) {
            assert_eq!(mode_at(from), mode);
            assert_eq!(mode_at(to - ms(1)), mode);
        }
    }
}
