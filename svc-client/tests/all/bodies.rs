//! When the library reads the body (`decode()`, `bytes()`,
//! `text()`), the read is part of the attempt: a body that stalls, resets or
//! is cut short after a `200` head is a failure for the breaker and is
//! retried like any transient failure.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::{client_for, fast_config};
use serde::Deserialize;
use svc_client::{CircuitBreakerConfig, State};
use svc_test_support::{BodyFault, GOOD_BODY, body_faults};

#[derive(Debug, Deserialize, PartialEq)]
struct User {
    id: String,
    name: String,
}

fn ada() -> User {
    User {
        id: "u1".into(),
        name: "ada".into(),
    }
}

#[tokio::test]
async fn a_cut_body_is_retried_and_the_retry_succeeds() {
    for fault in [BodyFault::Truncate, BodyFault::Reset] {
        let (addr, hits) = body_faults(&[fault, BodyFault::Whole]).await;
        let client = client_for("auth-svc", addr, "", fast_config());
        let user: User = client.get("/users/1").decode().await.unwrap();
        assert_eq!(user, ada());
        assert_eq!(hits.load(Ordering::SeqCst), 2, "{fault:?}: one retry");
        assert_eq!(client.metrics().unwrap().consecutive_failures(), 0);
    }
}

#[tokio::test]
async fn a_stalled_body_ends_with_the_attempt_and_is_retried() {
    let (addr, hits) = body_faults(&[BodyFault::Stall, BodyFault::Whole]).await;
    let config = fast_config()
        .attempt_timeout(Duration::from_millis(200))
        .timeout(Duration::from_secs(5));
    let client = client_for("auth-svc", addr, "", config);
    let user: User = client.get("/users/1").decode().await.unwrap();
    assert_eq!(user, ada());
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn bodies_that_keep_failing_open_the_breaker() {
    let (addr, hits) = body_faults(&[BodyFault::Truncate]).await;
    let config = fast_config()
        .max_retries(0)
        .circuit_breaker(Some(CircuitBreakerConfig::default().failure_threshold(3)));
    let client = client_for("auth-svc", addr, "", config);
    for _ in 0..3 {
        let err = client.get("/users/1").decode::<User>().await.unwrap_err();
        assert!(!err.is_circuit_open(), "{err}");
    }
    assert_eq!(client.circuit_state(), Some(State::Open));
    let err = client.get("/users/1").decode::<User>().await.unwrap_err();
    assert!(err.is_circuit_open(), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn bytes_and_text_read_within_the_attempt_too() {
    let (addr, hits) = body_faults(&[BodyFault::Truncate, BodyFault::Whole]).await;
    let client = client_for("auth-svc", addr, "", fast_config());
    let body = client.get("/a").bytes().await.unwrap();
    assert_eq!(&body[..], GOOD_BODY.as_bytes());
    let text = client.get("/b").text().await.unwrap();
    assert_eq!(text, GOOD_BODY);
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn send_hands_the_body_to_the_caller_and_the_breaker_counts_the_head() {
    let (addr, hits) = body_faults(&[BodyFault::Truncate]).await;
    let client = client_for("auth-svc", addr, "", fast_config());
    let resp = client.get("/users/1").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err(), "the caller sees the cut body");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(client.metrics().unwrap().consecutive_failures(), 0);
}

#[tokio::test]
async fn a_body_read_cut_off_by_the_deadline_is_a_timeout() {
    let (addr, _hits) = body_faults(&[BodyFault::Stall]).await;
    let config = fast_config()
        .attempt_timeout(Duration::from_millis(100))
        .max_retries(0);
    let client = client_for("auth-svc", addr, "", config);
    // The caller reads the body itself: the attempt's timer still bounds it.
    let resp = client.get("/users/1").await.unwrap();
    let err = svc_client::decode_response::<User>(resp).await.unwrap_err();
    assert!(err.is_decode(), "{err}");
    assert!(err.is_timeout(), "the predicate walks the source: {err:?}");
    // Read by the client: a timeout of the call.
    let err = client.get("/users/1").decode::<User>().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}
