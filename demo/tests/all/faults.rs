//! The backends' fault injection, and profile-svc degrading on top of it,
//! each against real servers on 127.0.0.1 port 0.

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use svc_client::reqwest::{self, StatusCode};
use svc_client::{ClientConfig, Registry};
use svc_demo::backend::{Backend, Stats, auth_router, chat_router};
use svc_demo::profile::{DebugClients, Profile, Profiles, TRACE_ID_HEADER};

/// Serves `router` on a fresh port; the server lives as long as the test's runtime.
async fn spawn(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(svc_demo::net::serve(listener, router));
    addr
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn set_faults(http: &reqwest::Client, addr: SocketAddr, faults: Value) -> reqwest::Response {
    http.post(format!("http://{addr}/admin/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap()
}

async fn stats(http: &reqwest::Client, addr: SocketAddr) -> Stats {
    http.get(format!("http://{addr}/admin/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn healthy_backend_answers_and_counts_only_service_requests() {
    let addr = spawn(auth_router(Backend::new("auth-svc"))).await;
    let http = http();
    let resp = http
        .get(format!("http://{addr}/users/3"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let user: Value = resp.json().await.unwrap();
    assert_eq!(user["id"], "3");
    let resp = http
        .get(format!("http://{addr}/users/nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = http
        .post(format!("http://{addr}/validate"))
        .json(&json!({"token": "tok-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"valid": true, "user_id": "7"})
    );
    let health = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let stats = stats(&http, addr).await;
    assert_eq!(stats.service, "auth-svc");
    assert_eq!(stats.requests, 3, "health and admin routes are not counted");
    assert_eq!(stats.faulted, 0);
}

#[tokio::test]
async fn status_faults_are_set_read_and_cleared() {
    let addr = spawn(chat_router(Backend::new("chat-svc"))).await;
    let http = http();
    let url = format!("http://{addr}/users/1/messages");

    let resp = set_faults(&http, addr, json!({"status": 503})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let current: Value = http
        .get(format!("http://{addr}/admin/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["status"], 503);
    assert_eq!(current["error_fraction"], 1.0);
    for _ in 0..3 {
        let resp = http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    // The admin and health routes are never faulted.
    let health = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let cleared = http
        .delete(format!("http://{addr}/admin/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::OK);
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let messages: Value = resp.json().await.unwrap();
    assert_eq!(messages.as_array().map(Vec::len), Some(3));

    let stats = stats(&http, addr).await;
    assert_eq!((stats.requests, stats.faulted), (4, 3));
}

#[tokio::test]
async fn zero_error_fraction_faults_nothing() {
    let addr = spawn(auth_router(Backend::new("auth-svc"))).await;
    let http = http();
    set_faults(&http, addr, json!({"status": 500, "error_fraction": 0.0})).await;
    for _ in 0..5 {
        let resp = http
            .get(format!("http://{addr}/users/1"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn invalid_faults_are_rejected_and_leave_the_faults_unchanged() {
    let addr = spawn(auth_router(Backend::new("auth-svc"))).await;
    let http = http();
    let resp = set_faults(&http, addr, json!({"error_fraction": 1.5, "status": 500})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("error_fraction"));
    let resp = set_faults(&http, addr, json!({"stauts": 500})).await;
    assert!(resp.status().is_client_error(), "unknown field accepted");
    let stats = stats(&http, addr).await;
    assert_eq!(stats.faults, svc_demo::backend::Faults::default());
}

#[tokio::test]
async fn reset_drops_the_connection_without_an_answer() {
    let addr = spawn(chat_router(Backend::new("chat-svc"))).await;
    let http = http();
    set_faults(&http, addr, json!({"reset": true})).await;
    let err = http
        .get(format!("http://{addr}/users/1/messages"))
        .send()
        .await
        .expect_err("a reset connection gives no response");
    assert!(!err.is_timeout(), "{err:?}");
    assert!(err.status().is_none(), "{err:?}");
    // The server itself is fine: the next connection is served.
    let clear = http
        .delete(format!("http://{addr}/admin/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(clear.status(), StatusCode::OK);
    let resp = http
        .get(format!("http://{addr}/users/1/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(stats(&http, addr).await.faulted, 1);
}

#[tokio::test]
async fn hang_and_latency_delay_the_answer() {
    let addr = spawn(auth_router(Backend::new("auth-svc"))).await;
    let http = http();
    set_faults(&http, addr, json!({"hang": true})).await;
    let err = http
        .get(format!("http://{addr}/users/1"))
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .expect_err("a hanging request never answers");
    assert!(err.is_timeout(), "{err:?}");

    set_faults(&http, addr, json!({"latency_ms": 150})).await;
    let started = std::time::Instant::now();
    let resp = http
        .get(format!("http://{addr}/users/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

/// A profile-svc wired to in-process backends through a `Registry`, as the
/// platform's env vars would wire it.
async fn profile_stack(reset_timeout: Duration) -> (SocketAddr, SocketAddr, SocketAddr) {
    let auth = spawn(auth_router(Backend::new("auth-svc"))).await;
    let chat = spawn(chat_router(Backend::new("chat-svc"))).await;
    let reset = format!("{}ms", reset_timeout.as_millis());
    let mut vars = vec![
        ("AUTH_SVC_URL".to_owned(), format!("http://{auth}")),
        ("CHAT_SVC_URL".to_owned(), format!("http://{chat}")),
    ];
    for prefix in ["AUTH_SVC", "CHAT_SVC"] {
        for (setting, value) in [
            ("TIMEOUT", "5s"),
            ("ATTEMPT_TIMEOUT", "2s"),
            ("MAX_RETRIES", "0"),
            ("BREAKER_RESET_TIMEOUT", &reset),
        ] {
            vars.push((format!("{prefix}_{setting}"), value.to_owned()));
        }
    }
    let registry = Registry::from_vars(vars);
    let profiles =
        Profiles::from_registry(&registry, svc_demo::profile::default_settings()).unwrap();
    let profile = spawn(svc_demo::profile::router(profiles)).await;
    (auth, chat, profile)
}

#[tokio::test]
async fn profile_degrades_without_chat_and_fails_fast_without_auth() {
    let (auth, chat, profile) = profile_stack(Duration::from_secs(60)).await;
    let http = http();
    let url = format!("http://{profile}/profiles/5");

    let full: Profile = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert!(!full.degraded);
    assert_eq!(full.messages.len(), 3);

    // Chat down: still 200, marked degraded.
    set_faults(&http, chat, json!({"status": 500})).await;
    for _ in 0..7 {
        let resp = http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let profile: Profile = resp.json().await.unwrap();
        assert!(profile.degraded);
        assert!(profile.messages.is_empty());
        assert_eq!(profile.user.id, "5");
    }

    // Auth failing: 502 until the breaker opens, then 503 with Retry-After,
    // without calling auth.
    set_faults(&http, auth, json!({"status": 500})).await;
    for _ in 0..5 {
        let resp = http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    }
    let before = stats(&http, auth).await.requests;
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = resp.headers()[reqwest::header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(stats(&http, auth).await.requests, before, "auth was called");

    let debug: DebugClients = http
        .get(format!("http://{profile}/debug/clients"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(debug.auth.state, "open");
    assert_eq!(debug.auth.failures, 5);
    assert!(debug.auth.rejections >= 1);
    assert_eq!(debug.chat.unwrap().state, "open");
}

#[tokio::test]
async fn profile_returns_and_propagates_the_callers_trace() {
    let _telemetry = svc_demo::telemetry::init("faults-test");
    let (auth, chat, profile) = profile_stack(Duration::from_secs(60)).await;
    let http = http();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let resp = http
        .get(format!("http://{profile}/profiles/9"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[TRACE_ID_HEADER], trace_id);
    for backend in [auth, chat] {
        let stats = stats(&http, backend).await;
        assert_eq!(stats.recent_trace_ids, [trace_id], "{}", stats.service);
    }
}

#[tokio::test]
async fn profile_without_chat_configured_serves_profiles_undegraded() {
    let auth = spawn(auth_router(Backend::new("auth-svc"))).await;
    // The seed's init pattern: chat is optional, so no CHAT_SVC_URL is fine...
    let registry = Registry::from_vars([("AUTH_SVC_URL", format!("http://{auth}"))]);
    let profiles = Profiles::from_registry(&registry, ClientConfig::default()).unwrap();
    let debug = profiles.debug_clients();
    assert!(debug.chat.is_none());
    assert_eq!(debug.auth.state, "closed");
    let profile = spawn(svc_demo::profile::router(profiles)).await;
    let resp = http()
        .get(format!("http://{profile}/profiles/2"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Profile = resp.json().await.unwrap();
    assert!(!body.degraded);
    assert!(body.messages.is_empty());

    // ...but auth is required: startup fails, naming the variable.
    let err = Profiles::from_registry(
        &Registry::from_vars(Vec::<(String, String)>::new()),
        ClientConfig::default(),
    )
    .unwrap_err();
    assert!(err.contains("AUTH_SVC_URL"), "{err}");
}

#[test]
fn profile_settings_come_from_each_clients_variables() {
    let url = |port: u16| format!("http://127.0.0.1:{port}");
    // A bad value of auth's is a startup error naming the variable...
    let registry = Registry::from_vars([
        ("AUTH_SVC_URL".to_owned(), url(1)),
        (
            "AUTH_SVC_BREAKER_RESET_TIMEOUT".to_owned(),
            "5000".to_owned(),
        ),
    ]);
    let err =
        Profiles::from_registry(&registry, svc_demo::profile::default_settings()).unwrap_err();
    assert!(
        err.contains("AUTH_SVC_BREAKER_RESET_TIMEOUT=\"5000\""),
        "{err}"
    );
    // ...chat's makes the optional client absent, and auth still starts.
    let registry = Registry::from_vars([
        ("AUTH_SVC_URL".to_owned(), url(1)),
        ("CHAT_SVC_URL".to_owned(), url(2)),
        ("CHAT_SVC_MAX_RETRIES".to_owned(), "-1".to_owned()),
    ]);
    let profiles =
        Profiles::from_registry(&registry, svc_demo::profile::default_settings()).unwrap();
    assert!(profiles.debug_clients().chat.is_none());
}

#[tokio::test]
async fn profile_rejects_ids_that_could_change_the_path() {
    let (_, _, profile) = profile_stack(Duration::from_secs(60)).await;
    // (A literal `..` never reaches the handler: the URL is normalised first.)
    for id in ["a%2Fb", "x%3Fy", "a.b", "%20"] {
        let resp = http()
            .get(format!("http://{profile}/profiles/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{id}");
    }
    // A well-formed id auth does not know: its 404 passes through, and a 4xx
    // does not count against auth's breaker.
    let resp = http()
        .get(format!("http://{profile}/profiles/nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let debug: DebugClients = http()
        .get(format!("http://{profile}/debug/clients"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (debug.auth.failures, debug.auth.state.as_str()),
        (0, "closed")
    );
}
