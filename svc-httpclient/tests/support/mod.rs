//! A real HTTP server on 127.0.0.1:0 per test (reqwest's
//! `tests/support/server.rs` pattern): it counts and records the requests it
//! receives and fails the test if its handler panicked.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use futures_util::FutureExt;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// 0 for the first request this server received.
    pub n: usize,
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A running test server; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    panicked: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        if self.panicked.load(Ordering::SeqCst) && !std::thread::panicking() {
            panic!("the test server's handler panicked");
        }
    }
}

/// Starts a server answering every request with `handler`.
pub async fn serve<F, Fut, R>(handler: F) -> Server
where
    F: Fn(Seen) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let panicked = Arc::new(AtomicBool::new(false));
    let app = {
        let (hits, seen, panicked) = (hits.clone(), seen.clone(), panicked.clone());
        Router::new().fallback(move |req: Request| {
            let (hits, seen, panicked, handler) = (
                hits.clone(),
                seen.clone(),
                panicked.clone(),
                handler.clone(),
            );
            async move {
                let n = hits.fetch_add(1, Ordering::SeqCst);
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .unwrap_or_default();
                let request = Seen {
                    n,
                    method: parts.method,
                    path: parts.uri.path().to_owned(),
                    headers: parts.headers,
                    body,
                };
                seen.lock().unwrap().push(request.clone());
                match AssertUnwindSafe(handler(request)).catch_unwind().await {
                    Ok(response) => response.into_response(),
                    Err(_) => {
                        panicked.store(true, Ordering::SeqCst);
                        StatusCode::INTERNAL_SERVER_ERROR.into_response()
                    }
                }
            }
        })
    };
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        addr,
        hits,
        seen,
        panicked,
        task,
    }
}

/// A server answering request `n` with `statuses[min(n, len - 1)]`.
pub async fn statuses(statuses: &[u16]) -> Server {
    let statuses: Arc<[u16]> = statuses.into();
    serve(move |seen: Seen| {
        let statuses = statuses.clone();
        async move {
            let code = statuses[seen.n.min(statuses.len() - 1)];
            StatusCode::from_u16(code).unwrap()
        }
    })
    .await
}

/// A server whose every response is `status`.
pub async fn always(status: u16) -> Server {
    statuses(&[status]).await
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A server that accepts connections, reads the request and closes the
/// socket without answering. Returns its address and a hit counter.
pub async fn resetting() -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            drop(socket);
        }
    });
    (addr, hits, task)
}

/// A `tracing` writer collecting everything into a shared buffer.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
