//! `profile-svc`: profiles from auth-svc (required) and chat-svc (optional),
//! degrading gracefully through `svc-client`.

use std::process::ExitCode;
use svc_client::Registry;
use svc_demo::profile::{Profiles, default_settings, router};

#[tokio::main]
async fn main() -> ExitCode {
    let _telemetry = svc_demo::telemetry::init("profile-svc");
    svc_demo::telemetry::exit_when_stdin_closes();
    let result = async {
        // URLs and client settings (`AUTH_SVC_TIMEOUT`...), read once.
        let profiles = Profiles::from_registry(&Registry::from_env(), default_settings())?;
        svc_demo::service::run("profile-svc", 8000, router(profiles)).await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}
