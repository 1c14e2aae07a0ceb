//! W3C Trace Context across service calls, both ways.
//!
//! **Why not just the global propagator?** OpenTelemetry's global
//! propagator is a no-op until the application installs one, so a service
//! that forgets `global::set_text_map_propagator` sends no `traceparent` at
//! all and every hop starts a new trace (reqwest-middleware#25). This module
//! always writes W3C `traceparent` and `tracestate` itself, from the span
//! context `tracing-opentelemetry` keeps for the current `tracing` span, and
//! then lets a configured global propagator add its own fields (baggage, a
//! vendor format). Extraction mirrors it: the global propagator's context,
//! with the W3C span context on top when the caller sent one.
//!
//! **Why per attempt?** The client injects the context of each *attempt*
//! span, so a retry is a sibling of the first try in the trace, and the
//! server's span is a child of the attempt that reached it
//! (reqwest-middleware#120, #152).
//!
//! Header values that are not valid HTTP header values are skipped, never a
//! panic.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, global};
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// Writes the trace context of `span` into `headers`: W3C `traceparent` and
/// `tracestate`, then whatever the global propagator adds.
///
/// For a span that is not recorded by a `tracing-opentelemetry` layer (a
/// filter disabled it), the current OpenTelemetry context is written
/// instead, which is that of the nearest entered span OpenTelemetry
/// records: a filter never cuts the trace. Without any trace, only what the
/// global propagator writes is added. The client calls this for every attempt; use it
/// for requests sent another way.
///
/// # Example
///
/// ```
/// use svc_client::header::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// svc_client::inject_span(&tracing::Span::current(), &mut headers);
/// // Without an OpenTelemetry subscriber there is no trace to propagate.
/// assert!(headers.get("traceparent").is_none());
/// ```
pub fn inject_span(span: &tracing::Span, headers: &mut HeaderMap) {
    inject_nearest(span, None, headers);
}

/// Injects the context of the nearest span that OpenTelemetry records:
/// `span`, else `parent`, else the current OpenTelemetry context (the
/// caller's span, which `tracing-opentelemetry` activates when it is
/// entered). A filter that turns the library's spans off, globally or only
/// for the OpenTelemetry layer, then still sends the caller's trace.
///
/// The last fallback needs `tracing-opentelemetry`'s context activation,
/// which is on by default; with it off, and the library's spans enabled
/// for other layers but not for OpenTelemetry, there is no way to reach
/// the caller's span from here and nothing is injected.
pub(crate) fn inject_nearest(
    span: &tracing::Span,
    parent: Option<&tracing::Span>,
    headers: &mut HeaderMap,
) {
    for candidate in std::iter::once(span).chain(parent) {
        // A span the subscriber disabled has no id: skip it without a
        // subscriber call.
        if candidate.is_disabled() {
            continue;
        }
        let cx = candidate.context();
        if cx.span().span_context().is_valid() {
            return inject_context(&cx, headers);
        }
    }
    inject_context(&Context::current(), headers);
}

/// Writes the trace context `cx` into `headers`: W3C `traceparent` and
/// `tracestate` when `cx` has a valid span context, then whatever the
/// global propagator adds.
///
/// # Example
///
/// ```
/// use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
/// use opentelemetry::Context;
/// use svc_client::header::HeaderMap;
///
/// let span = SpanContext::new(
///     TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
///     SpanId::from_hex("00f067aa0ba902b7").unwrap(),
///     TraceFlags::SAMPLED,
///     true,
///     TraceState::default(),
/// );
/// let cx = Context::new().with_remote_span_context(span);
/// let mut headers = HeaderMap::new();
/// svc_client::inject_context(&cx, &mut headers);
/// assert_eq!(
///     headers["traceparent"],
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
/// );
/// ```
pub fn inject_context(cx: &Context, headers: &mut HeaderMap) {
    let span = cx.span();
    let span_context = span.span_context();
    if span_context.is_valid() {
        let traceparent = traceparent(span_context);
        if let Ok(value) = HeaderValue::from_bytes(&traceparent) {
            headers.insert(TRACEPARENT, value);
        }
        let tracestate = span_context.trace_state().header();
        match HeaderValue::from_str(&tracestate) {
            Ok(value) if !tracestate.is_empty() => {
                headers.insert(TRACESTATE, value);
            }
            // A stale `tracestate` must not travel with a new `traceparent`.
            _ => {
                headers.remove(TRACESTATE);
            }
        }
    }
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut HeaderInjector(headers));
    });
}

/// `00-{trace-id}-{parent-id}-{flags}` (W3C Trace Context version 00),
/// written into a stack buffer: this runs for every attempt.
fn traceparent(span_context: &SpanContext) -> [u8; 55] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    fn hex(out: &mut [u8], bytes: &[u8]) {
        for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0x0f)];
        }
    }
    let mut out = [b'-'; 55];
    out[..2].copy_from_slice(b"00");
    hex(&mut out[3..35], &span_context.trace_id().to_bytes());
    hex(&mut out[36..52], &span_context.span_id().to_bytes());
    hex(
        &mut out[53..55],
        &[(span_context.trace_flags() & TraceFlags::SAMPLED).to_u8()],
    );
    out
}

/// The trace context a caller sent in `headers`: what the global
/// propagator extracts (baggage, a vendor format), with the W3C
/// `traceparent` and `tracestate` span context on top when present.
///
/// The result has no span when the caller sent none (or an invalid one);
/// a span parented on it then starts a new trace.
///
/// # Example
///
/// ```
/// use opentelemetry::trace::TraceContextExt;
/// use svc_client::header::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     "traceparent",
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap(),
/// );
/// let cx = svc_client::extract_context(&headers);
/// let span = cx.span();
/// let remote = span.span_context();
/// assert!(remote.is_remote());
/// assert_eq!(remote.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// ```
pub fn extract_context(headers: &HeaderMap) -> Context {
    let mut cx = global::get_text_map_propagator(|propagator| {
        // The default global propagator reads no field, and its
        // `extract_with_context` returns `Context::current()`: whatever span
        // happens to be active, which must never become a remote parent.
        if propagator.fields().next().is_none() {
            Context::new()
        } else {
            propagator.extract_with_context(&Context::new(), &HeaderExtractor(headers))
        }
    });
    if let Some(span_context) = parse_traceparent(headers) {
        cx = cx.with_remote_span_context(span_context);
    }
    cx
}

/// Makes `span` continue the trace the caller sent in `headers`: its parent
/// becomes the caller's attempt span. Call it right after creating the
/// span, before entering it.
///
/// Returns `false` when `headers` carry no valid trace context or `span`
/// cannot take a parent (no `tracing-opentelemetry` layer, a disabled span,
/// or a span already started).
///
/// # Example
///
/// ```
/// use svc_client::header::HeaderMap;
///
/// async fn handler(headers: HeaderMap) -> &'static str {
///     let span = tracing::info_span!("get_user", otel.kind = "server");
///     svc_client::continue_trace(&span, &headers);
///     let _guard = span.enter();
///     "ok"
/// }
/// ```
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) -> bool {
    let cx = extract_context(headers);
    if !cx.span().span_context().is_valid() {
        return false;
    }
    span.set_parent(cx).is_ok()
}

/// Parses `traceparent` (and `tracestate`) per W3C Trace Context level 1:
/// lower-case hex, version `ff` invalid, version `00` exactly four fields,
/// later versions may append fields; all-zero ids invalid.
fn parse_traceparent(headers: &HeaderMap) -> Option<SpanContext> {
    let value = headers.get(TRACEPARENT)?.to_str().ok()?.trim();
    let mut parts = value.split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let flags = parts.next()?;
    let is_lower_hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !is_lower_hex(version, 2)
        || version == "ff"
        || !is_lower_hex(trace_id, 32)
        || !is_lower_hex(span_id, 16)
        || !is_lower_hex(flags, 2)
    {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_id).ok()?;
    let span_id = SpanId::from_hex(span_id).ok()?;
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()?) & TraceFlags::SAMPLED;
    // Several `tracestate` headers are one list (W3C Trace Context, RFC 9110
    // field combination): join them in order.
    let mut lists = headers.get_all(TRACESTATE).iter();
    let trace_state = match (lists.next(), lists.next()) {
        (None, _) => None,
        (Some(only), None) => only
            .to_str()
            .ok()
            .and_then(|v| v.parse::<TraceState>().ok()),
        (Some(first), Some(second)) => {
            let mut joined = String::new();
            for value in [first, second].into_iter().chain(lists) {
                let Ok(value) = value.to_str() else { continue };
                let value = value.trim();
                if value.is_empty() {
                    continue;
                }
                if !joined.is_empty() {
                    joined.push(',');
                }
                joined.push_str(value);
            }
            joined.parse::<TraceState>().ok()
        }
    }
    .unwrap_or_default();
    let span_context = SpanContext::new(trace_id, span_id, flags, true, trace_state);
    span_context.is_valid().then_some(span_context)
}

/// Adapts a [`HeaderMap`] for OpenTelemetry propagators, skipping invalid
/// names and values.
struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The SDK's W3C propagator writes `tracestate` even when it is
        // empty; an empty header is noise at best and some proxies reject
        // it, so it is never sent.
        if key.eq_ignore_ascii_case(TRACESTATE) && value.trim().is_empty() {
            self.0.remove(TRACESTATE);
            return;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

// ===== server spans =====

/// The server span of one request, for [`trace_middleware`] and
/// [`server::layer`](crate::server::layer): one home for its name, its
/// attributes and how a response marks it.
///
/// HTTP: `otel.name = "{method} {route}"` (the route when axum matched
/// one, else the method alone), `http.request.method`, `url.path`,
/// `http.route`. gRPC (a `content-type` of `application/grpc` and a path
/// `/{service}/{method}`): `otel.name = "{service}/{method}"`,
/// `rpc.system = "grpc"`, `rpc.service`, `rpc.method`, as OpenTelemetry's
/// RPC conventions say. Both continue the caller's trace from the request's
/// headers ([`continue_trace`]).
#[cfg(any(feature = "axum", feature = "grpc"))]
#[derive(Debug)]
pub(crate) struct ServerSpan {
    pub(crate) span: tracing::Span,
    pub(crate) grpc: bool,
}

#[cfg(any(feature = "axum", feature = "grpc"))]
impl ServerSpan {
    /// The span for `request`, already a child of the caller's span when
    /// the request carries a trace context.
    pub(crate) fn new<B>(request: &http::Request<B>) -> ServerSpan {
        use tracing::field::Empty;

        let method = request.method();
        let path = request.uri().path();
        let (span, grpc) = match grpc_method(request) {
            Some((service, rpc)) => (
                tracing::info_span!(
                    "gRPC request",
                    otel.kind = "server",
                    // `/{service}/{method}` without its leading slash.
                    otel.name = &path[1..],
                    otel.status_code = Empty,
                    rpc.system = "grpc",
                    rpc.service = service,
                    rpc.method = rpc,
                    rpc.grpc.status_code = Empty,
                    http.request.method = %method,
                    url.path = path,
                    http.response.status_code = Empty,
                ),
                true,
            ),
            None => {
                let route = matched_path(request);
                let span = tracing::info_span!(
                    "HTTP request",
                    otel.kind = "server",
                    otel.name = Empty,
                    otel.status_code = Empty,
                    http.request.method = %method,
                    url.path = path,
                    http.route = route,
                    http.response.status_code = Empty,
                );
                match route {
                    Some(route) => span.record("otel.name", format_args!("{method} {route}")),
                    None => span.record("otel.name", method.as_str()),
                };
                (span, false)
            }
        };
        continue_trace(&span, request.headers());
        ServerSpan { span, grpc }
    }

    /// Records the response head: `http.response.status_code`, and for
    /// gRPC the `grpc-status` of a trailers-only response (the one an
    /// immediate error `Status` is sent as) as `rpc.grpc.status_code`.
    /// `otel.status_code = "ERROR"` for a 5xx, and for the gRPC codes
    /// OpenTelemetry calls server errors: `UNKNOWN`, `DEADLINE_EXCEEDED`,
    /// `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE`, `DATA_LOSS`. A status
    /// sent in trailers, after a body, is not seen here.
    pub(crate) fn record<B>(&self, response: &http::Response<B>) {
        let status = response.status();
        self.span
            .record("http.response.status_code", i64::from(status.as_u16()));
        let mut error = status.is_server_error();
        if self.grpc
            && let Some(code) = response.headers().get("grpc-status").and_then(grpc_code)
        {
            self.span.record("rpc.grpc.status_code", i64::from(code));
            error |= matches!(code, 2 | 4 | 12 | 13 | 14 | 15);
        }
        if error {
            self.span.record("otel.status_code", "ERROR");
        }
    }
}

/// `(service, method)` of a gRPC request: `content-type: application/grpc`
/// (or `application/grpc+proto`, ...) and a path `/{service}/{method}`.
#[cfg(any(feature = "axum", feature = "grpc"))]
fn grpc_method<B>(request: &http::Request<B>) -> Option<(&str, &str)> {
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)?
        .as_bytes();
    let rest = content_type.strip_prefix(b"application/grpc")?;
    if !(rest.is_empty() || rest[0] == b'+' || rest[0] == b';') {
        return None;
    }
    let (service, method) = request.uri().path().strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// A `grpc-status` value: a decimal code from 0 to 16.
#[cfg(any(feature = "axum", feature = "grpc"))]
fn grpc_code(value: &HeaderValue) -> Option<u8> {
    let code: u8 = value.to_str().ok()?.parse().ok()?;
    (code <= 16).then_some(code)
}

/// The route axum matched, when the span is made inside an axum router.
#[cfg(any(feature = "axum", feature = "grpc"))]
fn matched_path<B>(request: &http::Request<B>) -> Option<&str> {
    #[cfg(feature = "axum")]
    if let Some(path) = request.extensions().get::<axum::extract::MatchedPath>() {
        return Some(path.as_str());
    }
    let _ = request;
    None
}

// ===== axum =====

/// An axum middleware that gives every request a server span continuing the
/// caller's trace (see [`continue_trace`]).
///
/// The span is named `{method} {route}` in OpenTelemetry
/// (`otel.kind = "server"`) and records `http.request.method`, `url.path`,
/// `http.route` (when the router matched one) and
/// `http.response.status_code`; a 5xx sets `otel.status_code = "ERROR"`.
/// Handlers run inside it, so their own spans and their calls through a
/// [`Client`](crate::Client) join the same trace. gRPC requests get the
/// RPC attributes described at [`server`](crate::server).
/// [`server::layer()`](crate::server::layer) does the same as a tower
/// layer, for axum and tonic servers alike.
///
/// # Example
///
/// ```
/// use axum::{Router, middleware, routing::get};
///
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "alice" }))
///     .layer(middleware::from_fn(svc_client::trace_middleware));
/// # let _ = app;
/// ```
#[cfg(feature = "axum")]
pub async fn trace_middleware(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;

    let server = ServerSpan::new(&request);
    let response = next.run(request).instrument(server.span.clone()).await;
    server.record(&response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(traceparent: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, HeaderValue::from_str(traceparent).unwrap());
        h
    }

    #[test]
    fn parses_valid_traceparents() {
        for (value, sampled) in [
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                true,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
                true,
            ),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                true,
            ),
            (
                " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
                true,
            ),
        ] {
            let sc = parse_traceparent(&headers(value)).unwrap_or_else(|| panic!("{value}"));
            assert_eq!(
                sc.trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736"
            );
            assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
            assert_eq!(sc.is_sampled(), sampled, "{value}");
            assert!(sc.is_remote());
        }
    }

    #[test]
    fn rejects_invalid_traceparents() {
        for value in [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        ] {
            assert!(parse_traceparent(&headers(value)).is_none(), "{value:?}");
        }
        assert!(parse_traceparent(&HeaderMap::new()).is_none());
    }

    #[test]
    fn round_trips_trace_state() {
        let mut h = headers("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        h.insert(TRACESTATE, HeaderValue::from_static("vendor=abc,other=1"));
        let cx = extract_context(&h);
        let mut out = HeaderMap::new();
        inject_context(&cx, &mut out);
        assert_eq!(out[TRACEPARENT], h[TRACEPARENT]);
        assert_eq!(out[TRACESTATE], "vendor=abc,other=1");
    }

    #[test]
    fn traceparent_matches_the_w3c_format() {
        for flags in [
            TraceFlags::SAMPLED,
            TraceFlags::default(),
            TraceFlags::new(0xff),
        ] {
            let sc = SpanContext::new(
                TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
                SpanId::from_hex("b7ad6b7169203331").unwrap(),
                flags,
                false,
                TraceState::default(),
            );
            let want = format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                (flags & TraceFlags::SAMPLED).to_u8()
            );
            assert_eq!(std::str::from_utf8(&traceparent(&sc)).unwrap(), want);
        }
    }

    #[test]
    fn injecting_an_empty_context_writes_nothing() {
        let mut out = HeaderMap::new();
        inject_context(&Context::new(), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn an_empty_trace_state_removes_a_stale_one() {
        let cx = extract_context(&headers(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        let mut out = HeaderMap::new();
        out.insert(TRACESTATE, HeaderValue::from_static("stale=1"));
        inject_context(&cx, &mut out);
        assert!(out.get(TRACESTATE).is_none());
    }

    #[test]
    fn injector_skips_invalid_names_and_values() {
        let mut map = HeaderMap::new();
        let mut injector = HeaderInjector(&mut map);
        injector.set("bad name", "v".into());
        injector.set("x-ok", "bad\nvalue".into());
        injector.set("x-ok", "fine".into());
        assert_eq!(map.len(), 1);
        assert_eq!(map["x-ok"], "fine");
    }
}
