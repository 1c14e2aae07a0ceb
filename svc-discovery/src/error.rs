//! The one error type of the crate.
//!
//! Every variant names what is wrong and where: the service name as given, or
//! the environment variable holding the bad value. Values are shown only after
//! [`redact_str`](crate::redact_str) has removed credentials, query and
//! fragment, so an error can be logged as it is.

use std::fmt;

/// Why a service could not be discovered.
///
/// Messages are lower-case, name the offending service or variable, and never
/// contain a password: values are stored already redacted (see
/// [`redact_str`](crate::redact_str)), so both `Display` and `Debug` are safe
/// to log.
///
/// # Example
///
/// ```
/// use svc_discovery::{Error, Registry};
///
/// let registry = Registry::from_vars([("AUTH_SVC_URL", "ftp://user:hunter2@auth")]);
/// let err = registry.lookup("auth-svc").unwrap_err();
/// assert!(matches!(err, Error::InvalidUrl { .. }));
/// assert_eq!(err.variable(), Some("AUTH_SVC_URL"));
/// assert_eq!(
///     err.to_string(),
///     r#"invalid url in AUTH_SVC_URL="ftp://user:***@auth": the scheme is "ftp"; expected http or https"#,
/// );
/// assert!(!format!("{err:?}").contains("hunter2"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service name cannot be mapped to a variable name.
    ///
    /// Names are ASCII letters, digits, `-`, `_` and `.`, with at least one
    /// letter or digit.
    #[error("invalid service name {name:?}: {reason}")]
    #[non_exhaustive]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it, naming the offending character if any.
        reason: String,
    },

    /// None of the variables that configure the service is set (or each is
    /// empty).
    #[error("service {service:?} is not configured: set {}", set_hint(.variables))]
    #[non_exhaustive]
    NotConfigured {
        /// The name as given.
        service: String,
        /// Every variable that was read: `{NAME}_URL`, `{NAME}_SERVICE_HOST`
        /// and `{NAME}_SERVICE_PORT`.
        variables: Vec<String>,
    },

    /// `{NAME}_URL` is set but is not an absolute `http` or `https` URL with a
    /// host and without query or fragment.
    #[error("invalid url in {variable}{}: {reason}", shown(.value))]
    #[non_exhaustive]
    InvalidUrl {
        /// The variable holding the value, e.g. `AUTH_SVC_URL`.
        variable: String,
        /// The value, redacted; `None` when it is not valid Unicode.
        value: Option<String>,
        /// What is wrong with it.
        reason: String,
    },

    /// `{NAME}_URL` lists several base URLs (separated by commas) that do
    /// not form one service: an entry is empty or repeated, or the entries
    /// differ in scheme or path. An entry that is not a base URL by itself
    /// is [`Error::InvalidUrl`], its reason naming the entry.
    #[error("invalid list of urls in {variable}{}: {reason}", shown(.value))]
    #[non_exhaustive]
    InvalidList {
        /// The variable holding the list, e.g. `AUTH_SVC_URL`.
        variable: String,
        /// The whole value, redacted.
        value: Option<String>,
        /// What is wrong with it, naming the entry.
        reason: String,
    },

    /// `{NAME}_SERVICE_HOST` is set but is not a host name or IP address.
    #[error("invalid host in {variable}{}: {reason}", shown(.value))]
    #[non_exhaustive]
    InvalidHost {
        /// The variable holding the value, e.g. `AUTH_SVC_SERVICE_HOST`.
        variable: String,
        /// The value, redacted; `None` when it is not valid Unicode.
        value: Option<String>,
        /// What is wrong with it.
        reason: String,
    },

    /// `{NAME}_SERVICE_HOST` is set but `{NAME}_SERVICE_PORT` is missing or
    /// not a port number from 1 to 65535.
    #[error("invalid port in {variable}{}: {reason}", shown(.value))]
    #[non_exhaustive]
    InvalidPort {
        /// The variable holding the value, e.g. `AUTH_SVC_SERVICE_PORT`.
        variable: String,
        /// The value; `None` when it is unset or not valid Unicode.
        value: Option<String>,
        /// What is wrong with it.
        reason: String,
    },
}

// ===== impl Error =====

impl Error {
    /// True if the service is simply absent from the environment, as opposed
    /// to configured with a bad name or value.
    ///
    /// Use it to treat a dependency as optional without hiding a
    /// misconfiguration:
    ///
    /// ```
    /// use svc_discovery::Registry;
    ///
    /// let registry = Registry::from_vars([("CHAT_SVC_URL", "chat-svc:8002")]);
    /// assert!(registry.lookup("search-svc").unwrap_err().is_not_configured());
    /// // Set but invalid: an error to report, not an absent service.
    /// assert!(!registry.lookup("chat-svc").unwrap_err().is_not_configured());
    /// ```
    pub fn is_not_configured(&self) -> bool {
        matches!(self, Error::NotConfigured { .. })
    }

    /// The variable whose value is invalid, if the error is about a value.
    ///
    /// `None` for [`Error::InvalidName`] and [`Error::NotConfigured`] (the
    /// latter lists its variables in its `variables` field).
    ///
    /// ```
    /// use svc_discovery::Registry;
    ///
    /// let registry = Registry::from_vars([
    ///     ("AUTH_SVC_SERVICE_HOST", "10.0.0.7"),
    ///     ("AUTH_SVC_SERVICE_PORT", "0"),
    /// ]);
    /// let err = registry.lookup("auth-svc").unwrap_err();
    /// assert_eq!(err.variable(), Some("AUTH_SVC_SERVICE_PORT"));
    /// assert_eq!(registry.lookup("auth svc").unwrap_err().variable(), None);
    /// ```
    pub fn variable(&self) -> Option<&str> {
        match self {
            Error::InvalidUrl { variable, .. }
            | Error::InvalidList { variable, .. }
            | Error::InvalidHost { variable, .. }
            | Error::InvalidPort { variable, .. } => Some(variable),
            Error::InvalidName { .. } | Error::NotConfigured { .. } => None,
        }
    }
}

/// `AUTH_SVC_URL, or AUTH_SVC_SERVICE_HOST and AUTH_SVC_SERVICE_PORT`.
fn set_hint(variables: &[String]) -> SetHint<'_> {
    SetHint(variables)
}

struct SetHint<'a>(&'a [String]);

impl fmt::Display for SetHint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => f.write_str("its variables"),
            [url, host, port] => write!(f, "{url}, or {host} and {port}"),
            [first, rest @ ..] => {
                f.write_str(first)?;
                rest.iter().try_for_each(|v| write!(f, " or {v}"))
            }
        }
    }
}

/// `="value"` (escaped), or nothing when the value is unknown.
fn shown(value: &Option<String>) -> Shown<'_> {
    Shown(value.as_deref())
}

struct Shown<'a>(Option<&'a str>);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => write!(f, "={value:?}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_static_and_small() {
        fn assert_traits<T: Send + Sync + 'static + std::error::Error + Clone>() {}
        assert_traits::<Error>();
        assert!(std::mem::size_of::<Error>() <= 80);
    }

    // NotConfigured's message, predicate and variable: the integration test
    // `registry::not_configured_names_every_variable_tried`.

    #[test]
    fn set_hint_handles_other_lengths() {
        let vars = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(set_hint(&vars(&[])).to_string(), "its variables");
        assert_eq!(set_hint(&vars(&["A_URL"])).to_string(), "A_URL");
        assert_eq!(
            set_hint(&vars(&["A_URL", "B_URL"])).to_string(),
            "A_URL or B_URL"
        );
    }

    #[test]
    fn missing_value_is_not_shown() {
        let err = Error::InvalidPort {
            variable: "A_SERVICE_PORT".to_owned(),
            value: None,
            reason: "it is not set".to_owned(),
        };
        assert_eq!(
            err.to_string(),
            "invalid port in A_SERVICE_PORT: it is not set"
        );
    }
}
