//! With the OpenTelemetry SDK's W3C propagator installed globally (as most
//! services do), no empty `tracestate` header is sent (own test binary: it
//! sets global state).

#[path = "all/support.rs"]
mod support;

use std::future::IntoFuture;

use opentelemetry::global;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use support::{client_for, fast_config, recording_server};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test]
async fn an_empty_tracestate_is_never_sent() {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = recording_server(200, "ok").await;
    let (addr, seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "", fast_config());
    client
        .get("/x")
        .into_future()
        .instrument(tracing::info_span!("caller"))
        .await
        .unwrap();
    assert!(seen.header_values("traceparent")[0].is_some());
    assert_eq!(seen.header_values("tracestate"), [None]);
}
