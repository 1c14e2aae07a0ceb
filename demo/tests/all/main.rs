//! The demo's integration tests, in one binary (linking is the slow part of
//! a test build on two cores).

mod children;
mod faults;
