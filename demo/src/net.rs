//! Serving a router on a listener whose connections a handler can reset.
//!
//! axum gives a handler no way to drop its own connection without answering.
//! [`serve`] wraps every accepted [`TcpStream`] in a [`ResettableStream`] and
//! hands each request a [`ConnHandle`] (as `ConnectInfo<ConnHandle>`). A
//! handler that calls [`ConnHandle::reset`] and then returns any response
//! makes the connection fail: the next read or write on the socket returns
//! `ConnectionReset` before a byte of the response is written, hyper drops
//! the connection, and the socket, set to `SO_LINGER 0` at that moment, is
//! closed with a TCP RST. The caller sees exactly what a crashed or
//! misbehaving server produces: a request sent and a connection reset
//! instead of an answer.

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections can be reset by the handler serving them.
#[derive(Debug)]
pub struct ResettableListener {
    inner: TcpListener,
}

impl ResettableListener {
    /// Wraps a bound listener.
    pub fn new(inner: TcpListener) -> Self {
        ResettableListener { inner }
    }
}

impl Listener for ResettableListener {
    type Io = ResettableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        // Small JSON answers: send them at once.
        let _ = stream.set_nodelay(true);
        let stream = ResettableStream {
            inner: stream,
            reset: Arc::new(AtomicBool::new(false)),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An accepted connection that fails every read and write once reset.
#[derive(Debug)]
pub struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl ResettableStream {
    fn check(&self) -> io::Result<()> {
        if self.reset.load(Ordering::Acquire) {
            // Closing with SO_LINGER 0 sends RST instead of FIN.
            let _ = self.inner.set_zero_linger();
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset by fault injection",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

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

impl Connected<IncomingStream<'_, ResettableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, ResettableListener>) -> Self {
        ConnHandle {
            peer: *stream.remote_addr(),
            reset: Arc::clone(&stream.io().reset),
        }
    }
}

/// Serves `router` on `listener` until the process ends, with a
/// [`ConnHandle`] for every request.
///
/// # Errors
///
/// Returns the I/O error that stopped the server.
pub async fn serve(listener: TcpListener, router: Router) -> io::Result<()> {
    axum::serve(
        ResettableListener::new(listener),
        router.into_make_service_with_connect_info::<ConnHandle>(),
    )
    .await
}
