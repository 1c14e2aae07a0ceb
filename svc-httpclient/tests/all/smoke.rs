use svc_httpclient::{Client, Config, StatusCode};

use crate::support;

#[tokio::test]
async fn get_returns_the_response() {
    let server = support::always(200).await;
    let client = Client::new(Config::default()).unwrap();
    let resp = client.get(server.url("/users/123")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(server.hits(), 1);
    assert_eq!(server.seen()[0].path, "/users/123");
}

#[tokio::test(start_paused = true)]
async fn get_retries_a_503_then_succeeds() {
    let server = support::statuses(&[503, 503, 200]).await;
    let client = Client::new(Config::default()).unwrap();
    let resp = client.get(server.url("/")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(server.hits(), 3);
}
