//! What the facade's tests share: clients pointed at a loopback server
//! through a `Registry` (never `std::env::set_var`). The servers and the
//! log capture come from `svc-test-support`.
#![allow(dead_code, unreachable_pub, unused_imports)] // each module uses a part

use std::net::SocketAddr;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
use svc_client::{Backoff, Client, ClientConfig, Registry};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;

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

/// Installs (for this thread only) a subscriber exporting OpenTelemetry
/// spans to memory, every span sampled.
pub fn otel() -> (InMemorySpanExporter, SdkTracerProvider, DefaultGuard) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let guard = tracing::subscriber::set_default(subscriber);
    (exporter, provider, guard)
}
