//! `auth-svc`: users and token validation, with run-time fault injection.

use std::process::ExitCode;
use svc_demo::backend::{Backend, auth_router};

#[tokio::main]
async fn main() -> ExitCode {
    let _telemetry = svc_demo::telemetry::init("auth-svc");
    svc_demo::telemetry::exit_when_stdin_closes();
    let router = auth_router(Backend::new("auth-svc"));
    match svc_demo::service::run("auth-svc", 8001, router).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}
