//! `demo`: the driver of `cargo xtask demo` (see `svc_demo::driver`).

use std::process::ExitCode;
use svc_demo::driver::{self, Options, USAGE};
use svc_demo::procs::Children;

#[tokio::main]
async fn main() -> ExitCode {
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(ToOwned::to_owned))
        .unwrap_or_default();
    let options = match Options::parse(std::env::args().skip(1), bin_dir) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("demo: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    // Owns the services: dropping it stops them, whatever happens below.
    let mut children = Children::new();
    let result = tokio::select! {
        result = driver::run(&options, &mut children) => Some(result),
        _ = tokio::signal::ctrl_c() => None,
    };
    let names: Vec<String> = children.names().map(str::to_owned).collect();
    drop(children);
    match result {
        None => {
            eprintln!("demo: interrupted; stopped {}", names.join(", "));
            ExitCode::from(130)
        }
        Some(Ok(true)) => ExitCode::SUCCESS,
        Some(Ok(false)) => ExitCode::FAILURE,
        Some(Err(message)) => {
            eprintln!("demo: {message}");
            ExitCode::from(2)
        }
    }
}
