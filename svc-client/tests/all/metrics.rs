//! OpenTelemetry metrics recorded by the facade.
#![cfg(feature = "metrics")]

use crate::support::{Seen, client_for, fast_config, serve};

use axum::http::StatusCode;
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use svc_client::CircuitBreakerConfig;

pub(crate) fn provider() -> (InMemoryMetricExporter, SdkMeterProvider) {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    (exporter, provider)
}

fn has(attrs: &[&KeyValue], key: &str, value: &str) -> bool {
    attrs
        .iter()
        .any(|kv| kv.key.as_str() == key && kv.value.to_string() == value)
}

/// `(attributes, value)` of every point of `name` in the last export.
pub(crate) fn points(metrics: &[ResourceMetrics], name: &str) -> Vec<(Vec<KeyValue>, f64)> {
    let last = metrics.last().expect("an export");
    let mut out = Vec::new();
    for scope in last.scope_metrics() {
        for metric in scope.metrics().filter(|m| m.name() == name) {
            match metric.data() {
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    for p in h.data_points() {
                        out.push((p.attributes().cloned().collect(), p.count() as f64));
                    }
                }
                AggregatedMetrics::U64(MetricData::Sum(s)) => {
                    for p in s.data_points() {
                        out.push((p.attributes().cloned().collect(), p.value() as f64));
                    }
                }
                AggregatedMetrics::I64(MetricData::Gauge(g)) => {
                    for p in g.data_points() {
                        out.push((p.attributes().cloned().collect(), p.value() as f64));
                    }
                }
                other => panic!("{name}: unexpected data {other:?}"),
            }
        }
    }
    out
}

pub(crate) fn value(points: &[(Vec<KeyValue>, f64)], want: &[(&str, &str)]) -> f64 {
    points
        .iter()
        .filter(|(attrs, _)| {
            let attrs: Vec<&KeyValue> = attrs.iter().collect();
            want.iter().all(|(k, v)| has(&attrs, k, v))
        })
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn attempts_calls_and_breaker_are_measured() {
    let (exporter, provider) = provider();
    let server = serve(|seen: Seen| async move {
        match seen.n + 1 {
            1 => StatusCode::SERVICE_UNAVAILABLE,
            2 => StatusCode::OK,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    })
    .await;
    let _seen = &server;
    let addr = server.addr();
    let config = fast_config()
        .meter(provider.meter("test"))
        .circuit_breaker(Some(CircuitBreakerConfig::default().failure_threshold(2)));
    let client = client_for("auth-svc", addr, "", config);

    // A 503 then a 200: one call, two attempts.
    assert_eq!(client.get("/users/1").await.unwrap().status(), 200);
    // 500s open the circuit (threshold 2), then the call is degraded.
    let _ = client.get("/users/1").max_retries(1).await;
    assert!(client.get("/users/1").await.unwrap_err().is_circuit_open());

    provider.force_flush().unwrap();
    let metrics = exporter.get_finished_metrics().unwrap();

    let durations = points(&metrics, "http.client.request.duration");
    let port = addr.port().to_string();
    let base = [
        ("http.request.method", "GET"),
        ("server.address", "127.0.0.1"),
        ("server.port", port.as_str()),
        ("url.scheme", "http"),
        ("peer.service", "auth-svc"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut all = base.to_vec();
        all.extend_from_slice(extra);
        value(&durations, &all)
    };
    assert_eq!(
        with(&[("http.response.status_code", "503"), ("error.type", "503")]),
        1.0
    );
    assert_eq!(with(&[("http.response.status_code", "200")]), 1.0);
    assert_eq!(with(&[("http.response.status_code", "500")]), 2.0);
    assert_eq!(value(&durations, &[]), 4.0, "one point per attempt");

    let calls = points(&metrics, "svc.client.calls");
    let outcome = |o| value(&calls, &[("peer.service", "auth-svc"), ("svc.outcome", o)]);
    assert_eq!(outcome("ok"), 1.0);
    assert_eq!(outcome("error"), 1.0, "the call ending with a 500");
    assert_eq!(
        outcome("degraded"),
        1.0,
        "the call the open circuit rejected"
    );

    let transitions = points(&metrics, "svc.client.circuit_breaker.transitions");
    assert_eq!(
        value(
            &transitions,
            &[("svc.circuit.from", "closed"), ("svc.circuit.to", "open")]
        ),
        1.0
    );

    let state = points(&metrics, "svc.client.circuit_breaker.state");
    let state_of = |s| {
        value(
            &state,
            &[("peer.service", "auth-svc"), ("svc.circuit.state", s)],
        )
    };
    assert_eq!(state_of("open"), 1.0);
    assert_eq!(state_of("closed"), 0.0);
    assert_eq!(state_of("half-open"), 0.0);
}
