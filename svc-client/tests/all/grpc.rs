//! `grpc::Channel` against a real tonic server on 127.0.0.1: tonic-health's
//! generated client and server, with a `Health` of our own that answers
//! the status named in the request's `service` field and records the
//! metadata it received.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::otel;
use opentelemetry::trace::TraceContextExt;
use svc_client::grpc::Channel;
use svc_client::{Backoff, CircuitBreakerConfig, ClientConfig, Error, Registry, State};
use svc_test_support::{GrpcServer, closed_port};
use tonic::codegen::tokio_stream;
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const CHECK: &str = "/grpc.health.v1.Health/Check";

// ===== the server =====

/// Answers `Check` with the status its request names: `ok`, `unavailable`,
/// `not_found`, `invalid_argument`, `internal`, `flaky` (`UNAVAILABLE` the
/// first time, then `OK`) or `slow` (waits longer than any test's
/// deadline).
#[derive(Clone, Default)]
struct Scripted {
    hits: Arc<AtomicUsize>,
    by_name: Arc<Mutex<HashMap<String, usize>>>,
    metadata: Arc<Mutex<Vec<tonic::metadata::MetadataMap>>>,
}

impl Scripted {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn last_header(&self, name: &str) -> Option<String> {
        let seen = self.metadata.lock().unwrap();
        let last = seen.last()?;
        Some(last.get(name)?.to_str().ok()?.to_owned())
    }
}

#[tonic::async_trait]
impl Health for Scripted {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.hits.fetch_add(1, Ordering::SeqCst);
        self.metadata
            .lock()
            .unwrap()
            .push(request.metadata().clone());
        let name = request.into_inner().service;
        let n = {
            let mut by_name = self.by_name.lock().unwrap();
            let n = by_name.entry(name.clone()).or_default();
            *n += 1;
            *n
        };
        let code = match name.as_str() {
            "unavailable" => Code::Unavailable,
            "not_found" => Code::NotFound,
            "invalid_argument" => Code::InvalidArgument,
            "internal" => Code::Internal,
            "flaky" if n == 1 => Code::Unavailable,
            "slow" => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Code::Ok
            }
            _ => Code::Ok,
        };
        if code == Code::Ok {
            Ok(Response::new(HealthCheckResponse { status: 1 }))
        } else {
            Err(Status::new(code, "scripted"))
        }
    }

    type WatchStream = tokio_stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("not scripted"))
    }
}

/// A tonic server on 127.0.0.1:0 running `health`.
async fn start(health: Scripted) -> GrpcServer {
    GrpcServer::start(|incoming, stop| {
        tonic::transport::Server::builder()
            .add_service(HealthServer::new(health))
            .serve_with_incoming_shutdown(incoming, stop)
    })
    .await
}

// ===== the client =====

/// Retries wait 1 ms.
fn fast() -> ClientConfig {
    ClientConfig::default().http(|c| c.backoff(Backoff::default().base(Duration::from_millis(1))))
}

fn channel_to(addr: SocketAddr, config: ClientConfig) -> Channel {
    let registry = Registry::from_vars([("AUTH_SVC_URL", format!("http://{addr}"))]);
    Channel::from_registry(&registry, "auth-svc", config).unwrap()
}

async fn check(channel: &Channel, name: &str) -> Result<i32, Status> {
    let mut client = HealthClient::new(channel.clone());
    let request = HealthCheckRequest {
        service: name.to_owned(),
    };
    client
        .check(request)
        .await
        .map(|resp| resp.into_inner().status)
}

// ===== breaker =====

#[tokio::test]
async fn the_breaker_opens_after_five_unavailable_and_then_fails_fast() {
    let server = Scripted::default();
    let grpc = start(server.clone()).await;
    let addr = grpc.addr();
    let channel = channel_to(addr, fast());

    for n in 1..=5 {
        assert_eq!(
            channel.circuit_state(),
            Some(State::Closed),
            "before call {n}"
        );
        let status = check(&channel, "unavailable").await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            Error::from_status(&status).is_none(),
            "the service's own status carries no facade error"
        );
    }
    assert_eq!(channel.circuit_state(), Some(State::Open));
    assert_eq!(
        server.hits(),
        5,
        "UNAVAILABLE of a method not marked idempotent is not retried"
    );

    let status = check(&channel, "ok").await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("auth-svc"),
        "{}",
        status.message()
    );
    assert!(status.metadata().get("grpc-retry-pushback-ms").is_some());
    let err = Error::from_status(&status).expect("the facade's error");
    assert!(err.is_circuit_open());
    assert_eq!(err.attempts(), 0);
    assert!(err.retry_after().is_some_and(|d| d > Duration::ZERO));
    assert_eq!(server.hits(), 5, "an open circuit sends nothing");
}

#[tokio::test]
async fn caller_errors_leave_the_breaker_closed() {
    let server = Scripted::default();
    let grpc = start(server.clone()).await;
    let addr = grpc.addr();
    let channel = channel_to(addr, fast());
    for _ in 0..6 {
        let status = check(&channel, "not_found").await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        let status = check(&channel, "invalid_argument").await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    assert_eq!(channel.circuit_state(), Some(State::Closed));
    assert_eq!(server.hits(), 12);
    let metrics = channel.breaker().unwrap().metrics();
    assert_eq!(metrics.failures(), 0);
}

#[tokio::test]
async fn internal_counts_as_a_failure() {
    let grpc = start(Scripted::default()).await;
    let addr = grpc.addr();
    let config = fast().circuit_breaker(Some(CircuitBreakerConfig::default().failure_threshold(2)));
    let channel = channel_to(addr, config);
    for _ in 0..2 {
        assert_eq!(
            check(&channel, "internal").await.unwrap_err().code(),
            Code::Internal
        );
    }
    assert_eq!(channel.circuit_state(), Some(State::Open));
}

#[tokio::test]
async fn the_breaker_recovers_through_half_open() {
    let server = Scripted::default();
    let grpc = start(server.clone()).await;
    let addr = grpc.addr();
    let clock = svc_breaker::ManualClock::new();
    let config = fast().circuit_breaker(Some(
        CircuitBreakerConfig::default()
            .reset_timeout(Duration::from_secs(30))
            .clock(clock.clone()),
    ));
    let channel = channel_to(addr, config);
    for _ in 0..5 {
        check(&channel, "unavailable").await.unwrap_err();
    }
    assert_eq!(channel.circuit_state(), Some(State::Open));

    clock.advance(Duration::from_secs(30));
    assert_eq!(channel.circuit_state(), Some(State::HalfOpen));
    assert_eq!(check(&channel, "ok").await.unwrap(), 1);
    assert_eq!(channel.circuit_state(), Some(State::Closed));
    assert_eq!(server.hits(), 6);

    // A failed trial re-opens it.
    for _ in 0..5 {
        check(&channel, "unavailable").await.unwrap_err();
    }
    clock.advance(Duration::from_secs(30));
    check(&channel, "unavailable").await.unwrap_err();
    assert_eq!(channel.circuit_state(), Some(State::Open));
}

// ===== deadline and trace =====

#[tokio::test]
async fn the_server_sees_the_callers_trace_and_a_bounded_grpc_timeout() {
    let (exporter, _provider, _guard) = otel();
    let server = Scripted::default();
    let grpc = start(server.clone()).await;
    let addr = grpc.addr();
    let channel = channel_to(addr, fast().timeout(Duration::from_secs(2)));

    let caller = tracing::info_span!("handler");
    let caller_trace = caller.context().span().span_context().trace_id();
    check(&channel, "ok")
        .instrument(caller.clone())
        .await
        .unwrap();

    let traceparent = server.last_header("traceparent").expect("traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[1], caller_trace.to_string());
    let timeout = server.last_header("grpc-timeout").expect("grpc-timeout");
    let timeout = parse_grpc_timeout(&timeout);
    assert!(timeout <= Duration::from_secs(2), "{timeout:?}");
    assert!(timeout > Duration::from_secs(1), "{timeout:?}");

    // The attempt is a client span of the caller's trace, rpc.* attributes.
    drop(caller);
    let spans = exporter.get_finished_spans().unwrap();
    let attempt = spans
        .iter()
        .find(|s| s.name == "grpc.health.v1.Health/Check")
        .unwrap_or_else(|| {
            panic!(
                "no attempt span in {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(attempt.span_kind, opentelemetry::trace::SpanKind::Client);
    assert_eq!(attempt.span_context.trace_id(), caller_trace);
    assert_eq!(parts[2], attempt.span_context.span_id().to_string());
    let attr = |key: &str| {
        attempt
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attr("rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attr("rpc.service").as_deref(),
        Some("grpc.health.v1.Health")
    );
    assert_eq!(attr("rpc.method").as_deref(), Some("Check"));
    assert_eq!(attr("rpc.grpc.status_code").as_deref(), Some("0"));
    assert_eq!(attr("peer.service").as_deref(), Some("auth-svc"));
    assert_eq!(attr("server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(attr("server.port"), Some(addr.port().to_string()));
}

#[tokio::test]
async fn a_shorter_timeout_of_the_request_is_sent_and_garbage_is_ignored() {
    let server = Scripted::default();
    let grpc = start(server.clone()).await;
    let addr = grpc.addr();
    let channel = channel_to(addr, fast().timeout(Duration::from_secs(5)));
    let mut client = HealthClient::new(channel.clone());

    let mut request = Request::new(HealthCheckRequest::default());
    request.set_timeout(Duration::from_millis(300));
    client.check(request).await.unwrap();
    let sent = parse_grpc_timeout(&server.last_header("grpc-timeout").unwrap());
    assert!(sent <= Duration::from_millis(300), "{sent:?}");

    let mut request = Request::new(HealthCheckRequest::default());
    request
        .metadata_mut()
        .insert("grpc-timeout", "soon".parse().unwrap());
    client.check(request).await.unwrap();
    let sent = parse_grpc_timeout(&server.last_header("grpc-timeout").unwrap());
    assert!(
        sent <= Duration::from_secs(5) && sent > Duration::from_secs(4),
        "{sent:?}"
    );
}

#[tokio::test]
async fn a_call_past_its_deadline_is_deadline_exceeded_and_a_failure() {
    let server = Scripted::default();
    let grpc = start(server.clone()).await;
    let addr = grpc.addr();
    let channel = channel_to(addr, fast().timeout(Duration::from_millis(200)));
    let status = check(&channel, "slow").await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    let err = Error::from_status(&status).expect("the facade's error");
    assert!(err.is_timeout());
    assert_eq!(channel.breaker().unwrap().metrics().failures(), 1);
    assert_eq!(
        server.hits(),
        1,
        "a method not marked idempotent is not retried"
    );
}

/// The test's own reading of `grpc-timeout` (digits and a unit).
fn parse_grpc_timeout(value: &str) -> Duration {
    let (digits, unit) = value.split_at(value.len() - 1);
    assert!(digits.len() <= 8, "{value}");
    let n: u64 = digits.parse().unwrap();
    match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        other => panic!("unit {other}"),
    }
}

// ===== retries =====

#[tokio::test]
async fn a_closed_port_is_retried_max_retries_times_then_fails() {
    let channel = channel_to(closed_port(), fast().max_retries(2));
    let status = check(&channel, "ok").await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let err = Error::from_status(&status).expect("the facade's error");
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(err.attempts(), 3);
    assert_eq!(channel.breaker().unwrap().metrics().failures(), 3);
}

#[tokio::test]
async fn an_idempotent_method_is_retried_after_unavailable() {
    let server = Scripted::default();
    let grpc = start(server.clone()).await;
    let addr = grpc.addr();
    let channel = channel_to(addr, fast()).idempotent([CHECK]);
    assert_eq!(check(&channel, "flaky").await.unwrap(), 1);
    assert_eq!(server.hits(), 2, "the request was replayed once");

    // The same method, not marked: the first UNAVAILABLE is the answer.
    let server = Scripted::default();
    let grpc = start(server.clone()).await;
    let addr = grpc.addr();
    let channel = channel_to(addr, fast());
    assert_eq!(
        check(&channel, "flaky").await.unwrap_err().code(),
        Code::Unavailable
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_caller_error_is_not_retried_even_when_idempotent() {
    let server = Scripted::default();
    let grpc = start(server.clone()).await;
    let addr = grpc.addr();
    let channel = channel_to(addr, fast()).idempotent([CHECK]);
    check(&channel, "not_found").await.unwrap_err();
    check(&channel, "internal").await.unwrap_err();
    assert_eq!(server.hits(), 2);
}

// ===== setup =====

#[tokio::test]
async fn a_url_with_a_path_or_no_variable_is_an_error() {
    let registry = Registry::from_vars([("AUTH_SVC_URL", "http://127.0.0.1:1/api")]);
    let err = Channel::from_registry(&registry, "auth-svc", ClientConfig::default()).unwrap_err();
    assert!(err.is_config(), "{err:?}");
    let err = Channel::from_registry(&registry, "chat-svc", ClientConfig::default()).unwrap_err();
    assert!(err.is_not_configured());
    assert!(err.to_string().contains("CHAT_SVC_URL"), "{err}");
}

// ===== cancellation, span status, metrics =====

#[tokio::test]
async fn a_cancelled_call_leaves_the_breaker_alone() {
    let server = Scripted::default();
    let grpc = start(server.clone()).await;
    let addr = grpc.addr();
    let config = fast().circuit_breaker(Some(CircuitBreakerConfig::default().failure_threshold(1)));
    let channel = channel_to(addr, config);
    let call = check(&channel, "slow");
    assert!(
        tokio::time::timeout(Duration::from_millis(100), call)
            .await
            .is_err(),
        "the caller gave up first"
    );
    assert_eq!(server.hits(), 1);
    let metrics = channel.breaker().unwrap().metrics();
    assert_eq!(metrics.failures(), 0);
    assert_eq!(channel.circuit_state(), Some(State::Closed));
}

#[tokio::test]
async fn every_status_but_ok_marks_the_client_span_as_error() {
    let (exporter, _provider, _guard) = otel();
    let grpc = start(Scripted::default()).await;
    let addr = grpc.addr();
    let channel = channel_to(addr, fast());
    check(&channel, "not_found").await.unwrap_err();
    check(&channel, "ok").await.unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let attempts: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "grpc.health.v1.Health/Check")
        .collect();
    assert_eq!(
        attempts.len(),
        2,
        "{:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let code = |s: &opentelemetry_sdk::trace::SpanData| {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == "rpc.grpc.status_code")
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(code(attempts[0]).as_deref(), Some("5"));
    assert!(matches!(
        attempts[0].status,
        opentelemetry::trace::Status::Error { .. }
    ));
    assert_eq!(code(attempts[1]).as_deref(), Some("0"));
    assert!(!matches!(
        attempts[1].status,
        opentelemetry::trace::Status::Error { .. }
    ));
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn attempts_and_calls_are_measured() {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let grpc = start(Scripted::default()).await;
    let addr = grpc.addr();
    let channel = channel_to(addr, fast().meter(provider.meter("test"))).idempotent([CHECK]);
    check(&channel, "flaky").await.unwrap(); // UNAVAILABLE, then OK
    check(&channel, "not_found").await.unwrap_err();
    provider.force_flush().unwrap();

    let metrics = exporter.get_finished_metrics().unwrap();
    let last = metrics.last().expect("an export");
    let mut durations: Vec<(Vec<String>, u64)> = Vec::new();
    let mut calls: Vec<(Vec<String>, u64)> = Vec::new();
    for scope in last.scope_metrics() {
        for metric in scope.metrics() {
            let attrs = |a: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
                let mut v: Vec<String> = a.map(|kv| format!("{}={}", kv.key, kv.value)).collect();
                v.sort();
                v
            };
            match (metric.name(), metric.data()) {
                ("rpc.client.duration", AggregatedMetrics::F64(MetricData::Histogram(h))) => {
                    for p in h.data_points() {
                        durations.push((attrs(&mut p.attributes()), p.count()));
                    }
                }
                ("svc.client.calls", AggregatedMetrics::U64(MetricData::Sum(s))) => {
                    for p in s.data_points() {
                        calls.push((attrs(&mut p.attributes()), p.value()));
                    }
                }
                _ => {}
            }
        }
    }
    let count = |points: &[(Vec<String>, u64)], want: &[&str]| -> u64 {
        points
            .iter()
            .filter(|(attrs, _)| want.iter().all(|w| attrs.iter().any(|a| a == w)))
            .map(|(_, n)| n)
            .sum()
    };
    let base = [
        "rpc.system=grpc",
        "rpc.method=Check",
        "peer.service=auth-svc",
    ];
    assert_eq!(count(&durations, &base), 3, "{durations:?}");
    for (code, n) in [("14", 1), ("0", 1), ("5", 1)] {
        let code = format!("rpc.grpc.status_code={code}");
        let mut want = base.to_vec();
        want.push(&code);
        assert_eq!(count(&durations, &want), n, "{code}: {durations:?}");
    }
    assert_eq!(
        count(&calls, &["svc.outcome=ok", "peer.service=auth-svc"]),
        2,
        "{calls:?}"
    );
    assert_eq!(count(&calls, &["svc.outcome=error"]), 0, "{calls:?}");
}

// ===== replicas =====

#[tokio::test]
async fn a_list_of_replicas_spreads_the_calls_over_all_of_them() {
    let replicas: Vec<Scripted> = (0..3).map(|_| Scripted::default()).collect();
    let mut servers = Vec::new();
    for replica in &replicas {
        servers.push(start(replica.clone()).await);
    }
    let list = servers
        .iter()
        .map(|s| format!("http://{}", s.addr()))
        .collect::<Vec<_>>()
        .join(",");
    let registry = Registry::from_vars([("AUTH_SVC_URL", list)]);
    let channel = Channel::from_registry(&registry, "auth-svc", fast()).unwrap();
    for _ in 0..90 {
        assert_eq!(check(&channel, "ok").await.unwrap(), 1);
    }
    let hits: Vec<usize> = replicas.iter().map(Scripted::hits).collect();
    assert_eq!(hits.iter().sum::<usize>(), 90, "{hits:?}");
    // Uniform in expectation (30 each); fewer than 5 for any one of them
    // is a chance below one in a billion.
    assert!(hits.iter().all(|&n| n >= 5), "{hits:?}");
    // The breaker and the metrics see one service.
    assert_eq!(channel.circuit_state(), Some(State::Closed));
}

#[tokio::test]
async fn a_list_with_a_path_is_refused_like_a_single_url() {
    let registry = Registry::from_vars([(
        "AUTH_SVC_URL",
        "http://127.0.0.1:50051/api,http://127.0.0.2:50051/api",
    )]);
    let err = Channel::from_registry(&registry, "auth-svc", ClientConfig::default()).unwrap_err();
    assert!(err.is_config(), "{err}");
}

#[tokio::test]
async fn a_replica_that_refuses_connections_is_retried_on_the_others() {
    let replicas: Vec<Scripted> = (0..2).map(|_| Scripted::default()).collect();
    let mut urls = vec![format!("http://{}", closed_port())];
    let mut servers = Vec::new();
    for replica in &replicas {
        let server = start(replica.clone()).await;
        urls.push(format!("http://{}", server.addr()));
        servers.push(server);
    }
    let registry = Registry::from_vars([("AUTH_SVC_URL", urls.join(","))]);
    let channel = Channel::from_registry(&registry, "auth-svc", fast()).unwrap();
    for i in 0..30 {
        let status = check(&channel, "ok").await;
        assert_eq!(status.as_ref().ok(), Some(&1), "call {i}: {status:?}");
    }
    assert_eq!(replicas.iter().map(Scripted::hits).sum::<usize>(), 30);
}
