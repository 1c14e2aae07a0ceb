//! The replicas suite: three loopback replicas of one service, one of them
//! 20 ms slower, called by `svc-httpclient` balancing over them (power of
//! two choices over peak-EWMA latency × in-flight, `Client::balance`)
//! against round robin over the same three (what kube-proxy's
//! per-connection spreading amounts to for a caller with a connection to
//! each pod). Both are the same client with the same settings: only the
//! choice of the replica differs.

use super::{INFLIGHT, Sizes};
use crate::report::{Flat, human_ns, table};
use crate::stats::{Summary, nanos};
use axum::Router;
use axum::routing::get;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use svc_demo::net;
use svc_httpclient::{Client, Config, reqwest::Url};

/// How much slower the slow replica is.
pub(super) const SLOW_BY: Duration = Duration::from_millis(20);

/// A replica answering `GET /ok` after `delay`, counting its requests.
async fn replica(delay: Duration, hits: Arc<AtomicU64>) -> Result<net::Server, String> {
    let router = Router::new().route(
        "/ok",
        get(move || {
            let hits = Arc::clone(&hits);
            async move {
                hits.fetch_add(1, Ordering::Relaxed);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                r#"{"status":"ok"}"#
            }
        }),
    );
    net::spawn(router)
        .await
        .map_err(|e| format!("cannot bind a replica: {e}"))
}

/// How the replica of each request is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    P2cEwma,
    RoundRobin,
}

impl Choice {
    fn name(self) -> &'static str {
        match self {
            Choice::P2cEwma => "P2C + peak EWMA (svc)",
            Choice::RoundRobin => "round robin",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Choice::P2cEwma => "p2c",
            Choice::RoundRobin => "round_robin",
        }
    }
}

struct Run {
    summary: Summary,
    /// Share of the requests the slow replica served.
    slow_share: f64,
    wall: Duration,
}

async fn run(choice: Choice, requests: usize) -> Result<Run, String> {
    let hits: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut servers = Vec::new();
    for (i, hits) in hits.iter().enumerate() {
        let delay = if i == 2 { SLOW_BY } else { Duration::ZERO };
        servers.push(replica(delay, Arc::clone(hits)).await?);
    }
    let urls: Vec<Url> = servers
        .iter()
        .map(|s| Url::parse(&format!("{}/ok", s.url())))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let config = Config::default().retry_budget(None).max_retries(0);
    let client = Client::new(config).map_err(|e| e.to_string())?;
    if choice == Choice::P2cEwma {
        client.balance(&urls[0], &urls).map_err(|e| e.to_string())?;
    }
    let urls = Arc::new(urls);
    let next = Arc::new(AtomicUsize::new(0));
    let call = move |client: Client, urls: Arc<Vec<Url>>, n: usize| async move {
        let url = match choice {
            Choice::P2cEwma => &urls[0],
            Choice::RoundRobin => &urls[n % urls.len()],
        };
        let start = Instant::now();
        let resp = client.get(url.clone()).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        let _ = resp.bytes().await;
        Ok::<Duration, String>(start.elapsed())
    };
    // Warm each replica's connections.
    for n in 0..30 {
        call(client.clone(), Arc::clone(&urls), n).await?;
    }
    for h in &hits {
        h.store(0, Ordering::Relaxed);
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..INFLIGHT / 4 {
        let (client, urls, next) = (client.clone(), Arc::clone(&urls), Arc::clone(&next));
        tasks.spawn(async move {
            let mut samples = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests {
                    return Ok::<_, String>(samples);
                }
                samples.push(call(client.clone(), Arc::clone(&urls), n).await?);
            }
        });
    }
    let mut samples = Vec::with_capacity(requests);
    while let Some(joined) = tasks.join_next().await {
        samples.extend(joined.map_err(|e| e.to_string())??);
    }
    let wall = started.elapsed();
    let served: Vec<u64> = hits.iter().map(|h| h.load(Ordering::Relaxed)).collect();
    let total: u64 = served.iter().sum();
    for server in servers {
        server.shutdown().await;
    }
    Ok(Run {
        summary: Summary::from_samples(samples).ok_or("no samples")?,
        slow_share: served[2] as f64 / total.max(1) as f64,
        wall,
    })
}

/// P2C + EWMA against round robin, one of three replicas 20 ms slower;
/// writes the figures and returns the text table.
pub(super) async fn suite(
    sizes: &Sizes,
    flat: &mut Flat,
    md: &mut String,
) -> Result<String, String> {
    let requests = sizes.replicas;
    let callers = INFLIGHT / 4;
    println!(
        "replicas: {requests} GETs, {callers} in flight, over 3 replicas of which one is {} ms slower",
        SLOW_BY.as_millis()
    );
    let mut rows = Vec::new();
    for choice in [Choice::P2cEwma, Choice::RoundRobin] {
        let run = run(choice, requests).await?;
        let s = run.summary;
        let key = format!("replicas.{}", choice.key());
        flat.num(format!("{key}.p50_ns"), nanos(s.p50));
        flat.num(format!("{key}.p99_ns"), nanos(s.p99));
        flat.num(format!("{key}.mean_ns"), nanos(s.mean));
        flat.num(format!("{key}.slow_share"), run.slow_share);
        flat.num(
            format!("{key}.per_sec"),
            requests as f64 / run.wall.as_secs_f64(),
        );
        rows.push(vec![
            choice.name().to_owned(),
            human_ns(nanos(s.p50)),
            human_ns(nanos(s.p99)),
            human_ns(nanos(s.mean)),
            format!("{:.1}%", run.slow_share * 100.0),
            format!("{:.0}", requests as f64 / run.wall.as_secs_f64()),
        ]);
    }
    let header = [
        "replica choice",
        "p50",
        "p99",
        "mean",
        "served by the slow replica",
        "req/s",
    ];
    let text = table(&header, &rows);
    let _ = writeln!(
        md,
        "### Replicas: one of three {} ms slower\n\n\
         {requests} GETs, {callers} in flight, through `svc-httpclient` with the same settings \
         (no retries); only the choice of the replica differs. Round robin is what \
         kube-proxy's per-connection spreading gives a caller with a connection to each \
         pod; P2C + peak EWMA is `Client::balance` (what `svc-client` does for a \
         `{{NAME}}_URL` list or a headless Service).\n",
        SLOW_BY.as_millis()
    );
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
    for row in &rows {
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    let _ = writeln!(md);
    Ok(text)
}
