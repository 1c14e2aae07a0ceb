//! `chat-svc`: recent messages per user, with run-time fault injection.

use std::process::ExitCode;
use svc_demo::backend::{Backend, chat_router};

#[tokio::main]
async fn main() -> ExitCode {
    let _telemetry = svc_demo::telemetry::init("chat-svc");
    svc_demo::telemetry::exit_when_stdin_closes();
    let router = chat_router(Backend::new("chat-svc"));
    match svc_demo::service::run("chat-svc", 8002, router).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}
