//! Raw TCP listeners for transport failures: nothing listening, a
//! connection closed without an answer, an answer that never comes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A port on 127.0.0.1 with nothing listening (bound, then released): a
/// connection to it is refused.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address")
}

/// A listener that speaks no HTTP (see [`resetting`] and [`stalling`]);
/// it stops, closing every connection it holds, when dropped.
#[derive(Debug)]
pub struct RawServer {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl RawServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:{port}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Connections accepted so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server that accepts each connection, reads (the start of) the request
/// and closes the socket without answering: the client's request was sent
/// and the connection ended instead of a response.
pub async fn resetting() -> RawServer {
    raw(|mut socket| async move {
        let mut buf = [0u8; 4096];
        let _ = socket.read(&mut buf).await;
        drop(socket);
    })
    .await
}

/// A server that accepts each connection, reads the request and never
/// answers, keeping the connection open until the server is dropped: only
/// the client's timeout ends the call.
pub async fn stalling() -> RawServer {
    raw(|mut socket| async move {
        let mut buf = [0u8; 4096];
        // Read (and ignore) whatever comes until the peer closes.
        while let Ok(n) = socket.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
}

async fn raw<F, Fut>(on_connection: F) -> RawServer
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            connections.spawn(on_connection(socket));
        }
    });
    RawServer { addr, hits, task }
}
