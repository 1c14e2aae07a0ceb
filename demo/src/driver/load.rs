//! Driving the load: setting each phase's faults, sending requests at the
//! plan's rate, and sampling the breakers and auth's request count every
//! second.

use super::plan::{AUTH_SLOW_MS, BUDGET, Kind, Plan, describe};
use crate::backend::{Faults, Stats, Work, unix_ms};
use crate::chart::{PhaseSpan, Point};
use crate::profile::{Deadlines, DebugClients, Profile, TRACE_ID_HEADER};
use crate::stats::{Outcome, Tally, fmt_latency};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use svc_client::reqwest;

/// One request's result.
#[derive(Clone, Debug)]
pub(super) struct Sample {
    /// Since the load started.
    pub(super) sent_at: Duration,
    /// Since the load started.
    pub(super) done_at: Duration,
    pub(super) latency: Duration,
    pub(super) outcome: Outcome,
    pub(super) trace_sent: String,
    pub(super) trace_returned: Option<String>,
    pub(super) retry_after: Option<u64>,
    /// For [`Outcome::Error`]: the status or the kind of error.
    pub(super) detail: Option<String>,
    /// The budget sent with the request (`svc-timeout-ms`), if any.
    pub(super) budget: Option<Duration>,
    /// When it was sent, milliseconds since the Unix epoch (to compare
    /// with auth-svc's [`Work`] records).
    pub(super) sent_unix_ms: f64,
}

/// Everything observed once per second.
#[derive(Clone, Debug, Default)]
pub(super) struct Tick {
    pub(super) debug: Option<DebugClients>,
    /// Requests received by every auth replica together.
    pub(super) auth_requests: Option<u64>,
    /// Requests received by each auth replica.
    pub(super) replica_requests: Vec<Option<u64>>,
}

/// The run's base URLs and HTTP client.
pub(super) struct Env {
    pub(super) http: reqwest::Client,
    /// The auth-svc replicas (one when attached to a single URL).
    pub(super) auth: Vec<String>,
    pub(super) chat: String,
    pub(super) profile: String,
    /// The budget each request is sent with, in milliseconds; 0 for none.
    pub(super) budget_ms: AtomicU64,
}

impl Env {
    /// Switches profile-svc's deadline propagation to auth-svc.
    pub(super) async fn set_propagation(&self, propagate: bool) -> Result<(), String> {
        let url = format!("{}/admin/deadlines", self.profile);
        self.post_admin(&url, &Deadlines { propagate }).await
    }

    pub(super) async fn set_faults(&self, base: &str, faults: &Faults) -> Result<(), String> {
        self.post_admin(&format!("{base}/admin/faults"), faults)
            .await
    }

    /// POSTs `body` as JSON to an admin endpoint; an error names the URL.
    async fn post_admin(&self, url: &str, body: &impl serde::Serialize) -> Result<(), String> {
        let resp = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|err| format!("POST {url}: {err}"))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("POST {url}: {}", resp.status()))
        }
    }

    pub(super) async fn stats(&self, base: &str) -> Option<Stats> {
        let resp = self
            .http
            .get(format!("{base}/admin/stats"))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    pub(super) async fn debug_clients(&self) -> Option<DebugClients> {
        let resp = self
            .http
            .get(format!("{}/debug/clients", self.profile))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    pub(super) async fn tick(&self) -> Tick {
        let (debug, replica_requests) = tokio::join!(self.debug_clients(), self.auth_requests());
        Tick {
            debug,
            auth_requests: replica_requests.iter().copied().sum(),
            replica_requests,
        }
    }

    /// Requests received by each auth replica.
    pub(super) async fn auth_requests(&self) -> Vec<Option<u64>> {
        let mut requests = Vec::with_capacity(self.auth.len());
        for base in &self.auth {
            requests.push(self.stats(base).await.map(|s| s.requests));
        }
        requests
    }

    /// Sets `faults` on every auth replica.
    async fn set_auth_faults(&self, faults: &Faults) -> Result<(), String> {
        for base in &self.auth {
            self.set_faults(base, faults).await?;
        }
        Ok(())
    }
}

/// What a run observed.
pub(super) struct Report {
    pub(super) samples: Vec<Sample>,
    pub(super) points: Vec<Point>,
    pub(super) spans: Vec<PhaseSpan>,
    /// Per phase: from when its faults were in force to when the next
    /// phase's began. A request belongs to a phase when it was sent and
    /// answered within that window; the few that straddle a change of
    /// faults belong to none.
    pub(super) windows: Vec<(Duration, Duration)>,
    /// Per phase: auth requests received during it.
    pub(super) auth_calls: Vec<Option<u64>>,
    /// Per phase and auth replica: requests received after the phase's
    /// first second (the time the balancer has to notice a fault).
    pub(super) replica_calls_after_first: Vec<Vec<Option<u64>>>,
    /// Per phase and auth replica: requests received during it.
    pub(super) replica_calls: Vec<Vec<Option<u64>>>,
    /// Per phase: the breaker report when it started and when it ended.
    pub(super) debug_at_start: Vec<Option<DebugClients>>,
    pub(super) debug_at_end: Vec<Option<DebugClients>>,
    /// Per phase: whether auth's breaker was seen open at a tick.
    pub(super) auth_open_seen: Vec<bool>,
    /// The healthy phase's traces seen by auth and chat.
    pub(super) auth_traces: HashSet<String>,
    pub(super) chat_traces: HashSet<String>,
    /// auth-svc's slow work in the deadline phases, by trace id.
    pub(super) auth_work: HashMap<String, Work>,
}

pub(super) async fn drive(env: &Arc<Env>, plan: &Plan) -> Report {
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let started = Instant::now();
    let mut report = Report {
        samples: Vec::new(),
        points: Vec::new(),
        spans: Vec::new(),
        windows: Vec::new(),
        auth_calls: Vec::new(),
        replica_calls_after_first: Vec::new(),
        replica_calls: Vec::new(),
        debug_at_start: Vec::new(),
        debug_at_end: Vec::new(),
        auth_open_seen: Vec::new(),
        auth_traces: HashSet::new(),
        chat_traces: HashSet::new(),
        auth_work: HashMap::new(),
    };

    let total: u64 = plan.phases.iter().map(|p| p.secs).sum();
    let load = tokio::spawn(generate_load(
        Arc::clone(env),
        plan.rate,
        started,
        Duration::from_secs(total),
        Arc::clone(&samples),
    ));

    let mut collected = Vec::<Sample>::new();
    let mut last_replicas = env.auth_requests().await;
    let mut last_auth: Option<u64> = last_replicas.iter().copied().sum();
    let mut second = 0u64;
    for phase in &plan.phases {
        // The breakers as the phase begins (before its faults change anything).
        let tick = env.tick().await;
        let setup_start = started.elapsed();
        if let Err(err) = set_up(env, phase.kind).await {
            println!("  ! could not set up `{}`: {err}", phase.name);
        }
        let auth_at_start = tick.auth_requests;
        let replicas_at_start = tick.replica_requests.clone();
        let mut replicas_after_first: Option<Vec<Option<u64>>> = None;
        report.debug_at_start.push(tick.debug.clone());
        let phase_start = started.elapsed();
        if let Some(previous) = report.windows.last_mut() {
            previous.1 = setup_start;
        }
        report.windows.push((phase_start, Duration::MAX));
        println!(
            "== {} ({} s) {}",
            phase.name,
            phase.secs,
            describe(phase.kind)
        );
        println!(
            "   {:>4} {:>5} {:>5} {:>5} {:>5} {:>5} {:>8} {:>8}  {:<9} {:<9} {:>6}  {}",
            "t",
            "req/s",
            "ok",
            "deg",
            "fail",
            "(503)",
            "p50",
            "p99",
            "auth cb",
            "chat cb",
            "→auth",
            if env.auth.len() > 1 {
                "per replica"
            } else {
                ""
            }
        );
        let mut open_seen = false;
        let mut last_tick = tick;
        for _ in 0..phase.secs {
            second += 1;
            tokio::time::sleep_until((started + Duration::from_secs(second)).into()).await;
            let done: Vec<Sample> =
                std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
            let mut tally = Tally::new();
            for s in &done {
                tally.add(s.outcome, s.latency);
            }
            collected.extend(done);
            let tick = env.tick().await;
            let auth_calls = match (last_auth, tick.auth_requests) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => 0,
            };
            if tick.auth_requests.is_some() {
                last_auth = tick.auth_requests;
            }
            let per_replica: Vec<u64> = tick
                .replica_requests
                .iter()
                .zip(&last_replicas)
                .map(|(now, before)| match (before, now) {
                    (Some(a), Some(b)) => b.saturating_sub(*a),
                    _ => 0,
                })
                .collect();
            for (last, now) in last_replicas.iter_mut().zip(&tick.replica_requests) {
                if now.is_some() {
                    *last = *now;
                }
            }
            if replicas_after_first.is_none() {
                replicas_after_first = Some(tick.replica_requests.clone());
            }
            let state = |f: fn(&DebugClients) -> Option<String>| tick.debug.as_ref().and_then(f);
            let auth_state = state(|d| Some(d.auth.state.clone()));
            let chat_state = state(|d| d.chat.as_ref().map(|c| c.state.clone()));
            open_seen |= auth_state.as_deref() == Some("open")
                || tick.debug.as_ref().is_some_and(|d| {
                    last_tick
                        .debug
                        .as_ref()
                        .is_some_and(|l| d.auth.rejections > l.auth.rejections)
                });
            let p50 = tally.latency(50.0);
            let p99 = tally.latency(99.0);
            let replicas = if per_replica.len() > 1 {
                per_replica
                    .iter()
                    .map(|n| format!("+{n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                String::new()
            };
            println!(
                "   {:>3}s {:>5} {:>5} {:>5} {:>5} {:>5} {:>8} {:>8}  {:<9} {:<9} {:>6}  {replicas}",
                second,
                tally.total(),
                tally.ok,
                tally.degraded,
                tally.failed(),
                format!("({})", tally.unavailable),
                fmt_latency(p50),
                fmt_latency(p99),
                auth_state.as_deref().unwrap_or("?"),
                chat_state.as_deref().unwrap_or("?"),
                format!("+{auth_calls}"),
            );
            report.points.push(Point {
                t: second as f64,
                ok: tally.ok,
                degraded: tally.degraded,
                unavailable: tally.unavailable,
                error: tally.error,
                p50_ms: p50.map(|d| d.as_secs_f64() * 1e3),
                p99_ms: p99.map(|d| d.as_secs_f64() * 1e3),
                auth_state,
                chat_state,
                auth_calls,
                // Filled in at the end, from auth-svc's work records.
                auth_late_ms: None,
                auth_replicas: per_replica,
            });
            last_tick = tick;
        }
        report.spans.push(PhaseSpan {
            name: phase.name.to_owned(),
            start: phase_start.as_secs_f64(),
            end: started.elapsed().as_secs_f64(),
        });
        report
            .auth_calls
            .push(match (auth_at_start, last_tick.auth_requests) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            });
        let since = |from: &[Option<u64>]| -> Vec<Option<u64>> {
            from.iter()
                .zip(&last_tick.replica_requests)
                .map(|(a, b)| Some(b.as_ref()?.saturating_sub(a.as_ref().copied()?)))
                .collect()
        };
        report.replica_calls.push(since(&replicas_at_start));
        report.replica_calls_after_first.push(since(
            replicas_after_first
                .as_deref()
                .unwrap_or(&replicas_at_start),
        ));
        report.debug_at_end.push(last_tick.debug);
        report.auth_open_seen.push(open_seen);
        if phase.kind == Kind::Healthy {
            // Read the backends' recent trace ids while the healthy phase's
            // requests are still among them.
            for base in &env.auth {
                if let Some(stats) = env.stats(base).await {
                    report.auth_traces.extend(stats.recent_trace_ids);
                }
            }
            if let Some(stats) = env.stats(&env.chat).await {
                report.chat_traces.extend(stats.recent_trace_ids);
            }
        }
        println!();
    }
    // Let the requests in flight finish (each is bounded by the client's timeout).
    let _ = load.await;
    collected.extend(std::mem::take(
        &mut *samples.lock().unwrap_or_else(PoisonError::into_inner),
    ));
    if plan
        .phases
        .iter()
        .any(|p| matches!(p.kind, Kind::AuthSlow | Kind::AuthSlowUnbounded))
    {
        // auth-svc's slow work outlives the answers when nobody stops it:
        // let the last of it end, then read its records.
        tokio::time::sleep(Duration::from_millis(AUTH_SLOW_MS + 200)).await;
        for base in &env.auth {
            if let Some(stats) = env.stats(base).await {
                for work in stats.recent_work {
                    if let Some(trace_id) = work.trace_id.clone() {
                        report.auth_work.insert(trace_id, work);
                    }
                }
            }
        }
    }
    report.samples = collected;
    report.fill_late_work();
    report
}

pub(super) async fn set_up(env: &Env, kind: Kind) -> Result<(), String> {
    let healthy = Faults::default();
    match kind {
        Kind::Healthy => {
            env.set_auth_faults(&healthy).await?;
            env.set_faults(&env.chat, &healthy).await
        }
        Kind::ReplicaDown => {
            let failing = Faults {
                status: Some(500),
                ..Faults::default()
            };
            match env.auth.last() {
                Some(last) => env.set_faults(last, &failing).await,
                None => Ok(()),
            }
        }
        Kind::ChatDown => {
            // The broken replica heals.
            env.set_auth_faults(&healthy).await?;
            let reset = Faults {
                reset: true,
                ..Faults::default()
            };
            env.set_faults(&env.chat, &reset).await
        }
        Kind::AuthFailing => {
            env.set_faults(&env.chat, &healthy).await?;
            let failing = Faults {
                status: Some(500),
                ..Faults::default()
            };
            env.set_auth_faults(&failing).await
        }
        Kind::AuthRecovered => env.set_auth_faults(&healthy).await,
        Kind::AuthSlow | Kind::AuthSlowUnbounded => {
            let slow = Faults {
                latency_ms: AUTH_SLOW_MS,
                ..Faults::default()
            };
            env.set_auth_faults(&slow).await?;
            env.set_propagation(kind == Kind::AuthSlow).await?;
            let budget = u64::try_from(BUDGET.as_millis()).unwrap_or(u64::MAX);
            env.budget_ms.store(budget, Ordering::Relaxed);
            Ok(())
        }
    }
}

/// Sends `rate` requests per second, open loop (a slow answer does not slow
/// the load down, as real users don't wait for each other), until `length`.
pub(super) async fn generate_load(
    env: Arc<Env>,
    rate: u32,
    started: Instant,
    length: Duration,
    samples: Arc<Mutex<Vec<Sample>>>,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    // Open loop: a late tick is caught up (burst), so the planned load is sent.
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut in_flight = tokio::task::JoinSet::new();
    while started.elapsed() < length {
        interval.tick().await;
        let env = Arc::clone(&env);
        let samples = Arc::clone(&samples);
        in_flight.spawn(async move {
            let sample = one_request(&env, started).await;
            samples
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(sample);
        });
        // Reap finished tasks as we go.
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

pub(super) async fn one_request(env: &Env, started: Instant) -> Sample {
    let trace_id = format!("{:032x}", fastrand::u128(1..));
    let traceparent = format!("00-{trace_id}-{:016x}-01", fastrand::u64(1..));
    let user = fastrand::u32(1..=1000);
    let budget = match env.budget_ms.load(Ordering::Relaxed) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    };
    let mut request = env
        .http
        .get(format!("{}/profiles/{user}", env.profile))
        .header("traceparent", traceparent);
    if let Some(budget) = budget {
        request = request.header(svc_client::deadline::HEADER, budget.as_millis().to_string());
    }
    let sent_at = started.elapsed();
    let sent_unix_ms = unix_ms();
    let t0 = Instant::now();
    let result = request.send().await;
    let mut trace_returned = None;
    let mut retry_after = None;
    let mut detail = None;
    let outcome = match result {
        Ok(resp) => {
            trace_returned = resp
                .headers()
                .get(TRACE_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            match resp.status().as_u16() {
                200 => match resp.json::<Profile>().await {
                    Ok(profile) if profile.degraded => Outcome::Degraded,
                    Ok(_) => Outcome::Ok,
                    Err(_) => {
                        detail = Some("200 with an invalid body".to_owned());
                        Outcome::Error
                    }
                },
                503 if retry_after.is_some() => Outcome::Unavailable,
                status => {
                    detail = Some(format!("status {status}"));
                    Outcome::Error
                }
            }
        }
        Err(err) => {
            detail = Some(
                if err.is_timeout() {
                    "timeout"
                } else if err.is_connect() {
                    "connect error"
                } else {
                    "transport error"
                }
                .to_owned(),
            );
            Outcome::Error
        }
    };
    let latency = t0.elapsed();
    Sample {
        sent_at,
        done_at: sent_at + latency,
        latency,
        outcome,
        trace_sent: trace_id,
        trace_returned,
        retry_after,
        detail,
        budget,
        sent_unix_ms,
    }
}
