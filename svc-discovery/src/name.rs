//! Service names and the environment variables they map to.
//!
//! The platform injects one variable per sibling service, named after the
//! component in UPPER_SNAKE_CASE (`auth-svc` -> `AUTH_SVC_URL`). Callers spell
//! the same service in several ways (`auth-svc`, `Auth-Svc`, `auth_svc`,
//! `auth.svc`), so the mapping is case-insensitive and treats `-`, `_` and `.`
//! alike. Anything else is rejected rather than guessed at: a space, `=` or NUL
//! cannot appear in a variable name, and silently dropping such a character
//! would make two different names read the same variable.

use crate::Error;

/// Suffix of the variable holding a service's URL.
pub(crate) const URL_SUFFIX: &str = "_URL";
/// Suffix of the Kubernetes service host variable.
pub(crate) const HOST_SUFFIX: &str = "_SERVICE_HOST";
/// Suffix of the Kubernetes service port variable.
pub(crate) const PORT_SUFFIX: &str = "_SERVICE_PORT";

/// Maps a service name to its variable prefix: `auth-svc` -> `AUTH_SVC`.
pub(crate) fn env_prefix(service: &str) -> Result<String, Error> {
    if service.is_empty() {
        return Err(invalid(service, "it is empty".to_owned()));
    }
    let mut prefix = String::with_capacity(service.len());
    let mut has_alphanumeric = false;
    for (index, c) in service.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => {
                has_alphanumeric = true;
                prefix.push(c.to_ascii_uppercase());
            }
            '-' | '_' | '.' => prefix.push('_'),
            _ => {
                return Err(invalid(
                    service,
                    format!(
                        "character {c:?} at byte {index} is not allowed; \
                         use ASCII letters, digits, '-', '_' or '.'"
                    ),
                ));
            }
        }
    }
    if !has_alphanumeric {
        return Err(invalid(service, "it has no letter or digit".to_owned()));
    }
    Ok(prefix)
}

/// True if `prefix` is something [`env_prefix`] can produce.
pub(crate) fn is_prefix(prefix: &str) -> bool {
    let mut has_alphanumeric = false;
    for b in prefix.bytes() {
        match b {
            b'A'..=b'Z' | b'0'..=b'9' => has_alphanumeric = true,
            b'_' => {}
            _ => return false,
        }
    }
    has_alphanumeric
}

fn invalid(service: &str, reason: String) -> Error {
    Error::InvalidName {
        name: service.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_upper_snake_case() {
        for (name, prefix) in [
            ("auth-svc", "AUTH_SVC"),
            ("Auth-Svc", "AUTH_SVC"),
            ("auth_svc", "AUTH_SVC"),
            ("auth.svc", "AUTH_SVC"),
            ("AUTH_SVC", "AUTH_SVC"),
            ("a", "A"),
            ("svc2", "SVC2"),
            ("2fa", "2FA"),
            ("-x-", "_X_"),
        ] {
            assert_eq!(env_prefix(name).unwrap(), prefix, "{name}");
            assert!(is_prefix(prefix), "{prefix}");
        }
    }

    #[test]
    fn rejects_names_without_letters_or_digits() {
        for name in ["", "-", "_", ".", "-._"] {
            assert!(
                matches!(env_prefix(name), Err(Error::InvalidName { .. })),
                "{name:?}"
            );
        }
    }

    #[test]
    fn is_prefix_rejects_what_env_prefix_cannot_produce() {
        for prefix in ["", "_", "auth", "AUTH-SVC", "AUTH SVC", "ÄUTH"] {
            assert!(!is_prefix(prefix), "{prefix:?}");
        }
    }
}
