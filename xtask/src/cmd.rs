//! Running cargo and other programs, one printed step at a time.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// The cargo that runs this xtask (so `cargo +toolchain xtask` stays consistent).
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    command
}

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn workspace_root() -> PathBuf {
    // `cargo run` sets the variable for the process: prefer it to the path
    // compiled in, which is stale when a clone of the workspace shares this
    // target directory (cargo then reuses the other clone's binary).
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// One step of a command: a name, the command line, and a hint printed when
/// it fails.
pub(crate) struct Step {
    pub(crate) name: &'static str,
    pub(crate) command: Command,
    pub(crate) hint: &'static str,
}

impl Step {
    pub(crate) fn new(name: &'static str, command: Command, hint: &'static str) -> Self {
        Step {
            name,
            command,
            hint,
        }
    }

    /// Prints the step, runs it with inherited stdio, and reports its time.
    pub(crate) fn run(mut self) -> Result<(), String> {
        println!("\n==> {}: {}", self.name, render(&self.command));
        let started = Instant::now();
        let status = self
            .command
            .status()
            .map_err(|err| format!("step `{}` could not start: {err}", self.name))?;
        let took = started.elapsed().as_secs_f64();
        if status.success() {
            println!("==> {} passed in {took:.1}s", self.name);
            Ok(())
        } else {
            Err(format!(
                "step `{}` failed ({status}) after {took:.1}s\n  reproduce: {}\n  hint: {}",
                self.name,
                render(&self.command),
                self.hint
            ))
        }
    }
}

/// The command line as a user would type it, environment overrides first.
pub(crate) fn render(command: &Command) -> String {
    let mut out = String::new();
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            out.push_str(&format!(
                "{}={} ",
                key.to_string_lossy(),
                quote(&value.to_string_lossy())
            ));
        }
    }
    let program = command.get_program().to_string_lossy();
    let program = if program.ends_with("cargo") {
        "cargo".into()
    } else {
        program
    };
    out.push_str(&program);
    for arg in command.get_args() {
        out.push(' ');
        out.push_str(&quote(&arg.to_string_lossy()));
    }
    out
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,+@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Whether `cargo <subcommand> --version` works (an optional tool is installed).
pub(crate) fn has_cargo_tool(subcommand: &str) -> bool {
    cargo()
        .args([subcommand, "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
