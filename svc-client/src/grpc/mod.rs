//! gRPC through the facade (feature `grpc`, tonic 0.14): a [`Channel`] to
//! a sibling service that any tonic-generated client uses, with the
//! breaker, deadline, retries, trace propagation and metrics of the HTTP
//! [`Client`](crate::Client).
//!
//! ```no_run
//! use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
//! use svc_client::{Error, grpc::Channel};
//!
//! # async fn run() -> Result<(), Error> {
//! // At startup: reads AUTH_SVC_URL (e.g. http://auth-svc:50051).
//! let mut health = HealthClient::new(Channel::new("auth-svc")?);
//!
//! // Per call: deadline, breaker, trace context and metrics included.
//! match health.check(HealthCheckRequest::default()).await {
//!     Ok(resp) => println!("serving: {:?}", resp.into_inner().status()),
//!     Err(status) if Error::from_status(&status).is_some_and(Error::is_circuit_open) => {
//!         // auth-svc is failing: degrade instead of waiting.
//!     }
//!     Err(status) => println!("auth-svc answered {:?}", status.code()),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # How a call is judged
//!
//! Breaker and retries follow the gRPC status, not the HTTP one:
//!
//! | status | breaker | retried |
//! |---|---|---|
//! | `OK` | success | no |
//! | `UNAVAILABLE` | failure | for [idempotent](Channel::idempotent) methods |
//! | `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`, `INTERNAL`, `UNKNOWN` | failure | no |
//! | any other (`NOT_FOUND`, `INVALID_ARGUMENT`, `PERMISSION_DENIED`, ...) | no effect | no |
//! | connection refused or failed (nothing sent) | failure | yes, any method |
//! | transport failure, attempt timeout | failure | for idempotent methods |
//! | cancelled: response future or body dropped before the status | no effect | no |
//!
//! A status that arrives in the trailers, after the response head was
//! handed to the caller, is final: only statuses in the response head
//! (trailers-only responses, as a unary call that fails usually gets) and
//! failures before it can be retried. A call ends when its status is
//! known; for a streaming response, when the stream ends.
//!
//! # Errors as statuses
//!
//! The channel's errors are [`tonic::Status`]es, so a generated client
//! hands them to the caller unchanged: an open circuit is `UNAVAILABLE`
//! ("circuit open for auth-svc, retry after 2.5s ...", with
//! `grpc-retry-pushback-ms`), a call out of time `DEADLINE_EXCEEDED`, a
//! connection failure `UNAVAILABLE`. Each carries the facade's
//! [`Error`](crate::Error) as its source: [`Error::from_status`](crate::Error::from_status).

mod attempt;
mod body;
mod channel;
mod classify;
// Shared with the server layer's deadline parsing.
use crate::grpc_timeout as timeout;

pub use body::{REPLAY_LIMIT, ResponseBody};
pub use channel::{Channel, ResponseFuture};
