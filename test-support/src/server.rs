//! A real HTTP server per test that records what it receives and fails the
//! test if its handler panicked.
//!
//! A panic inside an axum handler only drops the connection: the client
//! sees a transport error, and a test asserting "the call failed" would pass
//! for the wrong reason. The server catches the panic, answers `500`, and
//! panics when its [`Server`] handle is dropped, so the test fails.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Request};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The largest request body a [`Server`] records (larger ones are recorded
/// empty).
const BODY_LIMIT: usize = 16 << 20;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// 0 for the first request this server received.
    pub n: usize,
    /// The request method.
    pub method: Method,
    /// The request target as received: path and query (`/users/1?x=y`).
    pub uri: Uri,
    /// The path of [`Seen::uri`], without the query.
    pub path: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The whole request body.
    pub body: Bytes,
}

impl Seen {
    /// The value of header `name`, if present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, Default)]
struct Record {
    hits: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    panicked: AtomicBool,
}

/// A running test server on `127.0.0.1`. It stops when dropped, and the
/// drop panics (failing the test) if a handler panicked.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    record: Arc<Record>,
    task: JoinHandle<()>,
}

impl Server {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:{port}{path}`; `url("")` is the base URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Requests received so far (counted before the handler runs).
    pub fn hits(&self) -> usize {
        self.record.hits.load(Ordering::SeqCst)
    }

    /// Every request received so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.record.seen.lock().unwrap().clone()
    }

    /// The request target (path and query) of every request so far.
    pub fn uris(&self) -> Vec<String> {
        self.seen().iter().map(|s| s.uri.to_string()).collect()
    }

    /// The value of header `name` in every request so far (`None` where
    /// it was absent).
    pub fn header_values(&self, name: &str) -> Vec<Option<String>> {
        self.seen()
            .iter()
            .map(|s| s.header(name).map(str::to_owned))
            .collect()
    }

    /// Whether a handler has panicked (the drop will fail the test).
    pub fn panicked(&self) -> bool {
        self.record.panicked.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        if self.panicked() && !std::thread::panicking() {
            panic!("the test server's handler panicked");
        }
    }
}

/// Starts a server answering every request (any method, any path) with
/// `handler`, which gets the request as [`Seen`].
///
/// ```no_run
/// # async fn run() {
/// use axum::http::StatusCode;
/// let server = svc_test_support::serve(|seen| async move {
///     if seen.n == 0 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
/// })
/// .await;
/// # }
/// ```
pub async fn serve<F, Fut, R>(handler: F) -> Server
where
    F: Fn(Seen) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    serve_on(SocketAddr::from(([127, 0, 0, 1], 0)), handler).await
}

/// Starts a server for `router`, recording every request and catching
/// panics in its handlers like [`serve`]. Handlers can take
/// `Extension<Seen>` to learn their request's number.
pub async fn serve_router(router: Router) -> Server {
    serve_router_on(SocketAddr::from(([127, 0, 0, 1], 0)), router).await
}

/// Like [`serve`], listening on `addr` (a loopback address): replicas of
/// one service on `127.0.0.1`, `127.0.0.2` and `127.0.0.3` with the same
/// port, as the addresses a host name resolves to.
///
/// # Panics
///
/// If `addr` cannot be bound.
pub async fn serve_on<F, Fut, R>(addr: SocketAddr, handler: F) -> Server
where
    F: Fn(Seen) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    let app = Router::new().fallback(move |Extension(seen): Extension<Seen>| {
        let handler = handler.clone();
        async move { handler(seen).await.into_response() }
    });
    serve_router_on(addr, app).await
}

/// Like [`serve_router`], listening on `addr`.
///
/// # Panics
///
/// If `addr` cannot be bound.
pub async fn serve_router_on(addr: SocketAddr, router: Router) -> Server {
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let addr = listener.local_addr().expect("local address");
    let record = Arc::new(Record::default());
    let app = Router::new()
        .fallback_service(router)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&record),
            recording,
        ));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Server { addr, record, task }
}

/// Records the request, hands it to the router with its [`Seen`] as an
/// extension, and turns a panic into `500` plus a failed test.
async fn recording(
    axum::extract::State(record): axum::extract::State<Arc<Record>>,
    request: Request,
    next: Next,
) -> Response {
    let n = record.hits.fetch_add(1, Ordering::SeqCst);
    let (mut parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .unwrap_or_default();
    let seen = Seen {
        n,
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    record.seen.lock().unwrap().push(seen.clone());
    parts.extensions.insert(seen);
    let request = Request::from_parts(parts, Body::from(body));
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            record.panicked.store(true, Ordering::SeqCst);
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A server answering request `n` with `statuses[min(n, len - 1)]` and an
/// empty body.
///
/// # Panics
///
/// If `statuses` is empty or holds an invalid status code.
pub async fn statuses(statuses: &[u16]) -> Server {
    assert!(!statuses.is_empty(), "at least one status");
    let statuses: Vec<StatusCode> = statuses
        .iter()
        .map(|&code| StatusCode::from_u16(code).expect("a valid status code"))
        .collect();
    let statuses: Arc<[StatusCode]> = statuses.into();
    serve(move |seen: Seen| {
        let statuses = Arc::clone(&statuses);
        async move { statuses[seen.n.min(statuses.len() - 1)] }
    })
    .await
}

/// A server whose every response is `status` with an empty body.
pub async fn always(status: u16) -> Server {
    statuses(&[status]).await
}

/// A server answering every request with `status` and `body`.
pub async fn recording_server(status: u16, body: &'static str) -> Server {
    let status = StatusCode::from_u16(status).expect("a valid status code");
    serve(move |_| async move { (status, body) }).await
}
