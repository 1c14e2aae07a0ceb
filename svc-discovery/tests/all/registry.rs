//! `Registry`: values, errors, the Kubernetes fallback and redaction.

use svc_discovery::{Error, Registry, Url, redact};

fn registry(vars: &[(&str, &str)]) -> Registry {
    Registry::from_vars(vars.iter().copied())
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

// ===== the seed =====

#[test]
fn seed_examples() {
    let registry = registry(&[
        ("AUTH_SVC_URL", "http://myproject-auth-svc:8001"),
        ("CHAT_SVC_URL", "http://myproject-chat-svc:8002"),
    ]);
    assert_eq!(
        registry.lookup("auth-svc"),
        Ok(url("http://myproject-auth-svc:8001"))
    );
    assert_eq!(
        registry.service_url("chat-svc"),
        Some(url("http://myproject-chat-svc:8002"))
    );
    assert!(registry.is_configured("auth-svc"));
    assert!(registry.is_configured("chat-svc"));
    assert!(!registry.is_configured("search-svc"));
    assert_eq!(registry.service_url("search-svc"), None);
}

#[test]
fn every_spelling_finds_the_service() {
    let registry = registry(&[("AUTH_SVC_URL", "http://myproject-auth-svc:8001")]);
    for name in ["auth-svc", "Auth-Svc", "auth_svc", "auth.svc", "AUTH_SVC"] {
        assert_eq!(
            registry.lookup(name).unwrap().as_str(),
            "http://myproject-auth-svc:8001/",
            "{name}"
        );
    }
}

// ===== values =====

#[test]
fn valid_values() {
    for (value, expected) in [
        ("http://auth:8001", "http://auth:8001/"),
        ("https://auth.example", "https://auth.example/"),
        ("HTTP://AUTH:8001", "http://auth:8001/"),
        ("  http://auth:8001 \n", "http://auth:8001/"),
        ("http://10.0.0.7:8001", "http://10.0.0.7:8001/"),
        ("http://[fd00::7]:8001", "http://[fd00::7]:8001/"),
        ("http://auth:80", "http://auth/"),
        ("http://user:pw@auth:8001", "http://user:pw@auth:8001/"),
    ] {
        let registry = registry(&[("AUTH_SVC_URL", value)]);
        assert_eq!(registry.lookup("auth-svc"), Ok(url(expected)), "{value:?}");
    }
}

#[test]
fn path_prefix_is_kept() {
    for (value, path) in [
        ("http://gw/api/v1", "/api/v1"),
        ("http://gw/api/v1/", "/api/v1/"),
        ("https://gw:8443/tenants/a%20b", "/tenants/a%20b"),
    ] {
        let registry = registry(&[("GW_URL", value)]);
        let found = registry.lookup("gw").unwrap();
        assert_eq!(found.path(), path, "{value}");
        assert_eq!(found.host_str(), Some("gw"));
    }
}

#[test]
fn blank_values_are_not_configured() {
    for value in ["", " ", "\t\n "] {
        let registry = registry(&[("AUTH_SVC_URL", value)]);
        let err = registry.lookup("auth-svc").unwrap_err();
        assert!(err.is_not_configured(), "{value:?}: {err}");
        assert!(!registry.is_configured("auth-svc"));
        assert_eq!(registry.lookup_optional("auth-svc"), Ok(None));
        assert_eq!(registry.iter().count(), 0);
    }
}

#[test]
fn not_configured_names_every_variable_tried() {
    let err = Registry::default().lookup("auth-svc").unwrap_err();
    let Error::NotConfigured {
        service, variables, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(service, "auth-svc");
    assert_eq!(
        variables,
        &[
            "AUTH_SVC_URL",
            "AUTH_SVC_SERVICE_HOST",
            "AUTH_SVC_SERVICE_PORT"
        ]
    );
    assert_eq!(
        err.to_string(),
        "service \"auth-svc\" is not configured: set AUTH_SVC_URL, \
         or AUTH_SVC_SERVICE_HOST and AUTH_SVC_SERVICE_PORT"
    );
    assert!(err.is_not_configured());
    assert_eq!(err.variable(), None);
}

/// Every invalid `{NAME}_URL`, with the reason its error must give.
const INVALID_URLS: &[(&str, &str)] = &[
    ("myproject-auth-svc:8001", "not an absolute url"),
    ("myproject-auth-svc", "not an absolute url"),
    ("/api/v1", "not an absolute url"),
    ("http:/auth", "not an absolute url"),
    (
        "ftp://auth:21",
        r#"the scheme is "ftp"; expected http or https"#,
    ),
    ("file:///etc/passwd", r#"the scheme is "file""#),
    ("postgres://db/app", r#"the scheme is "postgres""#),
    ("ws://auth", r#"the scheme is "ws""#),
    ("http://", "cannot be parsed: empty host"),
    ("http://:8001", "cannot be parsed: empty host"),
    ("http://auth:99999", "cannot be parsed: invalid port number"),
    ("http://auth:port", "cannot be parsed: invalid port number"),
    ("http://[fd00::7", "cannot be parsed: invalid IPv6 address"),
    (
        "http://10.0.0.999",
        "cannot be parsed: invalid IPv4 address",
    ),
    (
        "http://au<th",
        "cannot be parsed: invalid international domain name",
    ),
    ("http://auth/a b", "contains the character ' '"),
    ("http://au\tth", "contains the character '\\t'"),
    ("http://auth/\u{7f}", "contains the character '\\u{7f}'"),
    ("http://auth/?x=1", "it has a query"),
    ("http://auth/?", "it has a query"),
    ("http://auth/#top", "it has a fragment"),
    ("http://auth#", "it has a fragment"),
];

#[test]
fn invalid_urls_name_the_variable_and_the_problem() {
    for &(value, reason) in INVALID_URLS {
        let registry = registry(&[("AUTH_SVC_URL", value)]);
        let err = registry.lookup("auth-svc").unwrap_err();
        assert!(
            matches!(err, Error::InvalidUrl { .. }),
            "{value:?}: {err:?}"
        );
        assert_eq!(err.variable(), Some("AUTH_SVC_URL"), "{value:?}");
        assert!(!err.is_not_configured());
        let message = err.to_string();
        assert!(
            message.starts_with("invalid url in AUTH_SVC_URL="),
            "{message}"
        );
        assert!(message.contains(reason), "{value:?}: {message}");

        // Set but invalid is never "not configured", whatever the entry point.
        assert_eq!(registry.service_url("auth-svc"), None);
        assert!(!registry.is_configured("auth-svc"));
        assert_eq!(registry.lookup_optional("auth-svc"), Err(err.clone()));
        let listed: Vec<_> = registry.iter().collect();
        assert_eq!(listed, [("AUTH_SVC", Err(err))]);
    }
}

#[test]
fn invalid_url_message_quotes_the_value() {
    let err = registry(&[("AUTH_SVC_URL", "myproject-auth-svc:8001")])
        .lookup("auth-svc")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid url in AUTH_SVC_URL=\"myproject-auth-svc:8001\": it is not an absolute url; \
         expected http://host[:port][/path] or https://..."
    );
}

#[test]
fn quoted_values_are_escaped_and_bounded() {
    let long = format!("ftp://{}", "a".repeat(10_000));
    for value in ["ftp://a\"b", "ftp://x/\u{1b}[31m", long.as_str()] {
        let err = registry(&[("AUTH_SVC_URL", value)])
            .lookup("auth-svc")
            .unwrap_err();
        let message = err.to_string();
        assert!(!message.contains('\u{1b}'), "{message}");
        assert!(message.len() < 400, "{} bytes", message.len());
    }
}

// ===== Kubernetes fallback =====

#[test]
fn kubernetes_variables_form_an_http_url() {
    for (host, port, expected) in [
        ("10.0.0.7", "8001", "http://10.0.0.7:8001/"),
        (" 10.0.0.7 ", " 8001 ", "http://10.0.0.7:8001/"),
        (
            "auth-svc.ns.svc.cluster.local",
            "8001",
            "http://auth-svc.ns.svc.cluster.local:8001/",
        ),
        ("fd00::7", "8001", "http://[fd00::7]:8001/"),
        ("[fd00::7]", "8001", "http://[fd00::7]:8001/"),
        ("::1", "65535", "http://[::1]:65535/"),
        ("10.0.0.7", "80", "http://10.0.0.7/"),
        ("10.0.0.7", "1", "http://10.0.0.7:1/"),
    ] {
        let registry = registry(&[
            ("AUTH_SVC_SERVICE_HOST", host),
            ("AUTH_SVC_SERVICE_PORT", port),
        ]);
        let found = registry.lookup("auth-svc").unwrap();
        assert_eq!(found.as_str(), expected, "{host:?}:{port:?}");
        assert!(registry.is_configured("auth-svc"));
    }
}

#[test]
fn url_variable_wins_over_kubernetes() {
    let registry = registry(&[
        ("AUTH_SVC_URL", "https://auth.example/api"),
        ("AUTH_SVC_SERVICE_HOST", "10.0.0.7"),
        ("AUTH_SVC_SERVICE_PORT", "8001"),
    ]);
    assert_eq!(
        registry.lookup("auth-svc").unwrap().as_str(),
        "https://auth.example/api"
    );
}

#[test]
fn an_invalid_url_variable_still_wins() {
    let registry = registry(&[
        ("AUTH_SVC_URL", "auth:8001"),
        ("AUTH_SVC_SERVICE_HOST", "10.0.0.7"),
        ("AUTH_SVC_SERVICE_PORT", "8001"),
    ]);
    let err = registry.lookup("auth-svc").unwrap_err();
    assert_eq!(err.variable(), Some("AUTH_SVC_URL"));
}

#[test]
fn a_blank_url_variable_falls_back() {
    let registry = registry(&[
        ("AUTH_SVC_URL", " "),
        ("AUTH_SVC_SERVICE_HOST", "10.0.0.7"),
        ("AUTH_SVC_SERVICE_PORT", "8001"),
    ]);
    assert_eq!(
        registry.lookup("auth-svc").unwrap().as_str(),
        "http://10.0.0.7:8001/"
    );
}

#[test]
fn a_port_without_a_host_is_not_configured() {
    let registry = registry(&[("AUTH_SVC_SERVICE_PORT", "8001")]);
    assert!(registry.lookup("auth-svc").unwrap_err().is_not_configured());
    assert_eq!(registry.iter().count(), 0);
}

#[test]
fn bad_ports_name_the_port_variable() {
    for (port, reason) in [
        (None, "it is not set, but AUTH_SVC_SERVICE_HOST is"),
        (Some(""), "it is not set, but AUTH_SVC_SERVICE_HOST is"),
        (Some("  "), "it is not set, but AUTH_SVC_SERVICE_HOST is"),
        (Some("0"), "port 0"),
        (Some("00"), "port 0"),
        (Some("65536"), "out of range"),
        (Some("4294967297"), "out of range"),
        (Some("-1"), "not a decimal number"),
        (Some("+8001"), "not a decimal number"),
        (Some("http"), "not a decimal number"),
        (Some("8001/tcp"), "not a decimal number"),
        (Some("tcp://10.0.0.7:8001"), "not a decimal number"),
    ] {
        let mut vars = vec![("AUTH_SVC_SERVICE_HOST", "10.0.0.7")];
        vars.extend(port.map(|p| ("AUTH_SVC_SERVICE_PORT", p)));
        let err = registry(&vars).lookup("auth-svc").unwrap_err();
        assert!(
            matches!(err, Error::InvalidPort { .. }),
            "{port:?}: {err:?}"
        );
        assert_eq!(err.variable(), Some("AUTH_SVC_SERVICE_PORT"));
        let message = err.to_string();
        assert!(
            message.starts_with("invalid port in AUTH_SVC_SERVICE_PORT"),
            "{message}"
        );
        assert!(message.contains(reason), "{port:?}: {message}");
    }
}

#[test]
fn bad_hosts_name_the_host_variable() {
    for (host, reason) in [
        ("10.0.0.7:8001", "not an ipv6 address"),
        ("[fd00::7", "bracketed ipv6"),
        ("[10.0.0.7]", "bracketed ipv6"),
        ("fd00::7::1", "not an ipv6 address"),
        ("auth svc", "' '"),
        ("http://auth", "':'"),
        ("auth/api", "'/'"),
        ("user:pw@auth", "':'"),
        ("auth?x", "'?'"),
        ("auth#x", "'#'"),
        ("a%2fb", "'%'"),
        ("10.0.0.999", "invalid IPv4 address"),
        ("au<th", "cannot be parsed"),
    ] {
        let err = registry(&[
            ("AUTH_SVC_SERVICE_HOST", host),
            ("AUTH_SVC_SERVICE_PORT", "8001"),
        ])
        .lookup("auth-svc")
        .unwrap_err();
        assert!(
            matches!(err, Error::InvalidHost { .. }),
            "{host:?}: {err:?}"
        );
        assert_eq!(err.variable(), Some("AUTH_SVC_SERVICE_HOST"));
        let message = err.to_string();
        assert!(
            message.starts_with("invalid host in AUTH_SVC_SERVICE_HOST="),
            "{message}"
        );
        assert!(message.contains(reason), "{host:?}: {message}");
    }
}

#[test]
fn a_host_with_credentials_is_redacted_in_the_error() {
    let err = registry(&[
        ("AUTH_SVC_SERVICE_HOST", "user:hunter2@auth"),
        ("AUTH_SVC_SERVICE_PORT", "8001"),
    ])
    .lookup("auth-svc")
    .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

// ===== redaction =====

#[test]
fn passwords_never_reach_errors() {
    for value in [
        "ftp://user:hunter2@auth",
        "http://user:hunter2@auth/?q=1",
        "http://user:hunter2@auth/#f",
        "http://user:hun/ter2@auth",
        "http://user:hunter2@",
        "auth:hunter2@auth",
        "http://user:hunter2@au th",
        "http://hunter2@auth/?x",
        "http://auth/?token=hunter2",
        "http://auth/#hunter2",
    ] {
        let err = registry(&[("AUTH_SVC_URL", value)])
            .lookup("auth-svc")
            .unwrap_err();
        for shown in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
            assert!(!shown.contains("hunter2"), "{value:?} -> {shown}");
        }
    }
}

#[test]
fn invalid_url_keeps_the_user_name_but_not_the_password() {
    let err = registry(&[("AUTH_SVC_URL", "ftp://app:hunter2@auth")])
        .lookup("auth-svc")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid url in AUTH_SVC_URL=\"ftp://app:***@auth\": \
         the scheme is \"ftp\"; expected http or https"
    );
}

#[test]
fn registry_debug_is_redacted() {
    let registry = registry(&[
        ("AUTH_SVC_URL", "http://app:hunter2@auth:8001"),
        ("CHAT_SVC_URL", "http://token-hunter2@chat:8002"),
        ("GW_URL", "http://gw/api?key=hunter2"),
        ("SEARCH_SERVICE_HOST", "10.0.0.9"),
        ("SEARCH_SERVICE_PORT", "9200"),
    ]);
    let debug = format!("{registry:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert_eq!(
        debug,
        "Registry { vars: {\"AUTH_SVC_URL\": \"http://app:***@auth:8001\", \
         \"CHAT_SVC_URL\": \"http://***@chat:8002\", \"GW_URL\": \"http://gw/api?***\", \
         \"SEARCH_SERVICE_HOST\": \"10.0.0.9\", \"SEARCH_SERVICE_PORT\": \"9200\"} }"
    );
    let pretty = format!("{registry:#?}");
    assert!(!pretty.contains("hunter2"), "{pretty}");
    let iter = format!("{:?}", registry.iter());
    assert!(!iter.contains("hunter2"), "{iter}");
}

#[test]
fn found_urls_keep_credentials_and_redact_for_display() {
    let registry = registry(&[("AUTH_SVC_URL", "http://app:hunter2@auth:8001")]);
    let found = registry.lookup("auth-svc").unwrap();
    // The caller gets the credentials (an HTTP client needs them)...
    assert_eq!(found.password(), Some("hunter2"));
    // ...and a way to show the URL without them.
    assert_eq!(redact(&found), "http://app:***@auth:8001/");
}

// ===== the snapshot =====

#[test]
fn iter_lists_every_service_sorted_with_its_result() {
    let registry = registry(&[
        ("CHAT_SVC_URL", "http://myproject-chat-svc:8002"),
        ("AUTH_SVC_URL", "http://myproject-auth-svc:8001"),
        ("DATABASE_URL", "postgres://db/app"),
        ("SEARCH_SERVICE_HOST", "10.0.0.9"),
        ("SEARCH_SERVICE_PORT", "9200"),
        ("EMPTY_URL", ""),
        ("PATH", "/usr/bin"),
        ("lower_case_URL", "http://ignored"),
    ]);
    let names: Vec<&str> = registry.iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["AUTH_SVC", "CHAT_SVC", "DATABASE", "SEARCH"]);
    for (name, result) in &registry {
        // The listed name maps back to the same variables.
        assert_eq!(registry.lookup(name), result, "{name}");
    }
    let ok: Vec<String> = registry
        .iter()
        .filter_map(|(_, url)| url.ok())
        .map(|url| url.to_string())
        .collect();
    assert_eq!(
        ok,
        [
            "http://myproject-auth-svc:8001/",
            "http://myproject-chat-svc:8002/",
            "http://10.0.0.9:9200/"
        ]
    );
    let mut iter = registry.iter();
    assert_eq!(iter.len(), 4);
    assert_eq!(iter.next_back().unwrap().0, "SEARCH");
    assert_eq!(iter.len(), 3);
}

#[test]
fn a_service_with_both_url_and_host_is_listed_once() {
    let registry = registry(&[
        ("AUTH_SVC_URL", "http://auth:8001"),
        ("AUTH_SVC_SERVICE_HOST", "10.0.0.7"),
        ("AUTH_SVC_SERVICE_PORT", "8001"),
    ]);
    assert_eq!(registry.iter().count(), 1);
}

#[test]
fn last_duplicate_wins() {
    let registry = registry(&[
        ("AUTH_SVC_URL", "http://first:8001"),
        ("AUTH_SVC_URL", "http://second:8001"),
    ]);
    assert_eq!(
        registry.lookup("auth-svc").unwrap().host_str(),
        Some("second")
    );
}

#[test]
fn variable_names_are_case_sensitive() {
    let registry = registry(&[("auth_svc_url", "http://auth:8001")]);
    assert!(registry.lookup("auth-svc").unwrap_err().is_not_configured());
}

#[test]
fn default_is_empty_and_clone_is_equal() {
    let empty = Registry::default();
    assert_eq!(empty.iter().count(), 0);
    assert_eq!(format!("{empty:?}"), "Registry { vars: {} }");
    assert_eq!(empty, Registry::from_vars(Vec::<(String, String)>::new()));

    let registry: Registry = [("AUTH_SVC_URL", "http://auth:8001")].into_iter().collect();
    let copy = registry.clone();
    assert_eq!(copy, registry);
    assert_eq!(copy.lookup("auth-svc"), registry.lookup("auth-svc"));
    assert_ne!(copy, empty);
}

#[test]
fn registry_is_send_sync_and_static() {
    fn assert_traits<T: Send + Sync + 'static>() {}
    assert_traits::<Registry>();
    assert_traits::<Error>();
}
