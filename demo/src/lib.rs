//! The live demo of svc: three small services and the driver of `cargo xtask demo`.
//!
//! # Overview
//!
//! - `auth-svc` ([`backend::auth_router`]) and `chat-svc`
//!   ([`backend::chat_router`]) are backends whose faults (status codes,
//!   error fraction, latency, hangs, connection resets) are set at run time
//!   with `POST /admin/faults`.
//! - `profile-svc` ([`profile::router`]) calls them through `svc-client`:
//!   auth is required, chat is optional, as in the seed's `GetUserProfile`.
//!   Without chat it answers the profile marked `degraded`; with auth's
//!   circuit open it answers 503 at once with `Retry-After`.
//! - `demo` ([`driver`]) starts the three as child processes with the
//!   environment the platform would inject (`AUTH_SVC_URL`, `CHAT_SVC_URL`),
//!   drives load through a scripted scenario, checks what must happen, and
//!   writes a summary and a timeline chart under `target/demo/`.
//!
//! This crate is not published: it is the project's end-to-end test and its
//! showcase. `deploy/kubernetes/` runs the same services on a cluster.
#![deny(missing_docs)]

pub mod backend;
pub mod chart;
pub mod driver;
pub mod net;
pub mod procs;
pub mod profile;
pub mod service;
pub mod stats;
pub mod telemetry;
