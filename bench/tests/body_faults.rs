//! The facade against the fault server's failing bodies: each ends within
//! the call's timeout when the library reads the body (`decode`), and a
//! dependency whose every body fails opens the breaker once body reads are
//! part of the attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};
use svc_bench::fault::{self, Delays, FORCE_FAULT, Fault, FaultState, Mode};
use svc_client::{CircuitBreakerConfig, Client, ClientConfig, Registry};
use svc_demo::net;

const TIMEOUT: Duration = Duration::from_millis(1500);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(200);

async fn start() -> (net::Server, Arc<FaultState>, Client) {
    let state = FaultState::new(Delays {
        slow: Duration::from_millis(50),
        hang: TIMEOUT + Duration::from_secs(1),
    });
    let server = net::spawn(fault::router(Arc::clone(&state)))
        .await
        .expect("bind 127.0.0.1:0");
    let registry = Registry::from_vars([("BODY_SVC_URL", server.url())]);
    let config = ClientConfig::default()
        .timeout(TIMEOUT)
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .circuit_breaker(Some(
            CircuitBreakerConfig::default().reset_timeout(Duration::from_secs(30)),
        ))
        .shared_pool(false);
    let client = Client::from_registry(&registry, "body-svc", config).expect("facade");
    (server, state, client)
}

#[tokio::test]
async fn failing_bodies_end_within_the_call_timeout() {
    let (_server, _state, client) = start().await;
    for fault in Fault::BAD_BODIES {
        let started = Instant::now();
        let result = client
            .get("/items/1")
            .header(FORCE_FAULT, fault.name())
            .max_retries(0)
            .decode::<serde_json::Value>()
            .await;
        let elapsed = started.elapsed();
        let err = result.expect_err(fault.name());
        assert!(!err.is_circuit_open(), "{}: {err}", fault.name());
        assert!(
            elapsed < TIMEOUT + Duration::from_millis(250),
            "{}: {elapsed:?}",
            fault.name()
        );
    }
}

#[tokio::test]
async fn every_body_failing_opens_the_breaker() {
    let (_server, state, client) = start().await;
    state.set_mode(Mode::BadBodies);
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        let result = client.get("/items/1").decode::<serde_json::Value>().await;
        outcomes.push(match result {
            Ok(_) => "ok".to_owned(),
            Err(e) if e.is_circuit_open() => "open".to_owned(),
            Err(e) => format!("{e}"),
        });
        if client.circuit_state() == Some(svc_client::State::Open) {
            break;
        }
    }
    assert_eq!(
        client.circuit_state(),
        Some(svc_client::State::Open),
        "{} requests with failing bodies, outcomes {outcomes:?}",
        state.bad_body_requests()
    );
}
