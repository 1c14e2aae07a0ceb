//! `compare`: one loopback GET through four clients, side by side, in one
//! process: raw `reqwest`, `svc-httpclient`, the `svc-client` facade, and
//! `reqwest-middleware` + `reqwest-retry` (3 retries, exponential backoff).
//!
//! Suites: sequential latency (p50, p99), throughput with 64 requests in
//! flight, outage behaviour against a server answering 503 to everything
//! (requests per logical call, when callers start failing fast), and memory
//! (RSS per client and per idle connection, in fresh child processes).
//!
//! Usage: `compare [--quick] [--json PATH] [--tsv PATH] [--markdown PATH]`

use axum::Router;
use axum::routing::get;
use reqwest_middleware::ClientWithMiddleware;
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use svc_bench::fault::{self, Delays, FaultState, Mode};
use svc_bench::mem;
use svc_bench::report::{Flat, human_bytes, human_ns, table};
use svc_bench::stats::{Summary, nanos};
use svc_client::{ClientConfig, Registry};
use svc_demo::net;

const USAGE: &str = "usage: compare [--quick] [--json PATH] [--tsv PATH] [--markdown PATH]";

/// The four clients, in report order (the baseline first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Reqwest,
    HttpClient,
    Facade,
    ReqwestRetry,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::Reqwest,
        Kind::HttpClient,
        Kind::Facade,
        Kind::ReqwestRetry,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Reqwest => "reqwest",
            Kind::HttpClient => "svc-httpclient",
            Kind::Facade => "svc-client",
            Kind::ReqwestRetry => "reqwest-retry",
        }
    }

    fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Reqwest => "`reqwest::Client` 0.13, defaults (the baseline; no retries)",
            Kind::HttpClient => "`svc_httpclient::Client`, `Config::default()`",
            Kind::Facade => {
                "`svc_client::Client::from_registry`, `ClientConfig::default()` (shared pool)"
            }
            Kind::ReqwestRetry => {
                "`reqwest-middleware` 0.5 + `reqwest-retry` 0.9, `ExponentialBackoff` with 3 retries"
            }
        }
    }
}

/// A built client of one kind.
#[derive(Clone)]
enum AnyClient {
    Reqwest(reqwest::Client),
    HttpClient(svc_httpclient::Client),
    Facade(svc_client::Client),
    ReqwestRetry(ClientWithMiddleware),
}

/// How the clients are configured for a suite.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// Library defaults.
    Defaults,
    /// For the outage: reqwest-retry's backoff shortened to the facade's
    /// (100 ms base, 5 s cap) so that a run takes seconds, not minutes.
    Outage,
}

fn build(kind: Kind, base: &str, profile: Profile) -> Result<AnyClient, String> {
    Ok(match kind {
        Kind::Reqwest => AnyClient::Reqwest(reqwest::Client::new()),
        Kind::HttpClient => AnyClient::HttpClient(
            svc_httpclient::Client::new(svc_httpclient::Config::default())
                .map_err(|e| format!("svc-httpclient: {e}"))?,
        ),
        Kind::Facade => {
            let registry = Registry::from_vars([("BENCH_SVC_URL", base)]);
            AnyClient::Facade(
                svc_client::Client::from_registry(&registry, "bench-svc", ClientConfig::default())
                    .map_err(|e| format!("svc-client: {e}"))?,
            )
        }
        Kind::ReqwestRetry => {
            let builder = ExponentialBackoff::builder();
            let builder = match profile {
                Profile::Defaults => builder,
                Profile::Outage => {
                    builder.retry_bounds(Duration::from_millis(100), Duration::from_secs(5))
                }
            };
            let policy = builder.build_with_max_retries(3);
            AnyClient::ReqwestRetry(
                reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                    .with(RetryTransientMiddleware::new_with_policy(policy))
                    .build(),
            )
        }
    })
}

/// How a call ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ended {
    Status(u16),
    CircuitOpen,
    Error,
}

impl AnyClient {
    /// GET `base` + `path`, reading the whole body.
    async fn get(&self, base: &str, path: &str) -> Ended {
        let url = format!("{base}{path}");
        let resp = match self {
            AnyClient::Reqwest(c) => c.get(&url).send().await.map_err(|_| Ended::Error),
            AnyClient::HttpClient(c) => c.get(&url).send().await.map_err(|e| {
                if e.is_circuit_open() {
                    Ended::CircuitOpen
                } else {
                    Ended::Error
                }
            }),
            AnyClient::Facade(c) => c.get(path).send().await.map_err(|e| {
                if e.is_circuit_open() {
                    Ended::CircuitOpen
                } else {
                    Ended::Error
                }
            }),
            AnyClient::ReqwestRetry(c) => c.get(&url).send().await.map_err(|_| Ended::Error),
        };
        match resp {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(_) => Ended::Status(status),
                    Err(_) => Ended::Error,
                }
            }
            Err(ended) => ended,
        }
    }
}

#[derive(Debug)]
struct Args {
    quick: bool,
    json: Option<PathBuf>,
    tsv: Option<PathBuf>,
    markdown: Option<PathBuf>,
    probe: Option<(Kind, String)>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        quick: false,
        json: None,
        tsv: None,
        markdown: None,
        probe: None,
    };
    let path = |name: &str, value: Option<String>| {
        value
            .map(PathBuf::from)
            .ok_or_else(|| format!("`{name}` needs a path\n{USAGE}"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => parsed.quick = true,
            "--json" => parsed.json = Some(path("--json", args.next())?),
            "--tsv" => parsed.tsv = Some(path("--tsv", args.next())?),
            "--markdown" => parsed.markdown = Some(path("--markdown", args.next())?),
            // Internal: the memory probe, run in a child process.
            "--memory-probe" => {
                let kind = args.next().and_then(|k| Kind::from_name(&k));
                let base = args.next();
                match (kind, base) {
                    (Some(kind), Some(base)) => parsed.probe = Some((kind, base)),
                    _ => {
                        return Err(
                            "`--memory-probe` needs a client kind and a base URL".to_owned()
                        );
                    }
                }
            }
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown option `{other}`\n{USAGE}")),
        }
    }
    Ok(parsed)
}

/// Sizes of the suites.
struct Sizes {
    /// Sequential requests per client (in rounds of 100).
    latency: usize,
    /// Throughput: rounds per client, and the length of each.
    throughput_rounds: usize,
    throughput_round: Duration,
    /// Outage: concurrent callers and logical calls per client.
    outage_callers: usize,
    outage_calls: usize,
    /// Memory: clients created, idle connections opened.
    clients: usize,
    connections: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                latency: 1_000,
                throughput_rounds: 2,
                throughput_round: Duration::from_millis(500),
                outage_callers: 16,
                outage_calls: 160,
                clients: 1_000,
                connections: 100,
            }
        } else {
            Sizes {
                latency: 5_000,
                throughput_rounds: 3,
                throughput_round: Duration::from_secs(2),
                outage_callers: 32,
                outage_calls: 640,
                clients: 1_000,
                connections: 200,
            }
        }
    }
}

const INFLIGHT: usize = 64;

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("compare: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("compare: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match &args.probe {
        Some((kind, base)) => runtime.block_on(memory_probe(*kind, base, args.quick)),
        None => runtime.block_on(compare(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("compare: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The healthy server: `GET /ok` answers a small JSON body; `GET /hold`
/// waits until `connections` requests are in flight, so that each gets its
/// own connection.
async fn healthy_server(connections: usize) -> Result<net::Server, String> {
    let barrier = Arc::new(tokio::sync::Barrier::new(connections));
    let router = Router::new()
        .route("/ok", get(|| async { r#"{"status":"ok"}"# }))
        .route(
            "/hold",
            get(move || {
                let barrier = Arc::clone(&barrier);
                async move {
                    barrier.wait().await;
                    "held"
                }
            }),
        );
    net::spawn(router)
        .await
        .map_err(|e| format!("cannot bind the loopback server: {e}"))
}

async fn compare(args: &Args) -> Result<(), String> {
    let sizes = Sizes::new(args.quick);
    let healthy = healthy_server(sizes.connections).await?;
    let base = healthy.url();
    let mut flat = Flat::new();
    let mut md = String::new();
    flat.num("meta.latency_requests", sizes.latency as f64);
    flat.num("meta.inflight", INFLIGHT as f64);

    // ----- latency and throughput
    let mut clients = Vec::new();
    for kind in Kind::ALL {
        let client = build(kind, &base, Profile::Defaults)?;
        // Warm the pool (connections, TLS config, lazy statics).
        for _ in 0..200 {
            expect_ok(kind, client.get(&base, "/ok").await)?;
        }
        clients.push((kind, client));
    }
    println!(
        "latency: {} sequential GETs per client, interleaved in rounds of 100",
        sizes.latency
    );
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); clients.len()];
    for round in 0..sizes.latency.div_ceil(100) {
        for offset in 0..clients.len() {
            // Rotate the order every round so no client always goes first.
            let i = (round + offset) % clients.len();
            let (kind, client) = &clients[i];
            for _ in 0..100 {
                let started = Instant::now();
                expect_ok(*kind, client.get(&base, "/ok").await)?;
                samples[i].push(started.elapsed());
            }
        }
    }
    let summaries: Vec<Summary> = samples
        .into_iter()
        .map(|s| Summary::from_samples(s).ok_or("no latency samples"))
        .collect::<Result<_, _>>()?;
    println!(
        "throughput: {INFLIGHT} requests in flight, {} rounds of {:?} per client",
        sizes.throughput_rounds, sizes.throughput_round
    );
    let mut rates = vec![0.0f64; clients.len()];
    for round in 0..sizes.throughput_rounds {
        for offset in 0..clients.len() {
            let i = (round + offset) % clients.len();
            let (kind, client) = &clients[i];
            rates[i] += throughput(*kind, client, &base, sizes.throughput_round).await?
                / sizes.throughput_rounds as f64;
        }
    }
    let base_latency = summaries[0];
    let base_rate = rates[0];
    let mut latency_rows = Vec::new();
    let _ = writeln!(md, "### Healthy loopback GET\n");
    let _ = writeln!(
        md,
        "`GET /ok` (16-byte JSON body, read in full) on an axum server in the same process, \
         2 runtime worker threads. Latency: {} sequential requests per client after 200 warm-up \
         requests, interleaved in rounds of 100 with the order rotated. Throughput: {INFLIGHT} \
         requests in flight for {} rounds of {:?} per client, interleaved likewise. \
         The facade runs without a tracing subscriber here (its criterion suite measures it under \
         `tracing-opentelemetry`).\n",
        sizes.latency, sizes.throughput_rounds, sizes.throughput_round
    );
    let _ = writeln!(
        md,
        "| client | p50 | p99 | mean | p50 / reqwest | p99 / reqwest | requests/s ({INFLIGHT} in flight) | throughput / reqwest |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for (i, (kind, _)) in clients.iter().enumerate() {
        let s = summaries[i];
        let name = kind.name();
        let p50 = nanos(s.p50) / nanos(base_latency.p50);
        let p99 = nanos(s.p99) / nanos(base_latency.p99);
        let tput = rates[i] / base_rate;
        flat.num(format!("latency.{name}.p50_ns"), nanos(s.p50));
        flat.num(format!("latency.{name}.p99_ns"), nanos(s.p99));
        flat.num(format!("latency.{name}.mean_ns"), nanos(s.mean));
        flat.num(format!("throughput.{name}.rps"), rates[i]);
        if i > 0 {
            flat.num(format!("ratio.p50.{name}"), p50);
            flat.num(format!("ratio.p99.{name}"), p99);
            flat.num(format!("ratio.throughput.{name}"), tput);
        }
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {p50:.3}× | {p99:.3}× | {:.0} | {tput:.3}× |",
            human_ns(nanos(s.p50)),
            human_ns(nanos(s.p99)),
            human_ns(nanos(s.mean)),
            rates[i]
        );
        latency_rows.push(vec![
            name.to_owned(),
            human_ns(nanos(s.p50)),
            human_ns(nanos(s.p99)),
            format!("{p50:.3}x"),
            format!("{:.0}", rates[i]),
            format!("{tput:.3}x"),
        ]);
    }
    let _ = writeln!(md);
    println!(
        "{}",
        table(
            &[
                "client",
                "p50",
                "p99",
                "p50/reqwest",
                "req/s",
                "tput/reqwest"
            ],
            &latency_rows
        )
    );
    drop(clients);

    // ----- outage
    let outage = outage_suite(&sizes, &mut flat, &mut md).await?;
    println!("{outage}");

    // ----- memory
    let memory = memory_suite(&sizes, &base, &healthy, &mut flat, &mut md).await?;
    println!("{memory}");

    let _ = writeln!(md, "### What each client was\n");
    for kind in Kind::ALL {
        let _ = writeln!(md, "- **{}**: {}", kind.name(), kind.describe());
    }
    healthy.shutdown().await;

    if let Some(path) = &args.tsv {
        write(path, &flat.render())?;
    }
    if let Some(path) = &args.markdown {
        write(path, &md)?;
    }
    if let Some(path) = &args.json {
        let mut object = serde_json::Map::new();
        for (key, value) in flat.entries() {
            let value = match value.parse::<f64>() {
                Ok(n) if n.is_finite() => json!(n),
                _ => json!(value),
            };
            object.insert(key.clone(), value);
        }
        let text = serde_json::to_string_pretty(&object).map_err(|e| e.to_string())?;
        write(path, &text)?;
    }
    Ok(())
}

fn write(path: &PathBuf, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn expect_ok(kind: Kind, ended: Ended) -> Result<(), String> {
    match ended {
        Ended::Status(200) => Ok(()),
        Ended::Status(s) => Err(format!("{}: GET /ok answered {s}", kind.name())),
        Ended::CircuitOpen => Err(format!("{}: circuit open on a healthy server", kind.name())),
        Ended::Error => Err(format!(
            "{}: GET /ok failed on a healthy server",
            kind.name()
        )),
    }
}

/// Requests per second with `INFLIGHT` callers looping for `length`.
async fn throughput(
    kind: Kind,
    client: &AnyClient,
    base: &str,
    length: Duration,
) -> Result<f64, String> {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + length;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..INFLIGHT {
        let client = client.clone();
        let base = base.to_owned();
        let done = Arc::clone(&done);
        tasks.spawn(async move {
            while Instant::now() < deadline {
                expect_ok(kind, client.get(&base, "/ok").await)?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), String>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| format!("{}: throughput task failed: {e}", kind.name()))??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

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

async fn outage_suite(sizes: &Sizes, flat: &mut Flat, md: &mut String) -> Result<String, String> {
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
         requests). \"Fails fast after\" is the start time, from the beginning of the outage, after \
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
    for kind in Kind::ALL {
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

/// Runs the memory probe of each kind in a fresh child process.
async fn memory_suite(
    sizes: &Sizes,
    base: &str,
    healthy: &net::Server,
    flat: &mut Flat,
    md: &mut String,
) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let _ = writeln!(md, "### Memory\n");
    let _ = writeln!(
        md,
        "Resident set size deltas (`VmRSS` of `/proc/self/status`) in a fresh child process per \
         client: after one warm-up request, create {} more clients and keep them; then open {} \
         connections at once through one client (the server holds each request until all have \
         arrived) and let them go idle in its pool. The workspace forbids `unsafe` code, so a \
         counting global allocator is not available: these are page-granular, approximate \
         figures that include allocator slack. The facade's clients share one connection pool \
         by default, so a facade client costs only its own state.\n",
        sizes.clients, sizes.connections
    );
    let _ = writeln!(
        md,
        "| client | bytes per client | bytes per idle connection |"
    );
    let _ = writeln!(md, "|---|---|---|");
    let mut rows = Vec::new();
    for kind in Kind::ALL {
        let before = healthy.stats().accepted();
        let mut command = tokio::process::Command::new(&exe);
        command.args(["--memory-probe", kind.name(), base]);
        if sizes.connections < 200 {
            command.arg("--quick");
        }
        let output = command
            .output()
            .await
            .map_err(|e| format!("cannot run the memory probe: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "memory probe for {} failed: {}",
                kind.name(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let values = Flat::parse(&String::from_utf8_lossy(&output.stdout));
        let per_client: f64 = values
            .get("client_bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        let per_conn: f64 = values
            .get("idle_conn_bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        let opened = healthy.stats().accepted() - before;
        if opened < sizes.connections as u64 {
            return Err(format!(
                "memory probe for {}: the server saw {opened} connections, expected at least {}",
                kind.name(),
                sizes.connections
            ));
        }
        let name = kind.name();
        flat.num(format!("memory.{name}.client_bytes"), per_client);
        flat.num(format!("memory.{name}.idle_conn_bytes"), per_conn);
        let _ = writeln!(
            md,
            "| {name} | {} | {} |",
            human_bytes(per_client),
            human_bytes(per_conn)
        );
        rows.push(vec![
            name.to_owned(),
            human_bytes(per_client),
            human_bytes(per_conn),
        ]);
    }
    let _ = writeln!(md);
    Ok(table(
        &["client", "per client", "per idle connection"],
        &rows,
    ))
}

/// The child side of the memory suite: prints `client_bytes` and
/// `idle_conn_bytes` as `key<TAB>value` lines.
async fn memory_probe(kind: Kind, base: &str, quick: bool) -> Result<(), String> {
    let sizes = Sizes::new(quick);
    let rss = || mem::rss_bytes().ok_or("no /proc/self/status on this system");
    let first = build(kind, base, Profile::Defaults)?;
    expect_ok(kind, first.get(base, "/ok").await)?;
    let before = rss()?;
    let mut clients = Vec::with_capacity(sizes.clients);
    for _ in 0..sizes.clients {
        clients.push(build(kind, base, Profile::Defaults)?);
    }
    let after = rss()?;
    let per_client = after.saturating_sub(before) as f64 / sizes.clients as f64;

    let before = rss()?;
    let mut holds = tokio::task::JoinSet::new();
    for _ in 0..sizes.connections {
        let client = first.clone();
        let base = base.to_owned();
        holds.spawn(async move { client.get(&base, "/hold").await });
    }
    let all = async {
        while let Some(joined) = holds.join_next().await {
            if joined.map_err(|e| e.to_string())? != Ended::Status(200) {
                return Err("a held request failed".to_owned());
            }
        }
        Ok::<(), String>(())
    };
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .map_err(|_| "the held requests did not complete in 30 s".to_owned())??;
    // Let the connections go idle in the pool.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = rss()?;
    let per_conn = after.saturating_sub(before) as f64 / sizes.connections as f64;
    let mut flat = Flat::new();
    flat.num("client_bytes", per_client);
    flat.num("idle_conn_bytes", per_conn);
    print!("{}", flat.render());
    drop(clients);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn options() {
        let a = args(&[
            "--quick",
            "--json",
            "a.json",
            "--tsv",
            "a.tsv",
            "--markdown",
            "a.md",
        ])
        .unwrap();
        assert!(a.quick);
        assert_eq!(a.json, Some(PathBuf::from("a.json")));
        assert_eq!(a.tsv, Some(PathBuf::from("a.tsv")));
        assert_eq!(a.markdown, Some(PathBuf::from("a.md")));
        assert!(args(&["--json"]).unwrap_err().contains("--json"));
        assert!(args(&["--memory-probe", "curl", "http://127.0.0.1:1"]).is_err());
        let probe = args(&["--memory-probe", "svc-client", "http://127.0.0.1:1"]).unwrap();
        assert_eq!(
            probe.probe,
            Some((Kind::Facade, "http://127.0.0.1:1".to_owned()))
        );
        assert!(args(&["--fast"]).unwrap_err().contains("`--fast`"));
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
        }
    }
}
