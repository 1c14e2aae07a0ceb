use svc_httpclient::{Client, Config, StatusCode};

use svc_test_support as support;

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

#[tokio::test]
async fn default_headers_and_user_agent_are_added_unless_set() {
    let server = support::always(200).await;
    let mut headers = svc_httpclient::header::HeaderMap::new();
    headers.insert("x-tenant", "acme".parse().unwrap());
    let client = Client::new(
        Config::default()
            .default_headers(headers)
            .user_agent("svc-test/1.0"),
    )
    .unwrap();
    client.get(server.url("/")).await.unwrap();
    client
        .get(server.url("/"))
        .header("x-tenant", "other")
        .header("user-agent", "mine")
        .await
        .unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].headers["x-tenant"], "acme");
    assert_eq!(seen[0].headers["user-agent"], "svc-test/1.0");
    assert_eq!(seen[1].headers["x-tenant"], "other");
    assert_eq!(seen[1].headers["user-agent"], "mine");
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let target = support::always(200).await;
    let location = target.url("/moved");
    let server = support::serve(move |_| {
        let location = location.clone();
        async move {
            (
                axum::http::StatusCode::FOUND,
                [(axum::http::header::LOCATION, location)],
            )
        }
    })
    .await;
    let client = Client::new(Config::default()).unwrap();
    let resp = client.get(server.url("/")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(target.hits(), 0);
}

#[tokio::test]
async fn query_json_and_execute() {
    let server = support::always(200).await;
    let client = Client::new(Config::default()).unwrap();
    client
        .put(server.url("/items/1"), &serde_json::json!({"name": "x"}))
        .query(&[("dry_run", "true")])
        .await
        .unwrap();
    let seen = &server.seen()[0];
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(&seen.body[..], br#"{"name":"x"}"#);

    let request = svc_httpclient::reqwest::Request::new(
        svc_httpclient::Method::DELETE,
        server.url("/items/1").parse().unwrap(),
    );
    let resp = client.execute(request).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(server.seen()[1].method, "DELETE");
    client.head(server.url("/")).send().await.unwrap();
    client.delete(server.url("/")).send().await.unwrap();
    assert_eq!(server.hits(), 4);
}
