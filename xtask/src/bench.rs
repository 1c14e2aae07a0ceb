//! `cargo xtask bench [--quick] [--no-criterion] [--no-compare]`: every
//! benchmark suite, one process each, then `BENCHMARKS.md`.
//!
//! 1. The criterion suites of the crates, each side by side with its peer:
//!    `svc-breaker` vs `failsafe`, `svc-httpclient` vs raw `reqwest`, the
//!    facade vs raw `reqwest` under a `tracing-opentelemetry` subscriber.
//!    A suite whose bench file does not exist yet is skipped with a note.
//!    Their reports stay under `<target>/criterion`.
//! 2. `svc-bench`'s `compare` binary: raw reqwest, svc-httpclient, the facade
//!    and reqwest-middleware + reqwest-retry against one loopback server
//!    (latency, throughput, outage amplification, memory). It writes JSON,
//!    a flat `key<TAB>value` file this module reads, and a Markdown section.
//! 3. `BENCHMARKS.md` at the workspace root: the ratios and the issue
//!    targets first, then absolute figures, the machine, the date, rustc.

use crate::cmd::{Step, cargo, workspace_root};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// One criterion suite of a crate.
struct Suite {
    /// Short name used in the report.
    name: &'static str,
    package: &'static str,
    bench: &'static str,
    /// What it compares, for the report.
    what: &'static str,
}

const SUITES: [Suite; 3] = [
    Suite {
        name: "breaker",
        package: "svc-breaker",
        bench: "breaker",
        what: "svc-breaker vs failsafe 1.x: closed path, open rejection, two contending threads",
    },
    Suite {
        name: "client",
        package: "svc-httpclient",
        bench: "client",
        what: "svc-httpclient `Client::get` vs raw `reqwest::Client::get`, loopback server",
    },
    Suite {
        name: "facade",
        package: "svc-client",
        bench: "facade",
        what: "svc-client facade vs raw reqwest, loopback, tracing-opentelemetry subscriber installed",
    },
];

/// A target an issue sets, checked against a criterion ratio.
struct Target {
    suite: &'static str,
    /// Substrings (lower case) of the benchmark id that select the pair;
    /// empty: the suite's first pair.
    hints: &'static [&'static str],
    label: &'static str,
    /// The largest acceptable candidate/baseline ratio.
    max_ratio: f64,
    goal: &'static str,
    issue: u32,
}

const TARGETS: [Target; 5] = [
    Target {
        suite: "breaker",
        hints: &["closed"],
        label: "breaker closed path (acquire + record success), svc-breaker / failsafe",
        max_ratio: 0.2,
        goal: "≤ 0.20× (1/5)",
        issue: 3,
    },
    Target {
        suite: "breaker",
        hints: &["open", "reject"],
        label: "breaker open rejection, svc-breaker / failsafe",
        max_ratio: 1.0,
        goal: "≤ 1.00×",
        issue: 3,
    },
    Target {
        suite: "breaker",
        hints: &["contend", "thread", "concurrent"],
        label: "breaker, two threads on one breaker, svc-breaker / failsafe",
        max_ratio: 1.0 / 3.0,
        goal: "≤ 0.33× (1/3)",
        issue: 3,
    },
    Target {
        suite: "client",
        hints: &[],
        label: "loopback GET, svc-httpclient / raw reqwest (criterion)",
        max_ratio: 1.05,
        goal: "≤ 1.05× (5% overhead)",
        issue: 4,
    },
    Target {
        suite: "facade",
        hints: &[],
        label: "loopback GET under tracing-opentelemetry, facade / raw reqwest (criterion)",
        max_ratio: 1.10,
        goal: "≤ 1.10× (10% overhead)",
        issue: 5,
    },
];

/// The figures of one criterion benchmark (nanoseconds).
#[derive(Clone, Debug, PartialEq)]
struct Estimate {
    id: String,
    mean_ns: f64,
    median_ns: f64,
}

impl Estimate {
    /// The last segment of the id naming an implementation (or the id).
    fn name(&self) -> &str {
        self.id
            .split('/')
            .find(|s| side_of(s).is_some())
            .unwrap_or(&self.id)
    }
}

/// What became of a suite.
enum SuiteOutcome {
    Ran(Vec<Estimate>),
    Skipped(String),
    Failed(String),
}

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

    let mut suites: Vec<(&Suite, SuiteOutcome)> = Vec::new();
    for suite in &SUITES {
        let outcome = if !options.criterion {
            SuiteOutcome::Skipped("skipped with `--no-criterion`".to_owned())
        } else {
            run_suite(&root, &criterion_dir, suite, options.quick)
        };
        if let SuiteOutcome::Failed(why) = &outcome {
            failures.push(format!("suite `{}`: {why}", suite.name));
        }
        suites.push((suite, outcome));
    }

    let compare_dir = target.join("bench");
    let compare = if options.compare {
        match run_compare(&compare_dir, options.quick) {
            Ok(compare) => Some(compare),
            Err(why) => {
                failures.push(format!("compare: {why}"));
                None
            }
        }
    } else {
        None
    };

    let machine = Machine::detect(&root, load);
    let markdown = render(&options, &suites, compare.as_ref(), &machine);
    let out = root.join("BENCHMARKS.md");
    std::fs::write(&out, markdown).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
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

fn run_suite(root: &Path, criterion_dir: &Path, suite: &Suite, quick: bool) -> SuiteOutcome {
    let file = root
        .join(suite.package)
        .join("benches")
        .join(format!("{}.rs", suite.bench));
    if !file.exists() {
        return SuiteOutcome::Skipped(format!(
            "`{}/benches/{}.rs` does not exist yet",
            suite.package, suite.bench
        ));
    }
    let started = SystemTime::now();
    let mut command = cargo();
    command.args([
        "bench",
        "--locked",
        "--package",
        suite.package,
        "--bench",
        suite.bench,
        "--",
    ]);
    command.args(criterion_flags(quick));
    let name = match suite.name {
        "breaker" => "bench breaker",
        "client" => "bench client",
        _ => "bench facade",
    };
    if let Err(why) = Step::new(name, command, "run the suite alone with the command above").run() {
        return SuiteOutcome::Failed(why.lines().next().unwrap_or("failed").to_owned());
    }
    let estimates = collect_estimates(criterion_dir, started);
    if estimates.is_empty() {
        SuiteOutcome::Skipped(format!(
            "`{}/benches/{}.rs` ran but produced no criterion results (not written yet?)",
            suite.package, suite.bench
        ))
    } else {
        SuiteOutcome::Ran(estimates)
    }
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

/// Every `<dir>/**/new/estimates.json` written since `since`, with its id
/// from the `benchmark.json` beside it, sorted by id.
fn collect_estimates(dir: &Path, since: SystemTime) -> Vec<Estimate> {
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
                    .is_ok_and(|t| t >= since);
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
    Some(Estimate {
        id: json_string(&meta, "full_id")?,
        mean_ns: json_point_estimate(&text, "mean")?,
        median_ns: json_point_estimate(&text, "median")?,
    })
}

// ===== a very small JSON reader (xtask has no dependencies) =====

/// The string value of the first `"key": "..."` in `text`.
fn json_string(text: &str, key: &str) -> Option<String> {
    let rest = after_key(text, key)?;
    let rest = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// `point_estimate` inside the object at `"key": { ... }` (criterion's
/// `estimates.json`: `{"mean":{"confidence_interval":{...},"point_estimate":N,...}}`).
fn json_point_estimate(text: &str, key: &str) -> Option<f64> {
    let object = after_key(text, key)?;
    let object = object.strip_prefix('{')?;
    // Find the field at this object's own nesting level.
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in object.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                if depth == 0 && object[i..].starts_with("\"point_estimate\"") {
                    let value = after_key(&object[i..], "point_estimate")?;
                    return parse_number(value);
                }
                in_string = true;
            }
            '{' | '[' => depth += 1,
            '}' | ']' if depth == 0 => return None,
            '}' | ']' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The text after `"key"` and its colon, with leading whitespace removed.
fn after_key<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\"");
    let at = text.find(&needle)? + needle.len();
    let rest = text[at..].trim_start().strip_prefix(':')?;
    Some(rest.trim_start())
}

fn parse_number(text: &str) -> Option<f64> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

// ===== pairing candidates with their baselines =====

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Candidate,
    Baseline,
}

/// Which implementation a segment of a benchmark id names, if any.
fn side_of(segment: &str) -> Option<Side> {
    let s = segment.to_ascii_lowercase();
    if s.contains("svc") || s.contains("facade") || s.contains("httpclient") {
        Some(Side::Candidate)
    } else if s.contains("failsafe")
        || s.contains("reqwest")
        || s.contains("raw")
        || s.contains("baseline")
    {
        Some(Side::Baseline)
    } else {
        None
    }
}

/// A candidate and the baseline measured in the same scenario.
#[derive(Clone, Debug, PartialEq)]
struct Pair {
    /// The benchmark id with the implementation segment removed.
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

/// Pairs estimates whose ids differ only in the segment naming the
/// implementation (`closed/svc-breaker` with `closed/failsafe`).
fn pair_up(estimates: &[Estimate]) -> Vec<Pair> {
    let mut candidates = Vec::new();
    let mut baselines = Vec::new();
    for estimate in estimates {
        let segments: Vec<&str> = estimate.id.split('/').collect();
        let Some((index, side)) = segments
            .iter()
            .enumerate()
            .find_map(|(i, s)| side_of(s).map(|side| (i, side)))
        else {
            continue;
        };
        let scenario: Vec<&str> = segments
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .map(|(_, s)| *s)
            .collect();
        let entry = (scenario.join("/"), estimate.clone());
        match side {
            Side::Candidate => candidates.push(entry),
            Side::Baseline => baselines.push(entry),
        }
    }
    // Every baseline of the scenario, in id order: the plain peer
    // (`failsafe`) sorts before its variants (`failsafe-default`).
    let mut pairs = Vec::new();
    for (scenario, candidate) in candidates {
        for (_, baseline) in baselines.iter().filter(|(s, _)| *s == scenario) {
            pairs.push(Pair {
                scenario: scenario.clone(),
                candidate: candidate.clone(),
                baseline: baseline.clone(),
            });
        }
    }
    pairs
}

/// The pair a target refers to: the first whose scenario contains a hint.
fn pair_for<'a>(pairs: &'a [Pair], hints: &[&str]) -> Option<&'a Pair> {
    if hints.is_empty() {
        return pairs.first();
    }
    pairs.iter().find(|p| {
        let scenario = p.scenario.to_ascii_lowercase();
        hints.iter().any(|h| scenario.contains(h))
    })
}

// ===== compare =====

/// The flat `key<TAB>value` output of the compare binary, and its Markdown.
struct Compare {
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

fn parse_flat(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn run_compare(dir: &Path, quick: bool) -> Result<Compare, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let json = dir.join("compare.json");
    let flat = dir.join("compare.tsv");
    let markdown = dir.join("compare.md");
    for stale in [&json, &flat, &markdown] {
        let _ = std::fs::remove_file(stale);
    }
    let mut command = cargo();
    command.args([
        "run",
        "--locked",
        "--release",
        "--package",
        "svc-bench",
        "--bin",
        "compare",
        "--",
    ]);
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
    .run()?;
    let values = std::fs::read_to_string(&flat)
        .map(|t| parse_flat(&t))
        .map_err(|e| format!("cannot read {}: {e}", flat.display()))?;
    let markdown = std::fs::read_to_string(&markdown)
        .map_err(|e| format!("cannot read {}: {e}", markdown.display()))?;
    Ok(Compare { values, markdown })
}

// ===== the machine =====

struct Machine {
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
    fn detect(root: &Path, load: String) -> Machine {
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

/// The 1, 5 and 15 minute load averages, e.g. `0.52 0.61 0.70`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn output_of(command: &mut Command) -> String {
    command
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `YYYY-MM-DD HH:MM UTC` for seconds since the Unix epoch.
fn utc_date(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

// ===== BENCHMARKS.md =====

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

fn render(
    options: &Options,
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
                let pairs = pair_up(estimates);
                match pair_for(&pairs, target.hints) {
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
        criterion_flags(options.quick).join(" ")
    );
    for (suite, outcome) in suites {
        let _ = writeln!(
            md,
            "### `{}` (`cargo bench -p {} --bench {}`)\n\n{}.\n",
            suite.name, suite.package, suite.bench, suite.what
        );
        match outcome {
            SuiteOutcome::Ran(estimates) => {
                let pairs = pair_up(estimates);
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
        assert_eq!(json_point_estimate(ESTIMATES, "mean"), Some(71.5));
        assert_eq!(json_point_estimate(ESTIMATES, "median"), Some(69.5));
        assert_eq!(json_point_estimate(ESTIMATES, "std_dev"), Some(3.5));
        assert_eq!(json_point_estimate(ESTIMATES, "slope"), None);
        assert_eq!(json_point_estimate(ESTIMATES, "missing"), None);
        assert_eq!(
            json_point_estimate(r#"{"mean":{"point_estimate":1.5e3}}"#, "mean"),
            Some(1500.0)
        );
    }

    #[test]
    fn reads_strings_with_escapes() {
        let meta = r#"{"group_id":"closed","function_id":"svc-breaker","full_id":"closed/svc \"fast\"\u00e9","directory_name":"closed/svc-breaker"}"#;
        assert_eq!(
            json_string(meta, "full_id").as_deref(),
            Some("closed/svc \"fast\"é")
        );
        assert_eq!(json_string(meta, "title"), None);
    }

    #[test]
    fn pairs_candidates_with_their_baseline_in_the_same_scenario() {
        let estimates = [
            estimate("closed/svc-breaker", 7.0),
            estimate("closed/failsafe", 70.0),
            estimate("open/svc-breaker", 3.0),
            estimate("open/failsafe", 6.0),
            estimate("get/raw reqwest", 40_000.0),
            estimate("get/svc-httpclient", 41_000.0),
            estimate("lonely/svc-breaker", 1.0),
            estimate("unrelated", 1.0),
        ];
        let pairs = pair_up(&estimates);
        let scenarios: Vec<&str> = pairs.iter().map(|p| p.scenario.as_str()).collect();
        assert_eq!(scenarios, ["closed", "open", "get"]);
        assert!((pairs[0].ratio() - 0.1).abs() < 1e-9);
        assert_eq!(
            pair_for(&pairs, &["open", "reject"]).unwrap().scenario,
            "open"
        );
        assert_eq!(pair_for(&pairs, &[]).unwrap().scenario, "closed");
        assert!(pair_for(&pairs, &["contend"]).is_none());
    }

    #[test]
    fn the_plain_peer_comes_before_its_variants() {
        let estimates = [
            estimate("closed_path/failsafe", 22.0),
            estimate("closed_path/failsafe-default", 138.0),
            estimate("closed_path/svc-breaker", 5.5),
        ];
        let pairs = pair_up(&estimates);
        let baselines: Vec<&str> = pairs.iter().map(|p| p.baseline.name()).collect();
        assert_eq!(baselines, ["failsafe", "failsafe-default"]);
        assert_eq!(
            pair_for(&pairs, &["closed"]).unwrap().baseline.name(),
            "failsafe"
        );
        assert!((pairs[0].ratio() - 0.25).abs() < 1e-9);
    }

    #[test]
    fn the_implementation_can_be_any_segment() {
        let estimates = [
            estimate("svc-breaker/closed", 5.0),
            estimate("failsafe/closed", 50.0),
        ];
        let pairs = pair_up(&estimates);
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].scenario, "closed");
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(784_111_777), "1994-11-06 08:49 UTC");
        assert_eq!(utc_date(1_795_774_980), "2026-11-27 10:23 UTC");
    }

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

    #[test]
    fn the_report_leads_with_the_targets_and_says_what_was_skipped() {
        let breaker = &SUITES[0];
        let client = &SUITES[1];
        let suites = vec![
            (
                breaker,
                SuiteOutcome::Ran(vec![
                    estimate("closed/svc-breaker", 7.0),
                    estimate("closed/failsafe", 70.0),
                    estimate("open/svc-breaker", 8.0),
                    estimate("open/failsafe", 6.0),
                ]),
            ),
            (
                client,
                SuiteOutcome::Skipped(
                    "`svc-httpclient/benches/client.rs` does not exist yet".to_owned(),
                ),
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
        let md = render(&Options::default(), &suites, Some(&compare), &machine);
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
        assert!(md.contains("does not exist yet"), "{md}");
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
