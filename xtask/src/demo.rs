//! `cargo xtask demo`: builds the demo services and runs the driver, which
//! starts them, drives the failure scenario and checks every expectation
//! (see `demo/src/driver.rs`). The driver's exit status is this command's.

use crate::cmd::{Step, cargo, render, workspace_root};
use std::path::PathBuf;
use std::process::Command;

const HELP: &str = "\
cargo xtask demo [--quick]

Builds the demo services (auth-svc, chat-svc, profile-svc) and the driver,
starts them on free ports of 127.0.0.1 (auth-svc as three replicas) and
drives load through a failure scenario: healthy; one auth replica down;
chat down; auth failing; auth recovered. Prints one line
per second, a summary table and the checks; writes target/demo/summary.txt,
target/demo/timeline.svg and target/demo/logs/. Exits non-zero, naming the
expectation, when one did not hold.

Options:
  --quick   the whole scenario in about 30 s (CI runs this); default about 75 s
  -h, --help
";

/// Runs the demo. Options: `--quick`, `--help`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut quick = false;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(());
            }
            other => return Err(format!("demo: unknown option `{other}`\n\n{HELP}")),
        }
    }

    let mut build = cargo();
    build.args(["build", "--package", "svc-demo", "--bins"]);
    Step::new(
        "build the demo",
        build,
        "the demo services live in demo/; `cargo build -p svc-demo --bins` shows the error",
    )
    .run()?;

    let root = workspace_root();
    let driver = target_dir()
        .join("debug")
        .join(format!("demo{}", std::env::consts::EXE_SUFFIX));
    // Relative to the workspace root (the driver's working directory), so
    // the paths it prints are short.
    let out_dir = PathBuf::from("target").join("demo");
    let mut command = Command::new(&driver);
    command.current_dir(&root).arg("--out-dir").arg(&out_dir);
    if quick {
        command.arg("--quick");
    }
    println!("\n==> demo: {}", render(&command));
    let status = command
        .status()
        .map_err(|err| format!("demo: cannot run {}: {err}", driver.display()))?;
    if status.success() {
        return Ok(());
    }
    let message = format!(
        "demo: {} ({status}); the summary above names each failed expectation, \
         the services' logs are in {}",
        if status.code() == Some(1) {
            "an expectation did not hold"
        } else {
            "the demo did not run to the end"
        },
        out_dir.join("logs").display()
    );
    match status.code() {
        // Forward the driver's own status (2: startup error, 130: interrupted).
        Some(code) if code != 1 => {
            eprintln!("xtask: {message}");
            std::process::exit(code)
        }
        _ => Err(message),
    }
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set, else `<root>/target`.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}
