//! The traced suite: every call inside a caller span, under
//! `tracing-opentelemetry` (SDK tracer provider, always-on sampler, no
//! exporter) with an `info` filter, as services run. Four clients, each on
//! a current-thread runtime in a thread of its own (see `worker`), making
//! sequential calls in rounds paired across clients in rotated order:
//!
//! - the floor: raw reqwest inside one hand-made client span, the SDK's
//!   `TraceContextPropagator` injecting `traceparent` (the least a traced
//!   call can cost);
//! - the peer: reqwest-middleware + reqwest-retry + reqwest-tracing. Its
//!   OpenTelemetry features stop at opentelemetry 0.32 and the workspace is
//!   on 0.33, so reqwest-tracing makes its span (turned into an OpenTelemetry
//!   span by our layer) and a one-function middleware after it injects
//!   `traceparent` from that span with the same propagator: what its
//!   `opentelemetry_0_xx` feature does, on our version;
//! - svc-httpclient and the facade, with their defaults (the facade with a
//!   pool of its own, so that its connections run on its thread).
//!
//! The global propagator is left as it is (a no-op): the facade writes
//! `traceparent` itself and would let a global one write it again.

use super::Sizes;
use super::worker::{Caller, Job, Worker, median, rotated_rounds};
use crate::report::{Flat, human_ns, table};
use crate::stats::{Summary, nanos};
use http::Extensions;
use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest_middleware::{ClientWithMiddleware, Next};
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_tracing::TracingMiddleware;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use svc_client::{ClientConfig, Registry};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// The traced clients, in report order (the floor first, the peer second).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Traced {
    Floor,
    Peer,
    HttpClient,
    Facade,
}

impl Traced {
    const ALL: [Traced; 4] = [
        Traced::Floor,
        Traced::Peer,
        Traced::HttpClient,
        Traced::Facade,
    ];

    fn name(self) -> &'static str {
        match self {
            Traced::Floor => "reqwest-one-span",
            Traced::Peer => "reqwest-tracing",
            Traced::HttpClient => "svc-httpclient",
            Traced::Facade => "svc-client",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Traced::Floor => {
                "raw `reqwest::Client` inside one hand-made `info` client span (`otel.kind = client`, \
                 method, URL, status recorded), `TraceContextPropagator` injecting `traceparent` (the floor)"
            }
            Traced::Peer => {
                "`reqwest-middleware` 0.5 + `reqwest-retry` 0.9 (`ExponentialBackoff`, 3 retries) + \
                 `reqwest-tracing` 0.7 `TracingMiddleware` (one span per attempt), `traceparent` injected \
                 from its span by a middleware after it (reqwest-tracing's own injection needs \
                 opentelemetry ≤ 0.32; the workspace is on 0.33)"
            }
            Traced::HttpClient => "`svc_httpclient::Client`, `Config::default()`",
            Traced::Facade => {
                "`svc_client::Client::from_registry`, `ClientConfig::default()` but \
                 `shared_pool(false)` (its connections driven on its own thread, where its CPU is read)"
            }
        }
    }
}

static PROPAGATOR: std::sync::LazyLock<TraceContextPropagator> =
    std::sync::LazyLock::new(TraceContextPropagator::new);

struct Headers<'a>(&'a mut HeaderMap);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The peer's injection: `traceparent` of the current (reqwest-tracing's) span.
fn inject<'a>(
    mut req: reqwest::Request,
    extensions: &'a mut Extensions,
    next: Next<'a>,
) -> Pin<Box<dyn Future<Output = reqwest_middleware::Result<reqwest::Response>> + Send + 'a>> {
    let cx = tracing::Span::current().context();
    PROPAGATOR.inject_context(&cx, &mut Headers(req.headers_mut()));
    Box::pin(next.run(req, extensions))
}

#[derive(Clone)]
enum Stack {
    Floor(reqwest::Client),
    Peer(ClientWithMiddleware),
    HttpClient(svc_httpclient::Client),
    Facade(svc_client::Client),
}

#[derive(Clone)]
struct TracedCaller {
    kind: Traced,
    client: Stack,
    url: Arc<str>,
}

fn build(kind: Traced, base: &str) -> Result<TracedCaller, String> {
    let client = match kind {
        Traced::Floor => Stack::Floor(reqwest::Client::new()),
        Traced::Peer => Stack::Peer(
            reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                .with(RetryTransientMiddleware::new_with_policy(
                    ExponentialBackoff::builder().build_with_max_retries(3),
                ))
                .with(TracingMiddleware::default())
                .with(inject)
                .build(),
        ),
        Traced::HttpClient => Stack::HttpClient(
            svc_httpclient::Client::new(svc_httpclient::Config::default())
                .map_err(|e| format!("svc-httpclient: {e}"))?,
        ),
        Traced::Facade => {
            let registry = Registry::from_vars([("BENCH_SVC_URL", base)]);
            Stack::Facade(
                svc_client::Client::from_registry(
                    &registry,
                    "bench-svc",
                    ClientConfig::default().shared_pool(false),
                )
                .map_err(|e| format!("svc-client: {e}"))?,
            )
        }
    };
    Ok(TracedCaller {
        kind,
        client,
        url: Arc::from(format!("{base}/ok")),
    })
}

impl TracedCaller {
    async fn get(&self) -> Result<(u16, bytes::Bytes), String> {
        let err = |e: &dyn std::fmt::Display| format!("{}: GET /ok failed: {e}", self.kind.name());
        let resp = match &self.client {
            Stack::Floor(c) => {
                let span = tracing::info_span!(
                    "GET",
                    otel.kind = "client",
                    http.request.method = "GET",
                    url.full = &*self.url,
                    http.response.status_code = tracing::field::Empty,
                );
                let call = async {
                    let mut req = c.get(&*self.url).build().map_err(|e| err(&e))?;
                    let cx = tracing::Span::current().context();
                    PROPAGATOR.inject_context(&cx, &mut Headers(req.headers_mut()));
                    let resp = c.execute(req).await.map_err(|e| err(&e))?;
                    tracing::Span::current()
                        .record("http.response.status_code", resp.status().as_u16());
                    Ok::<_, String>(resp)
                };
                call.instrument(span).await?
            }
            Stack::Peer(c) => c.get(&*self.url).send().await.map_err(|e| err(&e))?,
            Stack::HttpClient(c) => c.get(&*self.url).send().await.map_err(|e| err(&e))?,
            Stack::Facade(c) => c.get("/ok").send().await.map_err(|e| err(&e))?,
        };
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| err(&e))?;
        Ok((status, body))
    }
}

impl Caller for TracedCaller {
    fn call(&self) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let this = self.clone();
        async move {
            let (status, _) = this.get().await?;
            if status == 200 {
                Ok(())
            } else {
                Err(format!("{}: GET /ok answered {status}", this.kind.name()))
            }
        }
        .instrument(tracing::info_span!("caller"))
    }
}

/// Installs the process's tracing subscriber (for good: run this suite last).
fn install() -> Result<SdkTracerProvider, String> {
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("svc-bench")))
        .with(tracing_subscriber::filter::LevelFilter::INFO);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| format!("cannot install the tracing subscriber: {e}"))?;
    Ok(provider)
}

/// Runs the suite (installing the global subscriber: it must be the last
/// suite); writes its figures and returns the text table.
pub(super) async fn suite(
    sizes: &Sizes,
    base: &str,
    flat: &mut Flat,
    md: &mut String,
) -> Result<String, String> {
    println!(
        "traced: {} sequential GETs per client under tracing-opentelemetry, each client on its own thread, rounds of 100",
        sizes.traced
    );
    let _provider = install()?;
    let mut workers = Vec::new();
    for kind in Traced::ALL {
        let base = base.to_owned();
        let worker = Worker::spawn(kind.name(), move || build(kind, &base))?;
        worker
            .run(Job::Sequential(200))
            .await
            .map_err(|e| format!("{}: {e}", kind.name()))?;
        // The caller and the traceparent are there.
        workers.push((kind, worker));
    }
    let rounds = rotated_rounds(
        &workers,
        sizes.traced.div_ceil(100),
        |k| k.name(),
        || Job::Sequential(100),
    )
    .await?;
    drop(workers);

    let paired = |i: usize, against: usize| {
        median(
            rounds[i]
                .iter()
                .zip(&rounds[against])
                .map(|(c, b)| c.cpu_per_call_ns() / b.cpu_per_call_ns())
                .collect(),
        )
    };
    let cpu_ns = |i: usize| {
        let calls: u64 = rounds[i].iter().map(|o| o.calls).sum();
        let cpu: f64 = rounds[i].iter().map(|o| o.cpu.as_secs_f64()).sum();
        cpu * 1e9 / calls.max(1) as f64
    };
    let mut summaries = Vec::new();
    for outcomes in &rounds {
        let samples = outcomes.iter().flat_map(|o| o.latencies.clone()).collect();
        summaries.push(Summary::from_samples(samples).ok_or("no traced samples")?);
    }

    let _ = writeln!(md, "### Traced calls under tracing-opentelemetry\n");
    let _ = writeln!(
        md,
        "Every call inside an `info` caller span; the process's subscriber is \
         `tracing-opentelemetry` over an SDK tracer provider (always-on sampler, no exporter) with \
         an `info` filter. Each client on a current-thread runtime in a thread of its own, {} \
         sequential `GET /ok` per client after 200 warm-up calls, in rounds of 100 with the \
         order rotated. CPU is the client thread's (`CLOCK_THREAD_CPUTIME_ID`), and its ratios \
         are the medians of the per-round ratios (rounds paired). The floor is raw reqwest in one \
         hand-made client span with `traceparent` injected; the peer is reqwest-middleware + \
         reqwest-retry + reqwest-tracing.\n",
        sizes.traced
    );
    let _ = writeln!(
        md,
        "| client | CPU per call | CPU / floor | CPU / peer | p50 | p50 / floor | p50 / peer | p99 |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for (i, kind) in Traced::ALL.into_iter().enumerate() {
        let name = kind.name();
        let s = summaries[i];
        let (cpu_floor, cpu_peer) = (paired(i, 0), paired(i, 1));
        let p50_floor = nanos(s.p50) / nanos(summaries[0].p50);
        let p50_peer = nanos(s.p50) / nanos(summaries[1].p50);
        flat.num(format!("traced.{name}.cpu_ns_per_call"), cpu_ns(i));
        flat.num(format!("traced.{name}.p50_ns"), nanos(s.p50));
        flat.num(format!("traced.{name}.p99_ns"), nanos(s.p99));
        if i > 0 {
            flat.num(format!("ratio.traced_cpu.{name}"), cpu_floor);
            flat.num(format!("ratio.traced_p50.{name}"), p50_floor);
        }
        if i > 1 {
            flat.num(format!("ratio.traced_cpu_vs_peer.{name}"), cpu_peer);
            flat.num(format!("ratio.traced_p50_vs_peer.{name}"), p50_peer);
        }
        let _ = writeln!(
            md,
            "| {name} | {:.1} µs | {cpu_floor:.3}× | {cpu_peer:.3}× | {} | {p50_floor:.3}× | {p50_peer:.3}× | {} |",
            cpu_ns(i) / 1e3,
            human_ns(nanos(s.p50)),
            human_ns(nanos(s.p99)),
        );
        rows.push(vec![
            name.to_owned(),
            format!("{:.1} µs", cpu_ns(i) / 1e3),
            format!("{cpu_floor:.3}x"),
            format!("{cpu_peer:.3}x"),
            human_ns(nanos(s.p50)),
            format!("{p50_floor:.3}x"),
            format!("{p50_peer:.3}x"),
        ]);
    }
    let _ = writeln!(md);
    let _ = writeln!(md, "Traced clients:\n");
    for kind in Traced::ALL {
        let _ = writeln!(md, "- **{}**: {}", kind.name(), kind.describe());
    }
    let _ = writeln!(md);
    Ok(table(
        &[
            "traced client",
            "cpu/call",
            "cpu/floor",
            "cpu/peer",
            "p50",
            "p50/floor",
            "p50/peer",
        ],
        &rows,
    ))
}
