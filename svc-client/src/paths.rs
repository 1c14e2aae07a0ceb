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
//! | `/users?next=//x&q=%252e` | `http://gw/api/users?next=//x&q=%252e` (only the path is checked) |
//! | `/files/a%2Fb` | `http://gw/api/files/a%2Fb` (percent-encoding kept) |
//! | `/a/../b` | `http://gw/api/b` (stays under the prefix) |
//! | `""` | `http://gw/api` |
//! | `http://evil/x`, `mailto:x` | rejected: an absolute URL |
//! | `//evil/x` | rejected: a scheme-relative URL |
//! | `/a\b` | rejected: a backslash (browsers and some servers read it as `/`) |
//! | `/a\r\nHost: evil` | rejected: a control character |
//! | `/../admin`, `/%2e%2e/admin`, `/..%2fadmin` | rejected: climbs above the prefix |
//! | `/.//evil`, `/a/..//evil`, `/%2fevil` | rejected: the target would start with `//` after the prefix |
//! | `/%252e%252e/admin`, `/a/%252e%252e%252f..` | rejected: double-encoded dot segments |
//! | `/x#frag` | rejected: a fragment is never sent |
//!
//! A path is checked as the servers and proxies on the way may read it, not
//! only as the URL parser does. Some decode `%2F` (and `%5C`) before
//! routing, some decode twice (a proxy, then the server), and most remove
//! `.` segments and read `//host` at the start of a target as another host.
//! So a segment is percent-decoded up to four times: a `..` that shows once
//! it is decoded again, or behind an encoded slash, is rejected even where a
//! plain `..` would stay under the prefix; and the joined path, as sent or
//! decoded, must not open with an empty segment after the prefix
//! (`/api//evil`: a gateway that strips `/api` forwards `//evil`). The query
//! is the service's business and is not checked.

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
    DoubleEncoded,
    EmptySegment,
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
            PathProblem::DoubleEncoded => {
                "double-encoded dot segments (`%252e%252e`) climb on servers that decode twice"
            }
            PathProblem::EmptySegment => {
                "an empty segment at the start of the path (`/.//x`, `/a/..//x`, `/%2fx`) \
                 makes the target start with `//`, which names another host"
            }
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

/// How many times a path is percent-decoded when it is checked: once by
/// the server, once more by a proxy in front of it, and a margin. The bound
/// keeps the check linear on `%25252525...`.
const DECODE_ROUNDS: usize = 4;

/// Percent-decodes `segment` (invalid escapes are kept as is) into bytes;
/// borrows when there is nothing to decode (the common case, on every call).
fn percent_decode<S: AsRef<[u8]> + ?Sized>(segment: &S) -> Cow<'_, [u8]> {
    let bytes = segment.as_ref();
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

/// Does a decoded segment read as `..` to some server: `..` itself, `..`
/// behind an encoded slash or backslash (`..%2f..`), or `..;params` (Tomcat
/// and Jetty read it as `..`)?
fn hides_dot_dot(decoded: &[u8]) -> bool {
    decoded
        .split(|b| matches!(b, b'/' | b'\\'))
        .any(|part| part == b".." || part.starts_with(b"..;"))
}

/// Checks the dot segments of `path` (the part before `?`): a `..` that
/// would climb above the prefix is rejected, and so is a segment hiding a
/// `..` behind an encoded slash (`..%2f..`), which a server decoding `%2F`
/// before routing would climb with, or behind a second encoding
/// (`%252e%252e`), which a server decoding twice would climb with.
fn check_dot_segments(path: &str) -> Result<(), PathProblem> {
    let mut depth: usize = 0;
    for segment in path.split('/') {
        let decoded = percent_decode(segment);
        match &*decoded {
            b"" | b"." => {}
            b".." => depth = depth.checked_sub(1).ok_or(PathProblem::Climbs)?,
            other if hides_dot_dot(other) => return Err(PathProblem::Climbs),
            _ => depth += 1,
        }
        // Decoded again, as behind a proxy that decodes too. Decoding only
        // ever shrinks a segment, so an unchanged length means it is done.
        let mut current = decoded;
        for _ in 1..DECODE_ROUNDS {
            if !current.contains(&b'%') {
                break;
            }
            let next = percent_decode(&*current).into_owned();
            if next.len() == current.len() {
                break;
            }
            if hides_dot_dot(&next) {
                return Err(PathProblem::DoubleEncoded);
            }
            current = Cow::Owned(next);
        }
    }
    Ok(())
}

/// Does `rest` (a joined path after the prefix: empty or starting with `/`)
/// start with an empty segment once its leading `.` segments are removed,
/// as it is or percent-decoded up to [`DECODE_ROUNDS`] times? Then a server
/// would see a target starting with `//` (`//evil`, `/.%2f%2fevil`, `/%2fevil`).
fn opens_with_empty_segment(rest: &str) -> bool {
    // The common path (`/users/123`): no dot segment to skip, nothing to
    // decode, so only a literal `//` can open it. Runs on every call.
    if !rest.bytes().any(|b| matches!(b, b'.' | b'%' | b'\\')) {
        return rest.starts_with("//");
    }
    let mut current = Cow::Borrowed(rest.as_bytes());
    for round in 0..=DECODE_ROUNDS {
        let mut parts = current
            .split(|b| matches!(b, b'/' | b'\\'))
            .skip(1) // before the leading `/`
            .skip_while(|part| *part == b".");
        // `/` alone, or `/./`, is the prefix itself.
        if matches!((parts.next(), parts.next()), (Some(b""), Some(_))) {
            return true;
        }
        if round == DECODE_ROUNDS || !current.contains(&b'%') {
            break;
        }
        let next = percent_decode(&*current).into_owned();
        if next.len() == current.len() {
            break;
        }
        current = Cow::Owned(next);
    }
    false
}

/// `prefix` and `path` (a path part, not empty) as one path.
fn joined(prefix: &str, path: &str) -> String {
    let rest = path.trim_start_matches('/');
    let mut joined = String::with_capacity(prefix.len() + 1 + rest.len());
    joined.push_str(prefix);
    joined.push('/');
    joined.push_str(rest);
    joined
}

/// A plain path, split at its query: `/` then segments of ASCII letters,
/// digits, `-`, `_` and `~` (RFC 3986 unreserved characters but `.`), no
/// empty first segment, and a query of printable ASCII without `#`. The
/// common path (`/users/123?active=1`) on every call: it has no dot
/// segment, no escape, no scheme, no fragment and no control character,
/// so none of [`join`]'s checks can reject it and the URL parser keeps it
/// as it is.
fn plain(path: &str) -> Option<(&str, Option<&str>)> {
    let (path_part, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let bytes = path_part.as_bytes();
    let plain_path = bytes.first() == Some(&b'/')
        && bytes.get(1) != Some(&b'/')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'~'));
    let plain_query = query.is_none_or(|q| q.bytes().all(|b| b.is_ascii_graphic() && b != b'#'));
    (plain_path && plain_query).then_some((path_part, query))
}

/// Joins `path` onto `base`, or says why it cannot.
///
/// The result always has `base`'s scheme, userinfo, host and port, and its
/// path starts with `base`'s path prefix.
pub(crate) fn join(base: &Url, path: &str) -> Result<Url, PathProblem> {
    if let Some((path_part, query)) = plain(path) {
        // Nothing in it that any check below could reject or a parser
        // could reinterpret: join without them.
        let mut url = base.clone();
        url.set_path(&joined(prefix(base), path_part));
        url.set_query(query);
        return Ok(url);
    }
    join_checked(base, path)
}

/// [`join`] with every check, for any path.
fn join_checked(base: &Url, path: &str) -> Result<Url, PathProblem> {
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
        // Parses (and percent-encodes, and resolves dot segments in) the
        // path only: the host is not parsed again.
        url.set_path(&joined(prefix, path_part));
    }
    url.set_query(query);

    // Belt and braces: whatever the URL parser normalised, the result must
    // still be the same service, under the same prefix.
    let same_service = url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.username() == base.username()
        && url.password() == base.password();
    let rest = url
        .path()
        .strip_prefix(prefix)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'));
    let Some(rest) = rest else {
        return Err(PathProblem::LeavesService);
    };
    if !same_service || url.fragment().is_some() {
        return Err(PathProblem::LeavesService);
    }
    // Dot segments resolved by the parser can leave an empty one at the
    // start: `/.//evil` and `/a/..//evil` are `//evil` under an empty prefix.
    if opens_with_empty_segment(rest) {
        return Err(PathProblem::EmptySegment);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The plain-path shortcut joins exactly as the checked join does.
        #[test]
        fn plain_paths_join_as_checked_ones(
            path in "/[/a-zA-Z0-9_~.%?#=&:-]{0,24}",
            base in proptest::sample::select(vec!["http://gw", "http://gw/", "http://gw/api", "https://gw:8443/api/v1/"]),
        ) {
            let base = Url::parse(base).unwrap();
            if plain(&path).is_some() {
                proptest::prop_assert_eq!(join(&base, &path), join_checked(&base, &path));
            }
        }
    }

    #[test]
    fn plain_paths_are_only_the_plain_ones() {
        for path in ["/users/123", "/users/123?active=1&q=a:b", "/", "/a-b_c~d"] {
            assert!(plain(path).is_some(), "{path}");
        }
        for path in [
            "", "users", "//evil", "/a/../b", "/a%2f", "/a#f", "/a?b#c", "/é", "/a\\b", "/a:b",
            "/a?\u{1}",
        ] {
            assert!(plain(path).is_none(), "{path}");
        }
    }

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
    fn dot_dot_hidden_by_decoding_is_found() {
        for hidden in ["..", "../a", "a/..", "..\\a", "..;x", "a/..;x"] {
            assert!(hides_dot_dot(hidden.as_bytes()), "{hidden:?}");
        }
        for plain in ["", ".", "...", "a..", "..a", "a/.../b", ";..", "a/./b"] {
            assert!(!hides_dot_dot(plain.as_bytes()), "{plain:?}");
        }
    }

    #[test]
    fn empty_first_segment_is_found_as_sent_and_decoded() {
        for opens in [
            "//x",
            "///",
            "//",
            "/.//x",
            "/%2fx",
            "/%2Fx",
            "/%5cx",
            "/%252fx",
            "/%2e%2f%2fx",
            "/.%2f/x",
        ] {
            assert!(opens_with_empty_segment(opens), "{opens:?}");
        }
        for fine in [
            "", "/", "/./", "/x", "/x//y", "/x/", "/x%2f", "/a%2fb", "/%2e", "/%25", "/%2",
        ] {
            assert!(!opens_with_empty_segment(fine), "{fine:?}");
        }
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
