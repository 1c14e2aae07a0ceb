//! `profile-svc`: the seed's `GetUserProfile` as a service.
//!
//! `GET /profiles/{id}` needs the user from `auth-svc` (required) and
//! enriches it with recent messages from `chat-svc` (optional):
//!
//! | situation | answer |
//! |---|---|
//! | both answer | 200, the profile with its messages, `degraded: false` |
//! | chat fails, or its circuit is open | 200, the profile, `messages: []`, `degraded: true` |
//! | chat not configured (`CHAT_SVC_URL` unset) | 200, the profile, `messages: []`, `degraded: false` |
//! | auth's circuit is open | 503 at once, `Retry-After` = the breaker's wait, rounded up |
//! | auth answers 404 | 404 |
//! | the caller's budget ran out waiting for auth | 504 at the deadline |
//! | auth fails otherwise | 502 |
//!
//! The routes run behind `svc_client::server::layer()`: a request's budget
//! (`svc-timeout-ms`, set by the driver's deadline phases) bounds the calls
//! to auth and chat, and reaches them. `POST /admin/deadlines`
//! `{"propagate": false}` switches to an auth client built with
//! `ClientConfig::propagate_deadline(false)` (the comparison: each hop
//! restarts the clock); `{"propagate": true}` switches back.
//!
//! Every answer carries `x-trace-id`, the W3C trace id of the request
//! (the caller's, when it sent a `traceparent`). `GET /debug/clients` shows
//! each client's breaker state and counts.
//!
//! The clients are made once at startup, as the seed's initialisation
//! pattern does: auth is required (startup fails without `AUTH_SVC_URL`),
//! chat only if `CHAT_SVC_URL` is configured. Their settings come from the
//! environment next to those URLs, as `svc-client` reads them
//! (`AUTH_SVC_TIMEOUT=2s`, see [`default_settings`]).

use crate::backend::{Message, User};
use crate::telemetry;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use svc_client::{
    CircuitBreakerConfig, Client, ClientConfig, EndpointsConfig, OutlierConfig, Registry,
};

/// The response header carrying the request's trace id.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// What `GET /profiles/{id}` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The user, from `auth-svc`.
    pub user: User,
    /// Recent messages, from `chat-svc` (empty when degraded).
    pub messages: Vec<Message>,
    /// Whether chat was configured but could not be reached.
    pub degraded: bool,
}

/// One client's breaker, as `GET /debug/clients` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientReport {
    /// The base URL the client calls.
    pub base_url: String,
    /// `closed`, `open`, `half-open`, or `disabled`.
    pub state: String,
    /// Breaker transitions so far (each one increments it).
    pub epoch: u32,
    /// Attempts let through that finished.
    pub calls: u64,
    /// Attempts recorded as successes.
    pub successes: u64,
    /// Attempts recorded as failures.
    pub failures: u64,
    /// Calls rejected at once because the circuit was open.
    pub rejections: u64,
    /// The current run of consecutive failures.
    pub consecutive_failures: u32,
    /// While open: milliseconds until a trial call is allowed.
    pub retry_after_ms: Option<u64>,
    /// The service's replicas, when it has several (`AUTH_SVC_URL` lists
    /// them): each one's state in the balancer.
    #[serde(default)]
    pub replicas: Vec<ReplicaReport>,
}

/// One replica of a service, as its client balances it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicaReport {
    /// `host:port`.
    pub address: String,
    /// While ejected: milliseconds until it is back.
    pub ejected_ms: Option<u64>,
    /// How many times it was ejected.
    pub times_ejected: u32,
    /// Attempts in flight.
    pub in_flight: u32,
    /// The latency estimate (peak EWMA), milliseconds.
    pub latency_ms: f64,
    /// Attempts it served.
    pub requests: u64,
    /// Of which failed.
    pub failures: u64,
}

/// What `GET /debug/clients` answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DebugClients {
    /// The required auth client.
    #[serde(rename = "auth-svc")]
    pub auth: ClientReport,
    /// The optional chat client (`null` when not configured).
    #[serde(rename = "chat-svc")]
    pub chat: Option<ClientReport>,
}

/// The clients of profile-svc, made once at startup.
#[derive(Clone, Debug)]
pub struct Profiles {
    auth: Client,
    /// The same settings, without deadline propagation (the comparison).
    auth_unbounded: Client,
    /// Which auth client the handlers use.
    propagate: Arc<AtomicBool>,
    chat: Option<Client>,
}

/// What `POST /admin/deadlines` takes and answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    /// Whether calls to auth carry the request's deadline.
    pub propagate: bool,
}

/// The demo's client settings where the environment sets none: tighter
/// than the library's defaults, so that a failing dependency costs a
/// visitor at most 2 s.
///
/// Each client reads its own variables over them, next to its URL, as
/// [`ClientConfig::apply_settings`] does (`svc-client` documents the
/// format: durations as `250ms`, `2s`, `1m`):
///
/// | variable (`AUTH_SVC_*` for auth, `CHAT_SVC_*` for chat) | setting (default here) |
/// |---|---|
/// | `AUTH_SVC_TIMEOUT` | whole call, retries included (`2s`) |
/// | `AUTH_SVC_ATTEMPT_TIMEOUT` | one attempt (`500ms`) |
/// | `AUTH_SVC_MAX_RETRIES` | retries after the first attempt (`2`) |
/// | `AUTH_SVC_BREAKER_FAILURE_THRESHOLD` | consecutive failures that open the circuit (`5`) |
/// | `AUTH_SVC_BREAKER_RESET_TIMEOUT` | open time before a trial (`30s`, the seed's) |
///
/// ```
/// use svc_client::Registry;
/// use svc_demo::profile::default_settings;
///
/// let registry = Registry::from_vars([("AUTH_SVC_MAX_RETRIES", "1")]);
/// let config = default_settings().apply_settings(&registry, "auth-svc").unwrap();
/// # let _ = config;
/// let registry = Registry::from_vars([("AUTH_SVC_TIMEOUT", "soon")]);
/// let err = default_settings().apply_settings(&registry, "auth-svc").unwrap_err();
/// assert!(err.to_string().contains("AUTH_SVC_TIMEOUT"));
/// ```
pub fn default_settings() -> ClientConfig {
    ClientConfig::default()
        .timeout(Duration::from_secs(2))
        .attempt_timeout(Duration::from_millis(500))
        .max_retries(2)
        .circuit_breaker(Some(CircuitBreakerConfig::default()))
        // A broken replica is ejected for 2 s, then 4 s, ...: short, so the
        // demo shows it coming back (Envoy's default is 30 s).
        .endpoints(
            EndpointsConfig::default()
                .outlier(OutlierConfig::default().base_ejection_time(Duration::from_secs(2))),
        )
}

impl Profiles {
    /// The seed's initialisation pattern: auth is required, chat optional.
    /// `defaults` are the settings of both clients (the service passes
    /// [`default_settings`]); each one's variables in `registry`
    /// (`AUTH_SVC_TIMEOUT`, `CHAT_SVC_TIMEOUT`...) override them.
    ///
    /// # Errors
    ///
    /// When `auth-svc` is not configured, its URL is invalid or one of its
    /// settings is (the message names the variable). A misconfigured chat
    /// is logged and served without.
    pub fn from_registry(registry: &Registry, defaults: ClientConfig) -> Result<Self, String> {
        let auth_config = defaults
            .clone()
            .apply_settings(registry, "auth-svc")
            .map_err(|err| format!("auth service required: {err}"))?;
        let auth = Client::from_registry(registry, "auth-svc", auth_config.clone())
            .map_err(|err| format!("auth service required: {err}"))?;
        let auth_unbounded =
            Client::from_registry(registry, "auth-svc", auth_config.propagate_deadline(false))
                .map_err(|err| format!("auth service required: {err}"))?;
        // Optional dependency: check, but do not fail.
        let chat = if registry.is_configured("chat-svc") {
            let chat = defaults
                .apply_settings(registry, "chat-svc")
                .and_then(|config| Client::from_registry(registry, "chat-svc", config));
            match chat {
                Ok(chat) => Some(chat),
                Err(err) => {
                    tracing::warn!(error = %err, "chat service misconfigured, serving without messages");
                    None
                }
            }
        } else {
            tracing::info!("chat service not configured, serving without messages");
            None
        };
        Ok(Profiles {
            auth,
            auth_unbounded,
            propagate: Arc::new(AtomicBool::new(true)),
            chat,
        })
    }

    /// The auth client in use ([`Deadlines`]).
    fn auth(&self) -> &Client {
        if self.propagate.load(Ordering::Relaxed) {
            &self.auth
        } else {
            &self.auth_unbounded
        }
    }

    /// The breaker reports of both clients.
    pub fn debug_clients(&self) -> DebugClients {
        DebugClients {
            auth: report(&self.auth),
            chat: self.chat.as_ref().map(report),
        }
    }
}

/// The `profile-svc` router.
pub fn router(profiles: Profiles) -> Router {
    let service = Router::new()
        .route("/profiles/{id}", get(get_profile))
        .route("/debug/clients", get(debug_clients))
        .layer(middleware::from_fn(trace_and_log))
        .layer(svc_client::server::layer());
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/admin/deadlines", post(set_deadlines))
        .merge(service)
        .with_state(profiles)
}

/// Logs each answer with the trace id and returns the trace id to the caller.
async fn trace_and_log(req: Request, next: Next) -> Response {
    let span = telemetry::request_span();
    let trace_id = telemetry::trace_id(&span);
    let mut response = telemetry::answer_logged(span, req, next).await;
    if let Some(value) = trace_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(TRACE_ID_HEADER, value);
    }
    response
}

fn report(client: &Client) -> ClientReport {
    let base_url = client.base_url().to_string();
    let replicas = client
        .endpoints()
        .into_iter()
        .map(|e| ReplicaReport {
            address: e.address,
            ejected_ms: e.ejected_for.map(|d| d.as_millis() as u64),
            times_ejected: e.times_ejected,
            in_flight: e.in_flight,
            latency_ms: e.latency.as_secs_f64() * 1e3,
            requests: e.requests,
            failures: e.failures,
        })
        .collect();
    match client.metrics() {
        Some(m) => ClientReport {
            base_url,
            state: m.state().as_str().to_owned(),
            epoch: m.epoch(),
            calls: m.calls(),
            successes: m.successes(),
            failures: m.failures(),
            rejections: m.rejections(),
            consecutive_failures: m.consecutive_failures(),
            retry_after_ms: m.retry_after().map(|d| d.as_millis() as u64),
            replicas,
        },
        None => ClientReport {
            base_url,
            state: "disabled".to_owned(),
            epoch: 0,
            calls: 0,
            successes: 0,
            failures: 0,
            rejections: 0,
            consecutive_failures: 0,
            retry_after_ms: None,
            replicas,
        },
    }
}

/// Seconds for `Retry-After`: the wait rounded up, at least 1.
///
/// ```
/// use std::time::Duration;
/// use svc_demo::profile::retry_after_secs;
///
/// assert_eq!(retry_after_secs(Duration::from_millis(2100)), 3);
/// assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
/// assert_eq!(retry_after_secs(Duration::ZERO), 1);
/// ```
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

async fn set_deadlines(
    State(profiles): State<Profiles>,
    Json(deadlines): Json<Deadlines>,
) -> Json<Deadlines> {
    profiles
        .propagate
        .store(deadlines.propagate, Ordering::Relaxed);
    tracing::info!(
        propagate = deadlines.propagate,
        "deadline propagation to auth-svc set"
    );
    Json(deadlines)
}

async fn debug_clients(State(profiles): State<Profiles>) -> Json<DebugClients> {
    Json(profiles.debug_clients())
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn get_profile(State(profiles): State<Profiles>, Path(id): Path<String>) -> Response {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return error(StatusCode::BAD_REQUEST, "invalid user id");
    }

    // Required call.
    let user = match fetch_user(profiles.auth(), &id).await {
        Ok(user) => user,
        Err(err) if err.is_circuit_open() => {
            // Fail fast: auth is known to be down; tell the caller when to retry.
            let wait = err.retry_after().unwrap_or(Duration::from_secs(1));
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "auth-svc is unavailable (circuit open)",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(wait)),
            );
            return response;
        }
        Err(err) if err.status() == Some(StatusCode::NOT_FOUND) => {
            return error(StatusCode::NOT_FOUND, "no such user");
        }
        Err(err)
            if err.is_deadline_exceeded() || err.status() == Some(StatusCode::GATEWAY_TIMEOUT) =>
        {
            // The caller's budget ran out (here, or in auth-svc, which
            // stopped at the deadline it was sent): it has stopped waiting.
            tracing::debug!(error = %err, "auth request out of the caller's time");
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline exceeded waiting for auth-svc",
            );
        }
        Err(err) => {
            tracing::warn!(error = %err, "auth request failed");
            return error(StatusCode::BAD_GATEWAY, "auth-svc failed");
        }
    };

    // Optional enrichment: don't fail if chat is down.
    let mut profile = Profile {
        user,
        messages: Vec::new(),
        degraded: false,
    };
    if let Some(chat) = &profiles.chat {
        match fetch_messages(chat, &id).await {
            Ok(messages) => profile.messages = messages,
            Err(err) => {
                if err.is_circuit_open() {
                    tracing::debug!("chat circuit open, serving without messages");
                } else {
                    tracing::warn!(error = %err, "failed to fetch messages, serving without them");
                }
                profile.degraded = true;
            }
        }
    }
    Json(profile).into_response()
}

async fn fetch_user(auth: &Client, id: &str) -> Result<User, svc_client::Error> {
    let resp = auth.get(&format!("/users/{id}")).await?;
    svc_client::decode_response(resp).await
}

async fn fetch_messages(chat: &Client, id: &str) -> Result<Vec<Message>, svc_client::Error> {
    let resp = chat.get(&format!("/users/{id}/messages")).await?;
    svc_client::decode_response(resp).await
}
