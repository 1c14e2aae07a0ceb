//! Tokens in a query never reach a log line or an error message, and the
//! query values OpenTelemetry lists as sensitive are `REDACTED` in
//! `url.full`.

use std::error::Error as _;

use crate::support::{Events, client_for, fast_config, recording_server};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;

const TOKEN: &str = "tok-4f1b9c";
const SIG: &str = "sig-77aa02";

fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Every text a failed call leaves: the error, its sources, its `Debug`.
fn error_texts(err: &svc_client::Error) -> String {
    let mut out = format!("{err} | {err:?}");
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(&format!(" | {e} | {e:?}"));
        source = e.source();
    }
    out
}

#[tokio::test]
async fn query_values_stay_out_of_errors_logs_and_spans() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_simple_exporter(exporter.clone())
        .build();
    let events = Events::default();
    let subscriber = tracing_subscriber::registry()
        .with(events.clone())
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let client = client_for("auth-svc", closed_port(), "", fast_config().max_retries(1));
    let err = client
        .get(&format!("/verify?token={TOKEN}&sig={SIG}"))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");

    let texts = error_texts(&err);
    assert!(!texts.contains(TOKEN) && !texts.contains(SIG), "{texts}");

    let logged: Vec<String> = events.all().iter().map(|e| e.all_text()).collect();
    assert!(
        events
            .at(tracing::Level::WARN)
            .iter()
            .any(|e| e.message() == "service call failed"),
        "{logged:#?}"
    );
    for line in &logged {
        assert!(!line.contains(TOKEN) && !line.contains(SIG), "{line}");
    }

    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let urls: Vec<String> = spans
        .iter()
        .flat_map(|s| s.attributes.iter())
        .filter(|kv| kv.key.as_str() == "url.full")
        .map(|kv| kv.value.to_string())
        .collect();
    assert!(!urls.is_empty());
    for url in &urls {
        assert!(url.contains("sig=REDACTED"), "{url}");
        assert!(!url.contains(SIG), "{url}");
    }
}

#[tokio::test]
async fn a_decode_error_names_the_url_without_its_query_values() {
    // Every test of this binary runs under a subscriber: a thread without
    // one can race the other test's thread for the library callsites'
    // interest (tokio-rs/tracing#2874) and hide its spans.
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(Events::default()));
    let server = recording_server(404, "no such user").await;
    let (addr, _seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "", fast_config());
    let err = client
        .get(&format!("/users/1?token={TOKEN}"))
        .decode::<serde_json::Value>()
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
    let texts = error_texts(&err);
    assert!(texts.contains("/users/1"), "{texts}");
    assert!(!texts.contains(TOKEN), "{texts}");
}
