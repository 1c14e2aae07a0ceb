//! Find sibling services from the environment: `auth-svc` -> `AUTH_SVC_URL`.
//!
//! # Overview
//!
//! When a component is deployed, the platform gives it one variable per
//! sibling service, named `{COMPONENT_NAME}_URL` with the name in
//! UPPER_SNAKE_CASE:
//!
//! ```text
//! AUTH_SVC_URL=http://myproject-auth-svc:8001
//! CHAT_SVC_URL=http://myproject-chat-svc:8002
//! ```
//!
//! This crate turns a service name into that URL, and refuses to guess when
//! something is off:
//!
//! | service name | variable read | also read when it is unset |
//! |---|---|---|
//! | `auth-svc`, `Auth-Svc`, `auth_svc`, `auth.svc` | `AUTH_SVC_URL` | `AUTH_SVC_SERVICE_HOST`, `AUTH_SVC_SERVICE_PORT` |
//! | `chat-svc` | `CHAT_SVC_URL` | `CHAT_SVC_SERVICE_HOST`, `CHAT_SVC_SERVICE_PORT` |
//! | `gw` | `GW_URL` | `GW_SERVICE_HOST`, `GW_SERVICE_PORT` |
//!
//! - **Names** are ASCII letters, digits, `-`, `_` and `.` (at least one
//!   letter or digit), case-insensitive; `-` and `.` become `_`. Anything
//!   else (empty, a space, `=`, NUL, non-ASCII) is [`Error::InvalidName`].
//! - **Values** are trimmed; blank means unset. A set value must be an
//!   absolute `http` or `https` URL with a host and without query or
//!   fragment; a path prefix is kept (`http://gw/api/v1`). Anything else is
//!   [`Error::InvalidUrl`], naming the variable: a typo never silently turns
//!   into "not configured".
//! - **Replicas**: `{NAME}_URL` may list several base URLs separated by
//!   commas (`http://10.0.0.7:8001,http://10.0.0.8:8001`), one per replica,
//!   with the same scheme and path; an empty or repeated entry, mixed
//!   schemes or different paths are [`Error::InvalidList`]. [`endpoints`]
//!   and [`Registry::endpoints`] give them all; [`lookup`] checks the list
//!   and gives the first.
//! - **Kubernetes**: when `{NAME}_URL` is unset, the `{NAME}_SERVICE_HOST` and
//!   `{NAME}_SERVICE_PORT` variables Kubernetes injects for every service
//!   form `http://host:port` (IPv6 hosts bracketed). The port must then be
//!   1 to 65535 ([`Error::InvalidPort`]). `{NAME}_URL` always wins, even when
//!   it is invalid.
//! - **Secrets**: URLs may carry credentials. Errors and `Debug` output never
//!   contain a password; [`Redacted`], [`redact`] and [`redact_str`] give
//!   other code the same guarantee for its own log lines.
//!
//! - **Client settings**: next to `{NAME}_URL`, an operator may tune the
//!   client of the service with `{NAME}_TIMEOUT`, `{NAME}_ATTEMPT_TIMEOUT`,
//!   `{NAME}_MAX_RETRIES`, `{NAME}_BREAKER_FAILURE_THRESHOLD` and
//!   `{NAME}_BREAKER_RESET_TIMEOUT` ([`Setting`]). This crate names them
//!   and a [`Registry`] keeps them ([`Registry::var`]); `svc-client`'s
//!   `ClientConfig::from_env` parses them.
//!
//! Two ways to read the variables:
//!
//! - The free functions ([`lookup`], [`service_url`], [`service_configured`],
//!   [`must_service_url`]) read the process environment at each call, like
//!   the seed's `pkg/svc`.
//! - A [`Registry`] is a snapshot: [`Registry::from_env`] at startup, or
//!   [`Registry::from_vars`] in tests, with the same rules. Tests never need
//!   `std::env::set_var`.
//!
//! # Example
//!
//! ```
//! use svc_discovery::{Error, Registry};
//!
//! // In production: `Registry::from_env()`, or the free functions.
//! let registry = Registry::from_vars([
//!     ("AUTH_SVC_URL", "http://myproject-auth-svc:8001"),
//!     ("CHAT_SVC_URL", "http://myproject-chat-svc:8002"),
//! ]);
//!
//! // Required dependency: fail at startup with a message naming the variable.
//! let auth = registry.lookup("auth-svc")?;
//! assert_eq!(auth.as_str(), "http://myproject-auth-svc:8001/");
//!
//! // Optional dependency: absent is fine, misconfigured is not.
//! let search = registry.lookup_optional("search-svc")?;
//! assert_eq!(search, None);
//!
//! // The seed's ServiceConfigured / ServiceURL.
//! assert!(registry.is_configured("chat-svc"));
//! assert_eq!(registry.service_url("chat-svc").unwrap().port(), Some(8002));
//! # Ok::<(), Error>(())
//! ```
//!
//! # Feature flags
//!
//! None. The crate depends on [`url`] (its [`Url`] type is part of the API,
//! and re-exported as [`svc_discovery::Url`](Url)) and `thiserror`.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is **1.88**. Raising it is not a
//! breaking change, but is noted in the changelog.
#![deny(missing_docs)]

mod error;
mod name;
mod redact;
mod registry;
mod resolve;
mod setting;

pub use error::Error;
pub use redact::{Redacted, redact, redact_str, strip_userinfo, url_full};
pub use registry::{Iter, Registry};
pub use resolve::{parse_service_url, parse_service_urls};
pub use setting::Setting;
pub use url::Url;

// The README's example is compiled and run with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

use resolve::ProcessEnv;

/// The variable that holds `service`'s URL: `auth-svc` -> `AUTH_SVC_URL`.
///
/// Case-insensitive; `-`, `_` and `.` are equivalent. The Kubernetes
/// fallback variables are the same prefix with `_SERVICE_HOST` and
/// `_SERVICE_PORT`.
///
/// # Errors
///
/// [`Error::InvalidName`] if `service` is empty, has no letter or digit, or
/// has a character other than ASCII letters, digits, `-`, `_` and `.`.
///
/// # Example
///
/// ```
/// use svc_discovery::env_var;
///
/// assert_eq!(env_var("auth-svc")?, "AUTH_SVC_URL");
/// assert_eq!(env_var("Chat.Svc")?, "CHAT_SVC_URL");
/// assert!(env_var("auth svc").is_err());
/// # Ok::<(), svc_discovery::Error>(())
/// ```
pub fn env_var(service: &str) -> Result<String, Error> {
    let mut var = name::env_prefix(service)?;
    var.push_str(name::URL_SUFFIX);
    Ok(var)
}

/// The URL of `service` from the process environment, or why there is none.
///
/// Reads `{NAME}_URL`, then `{NAME}_SERVICE_HOST` and `{NAME}_SERVICE_PORT`,
/// at each call; see the [crate documentation](crate) for the rules and
/// [`Registry`] for a snapshot.
///
/// # Errors
///
/// [`Error::InvalidName`] for a bad name, [`Error::NotConfigured`] when no
/// variable is set, [`Error::InvalidUrl`], [`Error::InvalidList`],
/// [`Error::InvalidHost`] or [`Error::InvalidPort`] when one is set to an
/// invalid value. A list of URLs in `{NAME}_URL` is checked whole and its
/// first entry returned ([`endpoints`] gives them all).
///
/// # Example
///
/// ```
/// match svc_discovery::lookup("auth-svc") {
///     Ok(url) => println!("auth-svc at {}", svc_discovery::redact(&url)),
///     Err(err) if err.is_not_configured() => println!("auth-svc is not deployed"),
///     Err(err) => panic!("misconfigured: {err}"),
/// }
/// ```
pub fn lookup(service: &str) -> Result<Url, Error> {
    resolve::resolve(&ProcessEnv, service)
}

/// Every base URL of `service` from the process environment: one per
/// replica when `{NAME}_URL` lists several, separated by commas, else the
/// one URL [`lookup`] finds. See [`Registry::endpoints`].
///
/// # Errors
///
/// As [`lookup`], and [`Error::InvalidList`] when the entries of a list do
/// not form one service (an empty or repeated entry, mixed schemes,
/// different paths).
///
/// # Example
///
/// ```
/// if let Ok(replicas) = svc_discovery::endpoints("auth-svc") {
///     println!("auth-svc has {} replica(s)", replicas.len());
/// }
/// ```
pub fn endpoints(service: &str) -> Result<Vec<Url>, Error> {
    resolve::resolve_all(&ProcessEnv, service)
}

/// Like [`lookup`], but an absent service is `Ok(None)`.
///
/// The shape for optional dependencies: absent is fine, misconfigured is
/// still an error.
///
/// # Errors
///
/// As [`lookup`], except [`Error::NotConfigured`].
///
/// # Example
///
/// ```
/// # fn run() -> Result<(), svc_discovery::Error> {
/// if let Some(chat) = svc_discovery::lookup_optional("chat-svc")? {
///     println!("chat enrichment enabled: {}", svc_discovery::redact(&chat));
/// }
/// # Ok(())
/// # }
/// ```
pub fn lookup_optional(service: &str) -> Result<Option<Url>, Error> {
    registry::optional(lookup(service))
}

/// The URL of `service` from the process environment, or `None` if it is
/// absent **or invalid**.
///
/// The seed's `ServiceURL`. Prefer [`lookup`] when a misconfiguration should
/// be reported rather than treated as absence.
///
/// # Example
///
/// ```
/// if let Some(url) = svc_discovery::service_url("auth-svc") {
///     println!("auth-svc at {}", svc_discovery::redact(&url));
/// }
/// ```
pub fn service_url(service: &str) -> Option<Url> {
    lookup(service).ok()
}

/// True if `service` resolves to a URL from the process environment, i.e.
/// [`lookup`] succeeds.
///
/// The seed's `ServiceConfigured`: true means "safe to call". A variable set
/// to an invalid value does not count; [`lookup`] says what is wrong.
///
/// # Example
///
/// ```
/// if svc_discovery::service_configured("chat-svc") {
///     // Safe to build a client for chat-svc.
/// }
/// ```
pub fn service_configured(service: &str) -> bool {
    lookup(service).is_ok()
}

/// The URL of a required service from the process environment.
///
/// The seed's `MustServiceURL`, for the few dependencies without which the
/// process cannot start. Prefer [`lookup`] and returning the error where the
/// caller can.
///
/// # Panics
///
/// If [`lookup`] fails. The message is the error's, so it names the
/// variable(s) to set or the one holding an invalid value, e.g.
/// `required service is unavailable: service "auth-svc" is not configured:
/// set AUTH_SVC_URL, or AUTH_SVC_SERVICE_HOST and AUTH_SVC_SERVICE_PORT`.
///
/// # Example
///
/// ```no_run
/// let auth = svc_discovery::must_service_url("auth-svc");
/// println!("auth-svc at {}", svc_discovery::redact(&auth));
/// ```
#[track_caller]
pub fn must_service_url(service: &str) -> Url {
    match lookup(service) {
        Ok(url) => url,
        Err(err) => panic!("required service is unavailable: {err}"),
    }
}
