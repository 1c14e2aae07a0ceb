//! W3C trace context end to end: a caller span under a
//! tracing-opentelemetry subscriber, a real local server recording
//! `traceparent`, and servers continuing the trace.

use std::future::IntoFuture;
use std::sync::{Arc, Mutex};

use crate::support::{Seen, Server, client_for, fast_config, otel, serve, serve_router};
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use opentelemetry_sdk::trace::SpanData;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

fn parse(traceparent: &str) -> (TraceId, SpanId, &str) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    (
        TraceId::from_hex(parts[1]).unwrap(),
        SpanId::from_hex(parts[2]).unwrap(),
        parts[3],
    )
}

fn find(spans: &[SpanData], id: SpanId) -> &SpanData {
    spans
        .iter()
        .find(|s| s.span_context.span_id() == id)
        .unwrap_or_else(|| panic!("no span {id}"))
}

/// Answers 503 to the first request and 200 afterwards.
async fn flaky_server() -> Server {
    serve(|seen: Seen| async move {
        match seen.n + 1 {
            1 => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::OK,
        }
    })
    .await
}

#[tokio::test]
async fn every_attempt_carries_the_callers_trace_with_its_own_span() {
    let (exporter, provider, _guard) = otel();
    let server = flaky_server().await;
    let (addr, seen) = (server.addr(), &server);
    // With the logical `svc.call` span turned on (see the next test for
    // the default).
    let client = client_for("auth-svc", addr, "", fast_config().call_span(true));

    let caller = tracing::info_span!("caller");
    let caller_cx = caller.context().span().span_context().clone();
    let resp = async { client.get("/users/123").await }
        .instrument(caller.clone())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(caller);
    provider.force_flush().unwrap();

    let traceparents: Vec<String> = seen
        .header_values("traceparent")
        .into_iter()
        .map(|v| v.expect("every attempt carries traceparent"))
        .collect();
    assert_eq!(traceparents.len(), 2, "a 503 then a 200");
    let attempts: Vec<_> = traceparents.iter().map(|tp| parse(tp)).collect();
    for (trace_id, span_id, flags) in &attempts {
        assert_eq!(
            *trace_id,
            caller_cx.trace_id(),
            "same trace on every attempt"
        );
        assert_ne!(
            *span_id,
            caller_cx.span_id(),
            "the attempt span, not the caller's"
        );
        assert_eq!(*flags, "01", "sampled");
    }
    assert_ne!(
        attempts[0].1, attempts[1].1,
        "a different parent span per attempt"
    );

    // The exported tree: caller -> svc.call -> one client span per attempt.
    let spans = exporter.get_finished_spans().unwrap();
    let first = find(&spans, attempts[0].1);
    let second = find(&spans, attempts[1].1);
    assert_eq!(first.parent_span_id, second.parent_span_id, "siblings");
    assert_eq!(first.span_kind, opentelemetry::trace::SpanKind::Client);
    let call = find(&spans, first.parent_span_id);
    assert_eq!(call.name, "svc.call");
    assert_eq!(call.span_kind, opentelemetry::trace::SpanKind::Internal);
    assert_eq!(call.parent_span_id, caller_cx.span_id());
    let attr = |span: &SpanData, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attr(call, "peer.service").as_deref(), Some("auth-svc"));
    assert_eq!(attr(call, "svc.service").as_deref(), Some("auth-svc"));
    assert_eq!(attr(call, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attr(call, "url.path").as_deref(), Some("/users/123"));
    assert_eq!(
        attr(call, "http.response.status_code").as_deref(),
        Some("200")
    );
}

/// By default (no `svc.call` span) each attempt is one client span, a child
/// of the caller's span, carrying `peer.service` and the resend count.
#[tokio::test]
async fn by_default_each_attempt_is_a_client_span_under_the_caller() {
    let (exporter, provider, _guard) = otel();
    let server = flaky_server().await;
    let (addr, seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "", fast_config());

    let caller = tracing::info_span!("caller");
    let caller_cx = caller.context().span().span_context().clone();
    async { client.get("/users/123").await }
        .instrument(caller.clone())
        .await
        .unwrap();
    drop(caller);
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    assert!(
        spans.iter().all(|s| s.name != "svc.call"),
        "no svc.call span"
    );
    let sent: Vec<SpanId> = seen
        .header_values("traceparent")
        .iter()
        .map(|tp| parse(tp.as_deref().unwrap()).1)
        .collect();
    assert_eq!(sent.len(), 2, "a 503 then a 200");
    for (i, id) in sent.iter().enumerate() {
        let attempt = find(&spans, *id);
        assert_eq!(attempt.span_kind, opentelemetry::trace::SpanKind::Client);
        assert_eq!(
            attempt.parent_span_id,
            caller_cx.span_id(),
            "under the caller"
        );
        assert_eq!(attempt.span_context.trace_id(), caller_cx.trace_id());
        let attr = |key: &str| {
            attempt
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(attr("peer.service").as_deref(), Some("auth-svc"));
        let resend = attr("http.request.resend_count");
        assert_eq!(resend.as_deref(), (i > 0).then_some("1"), "attempt {i}");
    }
}

#[tokio::test]
async fn a_call_without_a_parent_starts_a_trace() {
    let (_exporter, _provider, _guard) = otel();
    let server = flaky_server().await;
    let (addr, seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "", fast_config());
    client.get("/a").await.unwrap();
    client.get("/b").await.unwrap();
    let ids: Vec<TraceId> = seen
        .header_values("traceparent")
        .iter()
        .map(|v| parse(v.as_deref().unwrap()).0)
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        ids[0], ids[1],
        "the retry belongs to the first call's trace"
    );
    assert_ne!(ids[1], ids[2], "the second call is a new trace");
}

#[tokio::test]
async fn tracestate_of_the_incoming_trace_is_forwarded() {
    let (_exporter, _provider, _guard) = otel();
    let server = flaky_server().await;
    let (addr, seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "", fast_config());

    let mut incoming = HeaderMap::new();
    incoming.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    incoming.insert("tracestate", "vendor=abc".parse().unwrap());
    let handler = tracing::info_span!("handler");
    assert!(svc_client::continue_trace(&handler, &incoming));
    client
        .get("/x")
        .into_future()
        .instrument(handler)
        .await
        .unwrap();

    for tp in seen.header_values("traceparent") {
        assert_eq!(
            parse(tp.as_deref().unwrap()).0.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }
    assert_eq!(
        seen.header_values("tracestate"),
        [Some("vendor=abc".to_owned()), Some("vendor=abc".to_owned())]
    );
}

#[tokio::test]
async fn without_opentelemetry_no_header_and_no_panic() {
    let server = flaky_server().await;
    let (addr, seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "", fast_config());
    let resp = client
        .get("/x")
        .into_future()
        .instrument(tracing::info_span!("caller"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(seen.header_values("traceparent"), [None, None]);
}

/// What a server handler saw: its own span's trace and parent.
#[derive(Clone, Default)]
struct ServerSide(Arc<Mutex<Vec<(TraceId, SpanId)>>>);

impl ServerSide {
    fn record_current(&self) {
        let cx = tracing::Span::current().context();
        let span = cx.span();
        let sc = span.span_context();
        self.0.lock().unwrap().push((sc.trace_id(), sc.span_id()));
    }
}

/// Calls `app` from a caller span; returns the caller's trace id and every
/// exported span (the server's included: it runs on this thread).
async fn call_and_collect(app: Router) -> (TraceId, Vec<SpanData>) {
    let (exporter, provider, _guard) = otel();
    let server = serve_router(app).await;
    let addr = server.addr();
    let client = client_for("auth-svc", addr, "", fast_config());
    let caller = tracing::info_span!("caller");
    let trace_id = caller.context().span().span_context().trace_id();
    let resp = client
        .get("/users/1")
        .into_future()
        .instrument(caller)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    provider.force_flush().unwrap();
    (trace_id, exporter.get_finished_spans().unwrap())
}

#[tokio::test]
async fn a_server_using_the_extraction_helper_continues_the_trace() {
    let server = ServerSide::default();
    let s = server.clone();
    let app = Router::new().route(
        "/users/1",
        axum::routing::get(move |headers: HeaderMap| {
            let s = s.clone();
            async move {
                let span = tracing::info_span!("get_user", otel.kind = "server");
                assert!(svc_client::continue_trace(&span, &headers));
                let _entered = span.enter();
                s.record_current();
                "alice"
            }
        }),
    );
    let (trace_id, spans) = call_and_collect(app).await;
    let seen = server.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].0, trace_id,
        "the server continues the caller's trace"
    );
    let server_span = find(&spans, seen[0].1);
    assert_eq!(server_span.name, "get_user");
    assert!(server_span.parent_span_is_remote);
    let attempt = find(&spans, server_span.parent_span_id);
    assert_eq!(attempt.span_kind, opentelemetry::trace::SpanKind::Client);
}

#[tokio::test]
async fn a_server_without_extraction_starts_another_trace() {
    // The control for the test above: the server task does not inherit the
    // caller's span by accident.
    let server = ServerSide::default();
    let s = server.clone();
    let app = Router::new().route(
        "/users/1",
        axum::routing::get(move || {
            let s = s.clone();
            async move {
                let span = tracing::info_span!("get_user");
                let _entered = span.enter();
                s.record_current();
                "alice"
            }
        }),
    );
    let (trace_id, _) = call_and_collect(app).await;
    let seen = server.0.lock().unwrap().clone();
    assert_ne!(seen[0].0, trace_id);
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn the_axum_middleware_continues_the_trace() {
    let server = ServerSide::default();
    let s = server.clone();
    let app = Router::new()
        .route(
            "/users/{id}",
            axum::routing::get(move || {
                let s = s.clone();
                async move {
                    s.record_current();
                    "alice"
                }
            }),
        )
        .layer(axum::middleware::from_fn(svc_client::trace_middleware));
    let (trace_id, spans) = call_and_collect(app).await;
    let seen = server.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, trace_id);
    let server_span = find(&spans, seen[0].1);
    assert_eq!(
        server_span.span_kind,
        opentelemetry::trace::SpanKind::Server
    );
    assert!(server_span.parent_span_is_remote);
    let attempt = find(&spans, server_span.parent_span_id);
    assert_eq!(attempt.span_kind, opentelemetry::trace::SpanKind::Client);
    let status = server_span
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "http.response.status_code")
        .map(|kv| kv.value.to_string());
    assert_eq!(status.as_deref(), Some("200"));
}

/// Records whether the facade's injection ran before the caller's observer.
struct SeesTraceparent(Arc<Mutex<Vec<bool>>>);

impl svc_client::AttemptObserver for SeesTraceparent {
    fn on_attempt_start(
        &self,
        request: &mut svc_client::reqwest::Request,
        _attempt: &svc_client::AttemptStart<'_>,
    ) {
        let has = request.headers().contains_key("traceparent");
        self.0.lock().unwrap().push(has);
    }
}

#[tokio::test]
async fn a_callers_observer_runs_after_the_injection() {
    let (_exporter, _provider, _guard) = otel();
    let server = flaky_server().await;
    let (addr, _seen) = (server.addr(), &server);
    let log = Arc::new(Mutex::new(Vec::new()));
    let config = fast_config().observer(SeesTraceparent(log.clone()));
    let client = client_for("auth-svc", addr, "", config);
    client.get("/x").await.unwrap();
    assert_eq!(*log.lock().unwrap(), [true, true]);

    // The same through a `svc_httpclient::Config` converted into a ClientConfig.
    let log = Arc::new(Mutex::new(Vec::new()));
    let http = svc_httpclient::Config::default().observer(SeesTraceparent(log.clone()));
    let client = client_for("auth-svc", addr, "", svc_client::ClientConfig::from(http));
    client.get("/x").await.unwrap();
    assert_eq!(*log.lock().unwrap(), [true]);
}
