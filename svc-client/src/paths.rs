//! Joining a caller's path onto the service's base URL, safely.
//!
//! A [`Client`](crate::Client) is built for one service, and every path it is
//! given must stay on that service. A path is often built from request data
//! (`format!("/users/{id}")`), so it is treated as untrusted: anything that
//! could send the call to another host, or above the base URL's path prefix,
//! is rejected before any I/O.
//!
//! | path | joined onto `http://gw/api` |
//! |---|---|
//! | `/users/1`, `users/1` | `http://gw/api/users/1` |
//! | `/users?active=1` | `http://gw/api/users?active=1` |
//! | `/files/a%2Fb` | `http://gw/api/files/a%2Fb` (percent-encoding kept) |
//! | `/a/../b` | `http://gw/api/b` (stays under the prefix) |
//! | `""` | `http://gw/api` |
//! | `http://evil/x`, `mailto:x` | rejected: an absolute URL |
//! | `//evil/x` | rejected: a scheme-relative URL |
//! | `/a\b` | rejected: a backslash (browsers and some servers read it as `/`) |
//! | `/a\r\nHost: evil` | rejected: a control character |
//! | `/../admin`, `/%2e%2e/admin`, `/..%2fadmin` | rejected: climbs above the prefix |
//! | `/x#frag` | rejected: a fragment is never sent |

use std::borrow::Cow;
use std::fmt;

use url::Url;

/// Why a path was rejected. Carried by [`Error`](crate::Error) (see
/// [`Error::is_invalid_path`](crate::Error::is_invalid_path)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathProblem {
    Absolute,
    SchemeRelative,
    Backslash,
    Control,
    Fragment,
    Climbs,
    LeavesService,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathProblem::Absolute => {
                "an absolute URL is not a path (give a path relative to the service)"
            }
            PathProblem::SchemeRelative => "a path starting with `//` names another host",
            PathProblem::Backslash => "a backslash is not allowed in a path",
            PathProblem::Control => {
                "control characters (CR, LF, NUL, ...) are not allowed in a path"
            }
            PathProblem::Fragment => "a fragment (`#...`) is never sent to the server",
            PathProblem::Climbs => "`..` segments climb above the service's base path",
            PathProblem::LeavesService => "the joined URL leaves the service's base URL",
        })
    }
}

/// The base URL with its path as a prefix: `http://gw/api/` has the prefix
/// `/api`, `http://gw` the empty prefix.
fn prefix(base: &Url) -> &str {
    base.path().trim_end_matches('/')
}

/// Is `s` of the form `scheme:...` (RFC 3986 `scheme = ALPHA *( ALPHA /
/// DIGIT / "+" / "-" / "." )`) before any `/`, `?` or `#`?
fn has_scheme(s: &str) -> bool {
    let first_segment = s.split(['/', '?', '#']).next().unwrap_or("");
    match first_segment.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// Percent-decodes `segment` (invalid escapes are kept as is) into bytes;
/// borrows when there is nothing to decode (the common case, on every call).
fn percent_decode(segment: &str) -> Cow<'_, [u8]> {
    let bytes = segment.as_bytes();
    if !bytes.contains(&b'%') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(out)
}

/// Checks the dot segments of `path` (the part before `?`): a `..` that
/// would climb above the prefix is rejected, and so is a segment hiding a
/// `..` behind an encoded slash (`..%2f..`), which a server decoding `%2F`
/// before routing would climb with.
fn check_dot_segments(path: &str) -> Result<(), PathProblem> {
    let mut depth: usize = 0;
    for segment in path.split('/') {
        let decoded = percent_decode(segment);
        match &*decoded {
            b"" | b"." => {}
            b".." => depth = depth.checked_sub(1).ok_or(PathProblem::Climbs)?,
            // Tomcat and Jetty read `..;params` as `..`.
            other if other.starts_with(b"..;") => return Err(PathProblem::Climbs),
            other => {
                if other.contains(&b'/') || other.contains(&b'\\') {
                    let hides_dots = other
                        .split(|b| *b == b'/' || *b == b'\\')
                        .any(|part| part == b"..");
                    if hides_dots {
                        return Err(PathProblem::Climbs);
                    }
                }
                depth += 1;
            }
        }
    }
    Ok(())
}

/// Joins `path` onto `base`, or says why it cannot.
///
/// The result always has `base`'s scheme, userinfo, host and port, and its
/// path starts with `base`'s path prefix.
pub(crate) fn join(base: &Url, path: &str) -> Result<Url, PathProblem> {
    if path.chars().any(char::is_control) {
        return Err(PathProblem::Control);
    }
    if path.contains('\\') {
        return Err(PathProblem::Backslash);
    }
    if path.contains('#') {
        return Err(PathProblem::Fragment);
    }
    if path.starts_with("//") {
        return Err(PathProblem::SchemeRelative);
    }
    if has_scheme(path) {
        return Err(PathProblem::Absolute);
    }
    let (path_part, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    check_dot_segments(path_part)?;

    let prefix = prefix(base);
    let mut url = base.clone();
    if !path_part.is_empty() {
        let rest = path_part.trim_start_matches('/');
        let mut joined = String::with_capacity(prefix.len() + 1 + rest.len());
        joined.push_str(prefix);
        joined.push('/');
        joined.push_str(rest);
        // Parses (and percent-encodes, and resolves dot segments in) the
        // path only: the host is not parsed again.
        url.set_path(&joined);
    }
    url.set_query(query);

    // Belt and braces: whatever the URL parser normalised, the result must
    // still be the same service, under the same prefix.
    let same_service = url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.username() == base.username()
        && url.password() == base.password();
    let under_prefix = match url.path().strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    };
    if !same_service || !under_prefix || url.fragment().is_some() {
        return Err(PathProblem::LeavesService);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn joins_under_the_prefix() {
        let cases = [
            ("http://gw/api", "/users/1", "http://gw/api/users/1"),
            ("http://gw/api/", "/users/1", "http://gw/api/users/1"),
            ("http://gw/api/", "users/1", "http://gw/api/users/1"),
            ("http://gw/api", "users/1/", "http://gw/api/users/1/"),
            ("http://gw", "/users/1", "http://gw/users/1"),
            ("http://gw:8001", "users", "http://gw:8001/users"),
            ("http://gw/api", "", "http://gw/api"),
            ("http://gw/api/", "", "http://gw/api/"),
            ("http://gw/api", "/", "http://gw/api/"),
            ("http://gw/api", "?q=1", "http://gw/api?q=1"),
            (
                "http://gw/api",
                "/users?active=1&x=%20",
                "http://gw/api/users?active=1&x=%20",
            ),
            ("http://gw/api", "/files/a%2Fb", "http://gw/api/files/a%2Fb"),
            ("http://gw/api", "/a/../b", "http://gw/api/b"),
            ("http://gw/api", "/a/./b", "http://gw/api/a/b"),
            ("http://gw/api", "/a/%2e%2e/b", "http://gw/api/b"),
            ("http://gw/api", "/users/a:b", "http://gw/api/users/a:b"),
            ("http://gw/api", "/a b", "http://gw/api/a%20b"),
            ("http://gw/api", "/caf\u{e9}", "http://gw/api/caf%C3%A9"),
            ("http://u:p@gw/api", "/x", "http://u:p@gw/api/x"),
            ("http://gw/api", "/a/..", "http://gw/api/"),
            ("https://[::1]:8443/v1", "/x", "https://[::1]:8443/v1/x"),
        ];
        for (b, path, want) in cases {
            let got = join(&base(b), path).unwrap_or_else(|e| panic!("{b} + {path:?}: {e}"));
            assert_eq!(got.as_str(), want, "{b} + {path:?}");
        }
    }

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(&*percent_decode("%2e%2E"), b"..");
        assert_eq!(&*percent_decode("%"), b"%");
        assert_eq!(&*percent_decode("%2"), b"%2");
        assert_eq!(&*percent_decode("%zz."), b"%zz.");
        assert_eq!(&*percent_decode("a%2fb"), b"a/b");
    }

    #[test]
    fn scheme_detection() {
        assert!(has_scheme("http://x"));
        assert!(has_scheme("mailto:x"));
        assert!(has_scheme("a+b.c-d:x"));
        assert!(!has_scheme("/a:b"));
        assert!(!has_scheme("1a:b"));
        assert!(!has_scheme("users?x=a:b"));
        assert!(!has_scheme(":x"));
    }
}
