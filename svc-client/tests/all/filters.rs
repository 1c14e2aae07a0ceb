//! The caller's trace reaches the service whatever the subscriber's filter
//! does to the library's own spans: injection uses the nearest span that the
//! OpenTelemetry layer records (the attempt, else `svc.call`, else the
//! caller's span).

use std::future::IntoFuture;

use crate::support::{client_for, fast_config, recording_server};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
use tracing::Instrument;
use tracing::subscriber::DefaultGuard;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;

fn provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_simple_exporter(InMemorySpanExporter::default())
        .build()
}

/// A global filter in front of the OpenTelemetry layer.
fn global_filter(provider: &SdkTracerProvider, filter: &str) -> DefaultGuard {
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new(filter))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_default(subscriber)
}

/// A per-layer filter on the OpenTelemetry layer only, next to a log layer
/// that enables every span (so the library's spans exist, but OpenTelemetry
/// does not record them).
fn per_layer_filter(provider: &SdkTracerProvider, filter: &str) -> DefaultGuard {
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("test"))
                .with_filter(EnvFilter::new(filter)),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_filter(EnvFilter::new("trace")),
        );
    tracing::subscriber::set_default(subscriber)
}

/// Calls the service inside a span of the application (`my_service`) and
/// checks that every attempt carried the caller's trace.
async fn assert_trace_reaches_the_service() {
    let server = recording_server(200, "ok").await;
    let (addr, seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "", fast_config());
    let caller = tracing::info_span!(target: "my_service", "handle_request");
    let caller_trace = caller.context().span().span_context().trace_id();
    assert_ne!(
        caller_trace,
        opentelemetry::trace::TraceId::INVALID,
        "the filter must enable the caller's span"
    );
    client
        .get("/users/1")
        .into_future()
        .instrument(caller)
        .await
        .unwrap();
    let sent = seen.header_values("traceparent");
    assert_eq!(sent.len(), 1);
    let traceparent = sent[0].as_deref().expect("a traceparent was sent");
    assert!(
        traceparent.contains(&caller_trace.to_string()),
        "{traceparent} continues {caller_trace}"
    );
}

#[tokio::test]
async fn rust_log_warn_with_the_application_at_info() {
    let provider = provider();
    let _guard = global_filter(&provider, "warn,my_service=info");
    assert_trace_reaches_the_service().await;
}

#[tokio::test]
async fn library_targets_turned_down_to_warn() {
    let provider = provider();
    let _guard = global_filter(&provider, "info,svc_httpclient=warn,svc_client=warn");
    assert_trace_reaches_the_service().await;
}

#[tokio::test]
async fn only_the_attempt_spans_turned_off() {
    let provider = provider();
    let _guard = global_filter(&provider, "info,svc_httpclient=warn");
    assert_trace_reaches_the_service().await;
}

#[tokio::test]
async fn a_per_layer_filter_on_the_opentelemetry_layer() {
    let provider = provider();
    let _guard = per_layer_filter(&provider, "warn,my_service=info");
    assert_trace_reaches_the_service().await;
}
