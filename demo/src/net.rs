//! Serving a router on a listener that counts its connections and lets a
//! handler reset its own.
//!
//! axum gives a handler no way to drop its own connection without answering.
//! [`TrackedListener`] wraps every accepted [`TcpStream`] in a
//! [`TrackedStream`] and hands each request a [`ConnHandle`] (as
//! `ConnectInfo<ConnHandle>`). A handler that calls [`ConnHandle::reset`]
//! and then returns any response makes the connection fail: the next read or
//! write on the socket returns `ConnectionReset` before a byte of the
//! response is written, hyper drops the connection, and the socket, set to
//! `SO_LINGER 0` at that moment, is closed with a TCP RST. The caller sees
//! exactly what a crashed or misbehaving server produces: a request sent and
//! a connection reset instead of an answer.
//!
//! The listener also counts the connections it accepted and still holds
//! ([`ConnectionStats`]): the bench and the soak check that clients reuse
//! and release them.
//!
//! This is the one copy: the demo's services serve with [`serve`], and
//! `svc-bench`'s healthy and fault-injecting servers with [`spawn`].

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

// ===== impl ConnectionStats =====

/// Connection counters shared by a listener and its accepted streams.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    accepted: AtomicU64,
    open: AtomicU64,
    peak_open: AtomicU64,
    resets: AtomicU64,
}

impl ConnectionStats {
    /// Connections accepted since the server started.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections accepted and not yet closed by the server.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// The largest number of simultaneously open connections seen.
    pub fn peak_open(&self) -> u64 {
        self.peak_open.load(Ordering::Relaxed)
    }

    /// Connections the server reset on purpose.
    pub fn resets(&self) -> u64 {
        self.resets.load(Ordering::Relaxed)
    }

    fn opened(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_open.fetch_max(now, Ordering::Relaxed);
    }
}

// ===== impl TrackedListener =====

/// A TCP listener whose connections can be reset by the handler serving
/// them, and which counts them (see [`ConnectionStats`]).
#[derive(Debug)]
pub struct TrackedListener {
    inner: TcpListener,
    stats: Arc<ConnectionStats>,
}

impl TrackedListener {
    /// Wraps a bound listener.
    pub fn new(inner: TcpListener) -> Self {
        TrackedListener {
            inner,
            stats: Arc::default(),
        }
    }

    /// Binds `127.0.0.1:0`.
    pub async fn bind() -> io::Result<TrackedListener> {
        Ok(TrackedListener::new(
            TcpListener::bind("127.0.0.1:0").await?,
        ))
    }

    /// The counters of this listener's connections.
    pub fn stats(&self) -> Arc<ConnectionStats> {
        Arc::clone(&self.stats)
    }
}

impl Listener for TrackedListener {
    type Io = TrackedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    // Small JSON answers: send them at once.
                    let _ = stream.set_nodelay(true);
                    self.stats.opened();
                    let handle = ConnHandle {
                        peer,
                        reset: Arc::new(AtomicBool::new(false)),
                    };
                    let stream = TrackedStream {
                        inner: stream,
                        handle,
                        stats: Arc::clone(&self.stats),
                    };
                    return (stream, peer);
                }
                // Out of file descriptors and the like: back off briefly,
                // as axum's own listener does.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

// ===== impl ConnHandle =====

/// The handle a request gets on its own connection (`ConnectInfo<ConnHandle>`).
#[derive(Clone, Debug)]
pub struct ConnHandle {
    peer: SocketAddr,
    reset: Arc<AtomicBool>,
}

impl ConnHandle {
    /// Marks the connection for reset: whatever the handler answers is never
    /// written, and the connection is closed with a TCP RST.
    pub fn reset(&self) {
        self.reset.store(true, Ordering::Release);
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

impl Connected<IncomingStream<'_, TrackedListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, TrackedListener>) -> Self {
        stream.io().handle.clone()
    }
}

// ===== impl TrackedStream =====

/// An accepted connection that fails every read and write once reset.
#[derive(Debug)]
pub struct TrackedStream {
    inner: TcpStream,
    handle: ConnHandle,
    stats: Arc<ConnectionStats>,
}

impl TrackedStream {
    /// When the handler asked for a reset: arrange an RST on close and fail
    /// the I/O so the server drops the connection now.
    fn check(&self) -> io::Result<()> {
        if self.handle.reset.load(Ordering::Acquire) {
            // Closing with SO_LINGER 0 sends RST instead of FIN.
            let _ = self.inner.set_zero_linger();
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset by fault injection",
            ));
        }
        Ok(())
    }
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        if self.handle.reset.load(Ordering::Acquire) {
            self.stats.resets.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// ===== serving =====

/// Serves `router` on `listener` until the process ends, with a
/// [`ConnHandle`] for every request.
///
/// # Errors
///
/// Returns the I/O error that stopped the server.
pub async fn serve(listener: TcpListener, router: Router) -> io::Result<()> {
    axum::serve(
        TrackedListener::new(listener),
        router.into_make_service_with_connect_info::<ConnHandle>(),
    )
    .await
}

/// A server running in a task (see [`spawn`]); stops when
/// [`Server::shutdown`] is called or when it is dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stats: Arc<ConnectionStats>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<io::Result<()>>>,
}

/// Serves `router` on `127.0.0.1:0` in a task of the current runtime, with
/// a [`ConnHandle`] for every request.
///
/// # Errors
///
/// Returns the error binding the port.
pub async fn spawn(router: Router) -> io::Result<Server> {
    let listener = TrackedListener::bind().await?;
    let addr = listener.local_addr()?;
    let stats = listener.stats();
    let (stop, mut stopped) = watch::channel(false);
    let app = router.into_make_service_with_connect_info::<ConnHandle>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(Server {
        addr,
        stats,
        stop,
        task: Some(task),
    })
}

impl Server {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The connection counters.
    pub fn stats(&self) -> &ConnectionStats {
        &self.stats
    }

    /// Stops accepting, and ends the serving task without waiting for
    /// in-flight requests (hung handlers are dropped with it).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
