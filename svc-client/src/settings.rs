//! Client settings from the environment: `AUTH_SVC_TIMEOUT=2s` next to
//! `AUTH_SVC_URL`.
//!
//! The platform injects a service's URL; an operator tunes the client that
//! calls it without a rebuild, as resilience4j, Polly and seatbelt let them
//! per dependency. The variable names come from `svc-discovery`
//! ([`Setting`]), durations are read by `svc-breaker`'s
//! [`parse_duration`](svc_breaker::parse_duration), and every value is
//! checked by the same validation as a config built in code, so a file, a
//! variable and a setter cannot disagree.
//!
//! A set value is never ignored: one that does not parse, or that the
//! validation rejects, is an error naming the variable, quoting the value
//! (it is not a secret; at most [`MAX_SHOWN`] characters of it) and saying
//! what was expected. Unset or blank (whitespace only) means the default,
//! as for `{NAME}_URL`.

use std::env::VarError;
use std::error::Error as StdError;
use std::fmt;

use svc_discovery::{Registry, Setting};

use crate::config::ClientConfig;
use crate::error::{Error, Kind};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Longest part of a value quoted in an error.
const MAX_SHOWN: usize = 64;

const WHOLE_NUMBER: &str = "a whole number such as 3";

// ===== impl ClientConfig =====

impl ClientConfig {
    /// The settings of `service`'s client from the process environment:
    /// the defaults, with every variable of the table below that is set.
    /// The same as [`from_registry`](ClientConfig::from_registry) on
    /// [`Registry::from_env()`](Registry::from_env).
    ///
    /// | variable (for `auth-svc`) | setting | value |
    /// |---|---|---|
    /// | `AUTH_SVC_TIMEOUT` | [`timeout`](ClientConfig::timeout) | a duration, > 0 |
    /// | `AUTH_SVC_ATTEMPT_TIMEOUT` | [`attempt_timeout`](ClientConfig::attempt_timeout) | a duration, > 0 |
    /// | `AUTH_SVC_MAX_RETRIES` | [`max_retries`](ClientConfig::max_retries) | a whole number, 0 to 4294967295 |
    /// | `AUTH_SVC_BREAKER_FAILURE_THRESHOLD` | the breaker's `failure_threshold` | a whole number, ≥ 1 |
    /// | `AUTH_SVC_BREAKER_RESET_TIMEOUT` | the breaker's `reset_timeout` | a duration, > 0 |
    ///
    /// The prefix is the one of `AUTH_SVC_URL` ([`env_var`](crate::env_var)).
    /// Durations are a whole number and a unit, `ns`, `us`, `ms`, `s`, `m`
    /// or `h`, or several from the largest unit down: `250ms`, `2s`, `1m`,
    /// `1m30s` (the grammar is at [`svc_breaker::parse_duration`]). Values
    /// are trimmed; unset or blank means the default. The URL itself is not
    /// read here: [`Client::from_registry`](crate::Client::from_registry)
    /// does that.
    ///
    /// # Errors
    ///
    /// [`Error::is_config`], with a [`SettingError`] in
    /// [`Error::setting_error`], for a set value that does not parse or
    /// that the validation rejects (a threshold of 0, a zero timeout); the
    /// message names the variable and what it expected, e.g.
    /// `AUTH_SVC_TIMEOUT="abc": expected a duration such as 250ms, 2s or 1m
    /// (it must start with a whole number)`. [`Error::is_discovery`] for an
    /// invalid service name.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use svc_client::{Client, ClientConfig};
    ///
    /// # fn run() -> Result<(), svc_client::Error> {
    /// // AUTH_SVC_URL=http://auth:8001 AUTH_SVC_TIMEOUT=2s AUTH_SVC_MAX_RETRIES=1
    /// let auth = Client::with_config("auth-svc", ClientConfig::from_env("auth-svc")?)?;
    /// # let _ = auth;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_env(service: &str) -> Result<ClientConfig, Error> {
        ClientConfig::from_registry(&Registry::from_env(), service)
    }

    /// The settings of `service`'s client from `registry` (a snapshot of
    /// the environment, or variables given by a test), as
    /// [`from_env`](ClientConfig::from_env) reads them.
    ///
    /// # Errors
    ///
    /// As [`from_env`](ClientConfig::from_env).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use svc_client::{Client, ClientConfig, Registry};
    ///
    /// let registry = Registry::from_vars([
    ///     ("AUTH_SVC_URL", "http://127.0.0.1:8001"),
    ///     ("AUTH_SVC_TIMEOUT", "2s"),
    ///     ("AUTH_SVC_BREAKER_RESET_TIMEOUT", "1m30s"),
    /// ]);
    /// let config = ClientConfig::from_registry(&registry, "auth-svc")?;
    /// let breaker = config.http_config().circuit_breaker_config().unwrap();
    /// assert_eq!(breaker, &svc_client::CircuitBreakerConfig::default()
    ///     .reset_timeout(Duration::from_secs(90)));
    /// let auth = Client::from_registry(&registry, "auth-svc", config)?;
    /// # let _ = auth;
    ///
    /// let registry = Registry::from_vars([("AUTH_SVC_MAX_RETRIES", "-1")]);
    /// let err = ClientConfig::from_registry(&registry, "auth-svc").unwrap_err();
    /// assert!(err.is_config());
    /// assert_eq!(err.setting_error().unwrap().variable(), "AUTH_SVC_MAX_RETRIES");
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"AUTH_SVC_MAX_RETRIES="-1": expected a whole number such as 3 (it is negative)"#,
    /// );
    /// # Ok::<(), svc_client::Error>(())
    /// ```
    pub fn from_registry(registry: &Registry, service: &str) -> Result<ClientConfig, Error> {
        ClientConfig::default().apply_settings(registry, service)
    }

    /// This config with the settings of `service` that are set in
    /// `registry` applied over it: the way to keep a service's own defaults
    /// in code and let an operator override them. Settings that are unset
    /// keep this config's values; the breaker settings change this
    /// config's breaker and keep its other settings.
    ///
    /// # Errors
    ///
    /// As [`from_env`](ClientConfig::from_env); also
    /// [`Error::is_config`] when this config is already invalid, and when a
    /// breaker variable is set but this config has no breaker
    /// (`circuit_breaker(None)`).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use svc_client::{ClientConfig, Registry};
    ///
    /// let ours = ClientConfig::default().timeout(Duration::from_secs(2)).max_retries(1);
    /// let registry = Registry::from_vars([("AUTH_SVC_MAX_RETRIES", "0")]);
    /// let config = ours.apply_settings(&registry, "auth-svc")?;
    /// # let _ = config;
    /// # Ok::<(), svc_client::Error>(())
    /// ```
    pub fn apply_settings(
        mut self,
        registry: &Registry,
        service: &str,
    ) -> Result<ClientConfig, Error> {
        // A setting is blamed only for what it changed.
        self.validate()?;
        for setting in Setting::ALL {
            let variable = setting.variable(service).map_err(Error::from)?;
            let value = match registry.var(&variable) {
                Err(VarError::NotPresent) => continue,
                Err(VarError::NotUnicode(_)) => {
                    let message = format!("expected {}", expected(setting));
                    return Err(
                        SettingError::new(&variable, None, expected(setting), message).into(),
                    );
                }
                Ok(value) if value.trim().is_empty() => continue,
                Ok(value) => value,
            };
            // `message` follows `VARIABLE="value": `.
            let invalid = |message: String, source: Option<BoxError>| -> Error {
                let mut err = SettingError::new(&variable, Some(value), expected(setting), message);
                err.source = source;
                err.into()
            };
            // Its message says what a duration looks like.
            let duration = || {
                svc_breaker::parse_duration(value)
                    .map_err(|e| invalid(e.to_string(), Some(Box::new(e))))
            };
            let number = || {
                parse_u32(value).map_err(|problem| {
                    invalid(format!("expected {WHOLE_NUMBER} ({problem})"), None)
                })
            };
            let breaker = |http: &svc_httpclient::Config| {
                http.circuit_breaker_config().cloned().ok_or_else(|| {
                    invalid(
                        "the client has no circuit breaker (circuit_breaker(None)) to apply it to"
                            .to_owned(),
                        None,
                    )
                })
            };
            let http = self.http.clone();
            let http = match setting {
                Setting::Timeout => http.timeout(duration()?),
                Setting::AttemptTimeout => http.attempt_timeout(duration()?),
                Setting::MaxRetries => http.max_retries(number()?),
                Setting::BreakerFailureThreshold => {
                    let b = breaker(&http)?.failure_threshold(number()?);
                    http.circuit_breaker(Some(b))
                }
                Setting::BreakerResetTimeout => {
                    let b = breaker(&http)?.reset_timeout(duration()?);
                    http.circuit_breaker(Some(b))
                }
            };
            // The validation of a config built in code, whose message names
            // the setting and the rule.
            if let Err(err) = http.validate() {
                let message = match err.source() {
                    // The breaker's own message, without the wrapper's.
                    Some(inner) if inner.is::<svc_breaker::ConfigError>() => inner.to_string(),
                    _ => err.to_string(),
                };
                return Err(invalid(message, Some(Box::new(err))));
            }
            self.http = http;
        }
        Ok(self)
    }
}

/// What a valid value of `setting` looks like.
fn expected(setting: Setting) -> &'static str {
    match setting {
        Setting::Timeout | Setting::AttemptTimeout | Setting::BreakerResetTimeout => {
            svc_breaker::ParseDurationError::EXPECTED
        }
        Setting::MaxRetries | Setting::BreakerFailureThreshold => WHOLE_NUMBER,
    }
}

/// A whole number: ASCII digits only (no sign, no fraction, no spaces
/// inside), at most `u32::MAX`.
fn parse_u32(value: &str) -> Result<u32, String> {
    let digits = value.trim();
    if let Some(rest) = digits.strip_prefix('-')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("it is negative".to_owned());
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("it is not a whole number".to_owned());
    }
    digits
        .parse()
        .map_err(|_| format!("it is too large; at most {}", u32::MAX))
}

// ===== SettingError =====

/// A setting from the environment that was set but invalid: which
/// variable, its value, what was expected and what was wrong. Found with
/// [`Error::setting_error`]; its `Display` is the error's message.
///
/// The value is shown (settings are not secrets), cut to 64 characters and
/// escaped, so a message stays one short line.
///
/// # Example
///
/// ```
/// use svc_client::{ClientConfig, Registry};
///
/// let registry = Registry::from_vars([("AUTH_SVC_TIMEOUT", "abc")]);
/// let err = ClientConfig::from_registry(&registry, "auth-svc").unwrap_err();
/// let setting = err.setting_error().unwrap();
/// assert_eq!(setting.variable(), "AUTH_SVC_TIMEOUT");
/// assert_eq!(setting.value(), Some("abc"));
/// assert_eq!(setting.expected(), "a duration such as 250ms, 2s or 1m");
/// assert!(err.to_string().starts_with(
///     r#"AUTH_SVC_TIMEOUT="abc": expected a duration such as 250ms, 2s or 1m"#
/// ));
/// ```
#[derive(Debug)]
pub struct SettingError {
    variable: String,
    /// `None` when the value is not valid Unicode.
    value: Option<String>,
    expected: &'static str,
    /// What was wrong: the text after `VARIABLE="value": `.
    message: String,
    source: Option<BoxError>,
}

impl SettingError {
    fn new(
        variable: &str,
        value: Option<&str>,
        expected: &'static str,
        message: String,
    ) -> SettingError {
        let value = value.map(|v| {
            let mut shown: String = v.chars().take(MAX_SHOWN).collect();
            if shown.len() < v.len() {
                shown.push('…');
            }
            shown
        });
        SettingError {
            variable: variable.to_owned(),
            value,
            expected,
            message,
            source: None,
        }
    }

    /// The variable, e.g. `AUTH_SVC_TIMEOUT`.
    pub fn variable(&self) -> &str {
        &self.variable
    }

    /// The value as set (at most 64 characters of it), or `None` when it is
    /// not valid Unicode.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// What a valid value looks like, e.g. `a duration such as 250ms, 2s or
    /// 1m`.
    pub fn expected(&self) -> &str {
        self.expected
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={value:?}: {}", self.variable, self.message),
            None => write!(
                f,
                "{} is not valid unicode: {}",
                self.variable, self.message
            ),
        }
    }
}

impl StdError for SettingError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

impl From<SettingError> for Error {
    fn from(err: SettingError) -> Error {
        Error::new(Kind::Setting(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers() {
        assert_eq!(parse_u32(" 7 "), Ok(7));
        assert_eq!(parse_u32("4294967295"), Ok(u32::MAX));
        for (value, problem) in [
            ("-1", "it is negative"),
            ("4294967296", "it is too large; at most 4294967295"),
            ("+1", "it is not a whole number"),
            ("1.5", "it is not a whole number"),
            ("1 2", "it is not a whole number"),
            ("three", "it is not a whole number"),
            ("-", "it is not a whole number"),
        ] {
            assert_eq!(parse_u32(value), Err(problem.to_owned()), "{value:?}");
        }
    }

    #[test]
    fn long_values_are_cut() {
        let err = SettingError::new(
            "A_TIMEOUT",
            Some(&"9".repeat(10_000)),
            WHOLE_NUMBER,
            "expected a whole number".to_owned(),
        );
        assert_eq!(err.value().unwrap().chars().count(), MAX_SHOWN + 1);
        assert!(err.to_string().len() < 150, "{err}");
    }
}
