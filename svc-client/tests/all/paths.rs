//! Paths are joined under the service's base URL; a path that could leave
//! the service is rejected before any I/O.

use crate::support::{client_for, fast_config, recording_server};
use proptest::prelude::*;
use svc_client::{Client, ClientConfig, Registry};

/// A client for a service at `http://127.0.0.1:{port}/api` whose server
/// must never be reached.
async fn assert_rejected(path: &str) {
    let server = recording_server(200, "reached").await;
    let (addr, seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "/api", fast_config());
    for result in [
        client.get(path).await,
        client.post(path, &serde_json::json!({"a": 1})).await,
        client.delete(path).await,
    ] {
        let err = result.expect_err(&format!("{path:?} must be rejected"));
        assert!(err.is_invalid_path(), "{path:?}: {err}");
        assert!(!err.is_circuit_open() && !err.is_connect(), "{path:?}");
        assert_eq!(err.attempts(), 0);
        assert_eq!(err.service(), Some("auth-svc"));
        let shown = format!("{:?}", path.chars().take(200).collect::<String>());
        assert!(err.to_string().contains(&shown), "{err} must name {shown}");
    }
    assert!(client.url(path).unwrap_err().is_invalid_path());
    assert_eq!(seen.hits(), 0, "{path:?} reached the server");
    // Rejections are not failures of the service.
    assert_eq!(client.circuit_state(), Some(svc_client::State::Closed));
}

macro_rules! rejected {
    ($($name:ident: $path:expr,)*) => {$(
        #[tokio::test]
        async fn $name() {
            assert_rejected($path).await;
        }
    )*};
}

rejected! {
    absolute_http_url: "http://evil.example/x",
    absolute_https_url: "https://evil.example/x",
    absolute_url_upper_case_scheme: "HTTP://evil.example/x",
    absolute_file_url: "file:///etc/passwd",
    absolute_mailto: "mailto:admin@example.com",
    absolute_url_with_userinfo: "http://user@evil.example",
    scheme_relative: "//evil.example/x",
    scheme_relative_three_slashes: "///evil.example/x",
    backslash: "/a\\b",
    backslash_scheme_relative: "\\\\evil.example\\x",
    slash_backslash: "/\\evil.example/x",
    crlf_injection: "/a\r\nHost: evil.example",
    line_feed: "/a\nb",
    carriage_return: "/a\rb",
    nul: "/a\0b",
    tab: "/a\tb",
    delete_char: "/a\u{7f}b",
    c1_control: "/a\u{85}b",
    control_in_query: "/a?x=\r\n",
    fragment: "/users#admin",
    dot_dot_at_root: "/../admin",
    dot_dot_without_slash: "../admin",
    dot_dot_alone: "..",
    dot_dot_trailing: "/..",
    dot_dot_after_a_segment: "/a/../../admin",
    dot_dot_after_dot: "/./../admin",
    dot_dot_encoded: "/%2e%2e/admin",
    dot_dot_encoded_upper: "/%2E%2E/admin",
    dot_dot_half_encoded: "/.%2e/admin",
    dot_dot_other_half_encoded: "/%2e./admin",
    dot_dot_encoded_slash: "/..%2fadmin",
    dot_dot_encoded_slash_upper: "/..%2Fadmin",
    dot_dot_encoded_backslash: "/..%5cadmin",
    dot_dot_fully_encoded: "/%2e%2e%2fadmin",
    dot_dot_semicolon: "/..;/admin",
    long_climb: "/a/b/c/../../../../x",
    empty_segment_after_dot: "/.//evil.example/x",
    empty_segment_after_encoded_dot: "/%2e//evil.example/x",
    empty_segment_after_dot_dot: "/a/..//evil.example/x",
    empty_segment_after_encoded_dot_dot: "/a/%2e%2e//evil.example/x",
    double_encoded_dot_dot: "/%252e%252e/admin",
    double_encoded_dot_dot_upper: "/%252E%252E/admin",
    double_encoded_dot_dot_under_a_segment: "/a/%252e%252e/admin",
    double_encoded_dot_dot_and_slash: "/a/%252e%252e%252f..",
    double_encoded_slash_after_dot_dot: "/a/..%252fadmin",
    half_double_encoded_dot_dot: "/.%252e/admin",
    triple_encoded_dot_dot: "/%25252e%25252e/admin",
    double_encoded_dot_dot_semicolon: "/%252e%252e;/admin",
}

/// The bases `GW_URL` may have: with and without a path prefix.
const BASES: &[&str] = &["http://gw", "http://gw/", "http://gw/api", "http://gw/api/"];

fn client_at(base: &str) -> Client {
    let registry = Registry::from_vars([("GW_URL", base)]);
    Client::from_registry(&registry, "gw", ClientConfig::default()).unwrap()
}

/// The request target of a joined URL must never start with `//` (servers
/// and proxies read `//host/...` as another host), whatever the prefix;
/// under a prefix, the rest must not either (a gateway stripping `/api`
/// would forward `//host/...`).
#[test]
fn no_joined_path_starts_with_an_empty_segment() {
    let paths = [
        "/.//evil",
        "/././/evil",
        "./evil/..//evil",
        "/%2e//evil",
        "/a/..//evil",
        "/a/%2e%2e//evil",
        "/a/b/../..//evil",
        "/a/..//evil?x=1",
    ];
    for base in BASES {
        let client = client_at(base);
        for path in paths {
            let err = client
                .url(path)
                .map(|url| url.to_string())
                .expect_err(&format!("{base} + {path:?}"));
            assert!(err.is_invalid_path(), "{base} + {path:?}: {err}");
            assert!(err.to_string().contains(&format!("{path:?}")), "{err}");
        }
    }
}

/// A server (or a proxy in front of it) that percent-decodes twice would
/// read `%252e%252e` as `..`: such segments are rejected wherever they are,
/// even where a single `..` would stay under the prefix.
#[test]
fn double_encoded_dot_segments_are_rejected() {
    let paths = [
        "/%252e%252e/admin",
        "/a/%252e%252e/b",
        "/a/b/%252e%252e",
        "/a/%252e%252e%252f..",
        "/a/%252e%252e%252fb",
        "/a/..%252f..",
        "/a/..%255c..",
        "/a/%252e./b",
        "/a/.%252e/b",
        "/a/%2e%252e/b",
        "/a/%25252e%25252e/b",
        "/a/%2525252e%2525252e/b",
        "/a/%252e%252e;x/b",
        "/a/%%32%65%%32%65/b",
    ];
    for base in BASES {
        let client = client_at(base);
        for path in paths {
            let err = client
                .url(path)
                .map(|url| url.to_string())
                .expect_err(&format!("{base} + {path:?}"));
            assert!(err.is_invalid_path(), "{base} + {path:?}: {err}");
            assert!(err.to_string().contains(&format!("{path:?}")), "{err}");
        }
    }
}

/// `(prefix, path, what the server sees)`.
const JOINED: &[(&str, &str, &str)] = &[
    ("/api", "/users/1", "/api/users/1"),
    ("/api/", "/users/1", "/api/users/1"),
    ("/api", "users/1", "/api/users/1"),
    ("/api/", "users/1", "/api/users/1"),
    ("", "/users/1", "/users/1"),
    ("/", "users/1", "/users/1"),
    ("/api/v1", "/users/1/", "/api/v1/users/1/"),
    ("/api", "/users?active=1", "/api/users?active=1"),
    ("/api", "/users?q=a%20b&x=%2F", "/api/users?q=a%20b&x=%2F"),
    ("/api", "/files/a%2Fb", "/api/files/a%2Fb"),
    ("/api", "/a/../b", "/api/b"),
    ("/api", "/a/./b", "/api/a/b"),
    ("/api", "/a/%2e%2e/b", "/api/b"),
    ("/api", "/users/a:b", "/api/users/a:b"),
    ("/api", "/a b", "/api/a%20b"),
    ("/api", "", "/api"),
    ("/api", "/", "/api/"),
    ("/api", "?page=2", "/api?page=2"),
    // Only the path is checked: a query may hold `//`, dots and `%25`.
    ("/api", "/users?next=//evil", "/api/users?next=//evil"),
    ("", "/users?next=//evil", "/users?next=//evil"),
    ("/api", "/search?q=%252e%252e", "/api/search?q=%252e%252e"),
    ("/api", "/search?q=/.//..//x", "/api/search?q=/.//..//x"),
    ("/api", "/files/100%25", "/api/files/100%25"),
    ("/api", "/files/%252e", "/api/files/%252e"),
    ("/api", "/files/a%252Fb", "/api/files/a%252Fb"),
    ("/api", "/a/b/../..", "/api/"),
];

#[tokio::test]
async fn paths_are_joined_under_the_prefix() {
    for (prefix, path, want) in JOINED {
        let server = recording_server(200, "ok").await;
        let (addr, seen) = (server.addr(), &server);
        let client = client_for("gw", addr, prefix, fast_config());
        let resp = client.get(path).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(seen.uris(), [*want], "prefix {prefix:?} + path {path:?}");
    }
}

#[tokio::test]
async fn query_parameters_are_appended() {
    let server = recording_server(200, "ok").await;
    let (addr, seen) = (server.addr(), &server);
    let client = client_for("gw", addr, "/api", fast_config());
    client
        .get("/users?active=1")
        .query(&[("page", "2"), ("q", "a b")])
        .await
        .unwrap();
    assert_eq!(seen.uris(), ["/api/users?active=1&page=2&q=a+b"]);
}

fn proptest_client() -> Client {
    let registry = Registry::from_vars([("GW_URL", "http://gw.internal:8080/api")]);
    Client::from_registry(&registry, "gw", ClientConfig::default()).unwrap()
}

fn check_joined(client: &Client, path: &str) {
    if let Ok(url) = client.url(path) {
        assert_eq!(url.scheme(), "http", "{path:?} -> {url}");
        assert_eq!(url.host_str(), Some("gw.internal"), "{path:?} -> {url}");
        assert_eq!(url.port(), Some(8080), "{path:?} -> {url}");
        assert_eq!(url.username(), "");
        assert!(
            url.path() == "/api" || url.path().starts_with("/api/"),
            "{path:?} -> {url}"
        );
        assert!(!url.path().starts_with("/api//"), "{path:?} -> {url}");
        assert!(url.fragment().is_none());
    }
}

/// Percent-decodes `s` once, keeping invalid escapes, as a server would.
fn decode_once(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && i + 2 < s.len()
            && let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// What a server sees of an accepted path, as sent and decoded up to three times
/// before it routes (a proxy and a server may each decode once): never a
/// `..` segment (or Tomcat's `..;`), and never a target starting with `//`.
fn check_decoded(base: &str, path: &str) -> Result<(), TestCaseError> {
    let Ok(url) = client_at(base).url(path) else {
        return Ok(());
    };
    let prefix = url::Url::parse(base)
        .unwrap()
        .path()
        .trim_end_matches('/')
        .to_owned();
    let rest = url.path().strip_prefix(prefix.as_str());
    prop_assert!(
        rest.is_some_and(|r| r.is_empty() || r.starts_with('/')),
        "{} + {:?} -> {}",
        base,
        path,
        url
    );
    let mut seen = url.path().as_bytes().to_vec();
    for round in 0..=3 {
        if round > 0 {
            seen = decode_once(&seen);
        }
        let shown = String::from_utf8_lossy(&seen).into_owned();
        prop_assert!(
            !seen.starts_with(b"//"),
            "{} + {:?} -> {} (round {})",
            base,
            path,
            shown,
            round
        );
        // A server removes `.` segments after decoding: `/.%2f%2fx` is `//x`.
        let mut after_prefix = seen[prefix.len().min(seen.len())..]
            .split(|b| *b == b'/' || *b == b'\\')
            .skip(1)
            .skip_while(|part| *part == b".");
        let opens_with_empty = matches!(
            (after_prefix.next(), after_prefix.next()),
            (Some(b""), Some(_))
        );
        prop_assert!(
            !opens_with_empty,
            "{} + {:?} -> {} (round {})",
            base,
            path,
            shown,
            round
        );
        let climbs = seen
            .split(|b| *b == b'/' || *b == b'\\')
            .any(|part| part == b".." || part.starts_with(b"..;"));
        prop_assert!(
            !climbs,
            "{} + {:?} -> {} (round {})",
            base,
            path,
            shown,
            round
        );
    }
    Ok(())
}

fn path_pieces() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("a"),
            Just("/"),
            Just("."),
            Just(".."),
            Just("%2e"),
            Just("%2E"),
            Just("%252e"),
            Just("%25"),
            Just("2e"),
            Just("%2f"),
            Just("%252f"),
            Just("%5c"),
            Just("%255c"),
            Just(";"),
            Just("%"),
            Just("?"),
        ],
        0..12,
    )
    .prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn joined_urls_never_leave_the_service(path in "[a-z/.%2eEfF5cC?#:@\\\\;\r\n ]{0,24}") {
        check_joined(&proptest_client(), &path);
    }

    #[test]
    fn accepted_paths_never_climb_or_name_a_host_when_decoded_again(
        base in prop_oneof![Just("http://gw"), Just("http://gw/api")],
        path in path_pieces(),
    ) {
        check_decoded(base, &path)?;
        check_decoded(base, &format!("/{path}"))?;
    }

    #[test]
    fn arbitrary_input_never_panics(path in any::<String>()) {
        check_joined(&proptest_client(), &path);
    }

    #[test]
    fn dot_segments_are_accepted_exactly_when_they_stay_under_the_prefix(
        segments in proptest::collection::vec(prop_oneof!["a", "b", "\\.\\.", "%2e%2e", "\\."], 0..8)
    ) {
        let mut depth: i32 = 0;
        let mut climbs = false;
        for s in &segments {
            match s.as_str() {
                ".." | "%2e%2e" => { depth -= 1; climbs |= depth < 0; }
                "." => {}
                _ => depth += 1,
            }
        }
        let path = format!("/{}", segments.join("/"));
        let result = proptest_client().url(&path);
        prop_assert_eq!(result.is_err(), climbs, "{} -> {:?}", path, result);
    }
}
