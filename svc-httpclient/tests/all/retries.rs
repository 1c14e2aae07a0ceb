//! What is retried, and what is never replayed.

use std::time::Duration;

use svc_httpclient::{Client, Config, StatusCode, reqwest};

use svc_test_support as support;

fn client(config: Config) -> Client {
    Client::new(config.circuit_breaker(None).retry_budget(None)).unwrap()
}

macro_rules! retried_statuses {
    ($($name:ident: $status:literal,)*) => {$(
        mod $name {
            use super::*;

            #[tokio::test(start_paused = true)]
            async fn get_is_retried() {
                let server = support::statuses(&[$status, 200]).await;
                let resp = client(Config::default()).get(server.url("/")).await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                assert_eq!(server.hits(), 2);
            }

            #[tokio::test(start_paused = true)]
            async fn post_is_not_replayed() {
                let server = support::statuses(&[$status, 200]).await;
                let resp = client(Config::default())
                    .post(server.url("/charges"), &serde_json::json!({"cents": 100}))
                    .await
                    .unwrap();
                assert_eq!(resp.status().as_u16(), $status);
                assert_eq!(server.hits(), 1);
            }

            #[tokio::test(start_paused = true)]
            async fn post_with_idempotency_key_is_replayed_with_the_same_key() {
                let server = support::statuses(&[$status, 200]).await;
                let resp = client(Config::default())
                    .post(server.url("/charges"), &serde_json::json!({"cents": 100}))
                    .idempotency_key("charge-42")
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                let seen = server.seen();
                assert_eq!(seen.len(), 2);
                for request in &seen {
                    assert_eq!(request.headers["idempotency-key"], "charge-42");
                    assert_eq!(&request.body[..], br#"{"cents":100}"#, "body replayed");
                }
            }

            #[tokio::test(start_paused = true)]
            async fn last_response_is_returned_after_the_last_retry() {
                let server = support::always($status).await;
                let resp = client(Config::default().max_retries(2))
                    .get(server.url("/"))
                    .await
                    .expect("a status is never an error");
                assert_eq!(resp.status().as_u16(), $status);
                assert_eq!(server.hits(), 3);
            }
        }
    )*};
}

retried_statuses! {
    status_408: 408,
    status_429: 429,
    status_500: 500,
    status_502: 502,
    status_503: 503,
    status_504: 504,
}

macro_rules! not_retried_statuses {
    ($($name:ident: $status:literal,)*) => {$(
        #[tokio::test(start_paused = true)]
        async fn $name() {
            let server = support::statuses(&[$status, 200]).await;
            let resp = client(Config::default()).get(server.url("/")).await.unwrap();
            assert_eq!(resp.status().as_u16(), $status);
            assert_eq!(server.hits(), 1);
        }
    )*};
}

not_retried_statuses! {
    status_400_is_not_retried: 400,
    status_401_is_not_retried: 401,
    status_403_is_not_retried: 403,
    status_404_is_not_retried: 404,
    status_409_is_not_retried: 409,
    status_501_is_not_retried: 501,
    status_505_is_not_retried: 505,
}

#[tokio::test(start_paused = true)]
async fn idempotent_methods_are_retried() {
    for method in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"] {
        let server = support::statuses(&[503, 200]).await;
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = client(Config::default())
            .request(method.clone(), server.url("/"))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{method}");
        assert_eq!(server.hits(), 2, "{method}");
    }
}

#[tokio::test(start_paused = true)]
async fn patch_is_not_replayed() {
    let server = support::statuses(&[503, 200]).await;
    let resp = client(Config::default())
        .patch(server.url("/"), &serde_json::json!({"name": "x"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_unsafe_replays_a_post() {
    let server = support::statuses(&[503, 200]).await;
    let resp = client(Config::default())
        .post(server.url("/"), &serde_json::json!({}))
        .retry_unsafe(true)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(server.hits(), 2);
}

#[tokio::test(start_paused = true)]
async fn generated_idempotency_key_is_the_same_on_every_attempt() {
    let server = support::statuses(&[503, 502, 200]).await;
    let client = client(Config::default().generate_idempotency_keys(true));
    let resp = client
        .post(server.url("/"), &serde_json::json!({"a": 1}))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    let key = seen[0].headers["idempotency-key"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(uuid::Uuid::parse_str(&key).unwrap().get_version_num(), 4);
    assert!(
        seen.iter()
            .all(|r| r.headers["idempotency-key"] == key.as_str())
    );

    // A new call gets a new key; a caller's own key is kept; GET gets none.
    client.post(server.url("/"), &1).await.unwrap();
    client
        .post(server.url("/"), &1)
        .idempotency_key("mine")
        .await
        .unwrap();
    client.get(server.url("/")).await.unwrap();
    let seen = server.seen();
    assert_ne!(seen[3].headers["idempotency-key"], key.as_str());
    assert_eq!(seen[4].headers["idempotency-key"], "mine");
    assert!(!seen[5].headers.contains_key("idempotency-key"));
}

#[tokio::test(start_paused = true)]
async fn max_retries_per_call_overrides_the_client() {
    let server = support::always(503).await;
    let resp = client(Config::default().max_retries(3))
        .get(server.url("/"))
        .max_retries(1)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.hits(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_statuses_are_configurable() {
    let server = support::statuses(&[409, 200]).await;
    let resp = client(Config::default().retry_statuses([StatusCode::CONFLICT]))
        .get(server.url("/"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(server.hits(), 2);

    let server = support::statuses(&[503, 200]).await;
    let resp = client(Config::default().retry_statuses([StatusCode::CONFLICT]))
        .get(server.url("/"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn connection_refused_is_retried_even_for_post() {
    let addr = support::closed_port();
    let err = client(Config::default().max_retries(2))
        .post(format!("http://{addr}/charges"), &serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(err.attempts(), 3, "nothing was sent, so POST is retried");
    assert_eq!(
        err.to_string(),
        format!("could not connect to http://{addr}/charges after 3 attempts")
    );
}

#[tokio::test(start_paused = true)]
async fn connection_reset_is_retried_for_get_only() {
    let server = support::resetting().await;
    let addr = server.addr();
    let client = client(Config::default().max_retries(2));
    let err = client.get(format!("http://{addr}/")).await.unwrap_err();
    assert!(!err.is_connect() && !err.is_timeout(), "{err:?}");
    assert_eq!(err.attempts(), 3);
    assert_eq!(server.hits(), 3);

    let err = client
        .post(format!("http://{addr}/"), &serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        err.attempts(),
        1,
        "a POST that may have been received is not replayed"
    );
    assert_eq!(server.hits(), 4);
}

#[tokio::test(start_paused = true)]
async fn streaming_body_gets_exactly_one_attempt() {
    let server = support::always(503).await;
    let client = client(Config::default());
    let mut request = reqwest::Request::new(
        reqwest::Method::PUT,
        reqwest::Url::parse(&server.url("/upload")).unwrap(),
    );
    *request.body_mut() = Some(reqwest::Body::wrap(String::from("streamed")));
    let resp = client.execute(request).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.hits(), 1);
    assert_eq!(&server.seen()[0].body[..], b"streamed");
}

#[tokio::test(start_paused = true)]
async fn byte_bodies_are_replayed() {
    let server = support::statuses(&[503, 200]).await;
    let resp = client(Config::default())
        .request(reqwest::Method::PUT, server.url("/blob"))
        .body(&b"\x00\x01payload"[..])
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|r| &r.body[..] == b"\x00\x01payload"));
}

#[tokio::test(start_paused = true)]
async fn backoff_waits_between_attempts() {
    let server = support::statuses(&[503, 503, 200]).await;
    let backoff = svc_httpclient::Backoff::default()
        .base(Duration::from_secs(1))
        .jitter(false);
    let start = tokio::time::Instant::now();
    let resp = client(Config::default().backoff(backoff))
        .get(server.url("/"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // 1 s, then 2 s.
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_secs(3), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(3500), "{elapsed:?}");
}

#[tokio::test]
async fn invalid_requests_fail_before_any_io() {
    let client = client(Config::default());
    let err = client.get("not a url").await.unwrap_err();
    assert!(err.is_request(), "{err:?}");
    assert_eq!(err.attempts(), 0);

    let server = support::always(200).await;
    let err = client
        .get(server.url("/"))
        .header("bad header name", "x")
        .await
        .unwrap_err();
    assert!(err.is_request(), "{err:?}");

    struct Unserializable;
    impl serde::Serialize for Unserializable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("cannot encode"))
        }
    }
    let err = client
        .post(server.url("/"), &Unserializable)
        .await
        .unwrap_err();
    assert!(err.is_request(), "{err:?}");
    assert_eq!(server.hits(), 0);
}
