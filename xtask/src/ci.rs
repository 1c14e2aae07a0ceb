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
        let (published, unpublished) = members()?;
        forget_unpacked(&published);
        forget_built(&published, &crate::demo::target_dir());
        let mut package = cargo();
        package.args(["package", "--workspace", "--locked"]);
        for (name, _) in unpublished {
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

/// The workspace members as `(name, version)`: those published, and those
/// with `publish = false` (xtask, the demo, the bench harness, test
/// support), which `cargo package --workspace` must exclude.
#[allow(clippy::type_complexity)]
fn members() -> Result<(Vec<(String, String)>, Vec<(String, String)>), String> {
    let root = crate::cmd::workspace_root();
    let entries =
        std::fs::read_dir(&root).map_err(|err| format!("cannot list {}: {err}", root.display()))?;
    let (mut published, mut unpublished) = (Vec::new(), Vec::new());
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
        let (Some(name), Some(version)) = (field("name"), field("version")) else {
            continue;
        };
        if field("publish").as_deref() == Some("false") {
            unpublished.push((name, version));
        } else {
            published.push((name, version));
        }
    }
    published.sort();
    unpublished.sort();
    Ok((published, unpublished))
}

/// Removes cargo's unpacked copies of our own crates (`svc-client-0.1.0`
/// under `$CARGO_HOME/registry/src/*/`). `cargo package --workspace`
/// verifies each crate against its siblings through a temporary local
/// registry, and cargo reuses an earlier unpacked copy of the same name and
/// version from it without checking its contents: a second run from the
/// same path would verify against the first run's sources. None of our
/// crates comes from crates.io, so nothing else is affected.
fn forget_unpacked(crates: &[(String, String)]) {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return;
    };
    for registry in registries.flatten() {
        for (name, version) in crates {
            let unpacked = registry.path().join(format!("{name}-{version}"));
            if unpacked.is_dir() && std::fs::remove_dir_all(&unpacked).is_ok() {
                println!(
                    "==> package: forgot a stale unpacked {}",
                    unpacked.display()
                );
            }
        }
    }
}

/// Removes cargo's builds of the registry copies of our own crates (see
/// [`forget_unpacked`]) from `target`'s fingerprints. Cargo takes a
/// registry crate of a given name and version to be immutable and never
/// checks its files, so a build from an earlier run's copy stays fresh, and
/// the next crate is verified against the earlier sources (a function added
/// to svc-discovery is then "not found" when svc-client is verified). Those
/// builds are the ones whose dep-info lists no source file; the
/// workspace's own builds (which list theirs) stay.
fn forget_built(crates: &[(String, String)], target: &std::path::Path) {
    for profile in ["debug", "release"] {
        let Ok(entries) = std::fs::read_dir(target.join(profile).join(".fingerprint")) else {
            continue;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(dir) = file_name.to_str() else {
                continue;
            };
            let Some((name, _)) = crates.iter().find(|(name, _)| {
                dir.strip_prefix(name.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|hash| hash.bytes().all(|b| b.is_ascii_hexdigit()))
            }) else {
                continue;
            };
            let dep_info = entry
                .path()
                .join(format!("dep-lib-{}", name.replace('-', "_")));
            let from_registry =
                std::fs::read(&dep_info).is_ok_and(|bytes| !bytes.windows(3).any(|w| w == b".rs"));
            if from_registry && std::fs::remove_dir_all(entry.path()).is_ok() {
                println!(
                    "==> package: forgot a stale build of a registry copy of {name} ({})",
                    entry.path().display()
                );
            }
        }
    }
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
