//! The storm itself: the server and the three facades, the background
//! tasks (the schedule, the ticker, the RSS sampler), the callers and
//! loopers, and what they all observed once the clients are dropped.

use super::callers::{budget_callers, caller, looper};
use super::report::report;
use super::schedule::{BAD_BODIES, MIXED, OUTAGE, phases};
use super::{
    ATTEMPT_TIMEOUT, Args, LOOP_BURST, LOOPERS, PANICS, RECORD_BYTES, RECORDED, REPLAY_POSTS,
    RESET_TIMEOUT, TICK, TIMEOUT,
};
use crate::fault::{self, Delays, FaultState, Mode};
use crate::invariants::{self, Breaker, Limits, Observations};
use crate::{lock, mem};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use svc_client::{CircuitBreakerConfig, Client, ClientConfig, Registry};
use svc_demo::net;

pub(super) async fn storm(args: &Args) -> Result<Vec<invariants::Violation>, String> {
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
    let config = facade_config(Some(breaker));
    let registry = Registry::from_vars([("SOAK_SVC_URL", server.url())]);
    let client = Client::from_registry(&registry, "soak-svc", config)
        .map_err(|e| format!("cannot build the facade: {e}"))?;
    // A second facade without a breaker: only its retry budget stands
    // between an outage and four requests per call.
    let budget_config = facade_config(None);
    let budget_client = Client::from_registry(&registry, "soak-svc", budget_config)
        .map_err(|e| format!("cannot build the budget-only facade: {e}"))?;
    // The loopers' facade: a breaker of its own, so that their calls do not
    // change what the main callers see.
    let loop_config = facade_config(Some(
        CircuitBreakerConfig::default().reset_timeout(RESET_TIMEOUT),
    ));
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

/// A facade of the soak: its short timeouts, `breaker`, and a pool of its
/// own, so that dropping the client must close every connection.
fn facade_config(breaker: Option<CircuitBreakerConfig>) -> ClientConfig {
    ClientConfig::default()
        .timeout(TIMEOUT)
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .circuit_breaker(breaker)
        .shared_pool(false)
}
