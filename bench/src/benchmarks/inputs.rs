//! What the report reads besides criterion: the `compare` binary's flat
//! file and Markdown section, and the machine the benchmarks ran on.

use crate::date::utc_date;
use crate::report::Flat;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

/// The flat `key<TAB>value` output of the compare binary, and its Markdown.
#[derive(Debug)]
pub struct Compare {
    pub(super) values: Flat,
    pub(super) markdown: String,
}

impl Compare {
    pub(super) fn num(&self, key: &str) -> Option<f64> {
        self.values
            .get(key)?
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
    }
}

/// Reads the `compare` binary's flat file and Markdown section.
///
/// # Errors
///
/// A file that cannot be read.
pub fn read_compare(flat: &Path, markdown: &Path) -> Result<Compare, String> {
    let values = std::fs::read_to_string(flat)
        .map(|t| Flat::parse(&t))
        .map_err(|e| format!("cannot read {}: {e}", flat.display()))?;
    let markdown = std::fs::read_to_string(markdown)
        .map_err(|e| format!("cannot read {}: {e}", markdown.display()))?;
    Ok(Compare { values, markdown })
}

/// Where and when the benchmarks ran.
#[derive(Debug)]
pub struct Machine {
    /// `/proc/loadavg` when the run started: other work on a shared
    /// machine is the main source of noise.
    pub(super) load: String,
    pub(super) cpus: String,
    pub(super) cpu_model: String,
    pub(super) memory: String,
    pub(super) date: String,
    pub(super) rustc: String,
    pub(super) commit: String,
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
