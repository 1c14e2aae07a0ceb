//! `cargo xtask bench [--quick] [--no-criterion] [--no-compare]`: every
//! benchmark suite, one process each, then `BENCHMARKS.md`.
//!
//! 1. The criterion suites of the crates, each side by side with its peer:
//!    `svc-breaker` vs `failsafe`, `svc-httpclient` vs raw `reqwest`, the
//!    facade vs raw `reqwest` under a `tracing-opentelemetry` subscriber.
//!    Their reports stay under `<target>/criterion`.
//! 2. `svc-bench`'s `compare` binary: raw reqwest, svc-httpclient, the facade
//!    and reqwest-middleware + reqwest-retry against one loopback server
//!    (latency, throughput, outage amplification, memory). It writes JSON,
//!    a flat `key<TAB>value` file and a Markdown section.
//! 3. `svc-bench`'s `bench-report` binary writes `BENCHMARKS.md` at the
//!    workspace root: it reads criterion's estimates (it has `serde_json`;
//!    this crate has no dependencies), pairs them, checks the issues'
//!    targets and appends `compare`'s figures and the machine.
//!
//! This module only runs things, in order, and tells `bench-report` what
//! became of each step.

use crate::cmd::{Step, cargo, workspace_root};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The criterion suites: `(name, package, bench)`. What they compare and
/// the targets they are held to live in `svc_bench::benchmarks`.
const SUITES: [(&str, &str, &str); 3] = [
    ("breaker", "svc-breaker", "breaker"),
    ("client", "svc-httpclient", "client"),
    ("facade", "svc-client", "facade"),
];

/// Options of `cargo xtask bench`.
#[derive(Debug, Default, PartialEq)]
struct Options {
    quick: bool,
    criterion: bool,
    compare: bool,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        criterion: true,
        compare: true,
    };
    for arg in args {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--no-criterion" => options.criterion = false,
            "--no-compare" => options.compare = false,
            other => {
                return Err(format!(
                    "bench: unknown option `{other}` (expected --quick, --no-criterion, --no-compare)"
                ));
            }
        }
    }
    Ok(options)
}

/// Runs every suite and writes `BENCHMARKS.md`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = parse_options(args)?;
    let load = load_average();
    let root = workspace_root();
    let target = target_dir(&root);
    let criterion_dir = target.join("criterion");
    let mut failures = Vec::new();

    let mut report = bench_bin("bench-report");
    report.arg("--root").arg(&root);
    report.arg("--criterion-dir").arg(&criterion_dir);
    report
        .arg("--criterion-flags")
        .arg(criterion_flags(options.quick).join(" "));
    report.arg("--load").arg(&load);
    if options.quick {
        report.arg("--quick");
    }

    for (name, package, bench) in SUITES {
        if !options.criterion {
            report.args(["--skipped", name, "skipped with `--no-criterion`"]);
            continue;
        }
        let from = unix_ms();
        match run_suite(package, bench, options.quick) {
            Ok(()) => {
                // Criterion's files are written by now; +1 ms makes the
                // window include the last of them.
                let to = unix_ms() + 1;
                report.args(["--ran", name, &from.to_string(), &to.to_string()]);
            }
            Err(why) => {
                let why = why.lines().next().unwrap_or("failed").to_owned();
                failures.push(format!("suite `{name}`: {why}"));
                report.args(["--failed", name, &why]);
            }
        }
    }

    if options.compare {
        let dir = target.join("bench");
        match run_compare(&dir, options.quick) {
            Ok(()) => {
                report
                    .arg("--compare")
                    .arg(dir.join("compare.tsv"))
                    .arg(dir.join("compare.md"));
            }
            Err(why) => {
                failures.push(format!("compare: {why}"));
                report.arg("--compare-failed");
            }
        }
    } else {
        report.arg("--no-compare");
    }

    let out = root.join("BENCHMARKS.md");
    report.arg("--out").arg(&out);
    Step::new(
        "bench-report",
        report,
        "it reads target/criterion and target/bench; see svc-bench/src/bin/bench-report.rs",
    )
    .run()?;
    println!("\n==> wrote {}", out.display());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "some benchmarks failed (BENCHMARKS.md says which):\n  {}",
            failures.join("\n  ")
        ))
    }
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// The cargo target directory criterion writes under.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        }
        None => root.join("target"),
    }
}

fn run_suite(package: &str, bench: &'static str, quick: bool) -> Result<(), String> {
    let mut command = cargo();
    command.args([
        "bench",
        "--locked",
        "--package",
        package,
        "--bench",
        bench,
        "--",
    ]);
    command.args(criterion_flags(quick));
    let name = match bench {
        "breaker" => "bench breaker",
        "client" => "bench client",
        _ => "bench facade",
    };
    Step::new(name, command, "run the suite alone with the command above").run()
}

/// Criterion options: enough samples for stable ratios, bounded time.
fn criterion_flags(quick: bool) -> Vec<&'static str> {
    if quick {
        vec![
            "--warm-up-time",
            "0.5",
            "--measurement-time",
            "1",
            "--noplot",
        ]
    } else {
        vec!["--warm-up-time", "1", "--measurement-time", "3"]
    }
}

fn run_compare(dir: &Path, quick: bool) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let json = dir.join("compare.json");
    let flat = dir.join("compare.tsv");
    let markdown = dir.join("compare.md");
    for stale in [&json, &flat, &markdown] {
        let _ = std::fs::remove_file(stale);
    }
    let mut command = bench_bin("compare");
    command.arg("--json").arg(&json);
    command.arg("--tsv").arg(&flat);
    command.arg("--markdown").arg(&markdown);
    if quick {
        command.arg("--quick");
    }
    Step::new(
        "compare",
        command,
        "run it alone: cargo run --release -p svc-bench --bin compare -- --help",
    )
    .run()
}

/// The 1, 5 and 15 minute load averages, e.g. `0.52 0.61 0.70`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `cargo run --release` of one of svc-bench's binaries, its arguments to
/// follow.
fn bench_bin(name: &str) -> std::process::Command {
    let mut command = cargo();
    command.args([
        "run",
        "--locked",
        "--release",
        "--package",
        "svc-bench",
        "--bin",
        name,
        "--",
    ]);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        assert_eq!(
            parse_options(&["--quick".to_owned()]).unwrap(),
            Options {
                quick: true,
                criterion: true,
                compare: true
            }
        );
        assert!(
            parse_options(&["--fast".to_owned()])
                .unwrap_err()
                .contains("`--fast`")
        );
    }
}
