//! Find sibling services from the environment.
//!
//! Skeleton: the svc-discovery work fills this crate.
#![deny(missing_docs)]
