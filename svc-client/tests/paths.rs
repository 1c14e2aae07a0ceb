//! Paths are joined under the service's base URL; a path that could leave
//! the service is rejected before any I/O.

mod support;

use proptest::prelude::*;
use support::{client_for, fast_config, recording_server};
use svc_client::{Client, ClientConfig, Registry};

/// A client for a service at `http://127.0.0.1:{port}/api` whose server
/// must never be reached.
async fn assert_rejected(path: &str) {
    let (addr, seen) = recording_server(200, "reached").await;
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
];

#[tokio::test]
async fn paths_are_joined_under_the_prefix() {
    for (prefix, path, want) in JOINED {
        let (addr, seen) = recording_server(200, "ok").await;
        let client = client_for("gw", addr, prefix, fast_config());
        let resp = client.get(path).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(seen.uris(), [*want], "prefix {prefix:?} + path {path:?}");
    }
}

#[tokio::test]
async fn query_parameters_are_appended() {
    let (addr, seen) = recording_server(200, "ok").await;
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
        assert!(url.fragment().is_none());
    }
}

proptest! {
    #[test]
    fn joined_urls_never_leave_the_service(path in "[a-z/.%2eEfF5cC?#:@\\\\;\r\n ]{0,24}") {
        check_joined(&proptest_client(), &path);
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
