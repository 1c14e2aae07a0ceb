//! `cargo xtask ci`: exactly what CI runs, in order, stopping at the first
//! failure. `.ci/run` calls this and nothing else.

use crate::cmd::{Step, cargo, has_cargo_tool};
use std::time::Instant;

/// Runs every check. Options: `--skip-package` for a faster local loop.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut skip_package = false;
    for arg in args {
        match arg.as_str() {
            "--skip-package" => skip_package = true,
            other => return Err(format!("ci: unknown option `{other}`")),
        }
    }
    let started = Instant::now();
    let mut steps = Vec::new();

    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    steps.push(Step::new(
        "fmt",
        fmt,
        "run `cargo fmt --all` and commit the result",
    ));

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    steps.push(Step::new(
        "clippy",
        clippy,
        "fix the lints above; an allow needs a comment saying why",
    ));

    let mut tests = cargo();
    if has_cargo_tool("nextest") {
        tests.args([
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--locked",
            "--no-fail-fast",
        ]);
    } else {
        println!("(cargo-nextest is not installed; running the tests with `cargo test`)");
        tests.args([
            "test",
            "--workspace",
            "--all-features",
            "--locked",
            "--no-fail-fast",
            "--lib",
            "--bins",
            "--tests",
            "--examples",
        ]);
    }
    steps.push(Step::new(
        "tests",
        tests,
        "rerun one test with `cargo test -p <crate> --test <file> <name>`",
    ));

    let mut doctests = cargo();
    doctests.args(["test", "--workspace", "--all-features", "--locked", "--doc"]);
    steps.push(Step::new(
        "doc tests",
        doctests,
        "doc examples must compile; network examples use `no_run`",
    ));

    let mut docs = cargo();
    docs.args([
        "doc",
        "--workspace",
        "--all-features",
        "--no-deps",
        "--locked",
    ])
    .env("RUSTDOCFLAGS", "-D warnings");
    steps.push(Step::new(
        "docs",
        docs,
        "fix broken intra-doc links and missing docs",
    ));

    // The breaker's loom models: every interleaving of acquire/record/transition.
    steps.push(loom_step());

    // End to end: the demo's scenario and a short fault storm, both of which
    // exit non-zero when an expectation fails.
    steps.push(Step::new(
        "demo --quick",
        xtask(&["demo", "--quick"]),
        "run `cargo xtask demo --quick` and read which expectation failed",
    ));
    steps.push(Step::new(
        "soak --quick",
        xtask(&["soak", "--quick"]),
        "run `cargo xtask soak --quick`; it names the violated invariant",
    ));

    if !skip_package {
        // Packages every published crate on its own, as the registry would
        // see it; unpublished siblings resolve from the workspace.
        let mut package = cargo();
        package.args(["package", "--workspace", "--locked"]);
        for name in unpublished_members()? {
            package.args(["--exclude", &name]);
        }
        steps.push(Step::new(
            "package",
            package,
            "every published crate needs description, license, README and sibling deps with `version`",
        ));
    }

    for step in steps {
        step.run()?;
    }
    println!(
        "\n==> ci: every step passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Workspace members with `publish = false` (xtask, the demo, the bench
/// harness): `cargo package --workspace` would package them too.
fn unpublished_members() -> Result<Vec<String>, String> {
    let root = crate::cmd::workspace_root();
    let entries =
        std::fs::read_dir(&root).map_err(|err| format!("cannot list {}: {err}", root.display()))?;
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let Ok(manifest) = std::fs::read_to_string(entry.path().join("Cargo.toml")) else {
            continue;
        };
        let field = |key: &str| {
            manifest.lines().find_map(|line| {
                let (k, v) = line.split_once('=')?;
                (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
            })
        };
        if field("publish").as_deref() == Some("false")
            && let Some(name) = field("name")
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// `cargo xtask <args>` as a child process (a step of its own).
fn xtask(args: &[&str]) -> std::process::Command {
    let mut command = cargo();
    command.args(["run", "--quiet", "--locked", "--package", "xtask", "--"]);
    command.args(args);
    command
}

/// `cargo xtask loom`: the breaker's loom models, in release mode.
pub(crate) fn loom(args: &[String]) -> Result<(), String> {
    if let Some(other) = args.first() {
        return Err(format!("loom: unknown option `{other}`"));
    }
    loom_step().run()
}

fn loom_step() -> Step {
    let mut loom = cargo();
    loom.args([
        "test",
        "--package",
        "svc-breaker",
        "--release",
        "--test",
        "loom",
    ])
    .env("RUSTFLAGS", "--cfg loom")
    .env(
        "CARGO_TARGET_DIR",
        crate::cmd::workspace_root().join("target/loom"),
    );
    Step::new(
        "loom",
        loom,
        "a loom failure is a real interleaving bug; LOOM_LOG=trace shows it",
    )
}
