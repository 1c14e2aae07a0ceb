//! The healthy suite: sequential latency and throughput with requests in
//! flight, every client against one loopback server.

use super::clients::{AnyClient, Kind, Profile, build, expect_ok};
use super::{INFLIGHT, Sizes};
use crate::report::{Flat, human_ns, table};
use crate::stats::{Summary, nanos};
use axum::Router;
use axum::routing::get;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use svc_demo::net;

/// The healthy server: `GET /ok` answers a small JSON body; `GET /hold`
/// waits until `connections` requests are in flight, so that each gets its
/// own connection.
pub(super) async fn server(connections: usize) -> Result<net::Server, String> {
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

/// Latency and throughput of every client against the healthy server at
/// `base`; writes their figures and returns the text table.
pub(super) async fn suite(
    sizes: &Sizes,
    base: &str,
    flat: &mut Flat,
    md: &mut String,
) -> Result<String, String> {
    let mut clients = Vec::new();
    for kind in Kind::ALL {
        let client = build(kind, base, Profile::Defaults)?;
        // Warm the pool (connections, TLS config, lazy statics).
        for _ in 0..200 {
            expect_ok(kind, client.get(base, "/ok").await)?;
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
                expect_ok(*kind, client.get(base, "/ok").await)?;
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
            rates[i] += throughput(*kind, client, base, sizes.throughput_round).await?
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
    Ok(table(
        &[
            "client",
            "p50",
            "p99",
            "p50/reqwest",
            "req/s",
            "tput/reqwest",
        ],
        &latency_rows,
    ))
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
