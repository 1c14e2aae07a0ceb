//! `auth-svc` and `chat-svc`: two small backends whose faults are set at run
//! time through an admin endpoint.
//!
//! | route | what |
//! |---|---|
//! | `GET /users/{id}` (auth) | the user as JSON |
//! | `POST /validate` (auth) | `{"token": ..}` -> `{"valid": .., "user_id": ..}` |
//! | `GET /users/{id}/messages` (chat) | the user's recent messages |
//! | `GET /admin/faults`, `POST /admin/faults`, `DELETE /admin/faults` | read, replace, clear the [`Faults`] |
//! | `GET /admin/stats` | [`Stats`]: requests received, faults injected, recent trace ids and slow work |
//! | `GET /healthz` | `ok` (never faulted: a fault is the demo, not a broken pod) |
//!
//! Only the service routes are faulted and counted; admin and health routes
//! are not.

use crate::net::ConnHandle;
use crate::telemetry;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How many trace ids [`Stats::recent_trace_ids`] keeps (the newest last).
pub const RECENT_TRACE_IDS: usize = 512;

/// How many [`Work`] records [`Stats::recent_work`] keeps (the newest last).
pub const RECENT_WORK: usize = 4096;

/// How long a hanging request waits before it gives up and answers 504
/// (a bound, so a demo left running never piles up tasks for ever).
const HANG_FOR: Duration = Duration::from_secs(300);

// ===== Faults =====

/// The faults a backend injects, set with `POST /admin/faults`.
///
/// Every service request first waits `latency_ms` (its slow work), or
/// less when the caller's deadline comes first: the backend watches
/// `svc_client::deadline::remaining()` and stops its work at the
/// deadline, answering 504 (see [`Work`]). Then, with probability
/// `error_fraction`, it is faulted: reset (the connection is dropped without
/// an answer) if `reset`, else left hanging if `hang`, else answered with
/// `status`. `{}` is a healthy backend.
///
/// ```
/// use svc_demo::backend::Faults;
///
/// let faults: Faults = serde_json::from_str(r#"{"status": 500}"#).unwrap();
/// assert_eq!(faults.error_fraction, 1.0);
/// assert!(faults.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The status code of a faulted answer (e.g. 500, 503, 429).
    pub status: Option<u16>,
    /// The fraction of requests faulted, 0.0 to 1.0 (1.0 when not given).
    pub error_fraction: f64,
    /// Latency added to every service request, faulted or not.
    pub latency_ms: u64,
    /// A faulted request never answers (until the caller gives up).
    pub hang: bool,
    /// A faulted request's connection is reset without an answer.
    pub reset: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            status: None,
            error_fraction: 1.0,
            latency_ms: 0,
            hang: false,
            reset: false,
        }
    }
}

/// What a faulted (or healthy) backend does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Answer normally.
    Pass,
    /// Answer with this status code.
    Status(StatusCode),
    /// Never answer.
    Hang,
    /// Reset the connection.
    Reset,
}

impl Faults {
    /// Checks the ranges: `error_fraction` in 0..=1, `status` a valid code.
    ///
    /// # Errors
    ///
    /// A message naming the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_fraction) {
            return Err(format!(
                "error_fraction must be within 0.0..=1.0, got {}",
                self.error_fraction
            ));
        }
        if let Some(status) = self.status
            && !(100..=599).contains(&status)
        {
            return Err(format!("status must be within 100..=599, got {status}"));
        }
        Ok(())
    }

    /// Whether any fault (other than latency) is set.
    pub fn is_faulty(&self) -> bool {
        self.status.is_some() || self.hang || self.reset
    }

    /// The action for one request, given a uniform random number in `0..1`.
    pub fn decide(&self, random: f64) -> Action {
        if !self.is_faulty() || random >= self.error_fraction {
            Action::Pass
        } else if self.reset {
            Action::Reset
        } else if self.hang {
            Action::Hang
        } else {
            let status = self.status.unwrap_or(500);
            Action::Status(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            )
        }
    }
}

// ===== Backend state =====

/// What `GET /admin/stats` answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The service's name.
    pub service: String,
    /// Service requests received (admin and health routes excluded).
    pub requests: u64,
    /// Of those, how many were faulted.
    pub faulted: u64,
    /// The faults in force.
    pub faults: Faults,
    /// The trace ids of the latest requests that carried one, oldest first.
    pub recent_trace_ids: Vec<String>,
    /// The latest requests that did slow work (`latency_ms`), oldest first.
    #[serde(default)]
    pub recent_work: Vec<Work>,
}

/// One request's slow work (the `latency_ms` fault), in wall-clock time so
/// that the driver can compare it with its own deadlines (one machine, or
/// hosts whose clocks NTP keeps within milliseconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// The request's trace id, when it carried one.
    pub trace_id: Option<String>,
    /// When the work started, milliseconds since the Unix epoch.
    pub started_unix_ms: f64,
    /// When it ended.
    pub ended_unix_ms: f64,
    /// Whether the caller's deadline cut it short.
    pub cut_by_deadline: bool,
}

/// Now, in milliseconds since the Unix epoch.
pub fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// The shared state of one backend: its faults and its counters.
#[derive(Clone, Debug)]
pub struct Backend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    service: &'static str,
    faults: Mutex<Faults>,
    requests: AtomicU64,
    faulted: AtomicU64,
    traces: Mutex<VecDeque<String>>,
    work: Mutex<VecDeque<Work>>,
}

impl Backend {
    /// A healthy backend named `service`.
    pub fn new(service: &'static str) -> Self {
        Backend {
            inner: Arc::new(Inner {
                service,
                faults: Mutex::new(Faults::default()),
                requests: AtomicU64::new(0),
                faulted: AtomicU64::new(0),
                traces: Mutex::new(VecDeque::with_capacity(RECENT_TRACE_IDS)),
                work: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        lock(&self.inner.faults).clone()
    }

    /// Replaces the faults.
    ///
    /// # Errors
    ///
    /// When [`Faults::validate`] fails; the faults are then unchanged.
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.validate()?;
        *lock(&self.inner.faults) = faults;
        Ok(())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        Stats {
            service: self.inner.service.to_owned(),
            requests: self.inner.requests.load(Ordering::Relaxed),
            faulted: self.inner.faulted.load(Ordering::Relaxed),
            faults: self.faults(),
            recent_trace_ids: lock(&self.inner.traces).iter().cloned().collect(),
            recent_work: lock(&self.inner.work).iter().cloned().collect(),
        }
    }

    fn record_work(&self, work: Work) {
        let mut recent = lock(&self.inner.work);
        if recent.len() == RECENT_WORK {
            recent.pop_front();
        }
        recent.push_back(work);
    }

    fn record_request(&self, trace_id: Option<String>) {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(trace_id) = trace_id {
            let mut traces = lock(&self.inner.traces);
            if traces.len() == RECENT_TRACE_IDS {
                traces.pop_front();
            }
            traces.push_back(trace_id);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The data stays consistent even if a holder panicked (plain values).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ===== Routers =====

/// The `auth-svc` router. Serve it with [`crate::net::serve`] so that reset
/// faults work.
pub fn auth_router(backend: Backend) -> Router {
    let service = Router::new()
        .route("/users/{id}", get(get_user))
        .route("/validate", post(validate));
    with_faults_and_admin(service, backend)
}

/// The `chat-svc` router. Serve it with [`crate::net::serve`] so that reset
/// faults work.
pub fn chat_router(backend: Backend) -> Router {
    let service = Router::new().route("/users/{id}/messages", get(get_messages));
    with_faults_and_admin(service, backend)
}

fn with_faults_and_admin(service: Router<Backend>, backend: Backend) -> Router {
    let service = service
        .layer(middleware::from_fn_with_state(
            backend.clone(),
            inject_faults,
        ))
        .layer(middleware::from_fn_with_state(
            backend.clone(),
            trace_and_count,
        ))
        // The caller's trace and deadline; the handlers watch the deadline
        // themselves (the slow work stops at it), so none is cancelled.
        .layer(svc_client::server::layer().cancel_at_deadline(false));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/admin/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .route("/admin/stats", get(get_stats))
        .merge(service)
        .with_state(backend)
}

/// Counts the request, records its trace id (the caller's, continued by
/// `svc_client::trace_middleware` around it) and logs it once answered.
async fn trace_and_count(State(backend): State<Backend>, req: Request, next: Next) -> Response {
    let span = telemetry::request_span();
    let trace_id = telemetry::trace_id(&span);
    backend.record_request(trace_id);
    telemetry::answer_logged(span, req, next).await
}

async fn inject_faults(State(backend): State<Backend>, req: Request, next: Next) -> Response {
    let conn = req.extensions().get::<ConnectInfo<ConnHandle>>().cloned();
    let faults = backend.faults();
    if faults.latency_ms > 0 && slow_work(&backend, faults.latency_ms).await {
        tracing::info!("slow work stopped at the caller's deadline");
        return error(StatusCode::GATEWAY_TIMEOUT, "deadline exceeded");
    }
    let action = faults.decide(fastrand::f64());
    if action != Action::Pass {
        backend.inner.faulted.fetch_add(1, Ordering::Relaxed);
    }
    match action {
        Action::Pass => next.run(req).await,
        Action::Status(status) => {
            tracing::warn!(status = status.as_u16(), "fault injected: status");
            error(status, "fault injected")
        }
        Action::Hang => {
            tracing::warn!("fault injected: hang");
            tokio::time::sleep(HANG_FOR).await;
            error(StatusCode::GATEWAY_TIMEOUT, "fault injected: hung")
        }
        Action::Reset => match conn {
            Some(ConnectInfo(conn)) => {
                tracing::warn!(peer = %conn.peer(), "fault injected: connection reset");
                conn.reset();
                // Never written: the reset connection fails the write.
                error(StatusCode::INTERNAL_SERVER_ERROR, "connection reset")
            }
            None => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reset faults need the router served by svc_demo::net::serve",
            ),
        },
    }
}

/// The `latency_ms` of slow work, stopped at the caller's deadline if it
/// comes first (`svc_client::deadline`), recorded as a [`Work`]. Whether
/// the deadline cut it short.
///
/// The work runs in a task of its own, as CPU-bound or blocking work does
/// (a password hash, a query on a blocking pool): a request whose caller
/// hangs up is dropped, its task is not, and works on for nobody unless it
/// knows the deadline. A spawned task does not inherit the request's
/// deadline; `deadline::propagate` carries it.
async fn slow_work(backend: &Backend, latency_ms: u64) -> bool {
    let backend = backend.clone();
    let trace_id = telemetry::trace_id(&tracing::Span::current());
    let work = tokio::spawn(svc_client::deadline::propagate(async move {
        let started_unix_ms = unix_ms();
        let work = tokio::time::sleep(Duration::from_millis(latency_ms));
        let cut_by_deadline = match svc_client::deadline::current() {
            Some(deadline) => tokio::time::timeout_at(deadline, work).await.is_err(),
            None => {
                work.await;
                false
            }
        };
        backend.record_work(Work {
            trace_id,
            started_unix_ms,
            ended_unix_ms: unix_ms(),
            cut_by_deadline,
        });
        cut_by_deadline
    }));
    work.await.unwrap_or(false)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

// ===== Admin handlers =====

async fn get_faults(State(backend): State<Backend>) -> Json<Faults> {
    Json(backend.faults())
}

async fn set_faults(State(backend): State<Backend>, Json(faults): Json<Faults>) -> Response {
    match backend.set_faults(faults.clone()) {
        Ok(()) => {
            tracing::info!(?faults, "faults set");
            Json(faults).into_response()
        }
        Err(message) => error(StatusCode::BAD_REQUEST, &message),
    }
}

async fn clear_faults(State(backend): State<Backend>) -> Json<Faults> {
    let faults = Faults::default();
    *lock(&backend.inner.faults) = faults.clone();
    tracing::info!("faults cleared");
    Json(faults)
}

async fn get_stats(State(backend): State<Backend>) -> Json<Stats> {
    Json(backend.stats())
}

// ===== Service handlers =====

/// A user as `auth-svc` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub id: String,
    /// The user's display name.
    pub name: String,
    /// The user's e-mail address.
    pub email: String,
}

/// A message as `chat-svc` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The message id.
    pub id: String,
    /// Who sent it.
    pub from: String,
    /// The text.
    pub text: String,
}

const NAMES: [&str; 8] = [
    "Ada", "Grace", "Linus", "Barbara", "Ken", "Radia", "Dennis", "Frances",
];

fn no_user(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!("no user `{}`", id.escape_debug()),
    )
}

async fn get_user(Path(id): Path<String>) -> Response {
    let Ok(n) = id.parse::<u32>() else {
        return no_user(&id);
    };
    let name = NAMES[n as usize % NAMES.len()];
    Json(User {
        id: n.to_string(),
        name: format!("{name} #{n}"),
        email: format!("{}{n}@example.com", name.to_lowercase()),
    })
    .into_response()
}

#[derive(Deserialize)]
struct ValidateRequest {
    token: String,
}

#[derive(Serialize)]
struct ValidateResponse {
    valid: bool,
    user_id: Option<String>,
}

async fn validate(Json(req): Json<ValidateRequest>) -> Json<ValidateResponse> {
    // Demo tokens are `tok-<user id>`.
    let user_id = req
        .token
        .strip_prefix("tok-")
        .filter(|id| id.parse::<u32>().is_ok())
        .map(str::to_owned);
    Json(ValidateResponse {
        valid: user_id.is_some(),
        user_id,
    })
}

async fn get_messages(Path(id): Path<String>) -> Response {
    let Ok(n) = id.parse::<u32>() else {
        return no_user(&id);
    };
    let messages = (0..3u32)
        .map(|i| {
            let from = NAMES[(n + i + 1) as usize % NAMES.len()];
            Message {
                id: format!("{n}-{i}"),
                from: from.to_owned(),
                text: format!("message {i} for user {n}"),
            }
        })
        .collect::<Vec<Message>>();
    Json(messages).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_faults_pass_everything() {
        let faults = Faults::default();
        assert!(!faults.is_faulty());
        assert_eq!(faults.decide(0.0), Action::Pass);
    }

    #[test]
    fn error_fraction_splits_requests() {
        let faults = Faults {
            status: Some(503),
            error_fraction: 0.25,
            ..Faults::default()
        };
        assert_eq!(
            faults.decide(0.1),
            Action::Status(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(faults.decide(0.25), Action::Pass);
        assert_eq!(faults.decide(0.9), Action::Pass);
    }

    #[test]
    fn reset_wins_over_hang_and_hang_over_status() {
        let all = Faults {
            status: Some(500),
            hang: true,
            reset: true,
            ..Faults::default()
        };
        assert_eq!(all.decide(0.5), Action::Reset);
        let hang = Faults {
            reset: false,
            ..all
        };
        assert_eq!(hang.decide(0.5), Action::Hang);
    }

    #[test]
    fn validation_names_the_field() {
        let bad = Faults {
            error_fraction: 1.5,
            ..Faults::default()
        };
        assert!(bad.validate().unwrap_err().contains("error_fraction"));
        let bad = Faults {
            status: Some(42),
            ..Faults::default()
        };
        assert!(bad.validate().unwrap_err().contains("status"));
    }

    #[test]
    fn recent_trace_ids_are_bounded() {
        let backend = Backend::new("auth-svc");
        for i in 0..RECENT_TRACE_IDS + 3 {
            backend.record_request(Some(format!("{i:032x}")));
        }
        backend.record_request(None);
        let stats = backend.stats();
        assert_eq!(stats.requests, RECENT_TRACE_IDS as u64 + 4);
        assert_eq!(stats.recent_trace_ids.len(), RECENT_TRACE_IDS);
        assert_eq!(stats.recent_trace_ids[0], format!("{:032x}", 3));
    }
}
