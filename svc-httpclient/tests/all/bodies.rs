//! `bytes()`, `text()`, `decode()` and `send_buffered()` read the body
//! within the attempt: a body that fails after a `200` head is a failed
//! attempt for the breaker and the retries. `send()` leaves the body to the
//! caller.

use std::sync::atomic::Ordering;
use std::time::Duration;

use svc_httpclient::{CircuitBreakerConfig, Client, Config, State};
use svc_test_support::{BodyFault, GOOD_BODY, body_faults};

fn config() -> Config {
    Config::default()
        .backoff(svc_httpclient::Backoff::default().base(Duration::from_millis(1)))
        .attempt_timeout(Duration::from_millis(300))
}

#[tokio::test]
async fn every_reader_retries_a_body_that_failed() {
    for fault in [BodyFault::Truncate, BodyFault::Reset, BodyFault::Stall] {
        let (addr, hits) = body_faults(&[fault, BodyFault::Whole]).await;
        let client = Client::new(config()).unwrap();
        let url = format!("http://{addr}/x");
        assert_eq!(
            &client.get(&url).bytes().await.unwrap()[..],
            GOOD_BODY.as_bytes()
        );
        assert_eq!(
            client.get(&url).text().await.unwrap(),
            GOOD_BODY,
            "{fault:?}"
        );
        let value: serde_json::Value = client.get(&url).decode().await.unwrap();
        assert_eq!(value["name"], "ada");
        let resp = client.get(&url).send_buffered().await.unwrap();
        assert_eq!(resp.body(), GOOD_BODY.as_bytes());
        assert_eq!(hits.load(Ordering::SeqCst), 8, "{fault:?}: one retry each");
    }
}

#[tokio::test]
async fn a_body_that_keeps_failing_opens_the_breaker_and_names_the_failure() {
    let (addr, hits) = body_faults(&[BodyFault::Truncate]).await;
    let breaker = CircuitBreakerConfig::default().failure_threshold(4);
    let client = Client::new(config().max_retries(1).circuit_breaker(Some(breaker))).unwrap();
    let url = format!("http://{addr}/x?token=t0ken");
    let err = client.get(&url).bytes().await.unwrap_err();
    assert!(err.is_body(), "{err}");
    assert_eq!(err.attempts(), 2);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(200));
    assert!(!err.to_string().contains("t0ken"), "{err}");
    // Failures 3 and 4: the breaker opens on the last attempt.
    assert!(client.get(&url).bytes().await.unwrap_err().is_body());
    let err = client.get(&url).bytes().await.unwrap_err();
    assert!(err.is_circuit_open(), "{err}");
    assert_eq!(
        client.circuit_state(&url.parse().unwrap()),
        Some(State::Open)
    );
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_stalled_body_read_by_the_client_is_a_timeout() {
    let (addr, _hits) = body_faults(&[BodyFault::Stall]).await;
    let client = Client::new(config().max_retries(0)).unwrap();
    let err = client
        .get(format!("http://{addr}/x"))
        .bytes()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_not_retried_and_not_a_breaker_failure() {
    let (addr, hits) = body_faults(&[BodyFault::Whole]).await;
    let client = Client::new(config()).unwrap();
    let url = format!("http://{addr}/x");
    let err = client.get(&url).body_limit(4).bytes().await.unwrap_err();
    assert!(err.is_body_too_large(), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let breaker = client.breaker(&url.parse().unwrap()).unwrap();
    assert_eq!(breaker.metrics().consecutive_failures(), 0);
}

#[tokio::test]
async fn non_2xx_is_an_error_of_the_readers_and_bad_json_a_decode_error() {
    let server = svc_test_support::always(404).await;
    let client = Client::new(config()).unwrap();
    let err = client.get(server.url("/x")).bytes().await.unwrap_err();
    assert!(err.is_status(), "{err}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
    let (addr, _hits) = body_faults(&[BodyFault::Whole]).await;
    let err = client
        .get(format!("http://{addr}/x"))
        .decode::<Vec<u32>>()
        .await
        .unwrap_err();
    assert!(err.is_decode(), "{err}");
}
