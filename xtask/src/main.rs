//! `cargo xtask`: the project's automation, in Rust, with no dependencies.
//!
//! Every command prints each step before it runs it, stops at the first
//! failure and says how to reproduce or fix it.

mod bench;
mod ci;
mod cmd;
mod demo;
mod fuzz;
mod soak;

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <COMMAND> [OPTIONS]

Commands:
  ci             run every check CI runs: fmt, clippy, tests, doc tests, docs,
                 packaging dry run (the README's test command)
  demo [--quick] start the demo services and drive a failure scenario
  bench          run the benchmarks side by side with the peers; writes BENCHMARKS.md
  soak [--quick] [--duration SECS]
                 a bounded fault storm against the facade, checking its invariants
  fuzz           bounded property/fuzz runs of the parsers
  loom           model-check the circuit breaker's atomics with loom
  help           print this help
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let result = match command.as_deref() {
        Some("ci") => ci::run(&rest),
        Some("demo") => demo::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("soak") => soak::run(&rest),
        Some("fuzz") => fuzz::run(&rest),
        Some("loom") => ci::loom(&rest),
        None | Some("help" | "--help" | "-h") => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
