//! The integration tests of svc-client, in one binary (linking is the slow
//! part of a test build). Two scenarios that install a global propagator
//! have binaries of their own (`global_propagator`, `sdk_propagator`).

mod support;

mod bodies;
mod breaker;
mod coop;
mod deadline;
mod decode;
mod discovery;
mod filters;
#[cfg(feature = "grpc")]
mod grpc;
mod logs;
mod metrics;
mod no_ca_bundle;
mod outcomes;
mod paths;
mod redaction;
mod replicas;
mod server;
mod settings;
mod trace;
