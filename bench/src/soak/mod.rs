//! `soak`: a bounded fault storm against the `svc-client` facade.
//!
//! Hundreds of callers (GETs and POSTs without and with an
//! `Idempotency-Key`, every body read and decoded as JSON through the
//! library's `decode`, so that the body is part of the call) run against a
//! local fault-injecting server whose phases repeat: mixed faults (healthy
//! answers, 5xx, 429 with `Retry-After`, slow answers, hangs, resets, bodies
//! that are truncated, stall or are reset after a `200` head, invalid JSON,
//! 404), an outage (503 to everything), mixed faults again, then bad bodies
//! (a `200` head for everything, then a body that fails). The soak cancels
//! some calls at random.
//!
//! During outages a few dozen loopers (on a facade of their own) call again
//! at once, without yielding, whenever a call fails fast on the open
//! circuit: the seed's "retrying forever" anti-pattern. Each loops for at
//! most `LOOP_BURST` (100 ms) per outage. A ticker task due every `TICK` (10 ms) records
//! how late it runs; a fail-fast path that never yields to the runtime lets
//! the loopers hold the worker threads, and the ticks run late.
//!
//! Then it checks the invariants of `svc_bench::invariants` (among them
//! `call-within-timeout`, bodies included; `breaker-opens-on-bad-bodies`;
//! `runtime-not-starved`) and exits non-zero naming each one violated.
//!
//! Usage: `soak [--quick] [--duration SECS] [--callers N] [--margin-ms MS] [--seed N]
//! [--sabotage replay-posts|unconstrained-loopers]`
//!
//! The sabotages show that a check can fail: `replay-posts` marks unkeyed
//! POSTs as safe to replay (expect `no-unkeyed-post-replay`);
//! `unconstrained-loopers` runs the loopers outside tokio's cooperative
//! budget, as if the library's fail-fast path never yielded (expect
//! `runtime-not-starved`, and the other time bounds may follow).
//!
//! The `soak` binary is a thin `main` over [`run`]. The logic lives in the
//! library, one module per part of the run, so that each reads alone:
//! `schedule` (the server's phases), `storm` (the clients, the background
//! tasks and what they observed), `callers` (the callers and loopers) and
//! `report` (the figures printed before the verdict). This module holds the
//! options and the settings they share.

mod callers;
mod report;
mod schedule;
mod storm;

use crate::invariants::Call;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Panics anywhere in the process, counted by the panic hook.
static PANICS: AtomicU64 = AtomicU64::new(0);

/// `--sabotage replay-posts`: unkeyed POSTs are marked safe to replay.
static REPLAY_POSTS: AtomicBool = AtomicBool::new(false);

/// Loopers: tasks that call again at once whenever a call fails fast.
const LOOPERS: usize = 32;
/// The longest tight loop of one looper in one outage (wall clock): bounds
/// the CPU the loopers burn, and how long they can starve the runtime.
const LOOP_BURST: Duration = Duration::from_millis(100);
/// The most fail-fast calls in one tight loop.
const LOOP_CALLS: u64 = 200_000;
/// The ticker's period.
const TICK: Duration = Duration::from_millis(10);

/// Calls recorded by the callers so far.
static RECORDED: AtomicU64 = AtomicU64::new(0);

/// Resident bytes one recorded call may account for (its record, twice).
const RECORD_BYTES: u64 = 2 * std::mem::size_of::<Call>() as u64;

const USAGE: &str = "usage: soak [--quick] [--duration SECS] [--callers N] [--margin-ms MS] [--seed N] \
                     [--sabotage replay-posts|unconstrained-loopers]";

#[derive(Debug)]
struct Args {
    duration: Duration,
    callers: usize,
    margin: Duration,
    seed: u64,
    /// Marks the unkeyed POSTs as safe to replay, so that the soak must
    /// report `no-unkeyed-post-replay`: shows the check can fail.
    replay_posts: bool,
    /// Runs the loopers outside tokio's cooperative budget, so that the
    /// soak must report `runtime-not-starved`: shows the check can fail.
    unconstrained_loopers: bool,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        duration: Duration::from_secs(60),
        callers: 200,
        margin: Duration::from_millis(500),
        seed: fastrand::u64(..),
        replay_posts: false,
        unconstrained_loopers: false,
    };
    let mut args = args;
    let number = |name: &str, value: Option<String>| -> Result<u64, String> {
        value
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("`{name}` needs a whole number\n{USAGE}"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => parsed.duration = Duration::from_secs(10),
            "--duration" => {
                let secs = number("--duration", args.next())?;
                if secs < 5 {
                    return Err(
                        "`--duration` must be at least 5 seconds (one mixed phase and one outage)"
                            .to_owned(),
                    );
                }
                parsed.duration = Duration::from_secs(secs);
            }
            "--callers" => parsed.callers = number("--callers", args.next())?.max(1) as usize,
            "--margin-ms" => {
                parsed.margin = Duration::from_millis(number("--margin-ms", args.next())?)
            }
            "--seed" => parsed.seed = number("--seed", args.next())?,
            "--sabotage" => match args.next().as_deref() {
                Some("replay-posts") => parsed.replay_posts = true,
                Some("unconstrained-loopers") => parsed.unconstrained_loopers = true,
                _ => {
                    return Err(format!(
                        "`--sabotage` takes `replay-posts` or `unconstrained-loopers`\n{USAGE}"
                    ));
                }
            },
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown option `{other}`\n{USAGE}")),
        }
    }
    Ok(parsed)
}

/// The client settings: short, so that many breaker cycles fit in seconds.
const TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(300);
const RESET_TIMEOUT: Duration = Duration::from_secs(1);

/// The `soak` binary: parses `args` (without the program name), runs the
/// storm, checks the invariants and says which were violated.
pub fn run(args: impl Iterator<Item = String>) -> ExitCode {
    let args = match parse_args(args) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("soak: {message}");
            return ExitCode::from(2);
        }
    };
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let runtime = match crate::runtime() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("soak: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(storm::storm(&args)) {
        Ok(violations) if violations.is_empty() => {
            println!("\nsoak: every invariant held");
            ExitCode::SUCCESS
        }
        Ok(violations) => {
            eprintln!("\nsoak: {} invariant(s) violated:", violations.len());
            for v in &violations {
                eprintln!("  {}: {}", v.invariant, v.detail);
            }
            eprintln!(
                "  (rerun with --seed {} for the same caller choices)",
                args.seed
            );
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("soak: could not run: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn options() {
        assert_eq!(args(&[]).unwrap().duration, Duration::from_secs(60));
        assert_eq!(
            args(&["--quick"]).unwrap().duration,
            Duration::from_secs(10)
        );
        let a = args(&[
            "--duration",
            "30",
            "--callers",
            "50",
            "--margin-ms",
            "100",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(
            (a.duration, a.callers, a.margin, a.seed),
            (Duration::from_secs(30), 50, Duration::from_millis(100), 7)
        );
        assert!(
            args(&["--duration", "2"])
                .unwrap_err()
                .contains("at least 5")
        );
        assert!(args(&["--duration"]).unwrap_err().contains("--duration"));
        assert!(args(&["--loud"]).unwrap_err().contains("`--loud`"));
        assert!(args(&["--sabotage", "replay-posts"]).unwrap().replay_posts);
        assert!(!args(&[]).unwrap().replay_posts);
        let both = args(&[
            "--sabotage",
            "unconstrained-loopers",
            "--sabotage",
            "replay-posts",
        ])
        .unwrap();
        assert!(both.unconstrained_loopers && both.replay_posts);
        assert!(!args(&[]).unwrap().unconstrained_loopers);
        assert!(args(&["--sabotage", "x"]).is_err());
    }
}
