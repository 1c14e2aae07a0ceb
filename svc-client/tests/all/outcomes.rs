//! Log, metric and span status agree for every way a call ends (the table
//! in the crate docs, "Outcomes"), and the fringe of the trace headers.
#![cfg(feature = "metrics")]

use crate::support::{Events, client_for, fast_config, recording_server};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SpanData};
use svc_client::{CircuitBreakerConfig, ClientConfig, Method};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;

/// Everything one call leaves behind.
struct Observed {
    events: Events,
    spans: InMemorySpanExporter,
    span_provider: SdkTracerProvider,
    metrics: InMemoryMetricExporter,
    meter_provider: SdkMeterProvider,
    _guard: DefaultGuard,
}

impl Observed {
    fn new() -> Observed {
        let spans = InMemorySpanExporter::default();
        let span_provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOn)
            .with_simple_exporter(spans.clone())
            .build();
        let metrics = InMemoryMetricExporter::default();
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(metrics.clone()).build())
            .build();
        let events = Events::default();
        let subscriber = tracing_subscriber::registry()
            .with(events.clone())
            .with(tracing_opentelemetry::layer().with_tracer(span_provider.tracer("test")));
        let guard = tracing::subscriber::set_default(subscriber);
        Observed {
            events,
            spans,
            span_provider,
            metrics,
            meter_provider,
            _guard: guard,
        }
    }

    fn config(&self) -> ClientConfig {
        fast_config()
            .meter(self.meter_provider.meter("test"))
            .call_span(true)
    }

    /// `svc.outcome` of every `svc.client.calls` point, with its count.
    fn call_outcomes(&self) -> Vec<(String, String, u64)> {
        self.meter_provider.force_flush().unwrap();
        let all = self.metrics.get_finished_metrics().unwrap();
        let last = all.last().expect("an export");
        let mut out = Vec::new();
        for scope in last.scope_metrics() {
            for metric in scope.metrics().filter(|m| m.name() == "svc.client.calls") {
                let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() else {
                    panic!("calls is a u64 sum");
                };
                for point in sum.data_points() {
                    let attr = |key: &str| {
                        point
                            .attributes()
                            .find(|kv| kv.key.as_str() == key)
                            .map(|kv| kv.value.to_string())
                            .unwrap_or_default()
                    };
                    out.push((
                        attr("http.request.method"),
                        attr("svc.outcome"),
                        point.value(),
                    ));
                }
            }
        }
        out
    }

    fn finished_spans(&self) -> Vec<SpanData> {
        self.span_provider.force_flush().unwrap();
        self.spans.get_finished_spans().unwrap()
    }

    /// The `error.type` and status of the `svc.call` span.
    fn call_span(&self) -> (Option<String>, opentelemetry::trace::Status) {
        let spans = self.finished_spans();
        let call = spans
            .iter()
            .find(|s| s.name == "svc.call")
            .expect("a svc.call span");
        let error_type = call
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == "error.type")
            .map(|kv| kv.value.to_string());
        (error_type, call.status.clone())
    }

    /// The messages of the call's own events at `level` (the breaker's
    /// transitions are logged apart).
    fn call_events(&self, level: tracing::Level) -> Vec<String> {
        self.events
            .at(level)
            .into_iter()
            .filter(|e| e.target == "svc_client" && e.message().starts_with("service call"))
            .map(|e| e.message().to_owned())
            .collect()
    }

    fn warnings(&self) -> Vec<String> {
        self.call_events(tracing::Level::WARN)
    }
}

fn is_error(status: &opentelemetry::trace::Status) -> bool {
    matches!(status, opentelemetry::trace::Status::Error { .. })
}

#[tokio::test]
async fn a_circuit_that_opens_mid_sequence_is_a_failure_not_a_rejection() {
    let observed = Observed::new();
    let server = recording_server(503, "down").await;
    let (addr, seen) = (server.addr(), &server);
    let config = observed
        .config()
        .max_retries(3)
        .circuit_breaker(Some(CircuitBreakerConfig::default().failure_threshold(2)));
    let client = client_for("auth-svc", addr, "", config);

    let err = client.get("/users/1").await.unwrap_err();
    assert_eq!(seen.hits(), 2, "the breaker opened after the second 503");
    assert_eq!(err.attempts(), 2);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));

    assert_eq!(
        observed.warnings(),
        ["service call failed"],
        "{:?}",
        observed.events.all()
    );
    assert!(observed.call_events(tracing::Level::DEBUG).is_empty());
    assert_eq!(
        observed.call_outcomes(),
        [("GET".to_owned(), "error".to_owned(), 1)]
    );
    let (error_type, status) = observed.call_span();
    assert_eq!(error_type.as_deref(), Some("503"));
    assert!(is_error(&status));
}

#[tokio::test]
async fn a_call_rejected_before_sending_is_degraded() {
    let observed = Observed::new();
    let server = recording_server(200, "ok").await;
    let (addr, seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "", observed.config());
    client.breaker().unwrap().force_open();
    let err = client.get("/users/1").await.unwrap_err();
    assert!(err.is_circuit_open());
    assert_eq!(seen.hits(), 0);
    assert!(observed.warnings().is_empty(), "{:?}", observed.warnings());
    assert_eq!(
        observed.call_events(tracing::Level::DEBUG),
        ["service call rejected: circuit open"]
    );
    assert_eq!(
        observed.call_outcomes(),
        [("GET".to_owned(), "degraded".to_owned(), 1)]
    );
    assert_eq!(observed.call_span().0.as_deref(), Some("circuit_open"));
}

#[tokio::test]
async fn a_final_429_is_an_error_in_the_log_the_metric_and_the_span() {
    let observed = Observed::new();
    let server = recording_server(429, "slow down").await;
    let (addr, _seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "", observed.config().max_retries(0));
    let resp = client.get("/users/1").await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(observed.warnings(), ["service call failed"]);
    assert_eq!(
        observed.call_outcomes(),
        [("GET".to_owned(), "error".to_owned(), 1)]
    );
    let (error_type, status) = observed.call_span();
    assert_eq!(error_type.as_deref(), Some("429"));
    assert!(is_error(&status));
}

#[tokio::test]
async fn a_final_404_is_ok_for_every_signal() {
    let observed = Observed::new();
    let server = recording_server(404, "no such user").await;
    let (addr, _seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "", observed.config());
    assert_eq!(client.get("/users/1").await.unwrap().status(), 404);
    assert!(observed.warnings().is_empty());
    assert_eq!(
        observed.call_outcomes(),
        [("GET".to_owned(), "ok".to_owned(), 1)]
    );
    let (_, status) = observed.call_span();
    assert!(!is_error(&status), "a 4xx is the caller's problem");
}

#[tokio::test]
async fn non_standard_methods_are_other_in_metrics() {
    let observed = Observed::new();
    let server = recording_server(200, "ok").await;
    let (addr, _seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "", observed.config());
    let purge = Method::from_bytes(b"PURGE").unwrap();
    client.request(purge, "/cache").await.unwrap();
    assert_eq!(
        observed.call_outcomes(),
        [("_OTHER".to_owned(), "ok".to_owned(), 1)]
    );
}

#[test]
fn several_tracestate_headers_are_combined() {
    let mut headers = svc_client::header::HeaderMap::new();
    headers.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    headers.append("tracestate", "a=1,b=2".parse().unwrap());
    headers.append("tracestate", "c=3".parse().unwrap());
    let cx = svc_client::extract_context(&headers);
    let mut out = svc_client::header::HeaderMap::new();
    svc_client::inject_context(&cx, &mut out);
    assert_eq!(out["tracestate"], "a=1,b=2,c=3");
}
