//! Property-based fuzz targets: discovery names and values, the facade's
//! path joining, and `Retry-After` handling.
//!
//! `cargo test` runs each property with a few dozen cases (fast);
//! `cargo xtask fuzz [--cases N]` sets `PROPTEST_CASES` to run thousands.
//! Every request goes to a server on 127.0.0.1 started by the test.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use svc_client::{ClientConfig, Registry};

/// `PROPTEST_CASES` when set (by `cargo xtask fuzz`), else `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ===== discovery =====

/// Service names: mostly plausible, sometimes anything at all.
fn service_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,8}){0,3}",
        1 => "[A-Za-z0-9_.-]{0,20}",
        1 => any::<String>(),
    ]
}

/// Values of a `*_URL` variable: URLs, near-URLs and junk.
fn url_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "(http|https|ftp|HTTP)://[a-z0-9.-]{0,20}(:[0-9]{0,6})?(/[a-z0-9/._-]{0,20})?",
        1 => "http://[a-z]{1,8}:SECRETpw[a-z0-9]{0,6}@[a-z0-9.-]{0,12}(:[0-9a-z]{0,6})?/?",
        1 => "[ -~]{0,40}",
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// Any set of variables and any service name: a lookup never panics;
    /// it finds an absolute http(s) URL with a host, or fails with an error
    /// that names the variable it read; a password never shows.
    #[test]
    fn discovery_never_panics_and_names_the_variable(
        service in service_name(),
        value in url_value(),
        noise in proptest::collection::vec(("[A-Z_]{1,12}", "[ -~]{0,20}"), 0..4),
    ) {
        let var = svc_discovery::env_var(&service);
        let mut vars: Vec<(String, String)> = noise;
        if let Ok(var) = &var {
            vars.push((var.clone(), value.clone()));
        }
        let registry = Registry::from_vars(vars);
        let found = registry.lookup(&service);
        let shown = format!("{registry:?}");
        prop_assert!(!shown.contains("SECRETpw"), "registry Debug leaks a password: {}", shown);
        match (var, found) {
            (Err(_), Ok(url)) => prop_assert!(false, "invalid name {:?} resolved to {}", service, url),
            (Err(_), Err(_)) => {}
            (Ok(var), Ok(url)) => {
                prop_assert!(matches!(url.scheme(), "http" | "https"), "{} from {:?}", url, value);
                prop_assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{} has no host", url);
                let _ = var;
            }
            (Ok(var), Err(err)) => {
                let message = err.to_string();
                prop_assert!(
                    message.contains(&var),
                    "error for {:?}={:?} does not name the variable: {}", var, value, message
                );
                prop_assert!(!message.contains("SECRETpw"), "error leaks a password: {}", message);
                prop_assert!(!format!("{err:?}").contains("SECRETpw"), "Debug leaks a password: {:?}", err);
            }
        }
    }
}

// ===== facade path joining =====

/// Paths: ordinary ones, and the attacks the facade must refuse.
fn path() -> impl Strategy<Value = String> {
    let attack = prop_oneof![
        Just("//".to_owned()),
        Just("http://".to_owned()),
        Just("https://evil.example".to_owned()),
        Just("/..".to_owned()),
        Just("/%2e%2e".to_owned()),
        Just("\\".to_owned()),
        Just("\r\n".to_owned()),
        Just("@".to_owned()),
        Just(":".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        Just("\u{0}".to_owned()),
        Just("evil.example".to_owned()),
    ];
    prop_oneof![
        2 => "(/[a-zA-Z0-9._~-]{0,8}){0,4}",
        3 => (proptest::collection::vec(prop_oneof![attack, "[a-z0-9./]{0,6}".prop_map(String::from)], 1..6))
            .prop_map(|parts| parts.concat()),
        1 => any::<String>(),
    ]
}

/// Checks that `url` is under `http://127.0.0.1:<port>/api`.
fn stays_under_base(url: &svc_discovery::Url, port: u16) -> Result<(), String> {
    if url.scheme() != "http" || url.host_str() != Some("127.0.0.1") || url.port() != Some(port) {
        return Err(format!("{url} left the origin http://127.0.0.1:{port}"));
    }
    if !(url.path() == "/api" || url.path().starts_with("/api/")) {
        return Err(format!("{url} left the base path /api"));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    /// `Client::url` never panics, and what it accepts stays on the
    /// service's origin, under its base path.
    #[test]
    fn joined_paths_stay_under_the_base_url(path in path()) {
        let registry = Registry::from_vars([("GW_URL", "http://127.0.0.1:9/api")]);
        let client = svc_client::Client::from_registry(&registry, "gw", ClientConfig::default())
            .expect("a valid base URL");
        if let Ok(url) = client.url(&path) {
            prop_assert!(stays_under_base(&url, 9).is_ok(), "{:?} -> {}", path, url);
        }
    }
}

/// Counts the requests that reached the server, and remembers their paths.
#[derive(Default)]
struct Seen {
    hits: AtomicU64,
    paths: Mutex<Vec<String>>,
}

#[test]
fn requests_through_the_facade_never_leave_the_origin() {
    let rt = runtime();
    let seen = Arc::new(Seen::default());
    let server = rt.block_on(async {
        let router = Router::new()
            .fallback(|State(seen): State<Arc<Seen>>, req: Request| async move {
                seen.hits.fetch_add(1, Ordering::SeqCst);
                let mut paths = seen.paths.lock().unwrap_or_else(PoisonError::into_inner);
                paths.push(req.uri().path().to_owned());
                "ok"
            })
            .with_state(Arc::clone(&seen));
        svc_test_support::serve_router(router).await
    });
    let port = server.addr().port();
    let registry = Registry::from_vars([("GW_URL", format!("{}/api", server.url("")))]);
    let config = ClientConfig::default()
        .timeout(Duration::from_secs(2))
        .max_retries(0)
        .circuit_breaker(None);
    let client = svc_client::Client::from_registry(&registry, "gw", config).expect("client");
    let ok = AtomicU64::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(config_for_e2e());
    runner
        .run(&path(), |path| {
            let accepted = client.url(&path);
            let result = rt.block_on(client.get(&path).send());
            match (&accepted, &result) {
                (Ok(url), Ok(resp)) => {
                    prop_assert!(stays_under_base(url, port).is_ok(), "{:?} -> {}", path, url);
                    prop_assert_eq!(resp.status(), StatusCode::OK);
                    ok.fetch_add(1, Ordering::SeqCst);
                }
                (Err(_), Ok(resp)) => prop_assert!(
                    false,
                    "{:?} was refused by url() but sent: {:?}",
                    path,
                    resp.url()
                ),
                (Err(_), Err(err)) => prop_assert!(err.is_invalid_path(), "{:?}: {}", path, err),
                (Ok(url), Err(err)) => prop_assert!(
                    false,
                    "{:?} -> {} failed against a healthy server: {}",
                    path,
                    url,
                    err
                ),
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(seen.hits.load(Ordering::SeqCst), ok.load(Ordering::SeqCst));
    let paths = seen.paths.lock().unwrap_or_else(PoisonError::into_inner);
    assert!(
        paths.iter().all(|p| p == "/api" || p.starts_with("/api/")),
        "{paths:?}"
    );
}

fn config_for_e2e() -> ProptestConfig {
    config(64)
}

// ===== Retry-After =====

/// `Retry-After` values: seconds (small, huge, negative, fractional), HTTP
/// dates (past, near, far), and junk.
fn retry_after() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,3}",
        "[0-9]{6,30}",
        "-[0-9]{1,5}",
        "[0-9]{1,2}\\.[0-9]{1,3}",
        (0u64..4_000_000_000).prop_map(svc_bench::fault::format_http_date),
        Just("Fri, 31 Dec 9999 23:59:59 GMT".to_owned()),
        Just("Thu, 01 Jan 1970 00:00:00 GMT".to_owned()),
        "[ -~]{0,30}",
    ]
}

#[test]
fn any_retry_after_is_honoured_within_the_deadline() {
    let rt = runtime();
    let value: Arc<Mutex<String>> = Arc::default();
    let hits = Arc::new(AtomicU64::new(0));
    let server = rt.block_on(async {
        let value = Arc::clone(&value);
        let hits = Arc::clone(&hits);
        let router = Router::new().fallback(move || {
            let value = value.lock().unwrap_or_else(PoisonError::into_inner).clone();
            hits.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut resp = (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
                if let Ok(v) = HeaderValue::from_str(&value) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                resp
            }
        });
        svc_test_support::serve_router(router).await
    });
    // Short budget and cap, so a huge Retry-After costs milliseconds. The
    // 600 ms of slack keeps a loaded CI machine from failing the test, and
    // is still less than two uncapped `Retry-After: 1` waits.
    let timeout = Duration::from_millis(400);
    let config = svc_httpclient::Config::default()
        .timeout(timeout)
        .max_retries(2)
        .max_retry_after(Duration::from_millis(30))
        .backoff(svc_httpclient::Backoff::default().base(Duration::from_millis(1)))
        .retry_budget(None)
        .circuit_breaker(None);
    let client = svc_httpclient::Client::new(config).expect("client");
    let url = format!("{}/busy", server.url(""));
    let mut runner = proptest::test_runner::TestRunner::new(config_for_e2e());
    runner
        .run(&retry_after(), |retry_after| {
            *value.lock().unwrap_or_else(PoisonError::into_inner) = retry_after.clone();
            let before = hits.load(Ordering::SeqCst);
            let started = Instant::now();
            let result = rt.block_on(client.get(&url).send());
            let took = started.elapsed();
            let sent = hits.load(Ordering::SeqCst) - before;
            prop_assert!(
                took <= timeout + Duration::from_millis(600),
                "Retry-After {:?}: the call took {:?} (timeout {:?})",
                retry_after,
                took,
                timeout
            );
            prop_assert!(
                (1..=3).contains(&sent),
                "Retry-After {:?}: {} attempts",
                retry_after,
                sent
            );
            if let Ok(resp) = &result {
                prop_assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
