//! One log line per failed call, with its service and path, and none for a
//! success (moved from the unit tests of `client.rs`; assertions on the
//! captured fields instead of formatted text).

use crate::support::{Events, client_for, fast_config, recording_server};
use tracing_subscriber::layer::SubscriberExt;

/// Runs `f` with a subscriber capturing events; returns the `warn` events
/// of svc-client.
async fn warnings_of<F: Future<Output = ()>>(f: F) -> Vec<svc_test_support::Event> {
    let events = Events::default();
    let subscriber = tracing_subscriber::registry().with(events.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    f.await;
    events
        .at(tracing::Level::WARN)
        .into_iter()
        .filter(|e| e.target == "svc_client")
        .collect()
}

fn config() -> svc_client::ClientConfig {
    fast_config().max_retries(2).shared_pool(false)
}

/// OpenTelemetry's HTTP conventions type these attributes as integers;
/// an unsigned `tracing` field would reach the exporter as a string.
#[tokio::test]
async fn integer_attributes_are_exported_as_integers() {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry::{Key, Value};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = recording_server(200, "ok").await;
    let (addr, _seen) = (server.addr(), &server);
    let c = client_for("auth-svc", addr, "", config().call_span(true));
    assert!(c.get("/users/1").await.unwrap().status().is_success());

    let spans = exporter.get_finished_spans().unwrap();
    let attr = |name: &str, key: &'static str| {
        let span = spans.iter().find(|s| s.name == name).expect(name);
        span.attributes
            .iter()
            .find(|kv| kv.key == Key::from_static_str(key))
            .map(|kv| kv.value.clone())
    };
    let status = Some(Value::I64(200));
    assert_eq!(attr("GET", "http.response.status_code"), status);
    assert_eq!(attr("svc.call", "http.response.status_code"), status);
    assert_eq!(
        attr("GET", "server.port"),
        Some(Value::I64(i64::from(addr.port())))
    );
}

#[tokio::test]
async fn a_failed_call_is_logged_once_with_its_service_and_path() {
    // Connection refused on every attempt: three attempts, one line.
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let c = client_for("auth-svc", refused, "", config());
    let warnings = warnings_of(async {
        assert!(c.get("/users/1").await.unwrap_err().is_connect());
    })
    .await;
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let warning = &warnings[0];
    assert_eq!(warning.message(), "service call failed");
    assert_eq!(warning.field("service"), Some("auth-svc"));
    assert_eq!(warning.field("path"), Some("/users/1"));
    assert_eq!(warning.field("attempts"), Some("3"));
}

#[tokio::test]
async fn a_final_5xx_is_logged_once() {
    let server = recording_server(503, "down").await;
    let (addr, _seen) = (server.addr(), &server);
    let c = client_for("auth-svc", addr, "", config());
    let warnings = warnings_of(async {
        let resp = c.get("/users/1").await.unwrap();
        assert_eq!(resp.status(), 503);
    })
    .await;
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].message(), "service call failed");
    assert_eq!(warnings[0].field("status"), Some("503"));
}

#[tokio::test]
async fn an_invalid_request_is_logged_once_and_a_success_not_at_all() {
    let server = recording_server(200, "ok").await;
    let (addr, _seen) = (server.addr(), &server);
    let c = client_for("auth-svc", addr, "", config());
    let warnings = warnings_of(async {
        let err = c.get("/users/1").header("x-bad", "a\nb").await.unwrap_err();
        assert!(err.is_request(), "{err}");
        assert!(c.get("/users/1").await.unwrap().status().is_success());
        assert!(c.get("/../admin").await.unwrap_err().is_invalid_path());
    })
    .await;
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings
            .iter()
            .all(|w| w.message() == "service call failed")
    );
}
