//! `BENCHMARKS.md`: criterion's estimates read back, each candidate paired
//! with the baseline measured in the same group, the issues' targets
//! checked, and the `compare` binary's figures and the machine appended.
//!
//! `cargo xtask bench` runs the suites and `compare` (orchestration, std
//! only) and then the `bench-report` binary, which calls [`render`]. The
//! pairs and targets name exact criterion ids (`group/function`): a
//! renamed benchmark shows as "no such benchmark" instead of being matched
//! to a similar name.

use crate::date::utc_date;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

// ===== the suites, their pairs and the targets =====

/// One criterion suite of a crate.
#[derive(Debug)]
pub struct Suite {
    /// Short name used on the command line and in the report.
    pub name: &'static str,
    /// The package whose bench it is.
    pub package: &'static str,
    /// The `--bench` target.
    pub bench: &'static str,
    /// What it compares, for the report.
    pub what: &'static str,
    /// `(group, candidate, baseline)`: the function ids compared in a group.
    pub pairs: &'static [(&'static str, &'static str, &'static str)],
}

/// The criterion suites of the workspace.
pub const SUITES: [Suite; 3] = [
    Suite {
        name: "breaker",
        package: "svc-breaker",
        bench: "breaker",
        what: "svc-breaker vs failsafe 1.x: closed path, open rejection, two contending threads",
        pairs: &[
            ("closed_path", "svc-breaker", "failsafe"),
            ("closed_path", "svc-breaker", "failsafe-default"),
            ("contended_2_threads", "svc-breaker", "failsafe"),
            ("contended_2_threads", "svc-breaker", "failsafe-default"),
            ("open_rejection", "svc-breaker", "failsafe"),
        ],
    },
    Suite {
        name: "client",
        package: "svc-httpclient",
        bench: "client",
        what: "svc-httpclient `Client::get` vs raw `reqwest::Client::get`, loopback server",
        pairs: &[("loopback_get", "svc_httpclient", "reqwest")],
    },
    Suite {
        name: "facade",
        package: "svc-client",
        bench: "facade",
        what: "svc-client facade vs raw reqwest, loopback, tracing-opentelemetry subscriber installed",
        pairs: &[("loopback_get", "svc_client", "reqwest")],
    },
];

/// A target an issue sets, checked against a criterion ratio.
struct Target {
    suite: &'static str,
    /// The group and baseline of the pair (one of the suite's `pairs`).
    group: &'static str,
    baseline: &'static str,
    label: &'static str,
    /// The largest acceptable candidate/baseline ratio.
    max_ratio: f64,
    goal: &'static str,
    issue: u32,
}

const TARGETS: [Target; 5] = [
    Target {
        suite: "breaker",
        group: "closed_path",
        baseline: "failsafe",
        label: "breaker closed path (acquire + record success), svc-breaker / failsafe",
        max_ratio: 0.2,
        goal: "≤ 0.20× (1/5)",
        issue: 3,
    },
    Target {
        suite: "breaker",
        group: "open_rejection",
        baseline: "failsafe",
        label: "breaker open rejection, svc-breaker / failsafe",
        max_ratio: 1.0,
        goal: "≤ 1.00×",
        issue: 3,
    },
    Target {
        suite: "breaker",
        group: "contended_2_threads",
        baseline: "failsafe",
        label: "breaker, two threads on one breaker, svc-breaker / failsafe",
        max_ratio: 1.0 / 3.0,
        goal: "≤ 0.33× (1/3)",
        issue: 3,
    },
    Target {
        suite: "client",
        group: "loopback_get",
        baseline: "reqwest",
        label: "loopback GET, svc-httpclient / raw reqwest (criterion)",
        max_ratio: 1.05,
        goal: "≤ 1.05× (5% overhead)",
        issue: 4,
    },
    Target {
        suite: "facade",
        group: "loopback_get",
        baseline: "reqwest",
        label: "loopback GET under tracing-opentelemetry, facade / raw reqwest (criterion)",
        max_ratio: 1.10,
        goal: "≤ 1.10× (10% overhead)",
        issue: 5,
    },
];

// ===== criterion's estimates =====

/// The figures of one criterion benchmark (nanoseconds).
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// `group/function`.
    pub id: String,
    /// The mean.
    pub mean_ns: f64,
    /// The median.
    pub median_ns: f64,
}

impl Estimate {
    /// The function part of the id (`svc-breaker` in `closed_path/svc-breaker`).
    fn name(&self) -> &str {
        self.id.rsplit('/').next().unwrap_or(&self.id)
    }
}

/// What became of a suite.
#[derive(Debug)]
pub enum SuiteOutcome {
    /// It ran and wrote these estimates.
    Ran(Vec<Estimate>),
    /// It was not run, for this reason.
    Skipped(String),
    /// It failed, with this error.
    Failed(String),
}

/// Every `<dir>/**/new/estimates.json` modified in `[from, to)`, with its
/// id from the `benchmark.json` beside it, sorted by id.
pub fn collect_estimates(dir: &Path, from: SystemTime, to: SystemTime) -> Vec<Estimate> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "estimates.json")
                && path
                    .parent()
                    .and_then(Path::file_name)
                    .is_some_and(|n| n == "new")
            {
                let fresh = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= from && t < to);
                if fresh && let Some(estimate) = read_estimate(&path) {
                    found.push(estimate);
                }
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

fn read_estimate(estimates: &Path) -> Option<Estimate> {
    let text = std::fs::read_to_string(estimates).ok()?;
    let meta = std::fs::read_to_string(estimates.with_file_name("benchmark.json")).ok()?;
    parse_estimate(&text, &meta)
}

/// An [`Estimate`] from criterion's `estimates.json` and `benchmark.json`.
fn parse_estimate(estimates: &str, benchmark: &str) -> Option<Estimate> {
    let estimates: serde_json::Value = serde_json::from_str(estimates).ok()?;
    let benchmark: serde_json::Value = serde_json::from_str(benchmark).ok()?;
    let point = |key: &str| estimates.get(key)?.get("point_estimate")?.as_f64();
    Some(Estimate {
        id: benchmark.get("full_id")?.as_str()?.to_owned(),
        mean_ns: point("mean")?,
        median_ns: point("median")?,
    })
}

// ===== pairs =====

/// A candidate and the baseline measured in the same group.
#[derive(Clone, Debug, PartialEq)]
struct Pair {
    /// The criterion group.
    scenario: String,
    candidate: Estimate,
    baseline: Estimate,
}

impl Pair {
    /// candidate / baseline, on the medians (robust to loopback outliers).
    fn ratio(&self) -> f64 {
        self.candidate.median_ns / self.baseline.median_ns
    }
}

/// The suite's pairs that both ran, in the suite's order.
fn pair_up(suite: &Suite, estimates: &[Estimate]) -> Vec<Pair> {
    let find = |group: &str, function: &str| {
        let id = format!("{group}/{function}");
        estimates.iter().find(|e| e.id == id).cloned()
    };
    suite
        .pairs
        .iter()
        .filter_map(|&(group, candidate, baseline)| {
            Some(Pair {
                scenario: group.to_owned(),
                candidate: find(group, candidate)?,
                baseline: find(group, baseline)?,
            })
        })
        .collect()
}

// ===== compare =====

/// The flat `key<TAB>value` output of the compare binary, and its Markdown.
#[derive(Debug)]
pub struct Compare {
    values: Vec<(String, String)>,
    markdown: String,
}

impl Compare {
    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn num(&self, key: &str) -> Option<f64> {
        self.get(key)?.parse().ok().filter(|v: &f64| v.is_finite())
    }
}

/// Reads the `compare` binary's flat file and Markdown section.
///
/// # Errors
///
/// A file that cannot be read.
pub fn read_compare(flat: &Path, markdown: &Path) -> Result<Compare, String> {
    let values = std::fs::read_to_string(flat)
        .map(|t| parse_flat(&t))
        .map_err(|e| format!("cannot read {}: {e}", flat.display()))?;
    let markdown = std::fs::read_to_string(markdown)
        .map_err(|e| format!("cannot read {}: {e}", markdown.display()))?;
    Ok(Compare { values, markdown })
}

fn parse_flat(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

// ===== the machine =====

/// Where and when the benchmarks ran.
#[derive(Debug)]
pub struct Machine {
    /// `/proc/loadavg` when the run started: other work on a shared
    /// machine is the main source of noise.
    load: String,
    cpus: String,
    cpu_model: String,
    memory: String,
    date: String,
    rustc: String,
    commit: String,
}

impl Machine {
    /// Reads the machine's figures; `load` is the load average taken when
    /// the run started.
    pub fn detect(root: &Path, load: String) -> Machine {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "unknown".to_owned());
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".to_owned());
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let rustc = output_of(Command::new(rustc).arg("--version"));
        let commit = output_of(
            Command::new("git")
                .args(["rev-parse", "--short", "HEAD"])
                .current_dir(root),
        );
        let date = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| utc_date(d.as_secs()))
            .unwrap_or_else(|_| "unknown".to_owned());
        Machine {
            load,
            cpus,
            cpu_model,
            memory,
            date,
            rustc,
            commit,
        }
    }
}

fn output_of(command: &mut Command) -> String {
    command
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

// ===== BENCHMARKS.md =====

/// How the run was made, for the report's header.
#[derive(Debug, Default)]
pub struct Run {
    /// `--quick` was given.
    pub quick: bool,
    /// `compare` was meant to run (not `--no-compare`).
    pub compare: bool,
    /// The flags given to criterion.
    pub criterion_flags: String,
}

fn ns(value: f64) -> String {
    if value < 1_000.0 {
        format!("{value:.1} ns")
    } else if value < 1_000_000.0 {
        format!("{:.2} µs", value / 1e3)
    } else {
        format!("{:.2} ms", value / 1e6)
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**not met**" }
}

/// The whole of `BENCHMARKS.md`.
pub fn render(
    options: &Run,
    suites: &[(&Suite, SuiteOutcome)],
    compare: Option<&Compare>,
    machine: &Machine,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `cargo xtask bench{}` on {} (commit `{}`); do not edit by hand, rerun the command. \
         Absolute times depend on the machine; the ratios to the baseline, measured in the same \
         process against the same loopback server, are what to compare.\n",
        if options.quick { " --quick" } else { "" },
        machine.date,
        machine.commit
    );

    // --- targets first
    let _ = writeln!(md, "## Targets of the issues\n");
    let _ = writeln!(md, "| target | issue | measured | goal | verdict |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for target in &TARGETS {
        let outcome = suites.iter().find(|(s, _)| s.name == target.suite);
        let (measured, result) = match outcome {
            Some((_, SuiteOutcome::Ran(estimates))) => {
                let suite = SUITES.iter().find(|s| s.name == target.suite);
                let pairs = suite.map(|s| pair_up(s, estimates)).unwrap_or_default();
                let pair = pairs
                    .iter()
                    .find(|p| p.scenario == target.group && p.baseline.name() == target.baseline);
                match pair {
                    Some(pair) => {
                        let ratio = pair.ratio();
                        (
                            format!(
                                "{ratio:.3}× ({} vs {} `{}`)",
                                ns(pair.candidate.median_ns),
                                ns(pair.baseline.median_ns),
                                pair.baseline.name()
                            ),
                            verdict(ratio <= target.max_ratio).to_owned(),
                        )
                    }
                    None => (
                        "no matching benchmark pair".to_owned(),
                        "not measured".to_owned(),
                    ),
                }
            }
            Some((_, SuiteOutcome::Skipped(why) | SuiteOutcome::Failed(why))) => {
                (why.clone(), "not measured".to_owned())
            }
            None => ("no such suite".to_owned(), "not measured".to_owned()),
        };
        let _ = writeln!(
            md,
            "| {} | #{} | {measured} | {} | {result} |",
            target.label, target.issue, target.goal
        );
    }
    match compare {
        Some(c) => {
            let facade = c.num("outage.svc-client.per_call");
            let peer = c.num("outage.reqwest-retry.per_call");
            let measured = match (facade, peer) {
                (Some(f), Some(p)) => format!("{f:.3} requests per call (reqwest-retry: {p:.2})"),
                _ => "missing from compare output".to_owned(),
            };
            let result = match facade {
                Some(f) => verdict(f < 1.5).to_owned(),
                None => "not measured".to_owned(),
            };
            let _ = writeln!(
                md,
                "| outage amplification: requests per logical call against an all-503 server, facade with default settings | #7 | {measured} | < 1.5 | {result} |"
            );
        }
        None => {
            let _ = writeln!(
                md,
                "| outage amplification, facade vs reqwest-retry | #7 | compare did not run | < 1.5 | not measured |"
            );
        }
    }
    let _ = writeln!(md);

    if let Some(c) = compare {
        let _ = writeln!(md, "### Ratios from `compare` (one process, one server)\n");
        let _ = writeln!(
            md,
            "| client | p50 latency / reqwest | p99 latency / reqwest | throughput / reqwest (64 in flight) |"
        );
        let _ = writeln!(md, "|---|---|---|---|");
        for client in ["svc-httpclient", "svc-client", "reqwest-retry"] {
            let cell = |metric: &str| {
                c.num(&format!("ratio.{metric}.{client}"))
                    .map(|r| format!("{r:.3}×"))
                    .unwrap_or_else(|| "n/a".to_owned())
            };
            let _ = writeln!(
                md,
                "| {client} | {} | {} | {} |",
                cell("p50"),
                cell("p99"),
                cell("throughput")
            );
        }
        let _ = writeln!(md);
    }

    // --- criterion figures
    let _ = writeln!(md, "## Criterion suites\n");
    let _ = writeln!(
        md,
        "One `cargo bench` process per suite, flags `{}`; reports under `target/criterion/`. \
         Ratios use the medians.\n",
        options.criterion_flags
    );
    for (suite, outcome) in suites {
        let _ = writeln!(
            md,
            "### `{}` (`cargo bench -p {} --bench {}`)\n\n{}.\n",
            suite.name, suite.package, suite.bench, suite.what
        );
        match outcome {
            SuiteOutcome::Ran(estimates) => {
                let pairs = pair_up(suite, estimates);
                if !pairs.is_empty() {
                    let _ = writeln!(
                        md,
                        "| scenario | candidate (median) | baseline (median) | ratio |"
                    );
                    let _ = writeln!(md, "|---|---|---|---|");
                    for pair in &pairs {
                        let _ = writeln!(
                            md,
                            "| {} | `{}` {} | `{}` {} | {:.3}× |",
                            pair.scenario,
                            pair.candidate.name(),
                            ns(pair.candidate.median_ns),
                            pair.baseline.name(),
                            ns(pair.baseline.median_ns),
                            pair.ratio()
                        );
                    }
                    let _ = writeln!(md);
                }
                let _ = writeln!(md, "| benchmark | mean | median |");
                let _ = writeln!(md, "|---|---|---|");
                for e in estimates {
                    let _ = writeln!(
                        md,
                        "| `{}` | {} | {} |",
                        e.id,
                        ns(e.mean_ns),
                        ns(e.median_ns)
                    );
                }
                let _ = writeln!(md);
            }
            SuiteOutcome::Skipped(why) => {
                let _ = writeln!(md, "Not measured: {why}.\n");
            }
            SuiteOutcome::Failed(why) => {
                let _ = writeln!(md, "**Failed**: {why}.\n");
            }
        }
    }

    // --- compare
    let _ = writeln!(md, "## `compare`: four clients side by side\n");
    match compare {
        Some(c) => {
            let _ = writeln!(md, "{}", c.markdown.trim_end());
            let _ = writeln!(md);
        }
        None if options.compare => {
            let _ = writeln!(md, "**Failed**: see the output of `cargo xtask bench`.\n");
        }
        None => {
            let _ = writeln!(md, "Not run (`--no-compare`).\n");
        }
    }

    // --- machine
    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| date | {} |", machine.date);
    let _ = writeln!(md, "| CPUs (`nproc`) | {} |", machine.cpus);
    let _ = writeln!(
        md,
        "| load average when the run started (1, 5, 15 min) | {} |",
        machine.load
    );
    let _ = writeln!(md, "| CPU model | {} |", machine.cpu_model);
    let _ = writeln!(md, "| memory | {} |", machine.memory);
    let _ = writeln!(md, "| rustc | {} |", machine.rustc);
    let _ = writeln!(md, "| commit | `{}` |", machine.commit);
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Reproduce with `cargo xtask bench` (about ten minutes; `--quick` for a rough pass). \
         The machine is small and may be shared (see the load average above): loopback figures \
         move by several percent between runs, the nanosecond ones less."
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESTIMATES: &str = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":70.1,"upper_bound":72.9},"point_estimate":71.5,"standard_error":0.7},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":69.0,"upper_bound":70.0},"point_estimate":69.5,"standard_error":0.2},"median_abs_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1},"slope":null,"std_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":3.0,"upper_bound":4.0},"point_estimate":3.5,"standard_error":0.2}}"#;

    fn estimate(id: &str, median: f64) -> Estimate {
        Estimate {
            id: id.to_owned(),
            mean_ns: median,
            median_ns: median,
        }
    }

    #[test]
    fn reads_criterion_estimates() {
        let meta = r#"{"group_id":"closed","function_id":"svc-breaker","full_id":"closed/svc \"fast\"\u00e9","directory_name":"closed/svc-breaker"}"#;
        let e = parse_estimate(ESTIMATES, meta).unwrap();
        assert_eq!(e.mean_ns, 71.5);
        assert_eq!(e.median_ns, 69.5);
        assert_eq!(e.id, "closed/svc \"fast\"é");
        let exponent = parse_estimate(
            r#"{"mean":{"point_estimate":1.5e3},"median":{"point_estimate":2}}"#,
            r#"{"full_id":"a/b"}"#,
        )
        .unwrap();
        assert_eq!(exponent.mean_ns, 1500.0);
        assert_eq!(exponent.median_ns, 2.0);
        assert!(parse_estimate(r#"{"mean":{"point_estimate":1}}"#, meta).is_none());
        assert!(parse_estimate(ESTIMATES, r#"{"title":"x"}"#).is_none());
    }

    #[test]
    fn pairs_candidates_with_their_baseline_in_the_same_group() {
        let estimates = [
            estimate("closed_path/failsafe", 22.0),
            estimate("closed_path/failsafe-default", 138.0),
            estimate("closed_path/svc-breaker", 5.5),
            estimate("open_rejection/svc-breaker", 3.0),
            estimate("lonely/svc-breaker", 1.0),
            estimate("unrelated", 1.0),
        ];
        let pairs = pair_up(&SUITES[0], &estimates);
        let names: Vec<(&str, &str)> = pairs
            .iter()
            .map(|p| (p.scenario.as_str(), p.baseline.name()))
            .collect();
        // The plain peer comes before its variant; a pair missing a side
        // (open_rejection without failsafe) is left out.
        assert_eq!(
            names,
            [
                ("closed_path", "failsafe"),
                ("closed_path", "failsafe-default")
            ]
        );
        assert!((pairs[0].ratio() - 0.25).abs() < 1e-9);
        assert_eq!(pairs[0].candidate.name(), "svc-breaker");
    }

    #[test]
    fn the_report_leads_with_the_targets_and_says_what_was_skipped() {
        let breaker = &SUITES[0];
        let client = &SUITES[1];
        let suites = vec![
            (
                breaker,
                SuiteOutcome::Ran(vec![
                    estimate("closed_path/svc-breaker", 7.0),
                    estimate("closed_path/failsafe", 70.0),
                    estimate("open_rejection/svc-breaker", 8.0),
                    estimate("open_rejection/failsafe", 6.0),
                ]),
            ),
            (
                client,
                SuiteOutcome::Skipped("skipped with `--no-criterion`".to_owned()),
            ),
        ];
        let compare = Compare {
            values: parse_flat(
                "outage.svc-client.per_call\t0.031\noutage.reqwest-retry.per_call\t4\nratio.p50.svc-client\t1.04\n",
            ),
            markdown: "### Latency\n\n(table)\n".to_owned(),
        };
        let machine = Machine {
            load: "0.10 0.20 0.30".to_owned(),
            cpus: "2".to_owned(),
            cpu_model: "Test CPU".to_owned(),
            memory: "1.0 GiB".to_owned(),
            date: "2026-11-27 09:00 UTC".to_owned(),
            rustc: "rustc 1.95.0".to_owned(),
            commit: "abc1234".to_owned(),
        };
        let md = render(&Run::default(), &suites, Some(&compare), &machine);
        let targets = md.find("## Targets").unwrap();
        assert!(targets < md.find("## Criterion suites").unwrap());
        assert!(
            md.contains("| 0.100× (7.0 ns vs 70.0 ns `failsafe`) | ≤ 0.20× (1/5) | **met** |"),
            "{md}"
        );
        assert!(
            md.contains("| 1.333× (8.0 ns vs 6.0 ns `failsafe`) | ≤ 1.00× | **not met** |"),
            "{md}"
        );
        assert!(md.contains("no matching benchmark pair"), "{md}");
        assert!(md.contains("skipped with `--no-criterion`"), "{md}");
        assert!(
            md.contains("0.031 requests per call (reqwest-retry: 4.00) | < 1.5 | **met**"),
            "{md}"
        );
        assert!(md.contains("| svc-client | 1.040× |"), "{md}");
        assert!(md.contains("(table)"));
        assert!(md.contains("| CPU model | Test CPU |"));
        assert!(md.contains("| 0.10 0.20 0.30 |"));
    }
}
