//! Logs and traces of the demo services.
//!
//! Every service logs with `tracing` in the compact format to stderr (the
//! driver writes each service's stderr to `target/demo/logs/<service>.log`).
//! A `tracing-opentelemetry` layer gives every span an OpenTelemetry context,
//! so that a request's span continues the caller's W3C trace and the
//! `svc-client` calls made inside it carry the same trace id onwards. No
//! exporter is installed: the trace ids in the logs are the point here; add
//! an OTLP exporter to the provider to ship the spans.

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

/// Keeps the tracer provider alive; shuts it down when dropped.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// Installs the global subscriber for `service`: compact logs to stderr
/// (level from `RUST_LOG`, `info` by default) and OpenTelemetry contexts.
pub fn init(service: &'static str) -> Telemetry {
    // No global propagator on purpose: svc-client reads and writes W3C
    // `traceparent`/`tracestate` itself, and the demo checks that it does.
    let provider = SdkTracerProvider::builder().build();
    let tracer = provider.tracer(service);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .compact()
                .with_ansi(false)
                .with_writer(std::io::stderr),
        )
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init();
    Telemetry { provider }
}

/// A span naming the trace id of the current request, for every log line
/// of the request. Create it inside `svc_client::trace_middleware`, which
/// continues the caller's trace from its `traceparent`/`tracestate` headers.
pub fn request_span() -> Span {
    match trace_id(&Span::current()) {
        Some(trace_id) => tracing::info_span!("request", trace_id = %trace_id),
        None => tracing::info_span!("request", trace_id = tracing::field::Empty),
    }
}

/// The W3C trace id of `span` (32 hex digits), if it has a valid one.
pub fn trace_id(span: &Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// When `SVC_DEMO_EXIT_ON_STDIN_EOF=1` (set by the demo driver), exits the
/// process as soon as stdin reaches end of file: the driver holds the other
/// end of the pipe, so its children go away with it, however it ends (even
/// when killed with SIGKILL). Off by default: on Kubernetes stdin is empty.
pub fn exit_when_stdin_closes() {
    if std::env::var_os("SVC_DEMO_EXIT_ON_STDIN_EOF").is_none_or(|v| v != "1") {
        return;
    }
    std::thread::spawn(|| {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 64];
        loop {
            match std::io::Read::read(&mut stdin, &mut buf) {
                Ok(0) | Err(_) => {
                    tracing::info!("stdin closed: the demo driver is gone, exiting");
                    std::process::exit(0);
                }
                Ok(_) => {}
            }
        }
    });
}

/// Runs `next` inside `span` and logs the answer once (`answered`, with its
/// status and latency): the request log line of every demo service.
pub async fn answer_logged(
    span: Span,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    async move {
        let response = next.run(req).await;
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            "answered"
        );
        response
    }
    .instrument(span)
    .await
}
