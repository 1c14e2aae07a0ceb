//! The variables that tune a service's client, next to its `{NAME}_URL`.
//!
//! The platform names a service's URL variable; an operator tunes the
//! client that calls it with variables of the same prefix
//! (`AUTH_SVC_TIMEOUT=2s`), as DESIGN.md §3 says. The names live here, with
//! the mapping from service names to prefixes, so that the [`Registry`]
//! keeps exactly the variables a client reads, and a client asks for them
//! by a typed [`Setting`], never by a string that could drift.
//!
//! [`Registry`]: crate::Registry

use crate::Error;
use crate::name;

/// A client setting that may be set in the environment next to a service's
/// `{NAME}_URL`. Parsing the value is the client's business (`svc-client`'s
/// `ClientConfig::from_env`); this names the variable.
///
/// | setting | variable for `auth-svc` |
/// |---|---|
/// | [`Timeout`](Setting::Timeout) | `AUTH_SVC_TIMEOUT` |
/// | [`AttemptTimeout`](Setting::AttemptTimeout) | `AUTH_SVC_ATTEMPT_TIMEOUT` |
/// | [`MaxRetries`](Setting::MaxRetries) | `AUTH_SVC_MAX_RETRIES` |
/// | [`BreakerFailureThreshold`](Setting::BreakerFailureThreshold) | `AUTH_SVC_BREAKER_FAILURE_THRESHOLD` |
/// | [`BreakerResetTimeout`](Setting::BreakerResetTimeout) | `AUTH_SVC_BREAKER_RESET_TIMEOUT` |
///
/// The enum is exhaustive on purpose: a new setting is a new minor version,
/// and every client that matches on it must handle it.
///
/// # Example
///
/// ```
/// use svc_discovery::{Registry, Setting};
///
/// assert_eq!(Setting::Timeout.variable("auth-svc")?, "AUTH_SVC_TIMEOUT");
/// let registry = Registry::from_vars([("AUTH_SVC_TIMEOUT", "2s")]);
/// assert_eq!(registry.var(&Setting::Timeout.variable("auth-svc")?), Ok("2s"));
/// # Ok::<(), svc_discovery::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    /// `{NAME}_TIMEOUT`: the deadline of a whole call, retries included.
    Timeout,
    /// `{NAME}_ATTEMPT_TIMEOUT`: the limit of one attempt.
    AttemptTimeout,
    /// `{NAME}_MAX_RETRIES`: retries after the first attempt.
    MaxRetries,
    /// `{NAME}_BREAKER_FAILURE_THRESHOLD`: consecutive failures that open
    /// the circuit.
    BreakerFailureThreshold,
    /// `{NAME}_BREAKER_RESET_TIMEOUT`: how long the circuit stays open
    /// before a trial call.
    BreakerResetTimeout,
}

impl Setting {
    /// Every setting, in the order of the table above.
    pub const ALL: [Setting; 5] = [
        Setting::Timeout,
        Setting::AttemptTimeout,
        Setting::MaxRetries,
        Setting::BreakerFailureThreshold,
        Setting::BreakerResetTimeout,
    ];

    /// The end of the variable's name, after the service's prefix:
    /// `"_TIMEOUT"`, `"_MAX_RETRIES"`...
    pub fn suffix(self) -> &'static str {
        match self {
            Setting::Timeout => "_TIMEOUT",
            Setting::AttemptTimeout => "_ATTEMPT_TIMEOUT",
            Setting::MaxRetries => "_MAX_RETRIES",
            Setting::BreakerFailureThreshold => "_BREAKER_FAILURE_THRESHOLD",
            Setting::BreakerResetTimeout => "_BREAKER_RESET_TIMEOUT",
        }
    }

    /// The variable holding this setting for `service`, with the prefix
    /// rules of [`env_var`](crate::env_var): `auth-svc` ->
    /// `AUTH_SVC_TIMEOUT`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], as [`env_var`](crate::env_var).
    pub fn variable(self, service: &str) -> Result<String, Error> {
        let mut var = name::env_prefix(service)?;
        var.push_str(self.suffix());
        Ok(var)
    }
}

/// True if `key` is a setting variable of some service.
pub(crate) fn is_setting(key: &str) -> bool {
    Setting::ALL.iter().any(|setting| {
        key.strip_suffix(setting.suffix())
            .is_some_and(name::is_prefix)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_url_variable() {
        for setting in Setting::ALL {
            let var = setting.variable("Auth.Svc").unwrap();
            assert!(var.starts_with("AUTH_SVC_"), "{var}");
            assert!(is_setting(&var), "{var}");
        }
        assert!(Setting::MaxRetries.variable("auth svc").is_err());
        assert!(!is_setting("AUTH_SVC_URL"));
        assert!(!is_setting("_TIMEOUT"));
        assert!(!is_setting("auth_TIMEOUT"));
    }
}
