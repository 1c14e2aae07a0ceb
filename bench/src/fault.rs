//! The fault-injecting server of the soak.
//!
//! In [`Mode::Mixed`] each request draws one [`Fault`] at random (healthy
//! answers, 5xx, 429 with `Retry-After`, answers slower than the client's
//! attempt timeout, hangs past its whole-call timeout, connection resets,
//! bodies that fail after a `200` head (truncated, stalled, reset
//! mid-body), invalid JSON, 404); in [`Mode::Outage`] every request gets a
//! 503; in [`Mode::BadBodies`] every request gets a `200` head and then a
//! body that fails (one of [`Fault::BAD_BODIES`]). [`FaultState`] records
//! what the server saw: requests by kind, how often each non-idempotent POST
//! arrived, and arrival times (to find the longest silence, i.e. a breaker
//! that stopped letting trials through).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri, header};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use svc_demo::net::ConnHandle;

/// The header carrying a call's unique id (set by the soak's callers).
pub const CALL_ID: &str = "x-soak-call";

/// Requests whose path starts with this come from the soak's second client
/// (retry budget only, no breaker) and are counted apart.
pub const BUDGET_PREFIX: &str = "/budget/";

/// Requests whose path starts with this come from the soak's loopers (a
/// third client, calling again at once whenever its circuit is open) and are
/// counted only in [`FaultState::loop_requests`].
pub const LOOP_PREFIX: &str = "/loop/";

/// A request header naming a [`Fault`] (see [`Fault::name`]) to get that
/// answer instead of a random one in [`Mode::Mixed`] (for tests).
pub const FORCE_FAULT: &str = "x-soak-fault";

/// What the server does with the next requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A random [`Fault`] per request.
    Mixed,
    /// `503 Service Unavailable` for everything.
    Outage,
    /// A `200` head for everything, then a body that fails: one of
    /// [`Fault::BAD_BODIES`] at random. A dependency whose bodies keep
    /// failing: a client that reads the body as part of the attempt sees
    /// every attempt fail.
    BadBodies,
}

/// One way of answering a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// `200` with a small JSON body.
    Healthy,
    /// `500`, `502`, `503` or `504`.
    ServerError,
    /// `429` with a `Retry-After` in seconds, as an HTTP date, or absurdly
    /// large (the client must cap it).
    TooManyRequests,
    /// A `200` sent after the client's attempt timeout.
    Slow,
    /// A `200` sent after the client's whole-call timeout.
    Hang,
    /// The connection is reset instead of answered.
    Reset,
    /// `200` with `Content-Length` larger than the bytes sent, then the
    /// connection is closed.
    Truncated,
    /// `200` and the first bytes of the body, then nothing: the body stalls
    /// for [`Delays::hang`] (past the client's whole-call timeout) before
    /// the connection is closed.
    StalledBody,
    /// `200` and the first bytes of a chunked body, then the connection is
    /// reset (TCP RST) mid-body.
    BodyReset,
    /// `200` with `Content-Type: application/json` and a body that is not JSON.
    InvalidJson,
    /// `404`: a client error, no effect on the breaker.
    NotFound,
}

impl Fault {
    /// Every fault, in report order.
    pub const ALL: [Fault; 11] = [
        Fault::Healthy,
        Fault::ServerError,
        Fault::TooManyRequests,
        Fault::Slow,
        Fault::Hang,
        Fault::Reset,
        Fault::Truncated,
        Fault::StalledBody,
        Fault::BodyReset,
        Fault::InvalidJson,
        Fault::NotFound,
    ];

    /// The faults whose `200` head is followed by a body that fails: the
    /// answers of [`Mode::BadBodies`].
    pub const BAD_BODIES: [Fault; 3] = [Fault::Truncated, Fault::StalledBody, Fault::BodyReset];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Healthy => "healthy",
            Fault::ServerError => "5xx",
            Fault::TooManyRequests => "429",
            Fault::Slow => "slow",
            Fault::Hang => "hang",
            Fault::Reset => "reset",
            Fault::Truncated => "truncated",
            Fault::StalledBody => "stalled-body",
            Fault::BodyReset => "body-reset",
            Fault::InvalidJson => "invalid-json",
            Fault::NotFound => "404",
        }
    }

    /// The fault called `name` (see [`Fault::name`]).
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Draws a fault with the soak's weights (percent): healthy 70, 5xx 4,
    /// 429 3, slow 3, hang 1, reset 3, truncated 3, stalled body 1, body
    /// reset 1, invalid JSON 6, 404 5.
    ///
    /// 14% of the answers count as breaker failures (5xx, 429, slow, hang,
    /// reset), and 5% more (the failing bodies) where the client reads the
    /// body within the attempt: enough for five in a row now and then at a
    /// few thousand attempts a second, so the circuit opens in mixed phases
    /// too, while most traffic still goes through a closed circuit.
    pub fn draw(rng: &mut fastrand::Rng) -> Fault {
        Fault::from_percentile(rng.u8(0..100))
    }

    /// The fault for a percentile draw in `0..100` (see [`Fault::draw`]).
    pub fn from_percentile(p: u8) -> Fault {
        match p {
            0..70 => Fault::Healthy,
            70..74 => Fault::ServerError,
            74..77 => Fault::TooManyRequests,
            77..80 => Fault::Slow,
            80..81 => Fault::Hang,
            81..84 => Fault::Reset,
            84..87 => Fault::Truncated,
            87..88 => Fault::StalledBody,
            88..89 => Fault::BodyReset,
            89..95 => Fault::InvalidJson,
            _ => Fault::NotFound,
        }
    }
}

/// How long the slow and hanging answers take.
#[derive(Clone, Copy, Debug)]
pub struct Delays {
    /// Delay of [`Fault::Slow`] (longer than the attempt timeout).
    pub slow: Duration,
    /// Delay of [`Fault::Hang`], and how long a [`Fault::StalledBody`]
    /// stalls (longer than the whole-call timeout, but bounded so the soak
    /// ends).
    pub hang: Duration,
}

/// What the fault server saw; shared with the handler.
#[derive(Debug)]
pub struct FaultState {
    mode: AtomicU8,
    delays: Delays,
    started: Instant,
    requests: AtomicU64,
    outage_requests: AtomicU64,
    budget_requests: AtomicU64,
    budget_outage_requests: AtomicU64,
    loop_requests: AtomicU64,
    bad_body_requests: AtomicU64,
    by_fault: Mutex<HashMap<Fault, u64>>,
    /// Arrivals of POSTs without an `Idempotency-Key`, by call id.
    unkeyed_posts: Mutex<HashMap<u64, u32>>,
    /// Arrivals of POSTs with an `Idempotency-Key`, by call id.
    keyed_posts: Mutex<HashMap<u64, u32>>,
    /// Arrival times of requests outside [`BUDGET_PREFIX`], in microseconds
    /// since `started`.
    arrivals: Mutex<Vec<u64>>,
}

impl FaultState {
    /// A state in [`Mode::Mixed`].
    pub fn new(delays: Delays) -> Arc<FaultState> {
        Arc::new(FaultState {
            mode: AtomicU8::new(0),
            delays,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            outage_requests: AtomicU64::new(0),
            budget_requests: AtomicU64::new(0),
            budget_outage_requests: AtomicU64::new(0),
            loop_requests: AtomicU64::new(0),
            bad_body_requests: AtomicU64::new(0),
            by_fault: Mutex::default(),
            unkeyed_posts: Mutex::default(),
            keyed_posts: Mutex::default(),
            arrivals: Mutex::default(),
        })
    }

    /// Switches the answers of the following requests.
    pub fn set_mode(&self, mode: Mode) {
        let value = match mode {
            Mode::Mixed => 0,
            Mode::Outage => 1,
            Mode::BadBodies => 2,
        };
        self.mode.store(value, Ordering::SeqCst);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        match self.mode.load(Ordering::SeqCst) {
            0 => Mode::Mixed,
            1 => Mode::Outage,
            _ => Mode::BadBodies,
        }
    }

    /// The instant the arrival times are measured from.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Requests received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests received while in [`Mode::Outage`] (those under
    /// [`LOOP_PREFIX`] excepted).
    pub fn outage_requests(&self) -> u64 {
        self.outage_requests.load(Ordering::SeqCst)
    }

    /// Requests under [`BUDGET_PREFIX`] received.
    pub fn budget_requests(&self) -> u64 {
        self.budget_requests.load(Ordering::SeqCst)
    }

    /// Requests under [`BUDGET_PREFIX`] received while in [`Mode::Outage`].
    pub fn budget_outage_requests(&self) -> u64 {
        self.budget_outage_requests.load(Ordering::SeqCst)
    }

    /// Requests under [`LOOP_PREFIX`] received, in any mode.
    pub fn loop_requests(&self) -> u64 {
        self.loop_requests.load(Ordering::SeqCst)
    }

    /// Requests answered in [`Mode::BadBodies`] (those under [`LOOP_PREFIX`]
    /// excepted).
    pub fn bad_body_requests(&self) -> u64 {
        self.bad_body_requests.load(Ordering::SeqCst)
    }

    /// Requests answered with each fault (mixed mode only).
    pub fn by_fault(&self) -> Vec<(Fault, u64)> {
        let map = lock(&self.by_fault);
        Fault::ALL
            .iter()
            .map(|f| (*f, map.get(f).copied().unwrap_or(0)))
            .collect()
    }

    /// POSTs without an `Idempotency-Key` that arrived more than once:
    /// `(call id, arrivals)`, sorted.
    pub fn replayed_unkeyed_posts(&self) -> Vec<(u64, u32)> {
        let mut replayed: Vec<(u64, u32)> = lock(&self.unkeyed_posts)
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (*id, *n))
            .collect();
        replayed.sort_unstable();
        replayed
    }

    /// Distinct POSTs without an `Idempotency-Key` that arrived.
    pub fn unkeyed_posts(&self) -> usize {
        lock(&self.unkeyed_posts).len()
    }

    /// `(distinct keyed POSTs, their total arrivals)`: replays of these are
    /// allowed, and show that the client does retry a keyed POST.
    pub fn keyed_posts(&self) -> (usize, u64) {
        let map = lock(&self.keyed_posts);
        (map.len(), map.values().map(|n| u64::from(*n)).sum())
    }

    /// The longest time without any request (outside [`BUDGET_PREFIX`])
    /// arriving between `from` and `to` (both measured from [`FaultState::started`]), and when it began.
    pub fn longest_silence(&self, from: Duration, to: Duration) -> (Duration, Duration) {
        let mut arrivals = lock(&self.arrivals).clone();
        arrivals.sort_unstable();
        let from_us = duration_us(from);
        let to_us = duration_us(to);
        let mut previous = from_us;
        let mut longest = (0, from_us);
        for t in arrivals
            .into_iter()
            .filter(|t| *t >= from_us && *t <= to_us)
        {
            if t - previous > longest.0 {
                longest = (t - previous, previous);
            }
            previous = t;
        }
        if to_us.saturating_sub(previous) > longest.0 {
            longest = (to_us - previous, previous);
        }
        (
            Duration::from_micros(longest.0),
            Duration::from_micros(longest.1),
        )
    }

    /// When the last request (outside [`BUDGET_PREFIX`]) arrived, from
    /// [`FaultState::started`].
    pub fn last_arrival(&self) -> Option<Duration> {
        lock(&self.arrivals)
            .iter()
            .max()
            .map(|us| Duration::from_micros(*us))
    }

    fn record_arrival(&self) {
        let now = duration_us(self.started.elapsed());
        lock(&self.arrivals).push(now);
    }
}

fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Locks `m`, ignoring poisoning: a panicking handler must not hide the
/// counts (the soak reports panics separately).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

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

/// Formats seconds since the Unix epoch as an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn format_http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm), for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        hour,
        minute,
        second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_match_the_rfc_examples() {
        assert_eq!(
            format_http_date(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            format_http_date(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
    }

    #[test]
    fn weights_cover_every_fault() {
        let mut seen = HashMap::new();
        for p in 0..100 {
            *seen.entry(Fault::from_percentile(p)).or_insert(0) += 1;
        }
        for fault in Fault::ALL {
            assert!(seen.contains_key(&fault), "{fault:?} is never drawn");
            assert_eq!(Fault::from_name(fault.name()), Some(fault));
        }
        assert_eq!(seen[&Fault::Healthy], 70);
        assert_eq!(seen[&Fault::Hang], 1);
    }

    #[test]
    fn longest_silence_spans_the_ends_and_the_gaps() {
        let state = FaultState::new(Delays {
            slow: Duration::ZERO,
            hang: Duration::ZERO,
        });
        lock(&state.arrivals).extend([1_000_000, 1_100_000, 2_600_000, 2_700_000]);
        let (gap, at) = state.longest_silence(Duration::from_secs(1), Duration::from_secs(3));
        assert_eq!(gap, Duration::from_millis(1500));
        assert_eq!(at, Duration::from_millis(1100));
        // The tail counts as silence too.
        let (gap, at) = state.longest_silence(Duration::from_secs(1), Duration::from_secs(5));
        assert_eq!(gap, Duration::from_millis(2300));
        assert_eq!(at, Duration::from_millis(2700));
    }
}
