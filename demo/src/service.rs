//! What every demo service does at startup: where to listen, and how to run.

use axum::Router;
use std::io::Write;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The address to listen on: `LISTEN_ADDR` (e.g. `127.0.0.1:0`), else
/// `0.0.0.0:$PORT`, else `0.0.0.0:<default_port>`. Never assumes loopback:
/// in a container the service must be reachable from other pods.
///
/// # Errors
///
/// A message naming the variable whose value is not an address or port.
pub fn listen_addr(default_port: u16) -> Result<SocketAddr, String> {
    listen_addr_from(
        std::env::var("LISTEN_ADDR").ok().as_deref(),
        std::env::var("PORT").ok().as_deref(),
        default_port,
    )
}

/// [`listen_addr`] on given values (testable without the environment).
///
/// # Errors
///
/// A message naming the variable whose value is not an address or port.
///
/// ```
/// use svc_demo::service::listen_addr_from;
///
/// assert_eq!(listen_addr_from(None, Some("9000"), 8001).unwrap().to_string(), "0.0.0.0:9000");
/// assert_eq!(listen_addr_from(Some("127.0.0.1:0"), Some("9000"), 8001).unwrap().to_string(), "127.0.0.1:0");
/// assert!(listen_addr_from(None, Some("http"), 8001).unwrap_err().contains("PORT"));
/// ```
pub fn listen_addr_from(
    listen_addr: Option<&str>,
    port: Option<&str>,
    default_port: u16,
) -> Result<SocketAddr, String> {
    if let Some(addr) = listen_addr.filter(|v| !v.is_empty()) {
        return addr
            .parse()
            .map_err(|_| format!("LISTEN_ADDR is not a socket address: `{addr}`"));
    }
    let port = match port.filter(|v| !v.is_empty()) {
        Some(port) => port
            .parse::<u16>()
            .map_err(|_| format!("PORT is not a port number: `{port}`"))?,
        None => default_port,
    };
    Ok(SocketAddr::from(([0, 0, 0, 0], port)))
}

/// Binds [`listen_addr`], prints `listening on <addr>` as the first line of
/// stdout (the demo driver reads the port from it: it starts services on
/// port 0, so no port is picked before it is bound), then serves `router`
/// until the process ends.
///
/// # Errors
///
/// When the address is invalid or cannot be bound, or the server fails.
pub async fn run(service: &'static str, default_port: u16, router: Router) -> Result<(), String> {
    let addr = listen_addr(default_port)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|err| format!("{service}: cannot listen on {addr}: {err}"))?;
    let local = listener
        .local_addr()
        .map_err(|err| format!("{service}: no local address: {err}"))?;
    tracing::info!(%local, "{service} listening");
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening on {local}");
    let _ = stdout.flush();
    drop(stdout);
    crate::net::serve(listener, router)
        .await
        .map_err(|err| format!("{service}: server failed: {err}"))
}
