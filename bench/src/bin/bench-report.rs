//! `bench-report`: writes `BENCHMARKS.md` once `cargo xtask bench` has run
//! the suites and `compare` (see `svc_bench::benchmarks`).
//!
//! ```text
//! bench-report --out FILE --root DIR --criterion-dir DIR --criterion-flags FLAGS --load LOAD
//!     [--quick] [--compare FLAT MARKDOWN | --compare-failed | --no-compare]
//!     [--ran SUITE FROM_MS TO_MS]... [--skipped SUITE WHY]... [--failed SUITE WHY]...
//! ```
//!
//! `--ran` gives the window (Unix milliseconds) in which a suite ran: its
//! estimates are the ones criterion wrote then.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use svc_bench::benchmarks::{self, Machine, Run, SUITES, SuiteOutcome};

fn main() {
    if let Err(why) = run(std::env::args().skip(1).collect()) {
        eprintln!("bench-report: {why}");
        std::process::exit(2);
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut args = args.into_iter();
    let mut next = |what: &str| args.next().ok_or_else(|| format!("{what} needs a value"));
    let (mut out, mut root, mut criterion_dir) = (None, None, None);
    let mut load = "unknown".to_owned();
    let mut run = Run {
        compare: true,
        ..Run::default()
    };
    let mut compare = None;
    let mut outcomes = Vec::new();
    let at = |ms: String| -> Result<SystemTime, String> {
        let ms: u64 = ms.parse().map_err(|_| format!("bad time `{ms}`"))?;
        Ok(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
    };
    while let Ok(arg) = next("") {
        match arg.as_str() {
            "--out" => out = Some(PathBuf::from(next("--out")?)),
            "--root" => root = Some(PathBuf::from(next("--root")?)),
            "--criterion-dir" => criterion_dir = Some(PathBuf::from(next("--criterion-dir")?)),
            "--criterion-flags" => run.criterion_flags = next("--criterion-flags")?,
            "--load" => load = next("--load")?,
            "--quick" => run.quick = true,
            "--no-compare" => run.compare = false,
            "--compare-failed" => {}
            "--compare" => {
                let flat = PathBuf::from(next("--compare")?);
                let markdown = PathBuf::from(next("--compare")?);
                compare = Some(benchmarks::read_compare(&flat, &markdown)?);
            }
            "--ran" | "--skipped" | "--failed" => {
                let name = next(&arg)?;
                let first = next(&arg)?;
                let outcome = match arg.as_str() {
                    "--skipped" => SuiteOutcome::Skipped(first),
                    "--failed" => SuiteOutcome::Failed(first),
                    _ => {
                        let dir = criterion_dir
                            .as_ref()
                            .ok_or("--criterion-dir before --ran")?;
                        let (from, to) = (at(first)?, at(next(&arg)?)?);
                        let estimates = benchmarks::collect_estimates(dir, from, to);
                        if estimates.is_empty() {
                            SuiteOutcome::Skipped(format!(
                                "suite `{name}` ran but produced no criterion results"
                            ))
                        } else {
                            SuiteOutcome::Ran(estimates)
                        }
                    }
                };
                outcomes.push((name, outcome));
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let out = out.ok_or("--out is required")?;
    let root = root.ok_or("--root is required")?;
    let mut suites = Vec::new();
    for (name, outcome) in outcomes {
        let suite = SUITES
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("no suite `{name}`"))?;
        suites.push((suite, outcome));
    }
    let machine = Machine::detect(&root, load);
    let markdown = benchmarks::render(&run, &suites, compare.as_ref(), &machine);
    std::fs::write(&out, markdown).map_err(|e| format!("cannot write {}: {e}", out.display()))
}
