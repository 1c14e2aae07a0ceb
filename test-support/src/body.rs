//! A server whose `200` answers carry broken bodies: the body is part of
//! the attempt, so a client must see a cut, reset or stalled body as a
//! failure of the call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a [`body_faults`] server does with the body of one response. The
/// head is always `200 OK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// The whole body: [`GOOD_BODY`].
    Whole,
    /// `Content-Length` promises more than is sent, then the connection
    /// closes.
    Truncate,
    /// A chunked body cut off inside a chunk: the connection closes
    /// without the last chunk.
    Reset,
    /// Part of the body, then nothing: the connection stays open and
    /// silent for a minute (the client's timeout must end it).
    Stall,
}

/// The JSON body a [`BodyFault::Whole`] answer carries.
pub const GOOD_BODY: &str = r#"{"id":"u1","name":"ada"}"#;

/// A server on 127.0.0.1:0 answering request `n` (from 0) according to
/// `pattern[n % pattern.len()]`, one request per connection. Returns its
/// address and a counter of the requests it received.
pub async fn body_faults(pattern: &[BodyFault]) -> (SocketAddr, Arc<AtomicUsize>) {
    assert!(!pattern.is_empty(), "a pattern of at least one fault");
    let pattern: Arc<[BodyFault]> = pattern.into();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let fault = pattern[n % pattern.len()];
            tokio::spawn(answer(socket, fault));
        }
    });
    (addr, hits)
}

async fn answer(mut socket: TcpStream, fault: BodyFault) {
    if read_head(&mut socket).await.is_none() {
        return;
    }
    let head = |length: usize| {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
        )
    };
    let _ = match fault {
        BodyFault::Whole => {
            let mut out = head(GOOD_BODY.len());
            out.push_str(GOOD_BODY);
            socket.write_all(out.as_bytes()).await
        }
        BodyFault::Truncate => {
            let mut out = head(GOOD_BODY.len() * 4);
            out.push_str(&GOOD_BODY[..8]);
            socket.write_all(out.as_bytes()).await
        }
        BodyFault::Reset => {
            let out = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n40\r\n{\"id\":";
            socket.write_all(out.as_bytes()).await
        }
        BodyFault::Stall => {
            let mut out = head(GOOD_BODY.len());
            out.push_str(&GOOD_BODY[..8]);
            let written = socket.write_all(out.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
            written
        }
    };
    let _ = socket.shutdown().await;
}

/// Reads up to the end of the request head; `None` if the peer closed first.
async fn read_head(socket: &mut TcpStream) -> Option<()> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(4).any(|w| w == b"\r\n\r\n") {
            return Some(());
        }
    }
}
