//! Showing URLs without their secrets: the one redaction policy of svc.
//!
//! Service URLs may carry credentials (`http://user:password@host`) and
//! queries may carry tokens (`/verify?token=…&sig=…`); a URL that reaches a
//! log line, an error message or a span attribute is as good as published.
//! Every crate of the workspace shows URLs through this module only, in one
//! of two forms:
//!
//! | form | userinfo | query values | for |
//! |---|---|---|---|
//! | [`Redacted`] / [`redact`] | `user:***@` (a lone user name, often a token, becomes `***@`) | every value `***`, keys kept | error messages, log lines, `Debug` |
//! | [`url_full`] | removed | `REDACTED` for `AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature`; others kept | the OpenTelemetry `url.full` span attribute |
//!
//! The second form is what the OpenTelemetry HTTP conventions ask of
//! `url.full`: a trace backend is access-controlled and the query is
//! often what makes a span useful, while logs and error messages travel
//! much further (to ticket trackers, to the caller's own caller), so they
//! carry no query value at all.
//!
//! [`redact_str`] is for a string that may not even parse (a bad
//! configuration value): without a parser to trust, it hides everything up
//! to the last `@` after the scheme, and the whole query and fragment.
//! [`strip_userinfo`] gives a [`Url`] without credentials, for errors that
//! hand a URL back to their caller.

use std::borrow::Cow;
use std::fmt;

use url::{Position, Url};

/// The replacement for every hidden part of a message or log line.
const MASK: &str = "***";

/// The replacement for sensitive query values in `url.full`
/// (OpenTelemetry HTTP conventions).
const OTEL_MASK: &str = "REDACTED";

/// Query parameters whose values are secrets, per the OpenTelemetry HTTP
/// semantic conventions for `url.full` and `url.query`.
const SENSITIVE_QUERY_KEYS: [&str; 4] = ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];

/// A [`Url`] that displays without its credentials.
///
/// `Display` writes the URL with the password replaced by `***` (the user
/// name is kept when a password follows it; a lone user name is replaced,
/// since it is often a token), every query value replaced by `***` (the
/// keys are kept) and the fragment replaced by `***`. `Debug` writes the
/// same text, quoted.
/// Nothing is allocated: use it directly in `format!`, `tracing` fields and
/// error messages.
///
/// # Example
///
/// ```
/// use svc_discovery::Redacted;
/// use url::Url;
///
/// let url = Url::parse("http://app:hunter2@auth-svc:8001/api").unwrap();
/// assert_eq!(Redacted::new(&url).to_string(), "http://app:***@auth-svc:8001/api");
///
/// let url = Url::parse("https://ghp_token@git.example/repo?token=abc&page=2").unwrap();
/// assert_eq!(
///     format!("{:?}", Redacted::new(&url)),
///     r#""https://***@git.example/repo?token=***&page=***""#
/// );
/// ```
#[derive(Clone, Copy)]
pub struct Redacted<'a> {
    url: &'a Url,
}

impl<'a> Redacted<'a> {
    /// Wraps `url` for display.
    ///
    /// ```
    /// use svc_discovery::Redacted;
    /// use url::Url;
    ///
    /// let url = Url::parse("http://auth-svc:8001/").unwrap();
    /// assert_eq!(Redacted::new(&url).to_string(), "http://auth-svc:8001/");
    /// ```
    pub fn new(url: &'a Url) -> Self {
        Redacted { url }
    }

    /// The wrapped URL, with its credentials, for code that needs it.
    ///
    /// ```
    /// use svc_discovery::Redacted;
    /// use url::Url;
    ///
    /// let url = Url::parse("http://u:p@auth-svc/").unwrap();
    /// assert_eq!(Redacted::new(&url).url().password(), Some("p"));
    /// ```
    pub fn url(&self) -> &'a Url {
        self.url
    }
}

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.url;
        // "scheme:" plus "//" when the URL has an authority.
        f.write_str(&url[..Position::BeforeUsername])?;
        let username = url.username();
        match url.password() {
            Some(_) => write!(f, "{username}:{MASK}@")?,
            None if !username.is_empty() => write!(f, "{MASK}@")?,
            None => {}
        }
        f.write_str(&url[Position::BeforeHost..Position::AfterPath])?;
        if let Some(query) = url.query() {
            f.write_str("?")?;
            write_query(f, query, |_| true, MASK)?;
        }
        if url.fragment().is_some() {
            write!(f, "#{MASK}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

/// Writes `query`, replacing with `mask` the value of every parameter
/// whose key `hide` selects.
fn write_query(
    out: &mut impl fmt::Write,
    query: &str,
    hide: impl Fn(&str) -> bool,
    mask: &str,
) -> fmt::Result {
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.write_str("&")?;
        }
        match pair.split_once('=') {
            Some((key, _)) if hide(key) => write!(out, "{key}={mask}")?,
            _ => out.write_str(pair)?,
        }
    }
    Ok(())
}

/// Is `key` one of the query parameters OpenTelemetry lists as sensitive?
fn is_sensitive_query_key(key: &str) -> bool {
    SENSITIVE_QUERY_KEYS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(key))
}

/// `url` as the OpenTelemetry `url.full` attribute: without userinfo, and
/// with the values of `AWSAccessKeyId`, `Signature`, `sig` and
/// `X-Goog-Signature` replaced by `REDACTED`. Borrows when there is
/// nothing to hide (the common case, on every request).
///
/// ```
/// use svc_discovery::url_full;
/// use url::Url;
///
/// let url = Url::parse("http://app:hunter2@gw/v1?sig=abc&page=2").unwrap();
/// assert_eq!(url_full(&url), "http://gw/v1?sig=REDACTED&page=2");
/// let plain = Url::parse("http://gw/v1?page=2").unwrap();
/// assert!(matches!(url_full(&plain), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn url_full(url: &Url) -> Cow<'_, str> {
    let has_userinfo = !url.username().is_empty() || url.password().is_some();
    let sensitive_query = url.query().is_some_and(|q| {
        q.split('&').any(|pair| {
            pair.split_once('=')
                .is_some_and(|(k, _)| is_sensitive_query_key(k))
        })
    });
    if !has_userinfo && !sensitive_query {
        return Cow::Borrowed(url.as_str());
    }
    let mut out = String::with_capacity(url.as_str().len());
    out.push_str(&url[..Position::BeforeUsername]);
    out.push_str(&url[Position::BeforeHost..Position::AfterPath]);
    if let Some(query) = url.query() {
        out.push('?');
        // Writing into a `String` cannot fail.
        let _ = write_query(&mut out, query, is_sensitive_query_key, OTEL_MASK);
    }
    if let Some(fragment) = url.fragment() {
        out.push('#');
        out.push_str(fragment);
    }
    Cow::Owned(out)
}

/// `url` without its user name and password (the userinfo of
/// `http://user:pass@host/`), for an error that hands the URL back to its
/// caller. Borrows when there is nothing to strip.
///
/// ```
/// use svc_discovery::strip_userinfo;
/// use url::Url;
///
/// let url = Url::parse("https://alice:s3cret@api.test:8443/v1?q=1").unwrap();
/// assert_eq!(strip_userinfo(&url).as_str(), "https://api.test:8443/v1?q=1");
/// ```
pub fn strip_userinfo(url: &Url) -> Cow<'_, Url> {
    if url.username().is_empty() && url.password().is_none() {
        return Cow::Borrowed(url);
    }
    let mut clean = url.clone();
    // Both only fail for URLs that cannot have credentials, which then
    // have none to strip.
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    Cow::Owned(clean)
}

/// The URL as a string without its credentials; see [`Redacted`].
///
/// ```
/// use svc_discovery::redact;
/// use url::Url;
///
/// let url = Url::parse("http://app:hunter2@gw/api/v1?sig=abc&page=2").unwrap();
/// assert_eq!(redact(&url), "http://app:***@gw/api/v1?sig=***&page=***");
/// ```
pub fn redact(url: &Url) -> String {
    Redacted::new(url).to_string()
}

/// A possibly malformed URL string without anything that could be a secret.
///
/// For values that failed to parse (so [`Redacted`] cannot be used), such as a
/// bad configuration value quoted in an error. Without a parser to trust, it
/// is conservative:
///
/// - everything between the scheme's `://` (or the start, if there is none)
///   and the **last** `@` is userinfo; it becomes `user:***` when it is a
///   plain user name followed by `:`, and `***` otherwise, so a password
///   containing `@`, `/`, `?` or `#` is still hidden;
/// - the query and the fragment become `?***` and `#***`.
///
/// A string without `@`, `?` or `#` is returned unchanged.
///
/// ```
/// use svc_discovery::redact_str;
///
/// assert_eq!(redact_str("ftp://app:hunter2@host/x"), "ftp://app:***@host/x");
/// assert_eq!(redact_str("http://app:p@ss/w#rd@host"), "http://app:***@host");
/// assert_eq!(redact_str("http://ghp_token@host"), "http://***@host");
/// assert_eq!(redact_str("http://host/?token=abc"), "http://host/?***");
/// assert_eq!(redact_str("auth-svc:8001"), "auth-svc:8001");
/// ```
pub fn redact_str(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    if let Some(at) = value.rfind('@') {
        // A scheme counts only if it comes before the userinfo and looks like
        // one; otherwise everything before the `@` is hidden.
        let start = match value[..at].find("://") {
            Some(i) if is_scheme(&value[..i]) => i + 3,
            _ => 0,
        };
        let userinfo = &value[start..at];
        out.push_str(&value[..start]);
        match userinfo.split_once(':') {
            Some((user, _)) if !user.is_empty() && user.chars().all(is_plain_user_char) => {
                out.push_str(user);
                out.push(':');
                out.push_str(MASK);
            }
            _ => out.push_str(MASK),
        }
        out.push('@');
        rest = &value[at + 1..];
    }
    match rest.find(['?', '#']) {
        Some(i) => {
            out.push_str(&rest[..=i]);
            out.push_str(MASK);
        }
        None => out.push_str(rest),
    }
    out
}

/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`, RFC 3986.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// Characters of a user name that can be shown: RFC 3986 unreserved,
/// sub-delims and `%`.
fn is_plain_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=%".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(url: &str) -> String {
        redact(&Url::parse(url).unwrap())
    }

    #[test]
    fn redacts_parsed_urls() {
        for (url, expected) in [
            ("http://auth-svc:8001", "http://auth-svc:8001/"),
            ("http://user:pw@host/", "http://user:***@host/"),
            ("http://:pw@host/", "http://:***@host/"),
            ("http://user:@host/", "http://***@host/"),
            ("http://token@host/a", "http://***@host/a"),
            (
                "https://u:p@[::1]:8443/x?y=1#z",
                "https://u:***@[::1]:8443/x?y=***#***",
            ),
            (
                "http://h/?X-Goog-Signature=abc&a=b&SIG=c&sig&Signature=",
                "http://h/?X-Goog-Signature=***&a=***&SIG=***&sig&Signature=***",
            ),
            (
                "http://h/verify?token=t0k&sig=s1g",
                "http://h/verify?token=***&sig=***",
            ),
            ("mailto:someone@example.com", "mailto:someone@example.com"),
            ("http://h/?", "http://h/?"),
        ] {
            assert_eq!(shown(url), expected, "{url}");
        }
    }

    #[test]
    fn url_full_follows_the_opentelemetry_conventions() {
        for (url, expected) in [
            (
                "http://h/verify?token=t&sig=s",
                "http://h/verify?token=t&sig=REDACTED",
            ),
            ("http://u:p@h:81/x", "http://h:81/x"),
            ("http://tok@h/x?a=1", "http://h/x?a=1"),
            (
                "http://h/?AWSAccessKeyId=a&Signature=b&x-goog-signature=c&q=d#f",
                "http://h/?AWSAccessKeyId=REDACTED&Signature=REDACTED&x-goog-signature=REDACTED&q=d#f",
            ),
            ("http://h/?sig", "http://h/?sig"),
        ] {
            assert_eq!(url_full(&Url::parse(url).unwrap()), expected, "{url}");
        }
    }

    #[test]
    fn empty_password_is_no_password() {
        // The url crate drops an empty password, so nothing is hidden.
        assert_eq!(Url::parse("http://user:@host/").unwrap().password(), None);
    }

    #[test]
    fn redacts_raw_strings() {
        for (value, expected) in [
            ("", ""),
            ("http://host:8001", "http://host:8001"),
            ("http://user:pw@host", "http://user:***@host"),
            ("http://token@host", "http://***@host"),
            ("http://:pw@host", "http://***@host"),
            ("user:pw@host", "user:***@host"),
            ("http://us/er:pw@host", "http://***@host"),
            ("http://user:p@w@host/x", "http://user:***@host/x"),
            ("http://user:p?w@host", "http://user:***@host"),
            ("http://host/?q=1", "http://host/?***"),
            ("http://host/#frag", "http://host/#***"),
            ("http://u:p@host/?q=1#f", "http://u:***@host/?***"),
            ("host?redirect=http://u:p@x", "***@x"),
            ("@", "***@"),
        ] {
            assert_eq!(redact_str(value), expected, "{value:?}");
        }
    }

    #[test]
    fn raw_redaction_handles_multibyte_characters() {
        assert_eq!(redact_str("http://ü:pä@hö/ß?€"), "http://***@hö/ß?***");
    }
}
