//! `compare`: one loopback GET through four clients, side by side, in one
//! process: raw `reqwest`, `svc-httpclient`, the `svc-client` facade, and
//! `reqwest-middleware` + `reqwest-retry` (3 retries, exponential backoff).
//!
//! Suites: sequential latency (p50, p99), throughput with 64 requests in
//! flight, outage behaviour against a server answering 503 to everything
//! (requests per logical call, when callers start failing fast), and memory
//! (RSS per client and per idle connection, in fresh child processes).
//! Two more run each client on a current-thread runtime in a thread of its
//! own and read that thread's CPU time: client CPU per request with 64 in
//! flight (`concurrent`), and the traced suite (`traced`: every call in a
//! caller span under `tracing-opentelemetry`, against a one-span floor and
//! reqwest-middleware + reqwest-retry + reqwest-tracing). The outage table
//! also has reqwest 0.13's own retry (`reqwest::retry::for_host`). The
//! replicas suite (`replicas`) calls three replicas, one 20 ms slower, with
//! svc's balancing against round robin.
//!
//! Usage: `compare [--quick] [--json PATH] [--tsv PATH] [--markdown PATH]`
//!
//! The `compare` binary is a thin `main` over [`run`]. The logic lives in
//! the library so that each suite is a module of its own: `clients` (the
//! four clients and how a call ended), `healthy` (latency and throughput),
//! `outage` and `memory`; this module parses the options, runs the suites
//! in order and writes their output.

mod clients;
mod concurrent;
mod healthy;
mod memory;
mod outage;
mod replicas;
mod traced;
mod worker;

use crate::report::Flat;
use clients::Kind;
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str =
    "usage: compare [--quick] [--only replicas] [--json PATH] [--tsv PATH] [--markdown PATH]";

#[derive(Debug)]
struct Args {
    quick: bool,
    json: Option<PathBuf>,
    tsv: Option<PathBuf>,
    markdown: Option<PathBuf>,
    probe: Option<(Kind, String)>,
    /// Run only this suite (`replicas`), to check it alone.
    only: Option<String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        quick: false,
        json: None,
        tsv: None,
        markdown: None,
        probe: None,
        only: None,
    };
    let path = |name: &str, value: Option<String>| {
        value
            .map(PathBuf::from)
            .ok_or_else(|| format!("`{name}` needs a path\n{USAGE}"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => parsed.quick = true,
            "--only" => match args.next().as_deref() {
                Some("replicas") => parsed.only = Some("replicas".to_owned()),
                other => return Err(format!("`--only` takes `replicas`, not {other:?}\n{USAGE}")),
            },
            "--json" => parsed.json = Some(path("--json", args.next())?),
            "--tsv" => parsed.tsv = Some(path("--tsv", args.next())?),
            "--markdown" => parsed.markdown = Some(path("--markdown", args.next())?),
            // Internal: the memory probe, run in a child process.
            "--memory-probe" => {
                let kind = args.next().and_then(|k| Kind::from_name(&k));
                let base = args.next();
                match (kind, base) {
                    (Some(kind), Some(base)) => parsed.probe = Some((kind, base)),
                    _ => {
                        return Err(
                            "`--memory-probe` needs a client kind and a base URL".to_owned()
                        );
                    }
                }
            }
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown option `{other}`\n{USAGE}")),
        }
    }
    Ok(parsed)
}

/// Sizes of the suites.
struct Sizes {
    /// Sequential requests per client (in rounds of 100).
    latency: usize,
    /// Throughput: rounds per client, and the length of each.
    throughput_rounds: usize,
    throughput_round: Duration,
    /// Client CPU with requests in flight: rounds per client, and the
    /// length of each.
    cpu_rounds: usize,
    cpu_round: Duration,
    /// Traced: sequential requests per client (in rounds of 100).
    traced: usize,
    /// Outage: concurrent callers and logical calls per client.
    outage_callers: usize,
    outage_calls: usize,
    /// Memory: clients created, idle connections opened.
    clients: usize,
    connections: usize,
    /// Replicas: requests per way of choosing the replica.
    replicas: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                latency: 1_000,
                throughput_rounds: 2,
                throughput_round: Duration::from_millis(500),
                cpu_rounds: 4,
                cpu_round: Duration::from_millis(300),
                traced: 1_000,
                outage_callers: 16,
                outage_calls: 160,
                clients: 1_000,
                connections: 100,
                replicas: 1_000,
            }
        } else {
            Sizes {
                latency: 5_000,
                throughput_rounds: 3,
                throughput_round: Duration::from_secs(2),
                cpu_rounds: 8,
                cpu_round: Duration::from_secs(1),
                traced: 5_000,
                outage_callers: 32,
                outage_calls: 640,
                clients: 1_000,
                connections: 200,
                replicas: 5_000,
            }
        }
    }
}

const INFLIGHT: usize = 64;

/// The `compare` binary: parses `args` (without the program name), runs
/// the suites (or, with the internal `--memory-probe`, one memory probe)
/// and says how it went.
pub fn run(args: impl Iterator<Item = String>) -> ExitCode {
    let args = match parse_args(args) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("compare: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match crate::runtime() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("compare: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match &args.probe {
        Some((kind, base)) => runtime.block_on(memory::probe(*kind, base, args.quick)),
        None => runtime.block_on(compare(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("compare: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn compare(args: &Args) -> Result<(), String> {
    let sizes = Sizes::new(args.quick);
    if args.only.is_some() {
        let mut flat = Flat::new();
        let mut md = String::new();
        let replicas = replicas::suite(&sizes, &mut flat, &mut md).await?;
        println!("{replicas}");
        return write_outputs(args, &flat, &md);
    }
    let healthy = healthy::server(sizes.connections).await?;
    let base = healthy.url();
    let mut flat = Flat::new();
    let mut md = String::new();
    flat.num("meta.latency_requests", sizes.latency as f64);
    flat.num("meta.inflight", INFLIGHT as f64);

    // ----- latency and throughput
    let latency = healthy::suite(&sizes, &base, &mut flat, &mut md).await?;
    println!("{latency}");
    let cpu = concurrent::suite(&sizes, &base, &mut flat, &mut md).await?;
    println!("{cpu}");

    // ----- outage
    let outage = outage::suite(&sizes, &mut flat, &mut md).await?;
    println!("{outage}");

    // ----- replicas
    let replicas = replicas::suite(&sizes, &mut flat, &mut md).await?;
    println!("{replicas}");

    // ----- memory
    let memory = memory::suite(&sizes, &base, &healthy, &mut flat, &mut md).await?;
    println!("{memory}");

    // ----- traced (last: it installs the process's tracing subscriber)
    let traced = traced::suite(&sizes, &base, &mut flat, &mut md).await?;
    println!("{traced}");

    let _ = writeln!(md, "### What each client was\n");
    for kind in Kind::OUTAGE {
        let _ = writeln!(md, "- **{}**: {}", kind.name(), kind.describe());
    }
    healthy.shutdown().await;
    write_outputs(args, &flat, &md)
}

/// Writes the figures where `args` asks.
fn write_outputs(args: &Args, flat: &Flat, md: &str) -> Result<(), String> {
    if let Some(path) = &args.tsv {
        write(path, &flat.render())?;
    }
    if let Some(path) = &args.markdown {
        write(path, md)?;
    }
    if let Some(path) = &args.json {
        let mut object = serde_json::Map::new();
        for (key, value) in flat.entries() {
            let value = match value.parse::<f64>() {
                Ok(n) if n.is_finite() => json!(n),
                _ => json!(value),
            };
            object.insert(key.clone(), value);
        }
        let text = serde_json::to_string_pretty(&object).map_err(|e| e.to_string())?;
        write(path, &text)?;
    }
    Ok(())
}

fn write(path: &PathBuf, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn options() {
        let a = args(&[
            "--quick",
            "--json",
            "a.json",
            "--tsv",
            "a.tsv",
            "--markdown",
            "a.md",
        ])
        .unwrap();
        assert!(a.quick);
        assert_eq!(a.json, Some(PathBuf::from("a.json")));
        assert_eq!(a.tsv, Some(PathBuf::from("a.tsv")));
        assert_eq!(a.markdown, Some(PathBuf::from("a.md")));
        assert!(args(&["--json"]).unwrap_err().contains("--json"));
        assert!(args(&["--memory-probe", "curl", "http://127.0.0.1:1"]).is_err());
        let probe = args(&["--memory-probe", "svc-client", "http://127.0.0.1:1"]).unwrap();
        assert_eq!(
            probe.probe,
            Some((Kind::Facade, "http://127.0.0.1:1".to_owned()))
        );
        assert!(args(&["--fast"]).unwrap_err().contains("`--fast`"));
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for kind in Kind::OUTAGE {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
        }
    }
}
