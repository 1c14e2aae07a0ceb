//! From variables to a URL: the rules shared by [`Registry`](crate::Registry)
//! and the free functions that read the process environment.
//!
//! A service is found in this order:
//!
//! 1. `{NAME}_URL`, if set and not blank. It must be an absolute `http` or
//!    `https` URL with a host; a path prefix is kept; a query or fragment is
//!    rejected, because a base URL that callers append paths to cannot carry
//!    either meaningfully. A set but invalid value is an error, never a quiet
//!    fall-through: the platform meant something, and guessing hides it.
//! 2. Otherwise `{NAME}_SERVICE_HOST` (if set and not blank) with
//!    `{NAME}_SERVICE_PORT`, the variables Kubernetes injects for every
//!    service, form `http://host:port`. The port is then required.
//! 3. Otherwise the service is not configured.
//!
//! Values are trimmed first; blank means unset.

use std::borrow::Cow;
use std::net::Ipv6Addr;

use url::Url;

use crate::Error;
use crate::name::{self, HOST_SUFFIX, PORT_SUFFIX, URL_SUFFIX};
use crate::redact::redact_str;

/// Longest value quoted in an error; longer ones are cut (after redaction).
const MAX_SHOWN_VALUE: usize = 200;

/// One variable's raw value.
pub(crate) enum Raw<'a> {
    Text(Cow<'a, str>),
    NotUnicode,
}

impl Raw<'_> {
    /// Set to something other than whitespace.
    pub(crate) fn is_set(&self) -> bool {
        match self {
            Raw::Text(text) => !text.trim().is_empty(),
            Raw::NotUnicode => true,
        }
    }
}

/// Where variables come from: a snapshot or the live process environment.
pub(crate) trait Source {
    fn get(&self, key: &str) -> Option<Raw<'_>>;
}

/// The live process environment, read one variable at a time.
pub(crate) struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, key: &str) -> Option<Raw<'_>> {
        std::env::var_os(key).map(|value| match value.into_string() {
            Ok(text) => Raw::Text(Cow::Owned(text)),
            Err(_) => Raw::NotUnicode,
        })
    }
}

/// Resolves `service` (any accepted spelling) against `source`.
pub(crate) fn resolve(source: &impl Source, service: &str) -> Result<Url, Error> {
    let prefix = name::env_prefix(service)?;
    resolve_prefix(source, service, &prefix)
}

/// Resolves `service` (any accepted spelling) to every base URL it lists.
pub(crate) fn resolve_all(source: &impl Source, service: &str) -> Result<Vec<Url>, Error> {
    let prefix = name::env_prefix(service)?;
    resolve_all_prefix(source, service, &prefix)
}

/// Resolves a service whose variable prefix (`AUTH_SVC`) is already known:
/// the first of its base URLs (a list in `{NAME}_URL` is checked whole).
pub(crate) fn resolve_prefix(
    source: &impl Source,
    service: &str,
    prefix: &str,
) -> Result<Url, Error> {
    let mut urls = resolve_all_prefix(source, service, prefix)?;
    // A successful resolution has at least one URL.
    Ok(urls.swap_remove(0))
}

/// Every base URL of a service whose variable prefix is known: one, or the
/// entries of a comma-separated `{NAME}_URL`.
pub(crate) fn resolve_all_prefix(
    source: &impl Source,
    service: &str,
    prefix: &str,
) -> Result<Vec<Url>, Error> {
    let url_var = format!("{prefix}{URL_SUFFIX}");
    if let Some(raw) = source.get(&url_var).filter(Raw::is_set) {
        return parse_url_list(&url_var, &raw);
    }
    let host_var = format!("{prefix}{HOST_SUFFIX}");
    let port_var = format!("{prefix}{PORT_SUFFIX}");
    let Some(host) = source.get(&host_var).filter(Raw::is_set) else {
        return Err(Error::NotConfigured {
            service: service.to_owned(),
            variables: vec![url_var, host_var, port_var],
        });
    };
    let host = parse_host(&host_var, &host)?;
    let port = parse_port(&port_var, &host_var, source.get(&port_var))?;
    let url = Url::parse(&format!("http://{host}:{port}")).map_err(|e| {
        invalid_value(
            Kind::Host,
            &host_var,
            Some(&host),
            format!("it cannot be parsed: {e}"),
        )
    })?;
    Ok(vec![url])
}

/// Checks a list of base URLs separated by commas, as `{NAME}_URL` may hold
/// for a service with several replicas: every entry is a base URL as
/// [`parse_service_url`] checks it, no entry is empty or repeated, and all
/// share one scheme and one path (they are replicas of one service, and a
/// call's path is joined onto whichever one serves it). `setting` names
/// where the value came from in the error, as `variable()`.
///
/// A value without a comma is one URL, exactly as [`parse_service_url`]
/// reads it. A comma inside a URL (in a password or a path) must be
/// percent-encoded (`%2C`).
///
/// ```
/// use svc_discovery::{Error, parse_service_urls};
///
/// let urls = parse_service_urls("AUTH_SVC_URL", "http://10.0.0.7:8001, http://10.0.0.8:8001")?;
/// assert_eq!(urls.len(), 2);
/// assert_eq!(urls[1].as_str(), "http://10.0.0.8:8001/");
///
/// let err = parse_service_urls("AUTH_SVC_URL", "http://a:1,,http://b:1").unwrap_err();
/// assert!(matches!(err, Error::InvalidList { .. }));
/// assert_eq!(err.variable(), Some("AUTH_SVC_URL"));
/// let err = parse_service_urls("AUTH_SVC_URL", "http://a:1,https://b:1").unwrap_err();
/// assert!(err.to_string().contains("scheme"), "{err}");
/// # Ok::<(), Error>(())
/// ```
pub fn parse_service_urls(setting: &str, value: &str) -> Result<Vec<Url>, Error> {
    parse_url_list(setting, &Raw::Text(Cow::Borrowed(value)))
}

/// Checks a `{NAME}_URL` value that may be a list.
fn parse_url_list(variable: &str, raw: &Raw<'_>) -> Result<Vec<Url>, Error> {
    let value = trimmed(Kind::Url, variable, raw)?;
    if !value.contains(',') {
        return Ok(vec![parse_url(variable, raw)?]);
    }
    let entries: Vec<&str> = value.split(',').map(str::trim).collect();
    let count = entries.len();
    let list_error = |reason: String| Error::InvalidList {
        variable: variable.to_owned(),
        value: Some(shown(value)),
        reason,
    };
    let mut urls: Vec<Url> = Vec::with_capacity(count);
    for (i, entry) in entries.iter().enumerate() {
        let n = i + 1;
        if entry.is_empty() {
            return Err(list_error(format!(
                "entry {n} of {count} is empty; separate base urls with single commas"
            )));
        }
        let url = parse_url(variable, &Raw::Text(Cow::Borrowed(entry))).map_err(|e| match e {
            // The whole value is quoted, redacted as a whole: an entry alone
            // may be a cut through a password holding a comma.
            Error::InvalidUrl {
                variable, reason, ..
            } => Error::InvalidUrl {
                variable,
                value: Some(shown(value)),
                reason: format!("entry {n} of {count}: {reason}"),
            },
            other => other,
        })?;
        if let Some(first) = urls.first() {
            if url.scheme() != first.scheme() {
                return Err(list_error(format!(
                    "entry {n} of {count} has the scheme {:?} but entry 1 has {:?}; \
                     the replicas of a service share one scheme",
                    url.scheme(),
                    first.scheme()
                )));
            }
            if url.path() != first.path() {
                // The paths are not quoted: a cut through a password could
                // put part of it in one.
                return Err(list_error(format!(
                    "entry {n} of {count} has another path than entry 1; \
                     the replicas of a service share one path"
                )));
            }
        }
        if let Some(same) = urls.iter().position(|u| u == &url) {
            return Err(list_error(format!(
                "entry {n} of {count} repeats entry {}",
                same + 1
            )));
        }
        urls.push(url);
    }
    Ok(urls)
}

/// Checks a service's base URL as discovery checks a `{NAME}_URL` value:
/// an absolute `http` or `https` URL with a host, no query, no fragment.
/// `setting` names where the value came from in the error (a variable, a
/// configuration key), as `variable()`.
///
/// For URLs that do not come from the environment (a tool's flag, a test's
/// server), so they pass the same checks.
///
/// ```
/// let err = svc_discovery::parse_service_url("base_url", "http://gw/?x=1").unwrap_err();
/// assert_eq!(err.variable(), Some("base_url"));
/// assert!(err.to_string().contains("query"), "{err}");
/// let url = svc_discovery::parse_service_url("base_url", "https://gw:8443/api").unwrap();
/// assert_eq!(url.path(), "/api");
/// ```
pub fn parse_service_url(setting: &str, value: &str) -> Result<Url, Error> {
    parse_url(setting, &Raw::Text(Cow::Borrowed(value)))
}

/// Checks a `{NAME}_URL` value.
fn parse_url(variable: &str, raw: &Raw<'_>) -> Result<Url, Error> {
    let value = trimmed(Kind::Url, variable, raw)?;
    let invalid = |reason: String| invalid_value(Kind::Url, variable, Some(value), reason);
    const NOT_ABSOLUTE: &str =
        "it is not an absolute url; expected http://host[:port][/path] or https://...";

    if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(format!("it contains the character {c:?}")));
    }
    if !value.contains("://") {
        return Err(invalid(NOT_ABSOLUTE.to_owned()));
    }
    let url = match Url::parse(value) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return Err(invalid(NOT_ABSOLUTE.to_owned()));
        }
        Err(e) => return Err(invalid(format!("it cannot be parsed: {e}"))),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "the scheme is {:?}; expected http or https",
            url.scheme()
        )));
    }
    // The url crate rejects an http(s) URL without a host; kept as a guard.
    if url.host().is_none() {
        return Err(invalid("it has no host".to_owned()));
    }
    if url.query().is_some() {
        return Err(invalid(
            "it has a query (?...); a service url is a base url, \
             put query parameters on each request"
                .to_owned(),
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid(
            "it has a fragment (#...), which a service url cannot use".to_owned(),
        ));
    }
    Ok(url)
}

/// Checks a `{NAME}_SERVICE_HOST` value; returns it ready to put before
/// `:port` (IPv6 addresses bracketed).
fn parse_host(variable: &str, raw: &Raw<'_>) -> Result<String, Error> {
    let value = trimmed(Kind::Host, variable, raw)?;
    let invalid = |reason: String| invalid_value(Kind::Host, variable, Some(value), reason);

    // IPv6, bracketed or not (Kubernetes writes it bare).
    if let Some(inner) = value.strip_prefix('[') {
        return match inner.strip_suffix(']').map(str::parse::<Ipv6Addr>) {
            Some(Ok(ip)) => Ok(format!("[{ip}]")),
            _ => Err(invalid(
                "it is not a valid bracketed ipv6 address".to_owned(),
            )),
        };
    }
    if value.contains(':') {
        return match value.parse::<Ipv6Addr>() {
            Ok(ip) => Ok(format!("[{ip}]")),
            Err(_) => Err(invalid(
                "it contains ':' but is not an ipv6 address; \
                 give the port in the _SERVICE_PORT variable and a full url in the _URL one"
                    .to_owned(),
            )),
        };
    }
    // A name or IPv4 address: nothing that would change the URL's structure.
    if let Some(c) = value
        .chars()
        .find(|&c| c.is_whitespace() || c.is_control() || "/?#@\\[]%".contains(c))
    {
        return Err(invalid(format!(
            "it contains the character {c:?}, which a host cannot"
        )));
    }
    match Url::parse(&format!("http://{value}/")) {
        Ok(url) if url.host().is_some() => Ok(value.to_owned()),
        Ok(_) => Err(invalid("it is not a host".to_owned())),
        Err(e) => Err(invalid(format!("it cannot be parsed: {e}"))),
    }
}

/// Checks a `{NAME}_SERVICE_PORT` value: decimal, 1 to 65535.
fn parse_port(variable: &str, host_variable: &str, raw: Option<Raw<'_>>) -> Result<u16, Error> {
    let invalid =
        |value: Option<&str>, reason: String| invalid_value(Kind::Port, variable, value, reason);
    let value = match &raw {
        Some(raw) if raw.is_set() => trimmed(Kind::Port, variable, raw)?,
        _ => {
            return Err(invalid(
                None,
                format!("it is not set, but {host_variable} is"),
            ));
        }
    };
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            Some(value),
            "it is not a decimal number".to_owned(),
        ));
    }
    match value.parse::<u16>() {
        Ok(0) => Err(invalid(
            Some(value),
            "port 0 cannot be connected to".to_owned(),
        )),
        Ok(port) => Ok(port),
        Err(_) => Err(invalid(
            Some(value),
            "it is out of range; expected 1 to 65535".to_owned(),
        )),
    }
}

/// Which variable a value came from, and so which error it gets.
#[derive(Clone, Copy)]
enum Kind {
    Url,
    Host,
    Port,
}

/// The error for a bad value of `variable`: `value` is quoted redacted and
/// cut (`None`: it cannot be shown, or there is none).
fn invalid_value(kind: Kind, variable: &str, value: Option<&str>, reason: String) -> Error {
    let (variable, value) = (variable.to_owned(), value.map(shown));
    match kind {
        Kind::Url => Error::InvalidUrl {
            variable,
            value,
            reason,
        },
        Kind::Host => Error::InvalidHost {
            variable,
            value,
            reason,
        },
        Kind::Port => Error::InvalidPort {
            variable,
            value,
            reason,
        },
    }
}

/// The trimmed text of `variable`'s value; one that is not valid unicode is
/// an error that cannot quote it.
fn trimmed<'r>(kind: Kind, variable: &str, raw: &'r Raw<'_>) -> Result<&'r str, Error> {
    match raw {
        Raw::Text(text) => Ok(text.trim()),
        Raw::NotUnicode => Err(invalid_value(
            kind,
            variable,
            None,
            "it is not valid unicode".to_owned(),
        )),
    }
}

/// A value as quoted in an error: redacted, then cut to a sane length.
fn shown(value: &str) -> String {
    let mut shown = redact_str(value);
    if shown.len() > MAX_SHOWN_VALUE {
        let mut end = MAX_SHOWN_VALUE;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
        shown.push_str("...");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Raw<'_> {
        Raw::Text(Cow::Borrowed(s))
    }

    #[test]
    fn blank_is_unset() {
        assert!(!text("").is_set());
        assert!(!text(" \t\n").is_set());
        assert!(text(" x ").is_set());
        assert!(Raw::NotUnicode.is_set());
    }

    #[test]
    fn ports() {
        let port = |v: Option<&str>| parse_port("P", "H", v.map(text));
        assert_eq!(port(Some("8001")), Ok(8001));
        assert_eq!(port(Some(" 65535 ")), Ok(65535));
        assert_eq!(port(Some("1")), Ok(1));
        for bad in [
            None,
            Some(""),
            Some("0"),
            Some("65536"),
            Some("-1"),
            Some("+80"),
            Some("80a"),
            Some("99999999999999999999"),
        ] {
            let err = port(bad).unwrap_err();
            assert_eq!(err.variable(), Some("P"), "{bad:?}");
        }
        assert!(parse_port("P", "H", Some(Raw::NotUnicode)).is_err());
    }

    #[test]
    fn hosts() {
        let host = |v: &str| parse_host("H", &text(v));
        assert_eq!(host("10.0.0.7").unwrap(), "10.0.0.7");
        assert_eq!(
            host("auth-svc.ns.svc.cluster.local").unwrap(),
            "auth-svc.ns.svc.cluster.local"
        );
        assert_eq!(host("fd00::1").unwrap(), "[fd00::1]");
        assert_eq!(host("[fd00:0:0::1]").unwrap(), "[fd00::1]");
        for bad in [
            "10.0.0.7:80",
            "[fd00::1",
            "[nope]",
            "a b",
            "a/b",
            "u@h",
            "a%41",
            "h?x",
            "1.2.3.999",
            "xn--",
        ] {
            assert_eq!(host(bad).unwrap_err().variable(), Some("H"), "{bad:?}");
        }
        assert!(parse_host("H", &Raw::NotUnicode).is_err());
    }

    #[test]
    fn shown_values_are_cut_on_a_char_boundary() {
        let long = format!("http://host/{}", "é".repeat(300));
        let s = shown(&long);
        assert!(s.len() <= MAX_SHOWN_VALUE + 3);
        assert!(s.ends_with("..."));
    }
}
