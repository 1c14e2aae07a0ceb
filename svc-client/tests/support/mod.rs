//! A real HTTP server on 127.0.0.1:0 per test, and clients pointed at it
//! through a `Registry` (never `std::env::set_var`).
#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Uri};
use svc_client::{Backoff, Client, ClientConfig, Registry};

/// Serves `app` on an ephemeral loopback port until the runtime ends.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// Test defaults: retries wait 1 ms instead of 100 ms.
pub fn fast_config() -> ClientConfig {
    ClientConfig::default().backoff(Backoff::default().base(Duration::from_millis(1)))
}

/// A client for `service` whose variable points at `addr` with `prefix`.
pub fn client_for(service: &str, addr: SocketAddr, prefix: &str, config: ClientConfig) -> Client {
    let var = svc_client::env_var(service).unwrap();
    let registry = Registry::from_vars([(var, format!("http://{addr}{prefix}"))]);
    Client::from_registry(&registry, service, config).unwrap()
}

/// What a recording server saw.
#[derive(Clone, Default)]
pub struct Seen {
    hits: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<(Uri, HeaderMap)>>>,
}

impl Seen {
    pub fn record(&self, uri: Uri, headers: HeaderMap) -> usize {
        self.requests.lock().unwrap().push((uri, headers));
        self.hits.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn uris(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(u, _)| u.to_string())
            .collect()
    }

    pub fn header_values(&self, name: &str) -> Vec<Option<String>> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, h)| h.get(name).map(|v| v.to_str().unwrap().to_owned()))
            .collect()
    }
}

/// A server answering every request with `status` and `body`, recording
/// each request.
pub async fn recording_server(status: u16, body: &'static str) -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let s = seen.clone();
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let s = s.clone();
        async move {
            s.record(uri, headers);
            (axum::http::StatusCode::from_u16(status).unwrap(), body)
        }
    });
    (serve(app).await, seen)
}

/// One `tracing` event as a test layer saw it: level, target, message and
/// every field rendered as text.
#[derive(Debug, Clone)]
pub struct Event {
    pub level: tracing::Level,
    pub target: String,
    pub fields: std::collections::BTreeMap<String, String>,
}

impl Event {
    pub fn message(&self) -> &str {
        self.fields.get("message").map_or("", String::as_str)
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// Every field value, for checks that nothing secret appears anywhere.
    pub fn all_text(&self) -> String {
        self.fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A `tracing` layer recording every event it is given, with its fields.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<Event>>>);

impl Events {
    pub fn all(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    pub fn at(&self, level: tracing::Level) -> Vec<Event> {
        self.all()
            .into_iter()
            .filter(|e| e.level == level)
            .collect()
    }
}

struct FieldVisitor<'a>(&'a mut std::collections::BTreeMap<String, String>);

impl tracing::field::Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Events {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = std::collections::BTreeMap::new();
        event.record(&mut FieldVisitor(&mut fields));
        self.0.lock().unwrap().push(Event {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
    }
}
