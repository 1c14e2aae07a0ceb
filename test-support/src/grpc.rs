//! A real tonic server on `127.0.0.1:0` (feature `grpc`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

/// A tonic server listening on `127.0.0.1:0`, built by the test (its
/// services, its layers) and run by [`GrpcServer::start`]. It stops when
/// [`shut_down`](GrpcServer::shut_down) is awaited or when it is dropped; a
/// server that fails while running fails the test at `shut_down`.
///
/// ```no_run
/// # async fn run() {
/// use svc_test_support::GrpcServer;
/// use tonic::transport::Server;
///
/// let (_reporter, health) = tonic_health::server::health_reporter();
/// let server = GrpcServer::start(|incoming, stop| {
///     Server::builder()
///         .add_service(health)
///         .serve_with_incoming_shutdown(incoming, stop)
/// })
/// .await;
/// // ... point a channel at server.url() ...
/// server.shut_down().await;
/// # }
/// ```
#[derive(Debug)]
pub struct GrpcServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// The shutdown signal handed to the server: resolves when the
/// [`GrpcServer`] is shut down or dropped.
#[derive(Debug)]
pub struct Stop(oneshot::Receiver<()>);

impl Future for Stop {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A sent signal and a dropped sender both mean "stop".
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}

impl GrpcServer {
    /// Binds `127.0.0.1:0` and spawns `serve(incoming, stop)`, typically
    /// `Server::builder()...serve_with_incoming_shutdown(incoming, stop)`.
    pub async fn start<F, Fut>(serve: F) -> GrpcServer
    where
        F: FnOnce(TcpIncoming, Stop) -> Fut,
        Fut: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a bound listener's address");
        let (stop, stopped) = oneshot::channel();
        let server = serve(TcpIncoming::from(listener), Stop(stopped));
        let task = tokio::spawn(async move {
            server.await.expect("the gRPC server failed");
        });
        GrpcServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it and waits until it is gone; fails the test if it failed.
    pub async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the gRPC server task");
        }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
