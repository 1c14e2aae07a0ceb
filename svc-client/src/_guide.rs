//! The guide: the `pkg/svc` skill, in Rust, and what each call leaves behind.
//!
//! A doc-only module (as clap's `_tutorial`): nothing to import here.
//!
//! Each section below is the Rust twin of a snippet of the Go description
//! this crate implements, in the same order.
//!
//! # Service discovery
//!
//! Services discover siblings through environment variables the platform
//! injects, `{COMPONENT_NAME}_URL` with the name in UPPER_SNAKE_CASE:
//! `AUTH_SVC_URL=http://myproject-auth-svc:8001`,
//! `CHAT_SVC_URL=http://myproject-chat-svc:8002`.
//!
//! Simple lookup (`svc.ServiceURL`): `None` when the service is not
//! configured. [`lookup`] says *why* (absent, or set to an invalid URL).
//!
//! ```
//! assert_eq!(svc_client::env_var("auth-svc")?, "AUTH_SVC_URL");
//!
//! match svc_client::service_url("auth-svc") {
//!     Some(url) => println!("auth-svc at {url}"),
//!     None => { /* Service not configured */ }
//! }
//! # Ok::<(), svc_client::DiscoveryError>(())
//! ```
//!
//! Check availability (`svc.ServiceConfigured`):
//!
//! ```
//! if svc_client::service_configured("auth-svc") {
//!     // Safe to call
//! }
//! ```
//!
//! For required dependencies (`svc.MustServiceURL`), which panics with a
//! message naming the variables to set. Prefer [`Client::new`] and `?` where
//! the error can be returned.
//!
//! ```no_run
//! let url = svc_client::must_service_url("auth-svc");
//! # let _ = url;
//! ```
//!
//! In tests, a [`Registry`] replaces the process environment, so no test
//! ever calls `std::env::set_var`:
//!
//! ```
//! use svc_client::{Client, ClientConfig, Registry};
//!
//! let registry = Registry::from_vars([("AUTH_SVC_URL", "http://127.0.0.1:8001")]);
//! assert!(registry.is_configured("auth-svc"));
//! let auth_client = Client::from_registry(&registry, "auth-svc", ClientConfig::default())?;
//! # let _ = auth_client;
//! # Ok::<(), svc_client::Error>(())
//! ```
//!
//! # Service client
//!
//! Create a client (`svc.NewClient`); an error if the service is not
//! configured:
//!
//! ```no_run
//! use svc_client::Client;
//!
//! # #[derive(Debug)] enum AppError { AuthUnavailable(svc_client::Error) }
//! # fn run() -> Result<(), AppError> {
//! let auth_client = Client::new("auth-svc").map_err(AppError::AuthUnavailable)?;
//! # let _ = auth_client;
//! # Ok(())
//! # }
//! ```
//!
//! Make requests. An open circuit means the service is unhealthy: nothing
//! was sent. The response body is released when `resp` is dropped (Go's
//! `defer resp.Body.Close()`).
//!
//! ```no_run
//! # use svc_client::Client;
//! #[derive(Debug)]
//! enum AppError {
//!     AuthServiceDown,
//!     AuthRequest(svc_client::Error),
//! }
//!
//! # async fn run(auth_client: Client) -> Result<(), AppError> {
//! let resp = match auth_client.get("/users/123").await {
//!     Ok(resp) => resp,
//!     // Circuit breaker is open - service is unhealthy
//!     Err(err) if err.is_circuit_open() => return Err(AppError::AuthServiceDown),
//!     Err(err) => return Err(AppError::AuthRequest(err)),
//! };
//! println!("status {}", resp.status());
//! # Ok(())
//! # }
//! ```
//!
//! JSON POST:
//!
//! ```no_run
//! # use svc_client::Client;
//! #[derive(serde::Serialize)]
//! struct ValidateRequest {
//!     token: String,
//! }
//!
//! # async fn run(auth_client: Client, token: String) -> Result<(), svc_client::Error> {
//! let resp = auth_client.post("/validate", &ValidateRequest { token }).await?;
//! # let _ = resp;
//! # Ok(())
//! # }
//! ```
//!
//! A POST is not retried once it may have reached the server, unless it is
//! made idempotent with [`RequestBuilder::idempotency_key`].
//!
//! # Custom configuration
//!
//! `svc.NewClientWithConfig` is [`Client::with_config`]:
//!
//! ```no_run
//! use std::time::Duration;
//! use svc_client::{CircuitBreakerConfig, Client, ClientConfig};
//!
//! # fn run() -> Result<(), svc_client::Error> {
//! let client = Client::with_config(
//!     "auth-svc",
//!     ClientConfig::default()
//!         .timeout(Duration::from_secs(5)) // Shorter timeout for fast-fail
//!         .max_retries(2) // Fewer retries
//!         .circuit_breaker(Some(
//!             CircuitBreakerConfig::default()
//!                 .failure_threshold(3) // Open after 3 failures
//!                 .reset_timeout(Duration::from_secs(15)),
//!         )),
//! )?;
//! # let _ = client;
//! # Ok(())
//! # }
//! ```
//!
//! # Circuit breaker
//!
//! | State | Behaviour |
//! |---|---|
//! | Closed | Normal operation, requests pass through |
//! | Open | Blocks all requests; calls fail at once with [`Error::is_circuit_open`] |
//! | Half-Open | Allows one test request to check if the service recovered |
//!
//! Defaults: opens after 5 consecutive failures, waits 30 s before a trial
//! (half-open), closes after one successful trial. Every attempt counts:
//!
//! | Response | Affects circuit? |
//! |---|---|
//! | HTTP 2xx/3xx | success |
//! | HTTP 5xx | failure |
//! | HTTP 429 | failure |
//! | HTTP 4xx (except 429) | no effect: a client error, not the service's fault |
//! | network error | failure |
//! | caller cancelled (the future dropped) | no effect |
//! | timeout | failure |
//!
//! [`Client::circuit_state`] and [`Client::metrics`] show the breaker.
//!
//! # Handling circuit open
//!
//! The three options of the seed: a degraded response, propagating "service
//! unavailable" (with the time until the breaker allows a trial, for a
//! `Retry-After` header), or a fallback service.
//!
//! ```no_run
//! use std::time::Duration;
//! use svc_client::{Client, Response};
//!
//! # struct UserData;
//! # fn cached_user_data(_: &str) -> UserData { UserData }
//! # async fn from_response(_: Response) -> Result<UserData, AppError> { Ok(UserData) }
//! #[derive(Debug)]
//! enum AppError {
//!     ServiceTemporarilyUnavailable { retry_after: Duration },
//!     Upstream(svc_client::Error),
//! }
//!
//! // Option 1: return a degraded response.
//! async fn user_or_cached(auth_client: &Client, user_id: &str) -> Result<UserData, AppError> {
//!     match auth_client.get(&format!("/users/{user_id}")).await {
//!         Ok(resp) => from_response(resp).await,
//!         Err(err) if err.is_circuit_open() => Ok(cached_user_data(user_id)),
//!         Err(err) => Err(AppError::Upstream(err)),
//!     }
//! }
//!
//! // Option 2: propagate as service unavailable (e.g. a 503 with Retry-After).
//! async fn user_or_unavailable(auth_client: &Client, user_id: &str) -> Result<Response, AppError> {
//!     auth_client.get(&format!("/users/{user_id}")).await.map_err(|err| {
//!         match err.retry_after() {
//!             Some(retry_after) => AppError::ServiceTemporarilyUnavailable { retry_after },
//!             None => AppError::Upstream(err),
//!         }
//!     })
//! }
//!
//! // Option 3: use a fallback service.
//! async fn user_with_fallback(
//!     auth_client: &Client,
//!     fallback_client: &Client,
//! ) -> Result<Response, svc_client::Error> {
//!     match auth_client.get("/users/123").await {
//!         Err(err) if err.is_circuit_open() => fallback_client.get("/users/123").await,
//!         other => other,
//!     }
//! }
//! ```
//!
//! # Initialisation pattern
//!
//! Initialise clients at startup, not on demand: a required dependency
//! fails startup with a message naming its variable; an optional one is
//! checked but does not fail.
//!
//! ```no_run
//! use svc_client::{Client, Error};
//!
//! struct Server {
//!     auth_client: Client,
//!     chat_client: Option<Client>,
//! }
//!
//! impl Server {
//!     fn new() -> Result<Server, Error> {
//!         // Required: "auth service required" with the variables to set.
//!         let auth_client = Client::new("auth-svc")?;
//!
//!         // Optional dependency - check but don't fail.
//!         let chat_client = if svc_client::service_configured("chat-svc") {
//!             Client::new("chat-svc").ok()
//!         } else {
//!             None
//!         };
//!
//!         Ok(Server { auth_client, chat_client })
//!     }
//! }
//! # let _ = Server::new();
//! ```
//!
//! [`Client::from_registry`] builds the same from a [`Registry`], which
//! tests fill with [`Registry::from_vars`].
//!
//! # Response decoding
//!
//! `svc.DecodeResponse[User]` is [`decode_response`]: it checks for a 2xx,
//! reads at most 16 MiB and deserialises JSON; its errors carry the status,
//! the content type and the start of the body.
//!
//! ```no_run
//! # use svc_client::Client;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct User {
//!     id: String,
//!     name: String,
//! }
//!
//! #[derive(Debug)]
//! enum AppError {
//!     Request(svc_client::Error),
//!     DecodeUser(svc_client::Error),
//! }
//!
//! # async fn run(auth_client: Client) -> Result<User, AppError> {
//! let resp = auth_client.get("/users/123").await.map_err(AppError::Request)?;
//! let user: User = svc_client::decode_response(resp)
//!     .await
//!     .map_err(AppError::DecodeUser)?;
//! # Ok(user)
//! # }
//! ```
//!
//! Or in one step: `auth_client.get("/users/123").decode::<User>().await?`.
//!
//! # Graceful degradation
//!
//! The required call fails the request; the optional enrichment is logged
//! and skipped.
//!
//! ```no_run
//! use serde::Deserialize;
//! use svc_client::{Client, Error};
//!
//! #[derive(Deserialize)]
//! struct User {
//!     id: String,
//!     name: String,
//! }
//!
//! #[derive(Deserialize)]
//! struct Message {
//!     text: String,
//! }
//!
//! struct Profile {
//!     user: User,
//!     recent_messages: Vec<Message>,
//! }
//!
//! struct Server {
//!     auth_client: Client,
//!     chat_client: Option<Client>,
//! }
//!
//! impl Server {
//!     async fn get_user_profile(&self, user_id: &str) -> Result<Profile, Error> {
//!         // Required call. `user_id` comes from the request: a value such as
//!         // "../admin" is rejected, never sent.
//!         let user: User = self
//!             .auth_client
//!             .get(&format!("/users/{user_id}"))
//!             .decode()
//!             .await?;
//!         let mut profile = Profile { user, recent_messages: Vec::new() };
//!
//!         // Optional enrichment - don't fail if the chat service is down.
//!         if let Some(chat_client) = &self.chat_client {
//!             let path = format!("/users/{user_id}/messages");
//!             match chat_client.get(&path).decode::<Vec<Message>>().await {
//!                 Ok(messages) => profile.recent_messages = messages,
//!                 // Continue without messages.
//!                 Err(err) => tracing::warn!(error = %err, "failed to fetch messages"),
//!             }
//!         }
//!         Ok(profile)
//!     }
//! }
//! ```
//!
//! # Anti-patterns
//!
//! **Hardcoded URLs** break when services move.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // BAD: a hardcoded URL and a bare client (no retries, breaker or tracing).
//! let resp = svc_client::reqwest::get("http://auth-svc:8001/users").await?;
//!
//! // GOOD: service discovery.
//! let auth_client = svc_client::Client::new("auth-svc")?;
//! let resp = auth_client.get("/users").await?;
//! # let _ = resp;
//! # Ok(())
//! # }
//! ```
//!
//! **Ignoring circuit breaker errors**: retrying forever while the circuit
//! is open only adds load and latency.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use svc_client::Client;
//! # #[derive(Debug)] enum AppError { ServiceUnavailable, Upstream(svc_client::Error) }
//! # async fn bad(auth_client: Client) {
//! // BAD: retrying forever when the circuit is open.
//! loop {
//!     match auth_client.get("/users").await {
//!         Ok(_) => break,
//!         Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
//!     }
//! }
//! # }
//! # async fn good(auth_client: Client) -> Result<(), AppError> {
//! // GOOD: detect circuit open and handle it gracefully (the client already
//! // retried what was worth retrying).
//! let resp = match auth_client.get("/users").await {
//!     Err(err) if err.is_circuit_open() => return Err(AppError::ServiceUnavailable),
//!     other => other.map_err(AppError::Upstream)?,
//! };
//! # let _ = resp;
//! # Ok(())
//! # }
//! ```
//!
//! **On-demand client creation** wastes connections, and a new client has a
//! new breaker that never sees the service's earlier failures.
//!
//! ```no_run
//! use axum::extract::State;
//! use svc_client::Client;
//!
//! // BAD: creating a client on every request.
//! async fn get_user_bad() -> String {
//!     let client = Client::new("auth-svc").unwrap(); // wastes resources
//!     # let _ = client;
//!     // ...
//!     # String::new()
//! }
//!
//! // GOOD: reuse the client created at startup.
//! #[derive(Clone)]
//! struct Handler {
//!     auth_client: Client,
//! }
//!
//! async fn get_user(State(h): State<Handler>) -> String {
//!     match h.auth_client.get("/users").await {
//!         Ok(resp) => resp.status().to_string(),
//!         Err(err) => err.to_string(),
//!     }
//! }
//! # fn app(auth_client: Client) -> axum::Router {
//! #     axum::Router::new()
//! #         .route("/users", axum::routing::get(get_user))
//! #         .with_state(Handler { auth_client })
//! # }
//! ```
//!
//! **Silent failures**: swallowing the error and assuming success.
//!
//! ```no_run
//! # use svc_client::{Client, StatusCode};
//! #[derive(Debug)]
//! enum AppError {
//!     AuthValidation(svc_client::Error),
//!     AuthValidationFailed(StatusCode),
//! }
//!
//! # async fn bad(auth_client: Client) {
//! // BAD: swallowing errors.
//! if let Ok(resp) = auth_client.get("/validate").await {
//!     if resp.status() == StatusCode::OK {
//!         // Assume success
//!     }
//! }
//! # }
//! # async fn good(auth_client: Client) -> Result<(), AppError> {
//! // GOOD: explicit error handling.
//! let resp = auth_client.get("/validate").await.map_err(AppError::AuthValidation)?;
//! if resp.status() != StatusCode::OK {
//!     return Err(AppError::AuthValidationFailed(resp.status()));
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Checklist
//!
//! - Use [`Client::new`] instead of raw HTTP clients.
//! - Handle [`Error::is_circuit_open`] explicitly.
//! - Initialise clients at startup, not on demand.
//! - Log service call failures with context: the client logs each failed
//!   call once (`warn`, target `svc_client`, with service, method, path,
//!   attempts and cause; circuit-open rejections at `debug`).
//! - Consider graceful degradation for optional dependencies.
//! - Set timeouts shorter than your own handler's timeout
//!   ([`ClientConfig::timeout`]); better, let the caller's budget bound
//!   them: with `server::layer()` on your router, every call inside a
//!   request ends by the caller's deadline ([`deadline`](mod@crate::deadline),
//!   [`ClientConfig::deadline_margin`], [`Error::is_deadline_exceeded`]).
//! - Propagate trace IDs: automatic on the client side; on the server side,
//!   [`continue_trace`] in a handler, or the `trace_middleware` layer for
//!   axum (feature `axum`):
//!
//! ```
//! use svc_client::header::HeaderMap;
//!
//! async fn handler(headers: HeaderMap) -> &'static str {
//!     let span = tracing::info_span!("handle_request", otel.kind = "server");
//!     svc_client::continue_trace(&span, &headers); // same trace as the caller
//!     let _entered = span.enter();
//!     "ok"
//! }
//! ```
//!
//! # Outcomes: what the log, the metric and the span say
//!
//! Every call ends in exactly one row, and its log line, its
//! `svc.client.calls` point and its `svc.call` span (with
//! [`ClientConfig::call_span`], or for a call made outside any span) always
//! agree:
//!
//! | how the call ended | log (target `svc_client`) | `svc.outcome` | `svc.call` span |
//! |---|---|---|---|
//! | a 2xx, 3xx or 4xx other than 429 | nothing | `ok` | status unset |
//! | a final 5xx or 429 (the caller gets the `Response`) | one `warn`, with `status` | `error` | `ERROR`, `error.type` = the status |
//! | rejected by the open circuit, nothing sent (`attempts() == 0`) | one `debug` | `degraded` | `ERROR`, `error.type` = `circuit_open` |
//! | the circuit opened during the retries (`attempts() > 0`) | one `warn` | `error` | `ERROR`, `error.type` = the last failure's type |
//! | timeout, connection or transport failure, budget exhausted | one `warn`, with `attempts` and `cause` | `error` | `ERROR`, `error.type` = `timeout`, `connect`, `retry_budget`, ... |
//! | invalid path or request, nothing sent | one `warn` | `error` | `ERROR`, `error.type` = `invalid_path` or `request` |
//!
//! Log lines and error messages never carry query values or credentials;
//! the attempt spans' `url.full` shows the query with the signatures
//! OpenTelemetry lists as sensitive `REDACTED`.
//!

// The guide's links name the crate's items as the crate root does.
#[allow(unused_imports)]
use crate::*;
