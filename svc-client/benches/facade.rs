//! The facade against raw reqwest, per request, on a loopback axum server,
//! with a tracing-opentelemetry subscriber installed (SDK tracer, always-on
//! sampler, no exporter): the price of discovery, path checks, the
//! `svc.call` and attempt spans, W3C injection, the breaker and metrics.
//!
//! `cargo bench -p svc-client --bench facade` (target: the facade costs at
//! most 10% more per request than raw reqwest). The two are measured in
//! pairs (median of alternating calls); for optimisation decisions count
//! instructions instead: `examples/loopback_profile.rs` under callgrind.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use svc_client::{Client, ClientConfig, Registry};
use tracing_subscriber::layer::SubscriberExt;

/// Runs the server on its own thread and runtime, like a sibling process.
fn start_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = Router::new().route(
                "/users/{id}",
                get(|| async { r#"{"id":"123","name":"Alice"}"# }),
            );
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

fn install_tracing() -> SdkTracerProvider {
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .build();
    // As services run it: an `info` filter (hyper-util's trace-level pool
    // events would otherwise become span events of every attempt span).
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")))
        .with(tracing_subscriber::filter::LevelFilter::INFO);
    tracing::subscriber::set_global_default(subscriber).unwrap();
    provider
}

fn bench(c: &mut Criterion) {
    let _provider = install_tracing();
    let addr = start_server();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let raw = svc_client::reqwest::Client::new();
    let url = format!("http://{addr}/users/123");
    let registry = Registry::from_vars([("AUTH_SVC_URL", format!("http://{addr}"))]);
    let facade = Client::from_registry(&registry, "auth-svc", ClientConfig::default()).unwrap();

    // Warm both pools so neither pays for connecting inside the loop.
    rt.block_on(async {
        raw.get(&url).send().await.unwrap();
        facade.get("/users/123").await.unwrap();
    });
    let raw_get = || async {
        let resp = raw.get(&url).send().await.unwrap();
        assert!(resp.status().is_success());
        resp.bytes().await.unwrap()
    };
    let facade_get = || async {
        let resp = facade.get("/users/123").await.unwrap();
        assert!(resp.status().is_success());
        resp.bytes().await.unwrap()
    };

    // Paired, as in svc-httpclient's bench: every iteration makes one raw
    // call and one facade call (in alternating order), each function times
    // only its own call and reports the median, so both see the same load
    // on a shared, noisy machine.
    let mut group = c.benchmark_group("traced_loopback_get");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("reqwest", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut calls = Vec::with_capacity(iters as usize);
            for i in 0..iters {
                if i % 2 == 0 {
                    black_box(facade_get().await);
                }
                let start = Instant::now();
                black_box(raw_get().await);
                calls.push(start.elapsed());
                if i % 2 == 1 {
                    black_box(facade_get().await);
                }
            }
            median_total(calls)
        })
    });
    group.bench_function("svc_client", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut calls = Vec::with_capacity(iters as usize);
            for i in 0..iters {
                if i % 2 == 0 {
                    black_box(raw_get().await);
                }
                let start = Instant::now();
                black_box(facade_get().await);
                calls.push(start.elapsed());
                if i % 2 == 1 {
                    black_box(raw_get().await);
                }
            }
            median_total(calls)
        })
    });
    group.finish();

    // Where the difference goes (ids avoid the words `cargo xtask bench`
    // pairs on): svc-httpclient alone (one attempt span), and a plain send
    // inside two OpenTelemetry spans with W3C injection.
    let mut group = c.benchmark_group("breakdown");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let http = svc_httpclient::Client::with_http_client(
        svc_httpclient::Config::default(),
        svc_client::reqwest::Client::new(),
    )
    .unwrap();
    group.bench_function("inner_pipeline", |b| {
        b.to_async(&rt).iter(|| async {
            let resp = http.get(&url).send().await.unwrap();
            assert!(resp.status().is_success());
            resp.bytes().await.unwrap()
        })
    });
    group.bench_function("plain_send_in_two_otel_spans", |b| {
        use tracing::Instrument;
        b.to_async(&rt).iter(|| async {
            let outer = tracing::info_span!("svc.call", svc.service = "auth-svc");
            async {
                let inner = tracing::info_span!("HTTP GET", otel.kind = "client");
                let mut headers = svc_client::header::HeaderMap::new();
                svc_client::inject_span(&inner, &mut headers);
                let resp = raw
                    .get(&url)
                    .headers(headers)
                    .send()
                    .instrument(inner)
                    .await
                    .unwrap();
                assert!(resp.status().is_success());
                resp.bytes().await.unwrap()
            }
            .instrument(outer)
            .await
        })
    });
    group.finish();

    // The facade's own steps, without I/O, to see where its cost goes.
    let mut group = c.benchmark_group("steps");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("join_path", |b| {
        b.iter(|| facade.url("/users/123").unwrap())
    });
    group.bench_function("span_with_fields", |b| {
        b.iter(|| {
            let span = tracing::info_span!(
                "svc.call",
                otel.kind = "internal",
                peer.service = "auth-svc",
                http.request.method = "GET",
                url.path = "/users/123",
            );
            let _entered = span.enter();
        })
    });
    group.bench_function("empty_span", |b| {
        b.iter(|| {
            let span = tracing::info_span!("svc.call");
            let _entered = span.enter();
        })
    });
    group.bench_function("span_and_inject", |b| {
        b.iter(|| {
            let span = tracing::info_span!("HTTP GET");
            let mut headers = svc_client::header::HeaderMap::new();
            svc_client::inject_span(&span, &mut headers);
            headers
        })
    });
    group.finish();
}

/// `iters` × the median call time of the batch: a few calls delayed by a
/// descheduled thread would otherwise dominate the mean on a shared machine.
fn median_total(mut calls: Vec<Duration>) -> Duration {
    if calls.is_empty() {
        return Duration::ZERO;
    }
    calls.sort_unstable();
    let median = calls[calls.len() / 2];
    median * u32::try_from(calls.len()).unwrap_or(u32::MAX)
}

criterion_group!(benches, bench);
criterion_main!(benches);
