//! Retry-After, attempt timeout versus total timeout, and the deadline.
//! Time is paused: waits cost nothing, and elapsed time is measured on the
//! tokio clock.

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, StatusCode as AxumStatus, header};
use svc_httpclient::{Client, Config, StatusCode};
use tokio::time::Instant;

use svc_test_support as support;

fn client(config: Config) -> Client {
    Client::new(config.circuit_breaker(None).retry_budget(None)).unwrap()
}

/// Answers the first request with `status` and `Retry-After: {value}`, then 200.
async fn retry_after_server(
    status: u16,
    value: impl Fn() -> String + Clone + Send + Sync + 'static,
) -> support::Server {
    support::serve(move |seen: support::Seen| {
        let value = value.clone();
        async move {
            if seen.n == 0 {
                let mut headers = HeaderMap::new();
                headers.insert(header::RETRY_AFTER, value().parse().unwrap());
                (AxumStatus::from_u16(status).unwrap(), headers)
            } else {
                (AxumStatus::OK, HeaderMap::new())
            }
        }
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_is_obeyed() {
    for status in [429, 503] {
        let server = retry_after_server(status, || "7".to_owned()).await;
        let start = Instant::now();
        let resp = client(Config::default())
            .get(server.url("/"))
            .await
            .unwrap();
        let elapsed = start.elapsed();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(server.hits(), 2);
        assert!(elapsed >= Duration::from_secs(7), "{status}: {elapsed:?}");
        assert!(
            elapsed < Duration::from_millis(7500),
            "{status}: {elapsed:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_is_obeyed() {
    // The date is wall-clock time; the wait is on the paused tokio clock.
    let server = retry_after_server(503, || {
        httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(10))
    })
    .await;
    let start = Instant::now();
    let resp = client(Config::default())
        .get(server.url("/"))
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(resp.status(), StatusCode::OK);
    // HTTP dates have one-second resolution.
    assert!(elapsed >= Duration::from_secs(8), "{elapsed:?}");
    assert!(elapsed <= Duration::from_secs(11), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped_by_max_retry_after() {
    let server = retry_after_server(429, || "3600".to_owned()).await;
    let start = Instant::now();
    let resp = client(
        Config::default()
            .timeout(Duration::from_secs(7200))
            .max_retry_after(Duration::from_secs(2)),
    )
    .get(server.url("/"))
    .await
    .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_past_the_deadline_returns_the_response_at_once() {
    let server = retry_after_server(503, || "20".to_owned()).await;
    let start = Instant::now();
    let resp = client(Config::default().timeout(Duration::from_secs(5)))
        .get(server.url("/"))
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.hits(), 1);
    assert!(
        elapsed < Duration::from_millis(100),
        "no sleep: {elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_other_statuses_and_garbage_falls_back_to_backoff() {
    for (status, value) in [(500, "30"), (503, "-5"), (503, "soon")] {
        let server = retry_after_server(status, move || value.to_owned()).await;
        let start = Instant::now();
        let resp = client(Config::default())
            .get(server.url("/"))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let elapsed = start.elapsed();
        assert!(
            elapsed <= Duration::from_millis(110),
            "{status} {value}: {elapsed:?}"
        );
    }
}

async fn hanging_first(n_hanging: usize) -> support::Server {
    support::serve(move |seen: support::Seen| async move {
        if seen.n < n_hanging {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        "ok"
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_hung_attempt_is_cut_by_attempt_timeout_and_retried() {
    let server = hanging_first(1).await;
    let start = Instant::now();
    let resp = client(
        Config::default()
            .attempt_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(30)),
    )
    .get(server.url("/"))
    .await
    .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(server.hits(), 2);
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1200), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn the_call_ends_within_timeout() {
    let server = hanging_first(usize::MAX).await;
    let timeout = Duration::from_secs(5);
    let start = Instant::now();
    let err = client(
        Config::default()
            .timeout(timeout)
            .attempt_timeout(Duration::from_secs(2))
            .max_retries(10),
    )
    .get(server.url("/slow"))
    .await
    .unwrap_err();
    let elapsed = start.elapsed();
    assert!(err.is_timeout(), "{err:?}");
    assert!(elapsed <= timeout, "{elapsed:?}");
    assert!(elapsed >= Duration::from_millis(4900), "{elapsed:?}");
    // 2 s + backoff + 2 s + backoff + the rest: three attempts.
    assert_eq!(err.attempts(), 3);
    assert_eq!(server.hits(), 3);
    assert_eq!(
        err.to_string(),
        format!(
            "request to {} timed out after 3 attempts",
            server.url("/slow")
        )
    );
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_never_passes_the_total_timeout() {
    let server = hanging_first(usize::MAX).await;
    let start = Instant::now();
    let err = client(
        Config::default()
            .timeout(Duration::from_secs(3))
            .attempt_timeout(Duration::from_secs(10)),
    )
    .get(server.url("/"))
    .await
    .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.attempts(), 1);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn per_call_timeout_overrides_the_client() {
    let server = hanging_first(usize::MAX).await;
    let start = Instant::now();
    let err = client(Config::default())
        .get(server.url("/"))
        .timeout(Duration::from_millis(1500))
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert!(start.elapsed() <= Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn a_post_that_timed_out_is_not_replayed() {
    let server = hanging_first(usize::MAX).await;
    let err = client(Config::default().attempt_timeout(Duration::from_secs(1)))
        .post(server.url("/charges"), &serde_json::json!({"cents": 1}))
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.attempts(), 1);
    assert_eq!(server.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn backoff_that_would_pass_the_deadline_is_not_slept() {
    let server = support::always(503).await;
    let backoff = svc_httpclient::Backoff::default()
        .base(Duration::from_secs(10))
        .cap(Duration::from_secs(10))
        .jitter(false);
    let start = Instant::now();
    let resp = client(
        Config::default()
            .backoff(backoff)
            .timeout(Duration::from_secs(5)),
    )
    .get(server.url("/"))
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.hits(), 1);
    assert!(start.elapsed() < Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn reading_a_stalled_body_is_bounded_by_the_attempt_limit() {
    use futures_util::StreamExt;
    let server = support::serve(|_| async {
        let first = futures_util::stream::once(async {
            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"partial"))
        });
        axum::body::Body::from_stream(first.chain(futures_util::stream::pending()))
    })
    .await;
    let start = Instant::now();
    let resp = client(Config::default().attempt_timeout(Duration::from_secs(2)))
        .get(server.url("/"))
        .await
        .expect("the head arrives at once");
    assert_eq!(resp.status(), StatusCode::OK);
    let err = resp.bytes().await.expect_err("the body never ends");
    assert!(err.is_timeout(), "{err:?}");
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2100), "{elapsed:?}");
}
