//! A deterministic profile driver for the loopback benchmarks: `N` GETs per
//! variant against a loopback server, for counting instructions with
//! callgrind (the shared machine is too noisy for wall-clock decisions).
//!
//! ```text
//! # terminal 1: the server (not profiled)
//! cargo run --release -p svc-client --example loopback_profile -- serve
//! # terminal 2: one variant, counted from the first measured call on
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured*' \
//!     target/release/examples/loopback_profile <variant> <addr> 2000
//! ```
//!
//! `concurrent <variant> <addr> <n>` runs the `n` calls with 64 in flight
//! (tasks on the current-thread runtime, as `compare`'s CPU suite), for the
//! breakdown of one concurrent call.
//!
//! Variants: `raw`, `raw_timeout`, `httpclient`, `facade`, and with a
//! tracing-opentelemetry subscriber installed (SDK tracer, always-on
//! sampler, no exporter, an `info` filter): `raw_otel`,
//! `raw_two_spans_otel` (a plain send inside two OpenTelemetry spans with
//! W3C injection), `facade_otel`. Instructions per request =
//! total / `N`; a warm-up call outside the counted function opens the
//! connection first.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use svc_client::{Client, ClientConfig, Registry, reqwest};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

fn serve() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("server runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        println!("{}", listener.local_addr().expect("local addr"));
        let app = axum::Router::new().route(
            "/users/{id}",
            axum::routing::get(|| async { r#"{"id":"123","name":"Alice"}"# }),
        );
        axum::serve(listener, app).await.expect("serve");
    });
}

fn install_otel() -> SdkTracerProvider {
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("profile")))
        .with(tracing_subscriber::filter::LevelFilter::INFO);
    tracing::subscriber::set_global_default(subscriber).expect("subscriber");
    provider
}

enum Variant {
    Raw(reqwest::Client, Option<Duration>),
    RawTwoSpans(reqwest::Client),
    Http(svc_httpclient::Client),
    Facade(Client),
}

impl Variant {
    async fn call(&self, url: &str) -> bytes::Bytes {
        match self {
            Variant::Raw(raw, timeout) => {
                let mut req = raw.get(url);
                if let Some(t) = timeout {
                    req = req.timeout(*t);
                }
                let resp = req.send().await.expect("raw get");
                resp.bytes().await.expect("raw body")
            }
            Variant::RawTwoSpans(raw) => {
                let outer = tracing::info_span!("svc.call", svc.service = "auth-svc");
                async {
                    let inner = tracing::info_span!("HTTP GET", otel.kind = "client");
                    let mut headers = svc_client::header::HeaderMap::new();
                    svc_client::inject_span(&inner, &mut headers);
                    let resp = raw
                        .get(url)
                        .headers(headers)
                        .send()
                        .instrument(inner)
                        .await
                        .expect("raw get");
                    resp.bytes().await.expect("raw body")
                }
                .instrument(outer)
                .await
            }
            Variant::Http(http) => {
                let resp = http.get(url).await.expect("svc get");
                resp.bytes().await.expect("svc body")
            }
            Variant::Facade(facade) => {
                let resp = facade.get("/users/123").await.expect("facade get");
                resp.bytes().await.expect("facade body")
            }
        }
    }
}

#[inline(never)]
fn measured(rt: &tokio::runtime::Runtime, variant: &Variant, url: &str, n: u32) {
    rt.block_on(async {
        for _ in 0..n {
            black_box(variant.call(url).await);
        }
    });
}

/// `n` calls with `INFLIGHT` in flight, counted (see `run_concurrent`).
#[inline(never)]
fn measured_concurrent(rt: &tokio::runtime::Runtime, variant: &Arc<Variant>, url: &str, n: u32) {
    run_concurrent(rt, variant, url, n);
}

/// `n` calls with `INFLIGHT` in flight, as `compare`'s CPU suite runs
/// them: tasks spawned on the current-thread runtime, each calling in a
/// loop.
fn run_concurrent(rt: &tokio::runtime::Runtime, variant: &Arc<Variant>, url: &str, n: u32) {
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..INFLIGHT {
            let (variant, url) = (Arc::clone(variant), url.to_owned());
            tasks.spawn(async move {
                for _ in 0..n / INFLIGHT {
                    black_box(variant.call(&url).await);
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.expect("task");
        }
    });
}

/// Requests in flight in `concurrent` mode (`compare` uses the same).
const INFLIGHT: u32 = 64;

/// Wall-clock pairs on a noisy machine: `n` rounds of one call of each
/// variant (order alternating), then the median of each and the median of
/// the per-round differences.
fn pairs(rt: &tokio::runtime::Runtime, a: &Variant, b: &Variant, url: &str, n: u32) {
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut diffs = Vec::new();
    rt.block_on(async {
        for i in 0..n {
            let mut round = [0.0; 2];
            for k in 0..2 {
                let which = (k + i as usize) % 2;
                let v = if which == 0 { a } else { b };
                let start = Instant::now();
                black_box(v.call(url).await);
                round[which] = start.elapsed().as_secs_f64() * 1e6;
            }
            times[0].push(round[0]);
            times[1].push(round[1]);
            diffs.push(round[1] - round[0]);
        }
    });
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ma, mb, md) = (
        median(&mut times[0]),
        median(&mut times[1]),
        median(&mut diffs),
    );
    println!(
        "median a {ma:.1} us, b {mb:.1} us, median(b - a) {md:.2} us = {:.1}% of a",
        md / ma * 100.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        serve();
        return;
    }
    if args.first().map(String::as_str) == Some("pair") {
        let [_, a, b, addr, n] = args.as_slice() else {
            eprintln!("usage: loopback_profile pair <variant a> <variant b> <addr> <n>");
            std::process::exit(2);
        };
        let addr: SocketAddr = addr.parse().expect("addr");
        let n: u32 = n.parse().expect("n");
        let url = format!("http://{addr}/users/123");
        let _provider = (a.ends_with("_otel") || b.ends_with("_otel")).then(install_otel);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        let (a, b) = (variant(a, addr), variant(b, addr));
        rt.block_on(async {
            for _ in 0..50 {
                black_box(a.call(&url).await);
                black_box(b.call(&url).await);
            }
        });
        pairs(&rt, &a, &b, &url, n);
        return;
    }
    let (concurrent, args) = match args.first().map(String::as_str) {
        Some("concurrent") => (true, &args[1..]),
        _ => (false, &args[..]),
    };
    let [variant_name, addr, n] = args else {
        eprintln!("usage: loopback_profile serve | pair ... | [concurrent] <variant> <addr> <n>");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr.parse().expect("addr");
    let n: u32 = n.parse().expect("n");
    let url = format!("http://{addr}/users/123");
    let otel = variant_name.ends_with("_otel");
    let _provider = otel.then(install_otel);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let v = Arc::new(variant(variant_name, addr));
    if concurrent {
        // Warm up with the same concurrency, so the pool holds its
        // connections before counting starts.
        run_concurrent(&rt, &v, &url, INFLIGHT * 4);
    } else {
        rt.block_on(async {
            for _ in 0..5 {
                black_box(v.call(&url).await);
            }
        });
    }
    let start = Instant::now();
    if concurrent {
        measured_concurrent(&rt, &v, &url, n);
    } else {
        measured(&rt, &v, &url, n);
    }
    let elapsed = start.elapsed();
    println!(
        "{variant_name}: {n} calls, {:.1} us/call (wall clock, not for decisions)",
        elapsed.as_secs_f64() * 1e6 / f64::from(n)
    );
}

/// The variant named `name` (an `_otel` suffix only installs the
/// subscriber, see `main`).
fn variant(name: &str, addr: SocketAddr) -> Variant {
    let raw = || {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest")
    };
    match name.trim_end_matches("_otel") {
        "raw" => Variant::Raw(raw(), None),
        "raw_timeout" => Variant::Raw(raw(), Some(Duration::from_secs(10))),
        "raw_two_spans" => Variant::RawTwoSpans(raw()),
        "httpclient" => {
            Variant::Http(svc_httpclient::Client::new(Default::default()).expect("client"))
        }
        "facade" => {
            let registry = Registry::from_vars([("AUTH_SVC_URL", format!("http://{addr}"))]);
            Variant::Facade(
                Client::from_registry(&registry, "auth-svc", ClientConfig::default())
                    .expect("facade"),
            )
        }
        other => {
            eprintln!("unknown variant {other}");
            std::process::exit(2);
        }
    }
}
