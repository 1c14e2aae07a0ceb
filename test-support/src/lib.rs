//! Loopback servers and test helpers shared by the tests of the svc crates
//! (`publish = false`, a path dev-dependency only).
//!
//! # Overview
//!
//! - [`serve`] / [`serve_router`]: a real axum server on `127.0.0.1:0`
//!   (reqwest's `tests/support/server.rs` pattern). It counts and records
//!   every request ([`Server::hits`], [`Server::seen`]) and **fails the
//!   test** when a handler panicked: dropping a [`Server`] whose handler
//!   panicked panics. [`statuses`], [`always`] and [`recording_server`] are
//!   the usual canned answers.
//! - `GrpcServer` (feature `grpc`): a real tonic server on `127.0.0.1:0`
//!   with the services and layers the test gives it.
//! - [`closed_port`]: an address with nothing listening (connection
//!   refused).
//! - [`resetting`] and [`stalling`]: raw listeners that read a request and
//!   then close the connection, or never answer.
//! - [`body_faults`]: a `200` head followed by a body that is whole, cut
//!   short, reset or stalled ([`BodyFault`]).
//! - [`Events`] and [`Spans`]: `tracing` layers recording events and spans
//!   with their fields, so that tests assert on structured fields
//!   ([`Event::field`]) instead of formatted log text. [`capture`] installs
//!   both for the current thread.
//!
//! Everything listens on `127.0.0.1:0`; nothing here reaches off the
//! machine. Every server stops when its handle is dropped.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() {
//! let server = svc_test_support::statuses(&[503, 200]).await;
//! // ... point a client at server.url("/users/1") and call it twice ...
//! assert_eq!(server.hits(), 2);
//! assert_eq!(server.seen()[1].path, "/users/1");
//! # }
//! ```

mod body;
#[cfg(feature = "grpc")]
mod grpc;
mod listeners;
mod server;
mod trace;

pub use body::{BodyFault, GOOD_BODY, body_faults};
#[cfg(feature = "grpc")]
pub use grpc::{GrpcServer, Stop};
pub use listeners::{RawServer, closed_port, resetting, stalling};
pub use server::{
    Seen, Server, always, recording_server, serve, serve_on, serve_router, serve_router_on,
    statuses,
};
pub use trace::{Event, Events, SpanRecord, Spans, capture};
