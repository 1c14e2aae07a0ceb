//! The per-origin breaker inside the pipeline.
//!
//! The breaker measures time with the std clock, so the half-open test waits
//! its (50 ms) reset timeout for real.

use std::time::Duration;

use svc_httpclient::{CircuitBreakerConfig, Client, Config, State, StatusCode, reqwest::Url};

use svc_test_support as support;

fn client(breaker: CircuitBreakerConfig, max_retries: u32) -> Client {
    Client::new(
        Config::default()
            .max_retries(max_retries)
            .retry_budget(None)
            .circuit_breaker(Some(breaker)),
    )
    .unwrap()
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

#[tokio::test(start_paused = true)]
async fn breakers_are_per_origin() {
    let failing = support::always(503).await;
    let healthy = support::always(200).await;
    let client = client(CircuitBreakerConfig::default().failure_threshold(2), 0);

    for _ in 0..2 {
        let resp = client.get(failing.url("/a")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(
        client.circuit_state(&url(&failing.url("/other"))),
        Some(State::Open)
    );
    let err = client.get(failing.url("/b")).await.unwrap_err();
    assert!(err.is_circuit_open());

    let resp = client.get(healthy.url("/")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        client.circuit_state(&url(&healthy.url("/"))),
        Some(State::Closed)
    );
    assert_eq!(failing.hits(), 2);
    assert_eq!(healthy.hits(), 1);

    // Clones share the breakers.
    let clone = client.clone();
    assert!(
        clone
            .get(failing.url("/"))
            .await
            .unwrap_err()
            .is_circuit_open()
    );
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_stops_the_retry_sequence_and_fails_fast() {
    let server = support::always(503).await;
    let client = client(CircuitBreakerConfig::default().failure_threshold(2), 5);

    let err = client.get(server.url("/")).await.unwrap_err();
    assert!(err.is_circuit_open(), "{err:?}");
    assert_eq!(
        err.attempts(),
        2,
        "the sequence stops when the breaker opens"
    );
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(server.hits(), 2);

    let err = client.get(server.url("/")).await.unwrap_err();
    assert!(err.is_circuit_open());
    assert!(!err.is_timeout() && !err.is_connect());
    assert_eq!(err.attempts(), 0);
    let open = err.circuit_open().expect("the breaker's rejection");
    assert!(open.retry_after() > Duration::ZERO);
    assert!(open.retry_after() <= Duration::from_secs(30));
    assert_eq!(server.hits(), 2, "no I/O while open");
    assert_eq!(
        err.to_string(),
        format!(
            "circuit breaker is open: request to {} not sent",
            server.url("/")
        )
    );
}

#[tokio::test]
async fn a_cancelled_half_open_trial_does_not_wedge_the_breaker() {
    // 1st request fails and opens the breaker; the 2nd (the trial) hangs and
    // is cancelled by the caller; the 3rd must get a trial of its own.
    let server = support::serve(|seen: support::Seen| async move {
        match seen.n {
            0 => axum::http::StatusCode::SERVICE_UNAVAILABLE,
            1 => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                axum::http::StatusCode::OK
            }
            _ => axum::http::StatusCode::OK,
        }
    })
    .await;
    let reset = Duration::from_millis(50);
    let client = client(
        CircuitBreakerConfig::default()
            .failure_threshold(1)
            .reset_timeout(reset),
        0,
    );
    let target = url(&server.url("/"));

    let resp = client.get(server.url("/")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(client.circuit_state(&target), Some(State::Open));

    tokio::time::sleep(reset + Duration::from_millis(20)).await;
    assert_eq!(client.circuit_state(&target), Some(State::HalfOpen));
    let trial = client.get(server.url("/")).into_future();
    let cancelled = tokio::time::timeout(Duration::from_millis(100), trial).await;
    assert!(cancelled.is_err(), "the trial should still be in flight");
    assert_eq!(server.hits(), 2);

    let resp = client
        .get(server.url("/"))
        .await
        .expect("a new trial is allowed");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(client.circuit_state(&target), Some(State::Closed));
}

#[tokio::test(start_paused = true)]
async fn client_errors_never_open_the_breaker() {
    let server = support::always(404).await;
    let client = client(CircuitBreakerConfig::default().failure_threshold(1), 3);
    for _ in 0..10 {
        let resp = client.get(server.url("/missing")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(
        client.circuit_state(&url(&server.url("/"))),
        Some(State::Closed)
    );
    assert_eq!(server.hits(), 10);
}

#[tokio::test(start_paused = true)]
async fn disabled_breaker() {
    let server = support::always(503).await;
    let client = Client::new(
        Config::default()
            .circuit_breaker(None)
            .retry_budget(None)
            .max_retries(0),
    )
    .unwrap();
    for _ in 0..10 {
        client.get(server.url("/")).await.unwrap();
    }
    assert_eq!(server.hits(), 10);
    assert!(client.breaker(&url(&server.url("/"))).is_none());
    assert_eq!(client.circuit_state(&url(&server.url("/"))), None);
}

#[tokio::test(start_paused = true)]
async fn transition_hooks_apply_whatever_the_setter_order() {
    use std::sync::{Arc, Mutex};

    let server = support::always(503).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook = |name: &'static str| {
        let seen = Arc::clone(&seen);
        move |t: &svc_httpclient::Transition| seen.lock().unwrap().push((name, t.from(), t.to()))
    };
    let config = Config::default()
        .max_retries(0)
        .retry_budget(None)
        .on_transition(hook("before"))
        .circuit_breaker(Some(CircuitBreakerConfig::default().failure_threshold(1)))
        .on_transition(hook("after"));
    let client = Client::new(config).unwrap();
    client.get(server.url("/a")).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("before", State::Closed, State::Open),
            ("after", State::Closed, State::Open),
        ]
    );
}
