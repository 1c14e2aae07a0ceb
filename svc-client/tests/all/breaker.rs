//! The breaker and retries through the facade.

use std::time::Duration;

use crate::support::{Seen, client_for, fast_config, recording_server, serve, serve_router};
use axum::Router;
use axum::http::StatusCode;
use svc_client::{CircuitBreakerConfig, State};

#[tokio::test]
async fn five_failures_open_the_circuit_and_calls_then_fail_fast() {
    let server = recording_server(500, "boom").await;
    let (addr, seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "", fast_config().max_retries(0));
    assert_eq!(client.circuit_state(), Some(State::Closed));

    for i in 1..=5 {
        let resp = client.get("/users/123").await.unwrap();
        assert_eq!(resp.status(), 500, "a 5xx is returned, not an Err");
        let want = if i < 5 { State::Closed } else { State::Open };
        assert_eq!(client.circuit_state(), Some(want), "after failure {i}");
    }

    let err = client.get("/users/123").await.unwrap_err();
    assert!(err.is_circuit_open(), "{err}");
    assert_eq!(err.attempts(), 0, "nothing was sent");
    assert_eq!(err.service(), Some("auth-svc"));
    let retry_after = err.retry_after().expect("circuit open carries retry_after");
    assert!(
        retry_after <= Duration::from_secs(30) && retry_after > Duration::from_secs(20),
        "{retry_after:?}"
    );
    assert_eq!(seen.hits(), 5, "the open circuit sends nothing");
    assert_eq!(client.metrics().unwrap().state(), State::Open);
}

#[tokio::test]
async fn retries_count_against_the_breaker_and_stop_when_it_opens() {
    let server = recording_server(503, "down").await;
    let (addr, seen) = (server.addr(), &server);
    // 3 retries: the first call makes 4 attempts, the second opens the
    // circuit on its first attempt and stops.
    let client = client_for("auth-svc", addr, "", fast_config());
    let resp = client.get("/x").await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(seen.hits(), 4);
    let second = client.get("/x").await;
    assert_eq!(seen.hits(), 5);
    assert_eq!(client.circuit_state(), Some(State::Open));
    if let Err(err) = &second {
        assert!(err.is_circuit_open(), "{err}");
    }
    assert!(client.get("/x").await.unwrap_err().is_circuit_open());
    assert_eq!(seen.hits(), 5);
}

#[tokio::test]
async fn a_retry_recovers_from_transient_failures() {
    let server = serve(|seen: Seen| async move {
        match seen.n + 1 {
            1 => StatusCode::SERVICE_UNAVAILABLE,
            2 => StatusCode::BAD_GATEWAY,
            _ => StatusCode::OK,
        }
    })
    .await;
    let seen = &server;
    let client = client_for("auth-svc", server.addr(), "", fast_config());
    let resp = client.get("/users/123").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(seen.hits(), 3);
    assert_eq!(client.circuit_state(), Some(State::Closed));
}

#[tokio::test]
async fn client_errors_do_not_trip_the_circuit() {
    let server = recording_server(404, "no such user").await;
    let (addr, seen) = (server.addr(), &server);
    let client = client_for("auth-svc", addr, "", fast_config());
    for _ in 0..10 {
        assert_eq!(client.get("/users/0").await.unwrap().status(), 404);
    }
    assert_eq!(seen.hits(), 10, "a 404 is not retried");
    assert_eq!(client.circuit_state(), Some(State::Closed));
}

#[tokio::test]
async fn a_clone_shares_its_breaker() {
    let server = recording_server(500, "boom").await;
    let (addr, seen) = (server.addr(), &server);
    let config = fast_config()
        .max_retries(0)
        .circuit_breaker(Some(CircuitBreakerConfig::default().failure_threshold(3)));
    let client = client_for("auth-svc", addr, "", config);
    let clone = client.clone();
    for c in [&client, &clone, &client] {
        c.get("/x").await.unwrap();
    }
    assert_eq!(client.circuit_state(), Some(State::Open));
    assert_eq!(clone.circuit_state(), Some(State::Open));
    assert!(clone.get("/x").await.unwrap_err().is_circuit_open());
    assert_eq!(seen.hits(), 3);
}

#[tokio::test]
async fn clients_of_the_same_service_do_not_share_a_breaker() {
    let server = recording_server(500, "boom").await;
    let (addr, _seen) = (server.addr(), &server);
    let config = || {
        fast_config()
            .max_retries(0)
            .circuit_breaker(Some(CircuitBreakerConfig::default().failure_threshold(1)))
    };
    let a = client_for("auth-svc", addr, "", config());
    let b = client_for("auth-svc", addr, "", config());
    a.get("/x").await.unwrap();
    assert_eq!(a.circuit_state(), Some(State::Open));
    assert_eq!(b.circuit_state(), Some(State::Closed));
}

#[tokio::test]
async fn the_breaker_can_be_disabled() {
    let server = recording_server(500, "boom").await;
    let (addr, seen) = (server.addr(), &server);
    let client = client_for(
        "auth-svc",
        addr,
        "",
        fast_config().max_retries(0).circuit_breaker(None),
    );
    for _ in 0..8 {
        client.get("/x").await.unwrap();
    }
    assert_eq!(seen.hits(), 8);
    assert_eq!(client.circuit_state(), None);
    assert!(client.metrics().is_none());
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = client_for("auth-svc", addr, "", fast_config().max_retries(1));
    let err = client.get("/x").await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(!err.is_circuit_open());
    assert_eq!(err.attempts(), 2);
}

#[tokio::test]
async fn a_slow_service_times_out() {
    let app = Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        "late"
    });
    let server = serve_router(app).await;
    let client = client_for(
        "auth-svc",
        server.addr(),
        "",
        fast_config()
            .timeout(Duration::from_millis(150))
            .attempt_timeout(Duration::from_millis(50)),
    );
    let err = client.get("/x").await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn clients_work_with_their_own_pool_too() {
    let server = recording_server(200, "ok").await;
    let (addr, seen) = (server.addr(), &server);
    let own = client_for("auth-svc", addr, "", fast_config().shared_pool(false));
    let custom = client_for(
        "auth-svc",
        addr,
        "",
        fast_config().http_client(svc_client::reqwest::Client::new()),
    );
    own.get("/a").await.unwrap();
    custom.get("/b").await.unwrap();
    assert_eq!(seen.uris(), ["/a", "/b"]);
}

/// A server recording the client's address of every request.
async fn peer_recording_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<std::net::SocketAddr>>>,
) {
    use axum::extract::ConnectInfo;
    let peers = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let p = peers.clone();
    let app = Router::new().fallback(
        move |ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>| {
            let p = p.clone();
            async move {
                p.lock().unwrap().push(peer);
                "ok"
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (addr, peers)
}

#[tokio::test]
async fn clients_of_different_services_share_one_connection_pool() {
    let (addr, peers) = peer_recording_server().await;
    let auth = client_for("auth-svc", addr, "", fast_config());
    let chat = client_for("chat-svc", addr, "", fast_config());
    auth.get("/a").await.unwrap().bytes().await.unwrap();
    chat.get("/b").await.unwrap().bytes().await.unwrap();
    let peers = peers.lock().unwrap().clone();
    assert_eq!(
        peers[0], peers[1],
        "the second client reused the first one's connection"
    );
}

#[tokio::test]
async fn a_client_with_its_own_pool_opens_its_own_connection() {
    let (addr, peers) = peer_recording_server().await;
    let auth = client_for("auth-svc", addr, "", fast_config());
    let own = client_for("chat-svc", addr, "", fast_config().shared_pool(false));
    auth.get("/a").await.unwrap().bytes().await.unwrap();
    own.get("/b").await.unwrap().bytes().await.unwrap();
    let peers = peers.lock().unwrap().clone();
    assert_ne!(peers[0], peers[1]);
}

#[tokio::test]
async fn a_successful_trial_closes_the_circuit_again() {
    let server = serve(|seen: Seen| async move {
        match seen.n + 1 {
            1 => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::OK,
        }
    })
    .await;
    let seen = &server;
    let config = fast_config().max_retries(0).circuit_breaker(Some(
        CircuitBreakerConfig::default()
            .failure_threshold(1)
            .reset_timeout(Duration::from_millis(50)),
    ));
    let client = client_for("auth-svc", server.addr(), "", config);
    assert_eq!(client.get("/x").await.unwrap().status(), 500);
    assert_eq!(client.circuit_state(), Some(State::Open));
    assert!(client.get("/x").await.unwrap_err().is_circuit_open());
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        client.get("/x").await.unwrap().status(),
        200,
        "the trial call"
    );
    assert_eq!(client.circuit_state(), Some(State::Closed));
    assert_eq!(seen.hits(), 2);
}

/// A `reqwest::Client` handed in with `http_client()` follows redirects by
/// default; the facade still never hands back an answer from another host.
#[tokio::test]
async fn a_custom_http_client_cannot_take_a_call_to_another_host() {
    let server = crate::support::recording_server(200, "stolen").await;
    let (other, other_seen) = (server.addr(), &server);
    let app = axum::Router::new().fallback(move || async move {
        (
            axum::http::StatusCode::FOUND,
            [("location", format!("http://{other}/stolen"))],
        )
    });
    let server = crate::support::serve_router(app).await;
    let addr = server.addr();
    let config = crate::support::fast_config().http_client(svc_client::reqwest::Client::new());
    let client = crate::support::client_for("auth-svc", addr, "", config);
    match client.get("/users/1").await {
        Ok(resp) => {
            assert_eq!(resp.status(), 302, "the redirect itself, not followed");
            assert_eq!(other_seen.hits(), 0);
        }
        Err(err) => {
            assert!(err.is_redirect(), "{err}");
            assert!(err.to_string().contains("another host"), "{err}");
        }
    }
    let err = client
        .get("/users/1")
        .decode::<serde_json::Value>()
        .await
        .unwrap_err();
    assert!(
        err.is_redirect() || err.status().is_some_and(|s| s == 302),
        "{err}"
    );
}
