//! The fault server's one handler: it counts the request in [`FaultState`]
//! and answers as the mode (or, in mixed mode, a drawn [`Fault`]) says.

use super::{BUDGET_PREFIX, CALL_ID, Delays, FORCE_FAULT, Fault, FaultState, LOOP_PREFIX, Mode};
use crate::date::format_http_date;
use crate::lock;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri, header};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};
use svc_demo::net::ConnHandle;

/// The fault server's routes: every path and method goes to one handler.
pub fn router(state: Arc<FaultState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

async fn handle(
    State(state): State<Arc<FaultState>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    _body: Bytes,
) -> Response<Body> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let budget = uri.path().starts_with(BUDGET_PREFIX);
    let looper = uri.path().starts_with(LOOP_PREFIX);
    if budget {
        state.budget_requests.fetch_add(1, Ordering::SeqCst);
    } else if looper {
        state.loop_requests.fetch_add(1, Ordering::SeqCst);
    } else {
        // The silence that matters is the breaker client's.
        state.record_arrival();
    }
    if method == Method::POST {
        let id = headers
            .get(CALL_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(id) = id {
            let posts = if headers.contains_key("idempotency-key") {
                &state.keyed_posts
            } else {
                &state.unkeyed_posts
            };
            *lock(posts).entry(id).or_insert(0) += 1;
        }
    }
    let mut rng = fastrand::Rng::new();
    match state.mode() {
        Mode::Mixed => {}
        Mode::Outage => {
            if !looper {
                state.outage_requests.fetch_add(1, Ordering::SeqCst);
            }
            if budget {
                state.budget_outage_requests.fetch_add(1, Ordering::SeqCst);
            }
            return status(StatusCode::SERVICE_UNAVAILABLE, "outage");
        }
        Mode::BadBodies => {
            if !looper {
                state.bad_body_requests.fetch_add(1, Ordering::SeqCst);
            }
            let fault = Fault::BAD_BODIES[rng.usize(0..Fault::BAD_BODIES.len())];
            return answer(fault, &state.delays, &conn, &mut rng).await;
        }
    }
    let forced = headers
        .get(FORCE_FAULT)
        .and_then(|v| v.to_str().ok())
        .and_then(Fault::from_name);
    let fault = forced.unwrap_or_else(|| Fault::draw(&mut rng));
    *lock(&state.by_fault).entry(fault).or_insert(0) += 1;
    answer(fault, &state.delays, &conn, &mut rng).await
}

/// Produces the answer for `fault`.
async fn answer(
    fault: Fault,
    delays: &Delays,
    conn: &ConnHandle,
    rng: &mut fastrand::Rng,
) -> Response<Body> {
    match fault {
        Fault::Healthy => json(r#"{"ok":true}"#),
        Fault::ServerError => {
            let code = [500, 502, 503, 504][rng.usize(0..4)];
            status(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "server error",
            )
        }
        Fault::TooManyRequests => {
            let retry_after = match rng.u8(0..5) {
                0 => "0".to_owned(),
                1 => "1".to_owned(),
                2 => "3".to_owned(),
                3 => httpdate_in(Duration::from_secs(2)),
                // Far beyond any sane cap: the client must not sleep that long.
                _ => "86400000".to_owned(),
            };
            let mut resp = status(StatusCode::TOO_MANY_REQUESTS, "slow down");
            if let Ok(value) = retry_after.parse() {
                resp.headers_mut().insert(header::RETRY_AFTER, value);
            }
            resp
        }
        Fault::Slow => {
            tokio::time::sleep(delays.slow).await;
            json(r#"{"ok":"late"}"#)
        }
        Fault::Hang => {
            tokio::time::sleep(delays.hang).await;
            json(r#"{"ok":"very late"}"#)
        }
        Fault::Reset => {
            conn.reset();
            status(StatusCode::OK, "never sent")
        }
        Fault::Truncated => truncated(),
        Fault::StalledBody => stalled_body(delays.hang),
        Fault::BodyReset => body_reset(conn.clone()),
        Fault::InvalidJson => json("{not json"),
        Fault::NotFound => status(StatusCode::NOT_FOUND, "no such thing"),
    }
}

/// The head and the first bytes go out; a moment later the body fails and
/// the server aborts the connection, 990 bytes short of its `Content-Length`.
fn truncated() -> Response<Body> {
    failing_body(Some(1000), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(std::io::Error::other("truncated on purpose"))
    })
}

/// The head and the first bytes go out, then the body stalls for `stall`
/// (the client must give up first) before the server aborts the connection.
fn stalled_body(stall: Duration) -> Response<Body> {
    failing_body(Some(1000), async move {
        tokio::time::sleep(stall).await;
        Err(std::io::Error::other("stalled on purpose"))
    })
}

/// The head and the first bytes of a chunked body go out; a moment later
/// the connection is reset (the next chunk's write fails and the server
/// closes with RST).
fn body_reset(conn: ConnHandle) -> Response<Body> {
    failing_body(None, async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        conn.reset();
        Ok(Bytes::from_static(br#""never arrives"}"#))
    })
}

/// A `200` JSON response whose body is `{"partial":`, then what `rest`
/// yields, then an error that aborts the connection. With `length`, the head
/// announces that `Content-Length` (more than is ever sent); without, the
/// body is chunked.
fn failing_body(
    length: Option<u64>,
    rest: impl std::future::Future<Output = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Response<Body> {
    use futures_util::StreamExt as _;
    let first = Bytes::from_static(br#"{"partial":"#);
    let head = futures_util::stream::iter([Ok::<_, std::io::Error>(first)]);
    let end = futures_util::stream::iter([Err(std::io::Error::other("body cut on purpose"))]);
    let body = head.chain(futures_util::stream::once(rest)).chain(end);
    let mut resp = Response::new(Body::from_stream(body));
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, length.into());
    }
    resp
}

fn json(body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn status(code: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = code;
    resp
}

/// An HTTP date `after` from now, as `Retry-After` accepts it.
fn httpdate_in(after: Duration) -> String {
    let at = SystemTime::now() + after;
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_http_date(secs)
}
