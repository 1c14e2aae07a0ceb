//! `server::layer()`: one trace-continuing layer on an axum router and on
//! a tonic server (`grpc.health.v1` from tonic-health), each a real server
//! on 127.0.0.1 called by a real client.
#![cfg(any(feature = "axum", feature = "grpc"))]

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SpanData};
use svc_test_support::Spans;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Installs, for this thread, a subscriber exporting OpenTelemetry spans to
/// memory and recording every `tracing` span with its fields. The servers
/// run on this thread too (`#[tokio::test]` is current-thread).
fn capture() -> (InMemorySpanExporter, SdkTracerProvider, Spans, DefaultGuard) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_simple_exporter(exporter.clone())
        .build();
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry()
        .with(spans.clone())
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let guard = tracing::subscriber::set_default(subscriber);
    (exporter, provider, spans, guard)
}

fn finished(exporter: &InMemorySpanExporter, provider: &SdkTracerProvider) -> Vec<SpanData> {
    provider.force_flush().unwrap();
    exporter.get_finished_spans().unwrap()
}

fn servers(spans: &[SpanData]) -> Vec<&SpanData> {
    spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Server)
        .collect()
}

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

// ===== axum =====

#[cfg(feature = "axum")]
mod axum_router {
    use super::*;

    use std::future::IntoFuture;

    use crate::support::{client_for, fast_config, serve_router};
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::get;
    use opentelemetry::trace::TraceContextExt;
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    fn app() -> Router {
        Router::new()
            .route("/users/{id}", get(|| async { "alice" }))
            .route(
                "/broken",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
            )
            .layer(svc_client::server::layer())
    }

    #[tokio::test]
    async fn a_request_from_the_facade_continues_the_callers_trace() {
        let (exporter, provider, spans, _guard) = capture();
        let server = serve_router(app()).await;
        let client = client_for("auth-svc", server.addr(), "", fast_config());

        let caller = tracing::info_span!("caller");
        let trace_id = caller.context().span().span_context().trace_id();
        let resp = client
            .get("/users/7")
            .into_future()
            .instrument(caller)
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);

        let all = finished(&exporter, &provider);
        let server_spans = servers(&all);
        assert_eq!(server_spans.len(), 1, "{all:#?}");
        let span = server_spans[0];
        assert_eq!(span.span_context.trace_id(), trace_id);
        assert!(span.parent_span_is_remote);
        // Its parent is the facade's attempt span, which sent `traceparent`.
        let attempt = all
            .iter()
            .find(|s| s.span_context.span_id() == span.parent_span_id)
            .expect("the parent is exported");
        assert_eq!(attempt.span_kind, SpanKind::Client);
        assert_eq!(span.name, "GET /users/{id}");
        assert_eq!(attr(span, "http.route").as_deref(), Some("/users/{id}"));
        assert_eq!(attr(span, "url.path").as_deref(), Some("/users/7"));
        assert_eq!(
            attr(span, "http.response.status_code").as_deref(),
            Some("200")
        );
        assert_eq!(span.status, Status::Unset);
        assert!(attr(span, "rpc.system").is_none());

        // The same, as `tracing` fields.
        let recorded = spans.named("HTTP request");
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].field("otel.kind"), Some("server"));
        assert_eq!(recorded[0].field("http.request.method"), Some("GET"));
    }

    #[tokio::test]
    async fn a_5xx_marks_the_span_as_an_error_and_no_traceparent_starts_a_trace() {
        let (exporter, provider, _spans, _guard) = capture();
        let server = serve_router(app()).await;
        // Not the facade: a plain request without any trace context.
        let resp = svc_client::reqwest::get(format!("http://{}/broken", server.addr()))
            .await
            .unwrap();
        assert_eq!(resp.status(), 500);

        let all = finished(&exporter, &provider);
        let server_spans = servers(&all);
        assert_eq!(server_spans.len(), 1, "{all:#?}");
        let span = server_spans[0];
        assert!(matches!(span.status, Status::Error { .. }), "{span:#?}");
        assert_eq!(
            attr(span, "http.response.status_code").as_deref(),
            Some("500")
        );
        assert_eq!(span.parent_span_id, SpanId::INVALID, "a root span");
        assert!(!span.parent_span_is_remote);
    }

    /// `trace_middleware` shares the layer's span: same name and attributes.
    #[tokio::test]
    async fn trace_middleware_makes_the_same_span() {
        let (exporter, provider, _spans, _guard) = capture();
        let app = Router::new()
            .route("/users/{id}", get(|| async { "alice" }))
            .layer(axum::middleware::from_fn(svc_client::trace_middleware));
        let server = serve_router(app).await;
        let client = reqwest_with_traceparent();
        client
            .get(format!("http://{}/users/7", server.addr()))
            .send()
            .await
            .unwrap();
        let all = finished(&exporter, &provider);
        let span = servers(&all)[0];
        assert_eq!(span.name, "GET /users/{id}");
        assert_eq!(span.span_context.trace_id().to_string(), TRACE_ID);
        assert_eq!(span.parent_span_id.to_string(), PARENT_ID);
    }

    fn reqwest_with_traceparent() -> svc_client::reqwest::Client {
        let mut headers = svc_client::header::HeaderMap::new();
        headers.insert("traceparent", TRACEPARENT.parse().unwrap());
        svc_client::reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }
}

// ===== tonic =====

mod tonic_server {
    use super::*;

    use svc_test_support::GrpcServer;
    use tonic::Code;
    use tonic::codegen::http::uri::PathAndQuery;
    use tonic::transport::{Channel, Endpoint, Server};
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

    /// A tonic server with `grpc.health.v1` and `server::layer()`, on
    /// 127.0.0.1:0.
    struct HealthServer {
        channel: Channel,
        server: GrpcServer,
    }

    impl HealthServer {
        async fn start() -> HealthServer {
            let (_reporter, service) = tonic_health::server::health_reporter();
            let server = GrpcServer::start(|incoming, stop| {
                Server::builder()
                    .layer(svc_client::server::layer())
                    .add_service(service)
                    .serve_with_incoming_shutdown(incoming, stop)
            })
            .await;
            let channel = Endpoint::from_shared(server.url()).unwrap().connect_lazy();
            HealthServer { channel, server }
        }

        async fn shut_down(self) {
            drop(self.channel);
            self.server.shut_down().await;
        }
    }

    /// A health `Check` of `service` carrying the caller's `traceparent`.
    fn check(service: &str) -> tonic::Request<HealthCheckRequest> {
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: service.to_owned(),
        });
        request
            .metadata_mut()
            .insert("traceparent", TRACEPARENT.parse().unwrap());
        request
    }

    #[tokio::test]
    async fn a_grpc_call_continues_the_callers_trace_with_rpc_attributes() {
        let (exporter, provider, spans, _guard) = capture();
        let server = HealthServer::start().await;
        let mut health = HealthClient::new(server.channel.clone());
        let reply = health.check(check("")).await.unwrap().into_inner();
        assert_eq!(reply.status, 1, "SERVING");

        let all = finished(&exporter, &provider);
        let server_spans = servers(&all);
        assert_eq!(server_spans.len(), 1, "{all:#?}");
        let span = server_spans[0];
        assert_eq!(
            span.span_context.trace_id(),
            TraceId::from_hex(TRACE_ID).unwrap()
        );
        assert_eq!(span.parent_span_id, SpanId::from_hex(PARENT_ID).unwrap());
        assert!(span.parent_span_is_remote);
        assert_eq!(span.name, "grpc.health.v1.Health/Check");
        assert_eq!(attr(span, "rpc.system").as_deref(), Some("grpc"));
        assert_eq!(
            attr(span, "rpc.service").as_deref(),
            Some("grpc.health.v1.Health")
        );
        assert_eq!(attr(span, "rpc.method").as_deref(), Some("Check"));
        assert_eq!(
            attr(span, "http.response.status_code").as_deref(),
            Some("200")
        );
        // A successful unary call sends its status in the trailers, which
        // the layer does not see.
        assert!(attr(span, "rpc.grpc.status_code").is_none());
        assert_eq!(span.status, Status::Unset);
        assert_eq!(spans.named("gRPC request").len(), 1);
        server.shut_down().await;
    }

    #[tokio::test]
    async fn a_callers_mistake_is_recorded_but_not_an_error_of_the_server() {
        let (exporter, provider, _spans, _guard) = capture();
        let server = HealthServer::start().await;
        let mut health = HealthClient::new(server.channel.clone());
        let status = health.check(check("no-such-service")).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);

        let all = finished(&exporter, &provider);
        let span = servers(&all)[0];
        assert_eq!(
            span.span_context.trace_id(),
            TraceId::from_hex(TRACE_ID).unwrap()
        );
        // Trailers-only: the status is in the head.
        assert_eq!(attr(span, "rpc.grpc.status_code").as_deref(), Some("5"));
        assert_eq!(span.status, Status::Unset);
        server.shut_down().await;
    }

    #[tokio::test]
    async fn an_unimplemented_method_is_an_error_of_the_server() {
        let (exporter, provider, _spans, _guard) = capture();
        let server = HealthServer::start().await;
        let mut grpc = tonic::client::Grpc::new(server.channel.clone());
        grpc.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
        let status = grpc
            .unary(
                check(""),
                PathAndQuery::from_static("/grpc.health.v1.Health/Nope"),
                codec,
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);

        let all = finished(&exporter, &provider);
        let span = servers(&all)[0];
        assert_eq!(span.name, "grpc.health.v1.Health/Nope");
        assert_eq!(attr(span, "rpc.method").as_deref(), Some("Nope"));
        assert_eq!(attr(span, "rpc.grpc.status_code").as_deref(), Some("12"));
        assert!(matches!(span.status, Status::Error { .. }), "{span:#?}");
        server.shut_down().await;
    }
}
