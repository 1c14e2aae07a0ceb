//! What the facade's tests share: clients pointed at a loopback server
//! through a `Registry` (never `std::env::set_var`). The servers and the
//! log capture come from `svc-test-support`.
#![allow(dead_code, unreachable_pub, unused_imports)] // each module uses a part

use std::net::SocketAddr;
use std::time::Duration;

use svc_client::{Backoff, Client, ClientConfig, Registry};

pub use svc_test_support::{
    Event, Events, Seen, Server, closed_port, recording_server, serve, serve_router,
};

/// Test defaults: retries wait 1 ms instead of 100 ms.
pub fn fast_config() -> ClientConfig {
    ClientConfig::default().http(|c| c.backoff(Backoff::default().base(Duration::from_millis(1))))
}

/// A client for `service` whose variable points at `addr` with `prefix`.
pub fn client_for(service: &str, addr: SocketAddr, prefix: &str, config: ClientConfig) -> Client {
    let var = svc_client::env_var(service).unwrap();
    let registry = Registry::from_vars([(var, format!("http://{addr}{prefix}"))]);
    Client::from_registry(&registry, service, config).unwrap()
}
