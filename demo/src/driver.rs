//! The driver of `cargo xtask demo`: starts the services, drives a failure
//! scenario through them, and checks that svc did what it promises.
//!
//! The scenario, each phase set up with the backends' fault endpoints:
//!
//! | phase | faults | expected |
//! |---|---|---|
//! | healthy | none | ≥ 99% full profiles |
//! | chat down | chat-svc resets every connection | no failed request, ≥ 95% degraded |
//! | auth failing | chat-svc healthy, auth-svc answers 500 | auth's breaker opens; afterwards ≥ 90% fast 503s (p50 < 50 ms); auth receives < 10% of the phase's requests |
//! | auth recovered | none | the breaker goes half-open, then closed; ≥ 95% full profiles at the end |
//!
//! Besides, one trace id sent by the driver must be seen by all three
//! services (their logs and `auth`/`chat` stats), and returned by
//! profile-svc as `x-trace-id`.

use crate::backend::{Faults, Stats};
use crate::chart::{self, PhaseSpan, Point};
use crate::procs::Children;
use crate::profile::{DebugClients, Profile, TRACE_ID_HEADER};
use crate::stats::{Outcome, Tally, fmt_latency};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use svc_client::reqwest;

/// The command line of the `demo` binary.
pub const USAGE: &str = "\
demo [--quick] [--out-dir DIR]
demo [--quick] [--out-dir DIR] --profile-url URL --auth-url URL --chat-url URL [--breaker-reset-ms MS]

Starts auth-svc, chat-svc and profile-svc on free ports of 127.0.0.1, drives
load on profile-svc through a failure scenario (healthy, chat down, auth
failing, auth recovered), prints one line per second, checks every
expectation and writes DIR/summary.txt, DIR/timeline.svg and DIR/logs/.
Given the three URLs, it starts nothing and drives services already running
elsewhere (a cluster: see deploy/kubernetes/README.md) instead.

Options:
  --quick                the whole scenario in about 25 s (CI runs this)
  --out-dir DIR          where to write results (default: target/demo)
  --profile-url URL      profile-svc to drive (with --auth-url and --chat-url)
  --auth-url URL         auth-svc whose faults and stats the driver uses
  --chat-url URL         chat-svc whose faults and stats the driver uses
  --breaker-reset-ms MS  profile-svc's BREAKER_RESET_TIMEOUT_MS when attached
                         (default 5000, as in deploy/kubernetes)
  -h, --help             print this help

Exit status: 0 when every expectation held, 1 when one did not (each is
named), 2 on a usage or startup error, 130 when interrupted.";

/// What the driver was asked to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The short scenario.
    pub quick: bool,
    /// Where results go.
    pub out_dir: PathBuf,
    /// Where the service binaries are (next to the driver by default).
    pub bin_dir: PathBuf,
    /// Services already running elsewhere, to drive instead of starting them.
    pub attach: Option<Attach>,
}

/// The base URLs of services the driver attaches to instead of starting.
#[derive(Clone, Debug, PartialEq)]
pub struct Attach {
    /// profile-svc.
    pub profile: String,
    /// auth-svc.
    pub auth: String,
    /// chat-svc.
    pub chat: String,
    /// profile-svc's breaker reset timeout (`BREAKER_RESET_TIMEOUT_MS`).
    pub breaker_reset: Duration,
}

impl Options {
    /// Parses the arguments (without the program name). `Ok(None)` for `--help`.
    ///
    /// # Errors
    ///
    /// An unknown option or a missing value, named.
    ///
    /// ```
    /// use svc_demo::driver::Options;
    ///
    /// let o = Options::parse(["--quick".to_owned()], "bin".into()).unwrap().unwrap();
    /// assert!(o.quick);
    /// assert!(Options::parse(["--help".to_owned()], "bin".into()).unwrap().is_none());
    /// assert!(Options::parse(["--fast".to_owned()], "bin".into()).unwrap_err().contains("--fast"));
    /// ```
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        bin_dir: PathBuf,
    ) -> Result<Option<Options>, String> {
        let mut options = Options {
            quick: false,
            out_dir: PathBuf::from("target/demo"),
            bin_dir,
            attach: None,
        };
        let (mut profile, mut auth, mut chat, mut reset) = (None, None, None, None);
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |what: &str| args.next().ok_or(format!("{arg} needs {what}"));
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--out-dir" => options.out_dir = value("a directory")?.into(),
                "--profile-url" => profile = Some(base_url(&arg, value("a URL")?)?),
                "--auth-url" => auth = Some(base_url(&arg, value("a URL")?)?),
                "--chat-url" => chat = Some(base_url(&arg, value("a URL")?)?),
                "--breaker-reset-ms" => {
                    let ms = value("milliseconds")?;
                    let ms: u64 = ms
                        .parse()
                        .map_err(|_| format!("--breaker-reset-ms: not a number: `{ms}`"))?;
                    reset = Some(Duration::from_millis(ms));
                }
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        options.attach = match (profile, auth, chat) {
            (Some(profile), Some(auth), Some(chat)) => Some(Attach {
                profile,
                auth,
                chat,
                breaker_reset: reset.unwrap_or(Duration::from_secs(5)),
            }),
            (None, None, None) if reset.is_none() => None,
            _ => {
                return Err(
                    "attaching needs --profile-url, --auth-url and --chat-url together \
                     (--breaker-reset-ms only with them)"
                        .to_owned(),
                );
            }
        };
        Ok(Some(options))
    }
}

/// `URL` without its trailing slashes, if it is an http(s) URL.
fn base_url(option: &str, url: String) -> Result<String, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("{option}: not an http(s) URL: `{url}`"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

// ===== The scenario =====

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Healthy,
    ChatDown,
    AuthFailing,
    AuthRecovered,
}

#[derive(Clone, Copy, Debug)]
struct Phase {
    kind: Kind,
    name: &'static str,
    secs: u64,
}

/// Durations, load and client settings of one run.
#[derive(Clone, Debug)]
struct Plan {
    phases: Vec<Phase>,
    rate: u32,
    breaker_reset: Duration,
    /// The part at the end of the recovered phase that must be all but clean.
    settle: Duration,
}

impl Plan {
    /// The plan; `breaker_reset` is profile-svc's when the driver does not
    /// set it itself (attached), and the recovered phase lasts long enough
    /// for a trial and the settled part after it.
    fn new(quick: bool, breaker_reset: Option<Duration>) -> Plan {
        let mut secs: [u64; 4] = if quick {
            [4, 5, 6, 7]
        } else {
            [10, 15, 18, 17]
        };
        let settle = Duration::from_secs(if quick { 3 } else { 6 });
        let breaker_reset = breaker_reset.unwrap_or(Duration::from_secs(if quick { 2 } else { 5 }));
        let needed = (breaker_reset + settle).as_secs() + 2;
        secs[3] = secs[3].max(needed);
        let phases = [
            (Kind::Healthy, "healthy"),
            (Kind::ChatDown, "chat down"),
            (Kind::AuthFailing, "auth failing"),
            (Kind::AuthRecovered, "auth recovered"),
        ]
        .into_iter()
        .zip(secs)
        .map(|((kind, name), secs)| Phase { kind, name, secs })
        .collect();
        Plan {
            phases,
            rate: if quick { 50 } else { 80 },
            breaker_reset,
            settle,
        }
    }
}

/// One request's result.
#[derive(Clone, Debug)]
struct Sample {
    /// Since the load started.
    sent_at: Duration,
    /// Since the load started.
    done_at: Duration,
    latency: Duration,
    outcome: Outcome,
    trace_sent: String,
    trace_returned: Option<String>,
    retry_after: Option<u64>,
    /// For [`Outcome::Error`]: the status or the kind of error.
    detail: Option<String>,
}

/// Everything observed once per second.
#[derive(Clone, Debug, Default)]
struct Tick {
    debug: Option<DebugClients>,
    auth_requests: Option<u64>,
}

/// The run's base URLs and HTTP client.
struct Env {
    http: reqwest::Client,
    auth: String,
    chat: String,
    profile: String,
}

impl Env {
    async fn set_faults(&self, base: &str, faults: &Faults) -> Result<(), String> {
        let url = format!("{base}/admin/faults");
        let resp = self
            .http
            .post(&url)
            .json(faults)
            .send()
            .await
            .map_err(|err| format!("POST {url}: {err}"))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("POST {url}: {}", resp.status()))
        }
    }

    async fn stats(&self, base: &str) -> Option<Stats> {
        let resp = self
            .http
            .get(format!("{base}/admin/stats"))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    async fn debug_clients(&self) -> Option<DebugClients> {
        let resp = self
            .http
            .get(format!("{}/debug/clients", self.profile))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    async fn tick(&self) -> Tick {
        let (debug, auth) = tokio::join!(self.debug_clients(), self.stats(&self.auth));
        Tick {
            debug,
            auth_requests: auth.map(|s| s.requests),
        }
    }
}

/// Starts the services, runs the scenario, prints and writes the results.
/// Returns whether every expectation held.
///
/// # Errors
///
/// A startup failure (a service did not start or become ready).
pub async fn run(options: &Options, children: &mut Children) -> Result<bool, String> {
    let plan = Plan::new(
        options.quick,
        options.attach.as_ref().map(|a| a.breaker_reset),
    );
    let logs = options.out_dir.join("logs");
    std::fs::create_dir_all(if options.attach.is_some() {
        &options.out_dir
    } else {
        &logs
    })
    .map_err(|err| format!("cannot create {}: {err}", logs.display()))?;
    let (profile, auth, chat) = match &options.attach {
        Some(attach) => {
            println!(
                "svc demo: attached to profile-svc at {}, auth-svc at {}, chat-svc at {}",
                attach.profile, attach.auth, attach.chat
            );
            println!(
                "  assuming profile-svc's breaker opens for {:?} (--breaker-reset-ms)",
                plan.breaker_reset
            );
            (
                attach.profile.clone(),
                attach.auth.clone(),
                attach.chat.clone(),
            )
        }
        None => start_services(options, &plan, &logs, children)?,
    };

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
    let env = Arc::new(Env {
        http,
        auth,
        chat,
        profile,
    });
    for base in [&env.auth, &env.chat, &env.profile] {
        wait_ready(&env.http, base).await?;
    }
    println!(
        "  all ready; {} phases, {} req/s\n",
        plan.phases.len(),
        plan.rate
    );

    let report = drive(&env, &plan).await;
    // Attached, the services' logs are elsewhere (kubectl logs).
    let checks = report.checks(&plan, options.attach.is_none().then_some(logs.as_path()));
    let summary = report.summary(&plan, &checks);
    print!("\n{summary}");

    let chart = chart::render(
        &format!(
            "svc demo{}: profile-svc under failures",
            if options.quick { " --quick" } else { "" }
        ),
        &report.points,
        &report.spans,
    );
    let chart_path = options.out_dir.join("timeline.svg");
    let summary_path = options.out_dir.join("summary.txt");
    std::fs::write(&chart_path, chart)
        .map_err(|err| format!("cannot write {}: {err}", chart_path.display()))?;
    std::fs::write(&summary_path, &summary)
        .map_err(|err| format!("cannot write {}: {err}", summary_path.display()))?;
    if options.attach.is_some() {
        println!(
            "wrote {} and {}",
            summary_path.display(),
            chart_path.display()
        );
    } else {
        println!(
            "wrote {}, {} and {}/",
            summary_path.display(),
            chart_path.display(),
            logs.display()
        );
    }
    Ok(checks.iter().all(|c| c.passed))
}

/// Starts the three services as the platform would: each on a port of its
/// own, profile-svc with its siblings' URLs. Returns the base URLs of
/// profile-svc, auth-svc and chat-svc.
fn start_services(
    options: &Options,
    plan: &Plan,
    logs: &Path,
    children: &mut Children,
) -> Result<(String, String, String), String> {
    let exe = |name: &str| {
        options
            .bin_dir
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    };
    println!("svc demo: starting auth-svc, chat-svc and profile-svc on 127.0.0.1");
    let auth = children.spawn(
        "auth-svc",
        &exe("auth-svc"),
        &[],
        &logs.join("auth-svc.log"),
    )?;
    let chat = children.spawn(
        "chat-svc",
        &exe("chat-svc"),
        &[],
        &logs.join("chat-svc.log"),
    )?;
    // What the platform injects, and the demo's client settings.
    let profile_env = [
        ("AUTH_SVC_URL", format!("http://{auth}")),
        ("CHAT_SVC_URL", format!("http://{chat}")),
        // Generous timeouts: no phase relies on them, and a loaded CI
        // machine must not turn a slow answer into a failed check.
        ("CLIENT_TIMEOUT_MS", "2500".to_owned()),
        ("CLIENT_ATTEMPT_TIMEOUT_MS", "1000".to_owned()),
        ("CLIENT_MAX_RETRIES", "1".to_owned()),
        ("BREAKER_FAILURE_THRESHOLD", "5".to_owned()),
        (
            "BREAKER_RESET_TIMEOUT_MS",
            plan.breaker_reset.as_millis().to_string(),
        ),
    ];
    let profile = children.spawn(
        "profile-svc",
        &exe("profile-svc"),
        &profile_env,
        &logs.join("profile-svc.log"),
    )?;
    for (name, value) in &profile_env[..2] {
        println!("  profile-svc gets {name}={value}");
    }
    println!(
        "  profile-svc listens on {profile}; breaker: 5 failures open it for {:?}",
        plan.breaker_reset
    );
    Ok((
        format!("http://{profile}"),
        format!("http://{auth}"),
        format!("http://{chat}"),
    ))
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let url = format!("{base}/healthz");
    loop {
        if let Ok(resp) = http.get(&url).send().await
            && resp.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{url} not ready within 10 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ===== Driving the load =====

/// What a run observed.
struct Report {
    samples: Vec<Sample>,
    points: Vec<Point>,
    spans: Vec<PhaseSpan>,
    /// Per phase: from when its faults were in force to when the next
    /// phase's began. A request belongs to a phase when it was sent and
    /// answered within that window; the few that straddle a change of
    /// faults belong to none.
    windows: Vec<(Duration, Duration)>,
    /// Per phase: auth requests received during it.
    auth_calls: Vec<Option<u64>>,
    /// Per phase: the breaker report when it started and when it ended.
    debug_at_start: Vec<Option<DebugClients>>,
    debug_at_end: Vec<Option<DebugClients>>,
    /// Per phase: whether auth's breaker was seen open at a tick.
    auth_open_seen: Vec<bool>,
    /// The healthy phase's traces seen by auth and chat.
    auth_traces: HashSet<String>,
    chat_traces: HashSet<String>,
}

async fn drive(env: &Arc<Env>, plan: &Plan) -> Report {
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let started = Instant::now();
    let mut report = Report {
        samples: Vec::new(),
        points: Vec::new(),
        spans: Vec::new(),
        windows: Vec::new(),
        auth_calls: Vec::new(),
        debug_at_start: Vec::new(),
        debug_at_end: Vec::new(),
        auth_open_seen: Vec::new(),
        auth_traces: HashSet::new(),
        chat_traces: HashSet::new(),
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
    let mut last_auth = env.stats(&env.auth).await.map(|s| s.requests);
    let mut second = 0u64;
    for phase in &plan.phases {
        // The breakers as the phase begins (before its faults change anything).
        let tick = env.tick().await;
        let setup_start = started.elapsed();
        if let Err(err) = set_up(env, phase.kind).await {
            println!("  ! could not set up `{}`: {err}", phase.name);
        }
        let auth_at_start = tick.auth_requests;
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
            "   {:>4} {:>5} {:>5} {:>5} {:>5} {:>5} {:>8} {:>8}  {:<9} {:<9} {:>6}",
            "t", "req/s", "ok", "deg", "fail", "(503)", "p50", "p99", "auth cb", "chat cb", "→auth"
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
            println!(
                "   {:>3}s {:>5} {:>5} {:>5} {:>5} {:>5} {:>8} {:>8}  {:<9} {:<9} {:>6}",
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
        report.debug_at_end.push(last_tick.debug);
        report.auth_open_seen.push(open_seen);
        if phase.kind == Kind::Healthy {
            // Read the backends' recent trace ids while the healthy phase's
            // requests are still among them.
            for (base, set) in [
                (&env.auth, &mut report.auth_traces),
                (&env.chat, &mut report.chat_traces),
            ] {
                if let Some(stats) = env.stats(base).await {
                    set.extend(stats.recent_trace_ids);
                }
            }
        }
        println!();
    }
    // Let the requests in flight finish (each is bounded by the client's timeout).
    let _ = load.await;
    collected.extend(std::mem::take(
        &mut *samples.lock().unwrap_or_else(PoisonError::into_inner),
    ));
    report.samples = collected;
    report
}

fn describe(kind: Kind) -> &'static str {
    match kind {
        Kind::Healthy => "every service answers",
        Kind::ChatDown => "chat-svc resets every connection: profiles degrade, nobody fails",
        Kind::AuthFailing => {
            "chat-svc back; auth-svc answers 500: the breaker opens, profile-svc fails fast"
        }
        Kind::AuthRecovered => {
            "auth-svc healthy again: a half-open trial succeeds, the breaker closes"
        }
    }
}

async fn set_up(env: &Env, kind: Kind) -> Result<(), String> {
    let healthy = Faults::default();
    match kind {
        Kind::Healthy => {
            env.set_faults(&env.auth, &healthy).await?;
            env.set_faults(&env.chat, &healthy).await
        }
        Kind::ChatDown => {
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
            env.set_faults(&env.auth, &failing).await
        }
        Kind::AuthRecovered => env.set_faults(&env.auth, &healthy).await,
    }
}

/// Sends `rate` requests per second, open loop (a slow answer does not slow
/// the load down, as real users don't wait for each other), until `length`.
async fn generate_load(
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

async fn one_request(env: &Env, started: Instant) -> Sample {
    let trace_id = format!("{:032x}", fastrand::u128(1..));
    let traceparent = format!("00-{trace_id}-{:016x}-01", fastrand::u64(1..));
    let user = fastrand::u32(1..=1000);
    let sent_at = started.elapsed();
    let t0 = Instant::now();
    let result = env
        .http
        .get(format!("{}/profiles/{user}", env.profile))
        .header("traceparent", traceparent)
        .send()
        .await;
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
    }
}

// ===== Checks and summary =====

/// One expectation of the scenario and whether it held.
#[derive(Clone, Debug)]
struct Check {
    name: String,
    passed: bool,
    detail: String,
    /// Lines shown under the check (e.g. one trace's log lines).
    notes: Vec<String>,
}

fn check(name: impl Into<String>, passed: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        passed,
        detail: detail.into(),
        notes: Vec::new(),
    }
}

/// `HH:MM:SS.mmm service METHOD /path answered status=.. latency_ms=..` from a
/// compact log line of an answered request, `None` for other lines.
fn log_excerpt(service: &str, line: &str) -> Option<String> {
    let at = line.find("answered ")?;
    let message = line[at..]
        .split_whitespace()
        .take_while(|word| !word.starts_with("otel."))
        .collect::<Vec<_>>()
        .join(" ");
    let time = line.split_whitespace().next()?;
    let time = time
        .split_once('T')
        .map_or(time, |(_, t)| t.trim_end_matches('Z'));
    let time = &time[..time.len().min(12)];
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .map(|v| v.trim_matches('"'))
    };
    let method = field("http.request.method=").unwrap_or("?");
    let path = field("url.path=").unwrap_or("?");
    Some(format!("{time} {service:<11} {method} {path} {message}"))
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

impl Report {
    fn phase_samples(&self, index: usize) -> impl Iterator<Item = &Sample> {
        let (start, end) = self.windows[index];
        self.samples
            .iter()
            .filter(move |s| s.sent_at >= start && s.done_at <= end)
    }

    fn tally<'a>(&self, samples: impl Iterator<Item = &'a Sample>) -> Tally {
        let mut tally = Tally::new();
        for s in samples {
            tally.add(s.outcome, s.latency);
        }
        tally
    }

    fn checks(&self, plan: &Plan, logs: Option<&Path>) -> Vec<Check> {
        let mut checks = Vec::new();
        for (index, phase) in plan.phases.iter().enumerate() {
            let mut tally = self.tally(self.phase_samples(index));
            let expected = phase.secs * u64::from(plan.rate);
            // The load really ran: at least 80% of the planned requests.
            checks.push(check(
                format!("{}: the load ran", phase.name),
                tally.total() * 10 >= expected * 8,
                format!("{} of {expected} planned requests", tally.total()),
            ));
            match phase.kind {
                Kind::Healthy => {
                    let ok = tally.fraction(tally.ok);
                    checks.push(check(
                        "healthy: ≥ 99% full profiles",
                        ok >= 0.99,
                        format!("{} ok", pct(ok)),
                    ));
                }
                Kind::ChatDown => {
                    let degraded = tally.fraction(tally.degraded);
                    checks.push(check(
                        "chat down: no request failed",
                        tally.failed() == 0,
                        format!("{} failed", tally.failed()),
                    ));
                    checks.push(check(
                        "chat down: ≥ 95% degraded profiles",
                        degraded >= 0.95,
                        format!("{} degraded", pct(degraded)),
                    ));
                }
                Kind::AuthFailing => checks.extend(self.auth_failing_checks(index, &mut tally)),
                Kind::AuthRecovered => checks.extend(self.recovered_checks(index, plan)),
            }
        }
        checks.push(self.trace_check(logs));
        checks
    }

    fn auth_failing_checks(&self, index: usize, tally: &mut Tally) -> Vec<Check> {
        let mut checks = Vec::new();
        let first_503 = self
            .phase_samples(index)
            .filter(|s| s.outcome == Outcome::Unavailable)
            .map(|s| s.sent_at)
            .min();
        checks.push(check(
            "auth failing: auth's breaker opened",
            self.auth_open_seen[index] && first_503.is_some(),
            match first_503 {
                Some(t) => format!("first 503 with Retry-After at {:.1}s", t.as_secs_f64()),
                None => "no 503 with Retry-After".to_owned(),
            },
        ));
        if let Some(first) = first_503 {
            let mut after = self.tally(self.phase_samples(index).filter(|s| s.sent_at > first));
            let fast = after.fraction(after.unavailable);
            let p50 = after.latency(50.0);
            checks.push(check(
                "auth failing: once open, ≥ 90% are 503 answered fast (p50 < 50 ms)",
                fast >= 0.90 && p50.is_some_and(|p| p < Duration::from_millis(50)),
                format!("{} 503, p50 {}", pct(fast), fmt_latency(p50)),
            ));
            let waits: Vec<Option<u64>> = self
                .phase_samples(index)
                .filter(|s| s.outcome == Outcome::Unavailable)
                .map(|s| s.retry_after)
                .collect();
            let retry_after_ok = waits
                .iter()
                .all(|r| r.is_some_and(|r| (1..=60).contains(&r)));
            let low = waits.iter().flatten().min().copied().unwrap_or(0);
            let high = waits.iter().flatten().max().copied().unwrap_or(0);
            checks.push(check(
                "auth failing: every 503 carries Retry-After (1-60 s)",
                retry_after_ok,
                format!("{low}-{high} s, from CircuitOpen::retry_after()"),
            ));
        }
        let requests = tally.total();
        let reached = self.auth_calls[index];
        checks.push(check(
            "auth failing: auth receives < 10% of the phase's requests",
            reached.is_some_and(|r| requests > 0 && r * 10 < requests),
            match reached {
                Some(r) => format!("{r} of {requests} reached auth"),
                None => "auth's stats unavailable".to_owned(),
            },
        ));
        checks
    }

    fn recovered_checks(&self, index: usize, plan: &Plan) -> Vec<Check> {
        let state = |d: &Option<DebugClients>, chat: bool| {
            d.as_ref()
                .and_then(|d| {
                    if chat {
                        d.chat.as_ref().map(|c| c.state.clone())
                    } else {
                        Some(d.auth.state.clone())
                    }
                })
                .unwrap_or_else(|| "unknown".to_owned())
        };
        let start = state(&self.debug_at_start[index], false);
        let end = state(&self.debug_at_end[index], false);
        let chat_end = state(&self.debug_at_end[index], true);
        let epochs = |d: &Option<DebugClients>| d.as_ref().map(|d| d.auth.epoch);
        let transitions = match (
            epochs(&self.debug_at_start[index]),
            epochs(&self.debug_at_end[index]),
        ) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        };
        let phase_end = self
            .phase_samples(index)
            .map(|s| s.sent_at)
            .max()
            .unwrap_or_default();
        let mut last = self.tally(
            self.phase_samples(index)
                .filter(|s| s.sent_at + plan.settle > phase_end),
        );
        let ok = last.fraction(last.ok);
        vec![
            check(
                "auth recovered: the breaker went from open through half-open to closed",
                start != "closed" && end == "closed" && chat_end == "closed" && transitions >= 1,
                format!(
                    "auth {start} -> {end} ({transitions} transitions), chat {chat_end} at the end"
                ),
            ),
            check(
                format!(
                    "auth recovered: ≥ 95% full profiles in the last {} s",
                    plan.settle.as_secs()
                ),
                ok >= 0.95,
                format!("{} ok, p99 {}", pct(ok), fmt_latency(last.latency(99.0))),
            ),
        ]
    }

    /// A trace id sent in the healthy phase, continued by profile-svc and seen
    /// by auth-svc and chat-svc (their stats and all three logs).
    fn trace_check(&self, logs: Option<&Path>) -> Check {
        let name = "one trace crosses all three services";
        let candidates: Vec<&str> = self
            .phase_samples(0)
            .filter(|s| s.outcome == Outcome::Ok)
            .filter(|s| s.trace_returned.as_deref() == Some(s.trace_sent.as_str()))
            .map(|s| s.trace_sent.as_str())
            .filter(|t| self.auth_traces.contains(*t) && self.chat_traces.contains(*t))
            .collect();
        let Some(trace) = candidates.last() else {
            let continued = self
                .phase_samples(0)
                .filter(|s| s.trace_returned.as_deref() == Some(s.trace_sent.as_str()))
                .count();
            return check(
                name,
                false,
                format!(
                    "{continued} healthy requests came back with their own trace id; none seen by both auth-svc and chat-svc"
                ),
            );
        };
        let Some(logs) = logs else {
            return check(
                name,
                true,
                format!("trace {trace}: returned by profile-svc, in auth's and chat's stats"),
            );
        };
        let mut missing = Vec::new();
        let mut notes = Vec::new();
        for service in ["profile-svc", "auth-svc", "chat-svc"] {
            let log = logs.join(format!("{service}.log"));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let mut lines = text.lines().filter(|line| line.contains(trace)).peekable();
            if lines.peek().is_none() {
                missing.push(service);
            }
            notes.extend(lines.filter_map(|line| log_excerpt(service, line)));
        }
        // The hops in time order: auth and chat answer before profile does.
        notes.sort();
        let mut trace_check = check(
            name,
            missing.is_empty(),
            if missing.is_empty() {
                format!(
                    "trace {trace}: grep it in {}/ ({} candidates)",
                    logs.display(),
                    candidates.len()
                )
            } else {
                format!(
                    "trace {trace} missing from the logs of {}",
                    missing.join(", ")
                )
            },
        );
        trace_check.notes = notes;
        trace_check
    }

    fn summary(&self, plan: &Plan, checks: &[Check]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<15} {:>5} {:>8} {:>7} {:>9} {:>7} {:>7} {:>8} {:>8} {:>13}",
            "phase",
            "secs",
            "requests",
            "ok",
            "degraded",
            "failed",
            "(503)",
            "p50",
            "p99",
            "reached auth"
        );
        for (index, phase) in plan.phases.iter().enumerate() {
            let mut t = self.tally(self.phase_samples(index));
            let reached = match self.auth_calls[index] {
                Some(r) => format!("{r} ({})", pct_short(r, t.total())),
                None => "?".to_owned(),
            };
            let _ = writeln!(
                out,
                "{:<15} {:>5} {:>8} {:>7} {:>9} {:>7} {:>7} {:>8} {:>8} {:>13}",
                phase.name,
                phase.secs,
                t.total(),
                pct_short(t.ok, t.total()),
                pct_short(t.degraded, t.total()),
                pct_short(t.failed(), t.total()),
                format!("({})", pct_short(t.unavailable, t.total())),
                fmt_latency(t.latency(50.0)),
                fmt_latency(t.latency(99.0)),
                reached,
            );
        }
        for (index, phase) in plan.phases.iter().enumerate() {
            let mut kinds = std::collections::BTreeMap::<&str, u64>::new();
            for s in self.phase_samples(index) {
                if let Some(detail) = &s.detail {
                    *kinds.entry(detail.as_str()).or_default() += 1;
                }
            }
            if !kinds.is_empty() {
                let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} x{n}")).collect();
                let _ = writeln!(out, "  {} other failures: {}", phase.name, kinds.join(", "));
            }
        }
        let _ = writeln!(out);
        for c in checks {
            let _ = writeln!(
                out,
                "{} {}: {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            );
            for note in &c.notes {
                let _ = writeln!(out, "       {note}");
            }
        }
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        let _ = writeln!(out);
        if failed.is_empty() {
            let _ = writeln!(out, "every expectation held ({} checks)", checks.len());
        } else {
            let _ = writeln!(
                out,
                "{} of {} expectations failed: {}",
                failed.len(),
                checks.len(),
                failed.join("; ")
            );
        }
        out
    }
}

fn pct_short(count: u64, total: u64) -> String {
    if total == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", count as f64 * 100.0 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_plan_fits_in_thirty_seconds() {
        let plan = Plan::new(true, None);
        let secs: u64 = plan.phases.iter().map(|p| p.secs).sum();
        assert!(secs <= 25, "{secs}");
        // Recovery needs a trial (after `breaker_reset`) before the settled part.
        let recovered = plan.phases.last().unwrap();
        assert!(plan.breaker_reset + plan.settle < Duration::from_secs(recovered.secs));
        let full = Plan::new(false, None);
        let secs: u64 = full.phases.iter().map(|p| p.secs).sum();
        assert!((50..=70).contains(&secs), "{secs}");
    }

    #[test]
    fn options_parse() {
        let parse = |args: &[&str]| Options::parse(args.iter().map(|s| s.to_string()), "b".into());
        let o = parse(&["--out-dir", "x/y"]).unwrap().unwrap();
        assert_eq!(o.out_dir, PathBuf::from("x/y"));
        assert!(!o.quick);
        assert!(parse(&["--out-dir"]).unwrap_err().contains("--out-dir"));
        assert!(parse(&["-h"]).unwrap().is_none());
        assert!(o.attach.is_none());

        let o = parse(&[
            "--profile-url",
            "http://localhost:8000/",
            "--auth-url",
            "http://localhost:8001",
            "--chat-url",
            "https://chat.example",
            "--breaker-reset-ms",
            "10000",
        ])
        .unwrap()
        .unwrap();
        let attach = o.attach.unwrap();
        assert_eq!(attach.profile, "http://localhost:8000");
        assert_eq!(attach.chat, "https://chat.example");
        assert_eq!(attach.breaker_reset, Duration::from_secs(10));
        let partial = parse(&["--profile-url", "http://p"]).unwrap_err();
        assert!(partial.contains("--auth-url"), "{partial}");
        assert!(
            parse(&["--auth-url", "localhost:8001"])
                .unwrap_err()
                .contains("--auth-url")
        );
        assert!(parse(&["--breaker-reset-ms", "5"]).is_err());
    }

    #[test]
    fn a_long_breaker_reset_lengthens_the_recovered_phase() {
        let plan = Plan::new(true, Some(Duration::from_secs(10)));
        let recovered = plan.phases.last().unwrap();
        assert_eq!(recovered.kind, Kind::AuthRecovered);
        assert!(plan.breaker_reset + plan.settle < Duration::from_secs(recovered.secs));
    }

    #[test]
    fn log_excerpts_keep_time_route_and_answer() {
        let line = "2026-11-27T08:33:31.357132Z  INFO HTTP request:request: svc_demo::backend: \
                    answered status=200 latency_ms=0 otel.kind=\"server\" otel.name=GET /users/{id} \
                    http.request.method=GET url.path=/users/3 http.route=\"/users/{id}\" trace_id=19444cd9";
        assert_eq!(
            log_excerpt("auth-svc", line).unwrap(),
            "08:33:31.357 auth-svc    GET /users/3 answered status=200 latency_ms=0"
        );
        assert_eq!(
            log_excerpt("auth-svc", "2026-11-27T08:33:31Z WARN other"),
            None
        );
    }

    #[test]
    fn percentages() {
        assert_eq!(pct_short(1, 3), "33.3%");
        assert_eq!(pct_short(0, 0), "-");
        assert_eq!(pct(0.995), "99.5%");
    }
}
