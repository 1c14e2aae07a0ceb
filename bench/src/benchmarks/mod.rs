//! `BENCHMARKS.md`: criterion's estimates read back, each candidate paired
//! with the baseline measured in the same group, the issues' targets
//! checked, and the `compare` binary's figures and the machine appended.
//!
//! `cargo xtask bench` runs the suites and `compare` (orchestration, std
//! only) and then the `bench-report` binary, which calls [`render`]. The
//! pairs and targets name exact criterion ids (`group/function`): a
//! renamed benchmark shows as "no such benchmark" instead of being matched
//! to a similar name.
//!
//! One module per step, in the order the report is made, so that each can
//! be read (and tested) alone: `criterion` reads the estimates back,
//! `pair` matches each candidate with its baseline, `inputs` reads what
//! `compare` wrote and the machine's figures, and `render` writes the
//! Markdown. This module names the suites, their pairs and the targets.

mod criterion;
mod inputs;
mod pair;
mod render;

pub use criterion::{Estimate, collect_estimates};
pub use inputs::{Compare, Machine, read_compare};
pub use render::{Run, render};

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
        // Not `loopback_get`: criterion keeps one directory per group and
        // function, and this suite's `reqwest` would overwrite the client
        // suite's.
        pairs: &[("traced_loopback_get", "svc_client", "reqwest")],
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
        group: "traced_loopback_get",
        baseline: "reqwest",
        label: "loopback GET under tracing-opentelemetry, facade / raw reqwest (criterion)",
        max_ratio: 1.10,
        goal: "≤ 1.10× (10% overhead)",
        issue: 5,
    },
];

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Criterion keeps one directory per `group/function`: two suites using
    /// the same group would overwrite each other's baselines, and the
    /// report would pair a suite with another one's figures (or with none).
    #[test]
    fn no_two_suites_share_a_criterion_group() {
        for (i, a) in SUITES.iter().enumerate() {
            for b in &SUITES[i + 1..] {
                for (group, _, _) in a.pairs {
                    assert!(
                        b.pairs.iter().all(|(other, _, _)| other != group),
                        "suites `{}` and `{}` both use the criterion group `{group}`",
                        a.name,
                        b.name
                    );
                }
            }
        }
    }
}
