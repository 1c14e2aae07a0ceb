//! One test per row of the DESIGN.md §2 table: what one attempt does to the
//! breaker of its origin.
//!
//! The breaker opens after 2 consecutive failures and already holds one, so
//! after the attempt it is open (the attempt was a failure), or one more
//! failure opens it (no effect), or one more failure leaves it closed (a
//! success reset the count).

use std::time::Duration;

use svc_httpclient::{CircuitBreakerConfig, Client, Config, Outcome, State, reqwest::Url};

use svc_test_support as support;

fn client() -> Client {
    Client::new(
        Config::default()
            .max_retries(0)
            .retry_budget(None)
            .attempt_timeout(Duration::from_secs(1))
            .circuit_breaker(Some(CircuitBreakerConfig::default().failure_threshold(2))),
    )
    .unwrap()
}

/// Records one failure, runs `call`, and reads what it did to the breaker.
async fn effect_of<F: std::future::Future>(client: &Client, url: &str, call: F) -> Outcome {
    let url = Url::parse(url).unwrap();
    let breaker = client.breaker(&url).unwrap();
    breaker.try_acquire().unwrap().record_failure();
    assert_eq!(breaker.state(), State::Closed);
    call.await;
    if breaker.state() == State::Open {
        return Outcome::Failure;
    }
    breaker.try_acquire().unwrap().record_failure();
    match breaker.state() {
        State::Open => Outcome::Ignored,
        _ => Outcome::Success,
    }
}

macro_rules! status_rows {
    ($($name:ident: $status:literal => $outcome:ident,)*) => {$(
        #[tokio::test(start_paused = true)]
        async fn $name() {
            let server = support::always($status).await;
            let client = client();
            let url = server.url("/");
            let outcome = effect_of(&client, &url, async {
                let resp = client.get(&url).await.expect("a status is never an error");
                assert_eq!(resp.status().as_u16(), $status);
            })
            .await;
            assert_eq!(outcome, Outcome::$outcome, "status {}", $status);
            assert_eq!(server.hits(), 1);
        }
    )*};
}

status_rows! {
    status_200_is_a_success: 200 => Success,
    status_201_is_a_success: 201 => Success,
    status_204_is_a_success: 204 => Success,
    status_301_is_a_success: 301 => Success,
    status_302_is_a_success: 302 => Success,
    status_304_is_a_success: 304 => Success,
    status_400_has_no_effect: 400 => Ignored,
    status_401_has_no_effect: 401 => Ignored,
    status_403_has_no_effect: 403 => Ignored,
    status_404_has_no_effect: 404 => Ignored,
    status_409_has_no_effect: 409 => Ignored,
    status_422_has_no_effect: 422 => Ignored,
    status_429_is_a_failure: 429 => Failure,
    status_500_is_a_failure: 500 => Failure,
    status_501_is_a_failure: 501 => Failure,
    status_502_is_a_failure: 502 => Failure,
    status_503_is_a_failure: 503 => Failure,
    status_504_is_a_failure: 504 => Failure,
}

#[tokio::test(start_paused = true)]
async fn connection_refused_is_a_failure() {
    let client = client();
    let url = format!("http://{}/", support::closed_port());
    let outcome = effect_of(&client, &url, async {
        let err = client.get(&url).await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
    })
    .await;
    assert_eq!(outcome, Outcome::Failure);
}

#[tokio::test(start_paused = true)]
async fn connection_reset_is_a_failure() {
    let server = support::resetting().await;
    let addr = server.addr();
    let client = client();
    let url = format!("http://{addr}/");
    let outcome = effect_of(&client, &url, async {
        let err = client.get(&url).await.unwrap_err();
        assert!(!err.is_connect() && !err.is_timeout(), "{err:?}");
    })
    .await;
    assert_eq!(outcome, Outcome::Failure);
    assert_eq!(server.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn timeout_is_a_failure() {
    let server = support::serve(|_| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        "late"
    })
    .await;
    let client = client();
    let url = server.url("/");
    let outcome = effect_of(&client, &url, async {
        let err = client.get(&url).await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
    })
    .await;
    assert_eq!(outcome, Outcome::Failure);
}

#[tokio::test(start_paused = true)]
async fn caller_cancellation_has_no_effect() {
    let server = support::serve(|_| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        "late"
    })
    .await;
    let client = client();
    let url = server.url("/");
    let outcome = effect_of(&client, &url, async {
        // The caller gives up after 100 ms, long before the attempt's 1 s.
        let call = client.get(&url).into_future();
        let dropped = tokio::time::timeout(Duration::from_millis(100), call).await;
        assert!(dropped.is_err(), "the call should still be in flight");
    })
    .await;
    assert_eq!(outcome, Outcome::Ignored);
    assert_eq!(server.hits(), 1);
}
