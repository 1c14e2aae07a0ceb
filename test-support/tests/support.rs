//! The helpers do what their docs say: they are what every other test
//! stands on.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use axum::Router;
use axum::extract::Extension;
use axum::http::StatusCode;
use axum::routing::get;
use futures_util::FutureExt;
use svc_test_support::{
    BodyFault, GOOD_BODY, Seen, body_faults, capture, closed_port, recording_server, resetting,
    serve, serve_router, stalling, statuses,
};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_server_records_each_request_in_order() {
    let server = statuses(&[503, 200]).await;
    let http = client();
    let first = http
        .post(server.url("/a?x=1"))
        .header("x-test", "one")
        .body("hello")
        .send()
        .await
        .unwrap();
    let second = http.get(server.url("/b")).send().await.unwrap();
    let third = http.get(server.url("/c")).send().await.unwrap();
    assert_eq!(first.status(), 503);
    assert_eq!(second.status(), 200);
    assert_eq!(third.status(), 200, "the last status repeats");
    assert_eq!(server.hits(), 3);
    let seen = server.seen();
    assert_eq!(seen[0].n, 0);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/a");
    assert_eq!(seen[0].body, "hello");
    assert_eq!(seen[0].header("x-test"), Some("one"));
    assert_eq!(server.uris(), ["/a?x=1", "/b", "/c"]);
    assert_eq!(
        server.header_values("x-test"),
        [Some("one".to_owned()), None, None]
    );
}

#[tokio::test]
async fn a_handler_sees_its_request() {
    let server = serve(|seen: Seen| async move { format!("{} {}", seen.n, seen.path) }).await;
    let body = client()
        .get(server.url("/x"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "0 /x");
}

#[tokio::test]
async fn a_router_is_recorded_and_its_handlers_get_the_request_number() {
    let app = Router::new().route(
        "/n",
        get(|Extension(seen): Extension<Seen>| async move { seen.n.to_string() }),
    );
    let server = serve_router(app).await;
    let http = client();
    for expected in ["0", "1"] {
        let body = http.get(server.url("/n")).send().await.unwrap();
        assert_eq!(body.text().await.unwrap(), expected);
    }
    let missing = http.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(server.hits(), 3, "unrouted requests are counted too");
}

#[tokio::test]
async fn a_recording_server_answers_its_status_and_body() {
    let server = recording_server(404, "no such user").await;
    let response = client().get(server.url("/users/1")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.text().await.unwrap(), "no such user");
    assert_eq!(server.uris(), ["/users/1"]);
}

#[tokio::test]
async fn a_panicking_handler_fails_the_test() {
    let outcome = AssertUnwindSafe(async {
        let server = serve(|seen: Seen| async move {
            assert_eq!(seen.n, 99, "handler bug");
            StatusCode::OK
        })
        .await;
        let response = client().get(server.url("/")).send().await.unwrap();
        assert_eq!(response.status(), 500);
        assert!(server.panicked());
        drop(server);
    })
    .catch_unwind()
    .await;
    let message = outcome.expect_err("dropping the server panics");
    let message = message.downcast_ref::<&str>().copied().unwrap_or_default();
    assert_eq!(message, "the test server's handler panicked");
}

#[tokio::test]
async fn a_closed_port_refuses() {
    let err = client()
        .get(format!("http://{}/", closed_port()))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn a_resetting_server_reads_and_closes() {
    let server = resetting().await;
    let err = client().get(server.url("/")).send().await.unwrap_err();
    assert!(err.is_request() && !err.is_timeout(), "{err:?}");
    assert!(server.hits() >= 1);
}

#[tokio::test]
async fn a_stalling_server_never_answers() {
    let server = stalling().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = http.get(server.url("/")).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn body_faults_follow_the_pattern() {
    let (addr, hits) = body_faults(&[BodyFault::Whole, BodyFault::Truncate]).await;
    let http = client();
    let whole = http.get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(whole.text().await.unwrap(), GOOD_BODY);
    let cut = http.get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(cut.status(), 200);
    assert!(cut.text().await.is_err());
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn events_and_spans_are_captured_with_their_fields() {
    let (events, spans, _guard) = capture();
    let span = tracing::info_span!("call", url = "http://x/", attempts = tracing::field::Empty);
    span.in_scope(|| {
        tracing::warn!(attempts = 4, retried = true, "http call failed");
    });
    span.record("attempts", 4);
    tracing::debug!(target: "other", "outside");

    let warnings = events.at(tracing::Level::WARN);
    assert_eq!(warnings.len(), 1);
    let warning = &warnings[0];
    assert_eq!(warning.message(), "http call failed");
    assert_eq!(warning.field("attempts"), Some("4"));
    assert_eq!(warning.field("retried"), Some("true"));
    assert_eq!(warning.span.as_deref(), Some("call"));
    assert_eq!(events.with_message("outside")[0].target, "other");
    assert!(events.all_text().contains("attempts=4"));
    events.clear();
    assert!(events.all().is_empty());

    let calls = spans.named("call");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].field("url"), Some("http://x/"));
    assert_eq!(calls[0].field("attempts"), Some("4"), "recorded later");
    assert_eq!(calls[0].parent, None);
}
