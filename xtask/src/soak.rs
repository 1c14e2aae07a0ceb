//! `cargo xtask soak [--quick] [--duration SECS] [--release] [--seed N]
//! [--callers N] [--margin-ms MS] [--sabotage replay-posts|unconstrained-loopers]`:
//! a bounded fault storm against the facade (the `soak` binary of
//! `svc-bench`), whose exit status says whether every invariant held. The
//! sabotages show that a check can fail (`no-unkeyed-post-replay`,
//! `runtime-not-starved`).
//!
//! The soak is built in the dev profile by default: CI has already built the
//! workspace's dependencies that way for the tests, so `--quick` costs one
//! small link instead of a release build of reqwest, hyper and axum. Pass
//! `--release` for long local soaks.

use crate::cmd::{cargo, render};

/// Parses the options, then builds and runs the soak binary.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut forwarded: Vec<String> = Vec::new();
    let mut release = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => forwarded.push(arg.clone()),
            "--release" => release = true,
            "--duration" => {
                let value = args
                    .next()
                    .ok_or("soak: `--duration` needs a number of seconds")?;
                parse_seconds(value)?;
                forwarded.extend(["--duration".to_owned(), value.clone()]);
            }
            // Passed through to the soak binary, which checks them.
            "--seed" | "--callers" | "--margin-ms" | "--sabotage" => {
                let value = args
                    .next()
                    .ok_or_else(|| format!("soak: `{arg}` needs a value"))?;
                forwarded.extend([arg.clone(), value.clone()]);
            }
            other => {
                return Err(format!(
                    "soak: unknown option `{other}` (expected --quick, --duration SECS, --release, \
                     --seed N, --callers N, --margin-ms MS, \
                     --sabotage replay-posts|unconstrained-loopers)"
                ));
            }
        }
    }
    let mut command = cargo();
    command.args([
        "run",
        "--quiet",
        "--locked",
        "--package",
        "svc-bench",
        "--bin",
        "soak",
    ]);
    if release {
        command.arg("--release");
    }
    command.arg("--").args(&forwarded);
    println!("\n==> soak: {}", render(&command));
    let status = command
        .status()
        .map_err(|err| format!("soak: could not start cargo: {err}"))?;
    match status.code() {
        Some(0) => {
            println!("==> soak passed");
            Ok(())
        }
        // Forward the soak's own exit code (1: an invariant was violated,
        // 2: bad options), after saying how to reproduce it.
        Some(code) => {
            eprintln!(
                "xtask: soak failed (exit code {code})\n  reproduce: {}\n  hint: the report above \
                 names each violated invariant and the figures behind it; `--seed` replays the callers' choices",
                render(&command)
            );
            std::process::exit(code)
        }
        None => Err(format!("soak: ended by a signal ({status})")),
    }
}

/// A positive whole number of seconds.
fn parse_seconds(value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(secs) if secs > 0 => Ok(secs),
        _ => Err(format!(
            "soak: `--duration` takes a positive number of seconds, not `{value}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_positive_whole_seconds() {
        assert_eq!(parse_seconds("60"), Ok(60));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("1.5").is_err());
        assert!(parse_seconds("-3").unwrap_err().contains("`-3`"));
    }

    #[test]
    fn unknown_options_are_named() {
        let err = run(&["--fast".to_owned()]).unwrap_err();
        assert!(err.contains("`--fast`"), "{err}");
        let err = run(&["--duration".to_owned()]).unwrap_err();
        assert!(err.contains("--duration"), "{err}");
    }
}
