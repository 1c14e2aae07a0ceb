//! `decode_response`: status, size limit, JSON, and errors that say what
//! came back.

use std::error::Error as _;

use crate::support::{Server, client_for, fast_config, serve_router};
use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::routing::get;
use serde::Deserialize;
use svc_client::{ClientConfig, decode_response, decode_response_with_limit};

#[derive(Debug, Deserialize, PartialEq)]
struct User {
    id: String,
    name: String,
}

/// A client of a server running `app`; the server stops when dropped.
async fn client_with(app: Router, config: ClientConfig) -> (Server, svc_client::Client) {
    let server = serve_router(app).await;
    let client = client_for("auth-svc", server.addr(), "", config);
    (server, client)
}

fn json(status: StatusCode, body: &'static str) -> Router {
    Router::new().route(
        "/users/123",
        get(move || async move { (status, [(header::CONTENT_TYPE, "application/json")], body) }),
    )
}

#[tokio::test]
async fn decodes_a_2xx_json_body() {
    let (_server, client) = client_with(
        json(
            StatusCode::OK,
            r#"{"id":"123","name":"Alice","extra":true}"#,
        ),
        fast_config(),
    )
    .await;
    let resp = client.get("/users/123").await.unwrap();
    let user: User = decode_response(resp).await.unwrap();
    assert_eq!(
        user,
        User {
            id: "123".into(),
            name: "Alice".into()
        }
    );
    // The same through the builder.
    let user: User = client.get("/users/123").decode().await.unwrap();
    assert_eq!(user.name, "Alice");
}

#[tokio::test]
async fn a_non_2xx_status_is_an_error_with_status_and_body() {
    let app = Router::new().route(
        "/users/123",
        get(|| async { (StatusCode::NOT_FOUND, "user 123 not found") }),
    );
    let (_server, client) = client_with(app, fast_config()).await;
    let resp = client.get("/users/123").await.unwrap();
    assert_eq!(resp.status(), 404, "a status is never an Err by itself");
    let err = decode_response::<User>(resp).await.unwrap_err();
    assert!(err.is_decode(), "{err}");
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(err.body_snippet(), Some("user 123 not found"));
    assert_eq!(err.content_type(), Some("text/plain; charset=utf-8"));
    let msg = err.to_string();
    assert!(
        msg.contains("404") && msg.contains("user 123 not found"),
        "{msg}"
    );
    assert!(msg.contains("/users/123"), "{msg}");
}

#[tokio::test]
async fn invalid_json_is_an_error_with_the_json_cause() {
    let (_server, client) = client_with(
        json(StatusCode::OK, r#"{"id": "123", "name": "#),
        fast_config(),
    )
    .await;
    let err = client.get("/users/123").decode::<User>().await.unwrap_err();
    assert!(err.is_decode(), "{err}");
    assert_eq!(err.status(), Some(StatusCode::OK));
    assert_eq!(err.content_type(), Some("application/json"));
    assert_eq!(err.body_snippet(), Some(r#"{"id": "123", "name": "#));
    let source = err.source().expect("the serde_json error");
    assert!(source.downcast_ref::<serde_json::Error>().is_some());
}

#[tokio::test]
async fn the_wrong_shape_is_an_error() {
    let (_server, client) =
        client_with(json(StatusCode::OK, r#"{"id": 123}"#), fast_config()).await;
    let err = client.get("/users/123").decode::<User>().await.unwrap_err();
    assert!(err.is_decode());
    assert!(
        err.source().unwrap().to_string().contains("invalid type"),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_html_page_is_an_error_showing_the_page() {
    let page = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    let app = Router::new().route(
        "/users/123",
        get(move || async move { ([(header::CONTENT_TYPE, "text/html")], page) }),
    );
    let (_server, client) = client_with(app, fast_config()).await;
    let err = client.get("/users/123").decode::<User>().await.unwrap_err();
    assert!(err.is_decode());
    assert_eq!(err.content_type(), Some("text/html"));
    assert_eq!(err.body_snippet(), Some(page));
    assert!(err.to_string().contains("text/html"), "{err}");
}

#[tokio::test]
async fn a_long_body_is_cut_to_a_snippet() {
    let body: &'static str = Box::leak("é".repeat(1000).into_boxed_str());
    let (_server, client) = client_with(json(StatusCode::BAD_REQUEST, body), fast_config()).await;
    let err = client.get("/users/123").decode::<User>().await.unwrap_err();
    let snippet = err.body_snippet().unwrap();
    assert!(snippet.ends_with('…'));
    assert_eq!(snippet.trim_end_matches('…'), "é".repeat(100));
}

#[tokio::test]
async fn an_oversized_body_with_content_length_fails_before_reading() {
    let big: &'static str = Box::leak("x".repeat(4096).into_boxed_str());
    let (_server, client) = client_with(json(StatusCode::OK, big), fast_config()).await;
    let resp = client.get("/users/123").await.unwrap();
    assert_eq!(resp.content_length(), Some(4096));
    let err = decode_response_with_limit::<serde_json::Value>(resp, 1024)
        .await
        .unwrap_err();
    assert!(err.is_decode());
    assert!(err.to_string().contains("limit of 1024 bytes"), "{err}");
    assert_eq!(err.body_snippet(), Some(""), "nothing was read");
}

#[tokio::test]
async fn an_oversized_streamed_body_fails_once_past_the_limit() {
    let app = Router::new().route(
        "/users/123",
        get(|| async {
            let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b'7'; 512]));
            Body::from_stream(futures_util::stream::iter(chunks))
        }),
    );
    let (_server, client) = client_with(app, fast_config().decode_limit(2000)).await;
    let resp = client.get("/users/123").await.unwrap();
    assert_eq!(resp.content_length(), None, "the body is chunked");
    let err = decode_response_with_limit::<serde_json::Value>(resp, 2000)
        .await
        .unwrap_err();
    assert!(err.is_decode());
    assert!(err.to_string().contains("limit of 2000 bytes"), "{err}");
    assert_eq!(
        err.body_snippet().unwrap().trim_end_matches('…'),
        "7".repeat(200)
    );

    // The builder uses the client's `decode_limit`.
    let err = client
        .get("/users/123")
        .decode::<serde_json::Value>()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("limit of 2000 bytes"), "{err}");
}

#[tokio::test]
async fn a_body_at_the_limit_decodes() {
    let app = Router::new().route(
        "/users/123",
        get(|| async {
            let chunks = (0..4).map(|_| Ok::<_, std::io::Error>(b"    ".to_vec()));
            let body = futures_util::stream::iter(chunks.chain([Ok(b"[1]".to_vec())]));
            Body::from_stream(body)
        }),
    );
    let (_server, client) = client_with(app, fast_config().decode_limit(19)).await;
    let value: Vec<u8> = client.get("/users/123").decode().await.unwrap();
    assert_eq!(value, [1]);
}

#[tokio::test]
async fn an_empty_body_decodes_as_null() {
    let app = Router::new().route("/users/123", get(|| async { StatusCode::NO_CONTENT }));
    let (_server, client) = client_with(app, fast_config()).await;
    client.get("/users/123").decode::<()>().await.unwrap();
    let user: Option<User> = client.get("/users/123").decode().await.unwrap();
    assert_eq!(user, None);
    let err = client.get("/users/123").decode::<User>().await.unwrap_err();
    assert!(err.is_decode());
    assert_eq!(err.body_snippet(), Some(""));
}
