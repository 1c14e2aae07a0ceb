//! A global propagator the application configured is used in addition to
//! the built-in W3C injection (own test binary: it sets global state).

#[path = "all/support.rs"]
mod support;

use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, global};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::future::IntoFuture;
use support::{client_for, fast_config, recording_server};
use svc_client::header::HeaderMap;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// A vendor format: `x-vendor-trace: {trace id}`.
#[derive(Debug)]
struct Vendor;

static FIELDS: std::sync::LazyLock<[String; 2]> =
    std::sync::LazyLock::new(|| ["x-vendor-trace".into(), "x-vendor-baggage".into()]);

impl TextMapPropagator for Vendor {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        if span.span_context().is_valid() {
            injector.set("x-vendor-trace", span.span_context().trace_id().to_string());
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extractor.get("x-vendor-baggage") {
            Some(v) => cx.with_value(VendorBaggage(v.to_owned())),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&*FIELDS)
    }
}

#[derive(Debug, PartialEq)]
struct VendorBaggage(String);

#[tokio::test]
async fn the_global_propagator_adds_its_fields_to_w3c() {
    global::set_text_map_propagator(Vendor);
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

    let traceparent = seen.header_values("traceparent")[0].clone().unwrap();
    let vendor = seen.header_values("x-vendor-trace")[0].clone().unwrap();
    assert_eq!(traceparent.split('-').nth(1), Some(vendor.as_str()));

    // Extraction: W3C first, then the global propagator.
    let mut headers = HeaderMap::new();
    headers.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    headers.insert("x-vendor-baggage", "tenant=7".parse().unwrap());
    let cx = svc_client::extract_context(&headers);
    assert_eq!(
        cx.span().span_context().trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(
        cx.get::<VendorBaggage>(),
        Some(&VendorBaggage("tenant=7".into()))
    );
}
