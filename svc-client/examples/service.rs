//! A service with a required dependency (auth-svc) and an optional one
//! (chat-svc), as the seed's initialisation and graceful-degradation
//! patterns describe.
//!
//! ```text
//! AUTH_SVC_URL=http://127.0.0.1:8001 CHAT_SVC_URL=http://127.0.0.1:8002 \
//!     cargo run -p svc-client --features axum --example service
//! curl localhost:8080/profiles/123
//! ```
//!
//! Without the variables, `--demo` starts stand-ins for both services on
//! loopback ports, serves one profile request and exits:
//!
//! ```text
//! cargo run -p svc-client --features axum --example service -- --demo
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use svc_client::{Client, ClientConfig, Registry};

#[derive(Debug, Serialize, Deserialize)]
struct User {
    id: String,
    name: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Message {
    text: String,
}

#[derive(Debug, Serialize)]
struct Profile {
    user: User,
    recent_messages: Vec<Message>,
}

/// Clients are created once, at startup, and shared by every request.
#[derive(Clone)]
struct Server {
    auth_client: Client,
    chat_client: Option<Client>,
}

impl Server {
    fn new(registry: &Registry) -> Result<Server, svc_client::Error> {
        // Required: without auth-svc the service cannot start. The error
        // names the variables to set.
        let auth_client = Client::from_registry(
            registry,
            "auth-svc",
            ClientConfig::default().timeout(Duration::from_secs(3)),
        )?;

        // Optional: absent is fine, misconfigured is still an error.
        let chat_client = match registry.lookup_optional("chat-svc")? {
            Some(_) => Some(Client::from_registry(
                registry,
                "chat-svc",
                ClientConfig::default()
                    .timeout(Duration::from_millis(500))
                    .max_retries(1),
            )?),
            None => None,
        };
        Ok(Server {
            auth_client,
            chat_client,
        })
    }

    async fn get_user_profile(&self, user_id: &str) -> Result<Profile, svc_client::Error> {
        // Required call.
        let user: User = self
            .auth_client
            .get(&format!("/users/{user_id}"))
            .decode()
            .await?;
        let mut profile = Profile {
            user,
            recent_messages: Vec::new(),
        };
        // Optional enrichment: don't fail if chat-svc is down.
        if let Some(chat_client) = &self.chat_client {
            match chat_client
                .get(&format!("/users/{user_id}/messages"))
                .decode()
                .await
            {
                Ok(messages) => profile.recent_messages = messages,
                Err(err) => tracing::warn!(error = %err, "failed to fetch messages"),
            }
        }
        Ok(profile)
    }
}

/// Maps a failed dependency call onto our own response.
struct AppError(svc_client::Error);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let err = self.0;
        if let Some(retry_after) = err.retry_after() {
            // The circuit is open: tell our caller when to come back.
            let mut resp =
                (StatusCode::SERVICE_UNAVAILABLE, "auth service unavailable").into_response();
            let secs = retry_after.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&secs) {
                resp.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return resp;
        }
        if err.is_invalid_path() {
            return (StatusCode::BAD_REQUEST, "invalid user id").into_response();
        }
        if err.status() == Some(StatusCode::NOT_FOUND) {
            return (StatusCode::NOT_FOUND, "no such user").into_response();
        }
        (StatusCode::BAD_GATEWAY, "auth service failed").into_response()
    }
}

async fn profile(
    State(server): State<Server>,
    Path(user_id): Path<String>,
) -> Result<Json<Profile>, AppError> {
    server
        .get_user_profile(&user_id)
        .await
        .map(Json)
        .map_err(AppError)
}

async fn healthz(State(server): State<Server>) -> String {
    let chat = server
        .chat_client
        .as_ref()
        .and_then(Client::circuit_state)
        .map_or("not configured".to_owned(), |s| format!("{s:?}"));
    format!(
        "auth-svc circuit: {:?}, chat-svc circuit: {chat}\n",
        server.auth_client.circuit_state()
    )
}

fn app(server: Server) -> Router {
    Router::new()
        .route("/profiles/{user_id}", get(profile))
        .route("/healthz", get(healthz))
        .layer(axum::middleware::from_fn(svc_client::trace_middleware))
        .with_state(server)
}

/// Stand-ins for auth-svc and chat-svc, for `--demo`.
async fn spawn_stand_ins() -> (SocketAddr, SocketAddr) {
    let auth = Router::new().route(
        "/users/{id}",
        get(|Path(id): Path<String>| async move {
            Json(User {
                name: format!("user {id}"),
                id,
            })
        }),
    );
    let chat = Router::new().route(
        "/users/{id}/messages",
        get(|| async {
            Json(vec![Message {
                text: "hello".into(),
            }])
        }),
    );
    (spawn(auth).await, spawn(chat).await)
}

async fn spawn(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let demo = std::env::args().any(|a| a == "--demo");

    let registry = if demo {
        let (auth, chat) = spawn_stand_ins().await;
        Registry::from_vars([
            ("AUTH_SVC_URL", format!("http://{auth}")),
            ("CHAT_SVC_URL", format!("http://{chat}")),
        ])
    } else {
        Registry::from_env()
    };
    let server = match Server::new(&registry) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("cannot start: {err}");
            std::process::exit(1);
        }
    };

    let port =
        std::env::var("PORT").unwrap_or_else(|_| if demo { "0".into() } else { "8080".into() });
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");

    if demo {
        tokio::spawn(async move { axum::serve(listener, app(server)).await });
        let body = svc_client::reqwest::get(format!("http://{addr}/profiles/123"))
            .await?
            .text()
            .await?;
        println!("GET /profiles/123 -> {body}");
        return Ok(());
    }
    axum::serve(listener, app(server)).await?;
    Ok(())
}
