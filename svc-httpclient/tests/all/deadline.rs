//! A deadline from outside the call (`RequestBuilder::deadline`), as the
//! svc-client facade passes the request's budget. Time is paused.

use std::time::Duration;

use axum::http::StatusCode as AxumStatus;
use svc_httpclient::header::HeaderName;
use svc_httpclient::{CircuitBreakerConfig, Client, Config, StatusCode};
use tokio::time::Instant;

use svc_test_support as support;

static BUDGET: HeaderName = HeaderName::from_static("svc-timeout-ms");

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn client() -> Client {
    Client::new(
        Config::default()
            .retry_budget(None)
            .circuit_breaker(Some(CircuitBreakerConfig::default())),
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_deadline_already_passed_fails_at_once_without_io_or_permit() {
    let server = support::recording_server(200, "ok").await;
    let client = client();
    let url = server.url("/");
    let err = client.get(&url).deadline(Instant::now()).await.unwrap_err();
    assert!(err.is_deadline_exceeded() && err.is_timeout(), "{err:?}");
    assert_eq!(err.attempts(), 0);
    assert_eq!(err.error_type(), "deadline_exceeded");
    assert_eq!(server.hits(), 0);
    let breaker = client.breaker(&url.parse().unwrap()).unwrap();
    assert_eq!(breaker.metrics().calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn each_attempt_sends_its_budget_in_the_header() {
    let server = support::recording_server(200, "ok").await;
    let client = client();
    let sent = |server: &support::Server| {
        server
            .header_values("svc-timeout-ms")
            .last()
            .cloned()
            .flatten()
    };

    client
        .get(server.url("/"))
        .deadline(Instant::now() + ms(250))
        .await
        .unwrap();
    assert_eq!(sent(&server), None, "no header name, nothing sent");

    client
        .get(server.url("/"))
        .deadline(Instant::now() + ms(250))
        .deadline_header(&BUDGET)
        .await
        .unwrap();
    assert_eq!(sent(&server).as_deref(), Some("250"));

    client
        .get(server.url("/"))
        .deadline_header(&BUDGET)
        .await
        .unwrap();
    assert_eq!(sent(&server), None, "no deadline, nothing sent");

    // The call's own (shorter) timeout is what the attempt has.
    client
        .get(server.url("/"))
        .timeout(ms(100))
        .deadline(Instant::now() + ms(250))
        .deadline_header(&BUDGET)
        .await
        .unwrap();
    assert_eq!(sent(&server).as_deref(), Some("100"));
}

#[tokio::test(start_paused = true)]
async fn an_attempt_cut_by_the_deadline_is_not_a_breaker_failure() {
    let server = support::serve(|_seen: support::Seen| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        AxumStatus::OK
    })
    .await;
    let client = client();
    let url = server.url("/");
    let start = Instant::now();
    let err = client.get(&url).deadline(start + ms(50)).await.unwrap_err();
    assert_eq!(start.elapsed(), ms(50));
    assert!(err.is_deadline_exceeded() && err.is_timeout(), "{err:?}");
    assert_eq!(err.attempts(), 1);
    let breaker = client.breaker(&url.parse().unwrap()).unwrap();
    assert_eq!(breaker.metrics().failures(), 0);
    assert_eq!(breaker.metrics().ignored(), 1);

    // The call's own timeout, earlier than the deadline: the service's failure.
    let err = client
        .get(&url)
        .timeout(ms(30))
        .max_retries(0)
        .deadline(Instant::now() + ms(50))
        .await
        .unwrap_err();
    assert!(err.is_timeout() && !err.is_deadline_exceeded(), "{err:?}");
    assert_eq!(breaker.metrics().failures(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_504_at_the_end_of_the_budget_is_the_service_giving_up_not_failing() {
    // The service answers 504 when the budget it was sent runs out, a
    // moment before the client's timer.
    let server = support::serve(|seen: support::Seen| async move {
        let budget: u64 = seen.header("svc-timeout-ms").unwrap().parse().unwrap();
        tokio::time::sleep(ms(budget - 1)).await;
        AxumStatus::GATEWAY_TIMEOUT
    })
    .await;
    let client = client();
    let url = server.url("/");
    let resp = client
        .get(&url)
        .deadline(Instant::now() + ms(100))
        .deadline_header(&BUDGET)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    let breaker = client.breaker(&url.parse().unwrap()).unwrap();
    assert_eq!(breaker.metrics().failures(), 0);
    assert_eq!(server.hits(), 1, "no time for a retry");
}
