//! `compare`: one loopback GET through four clients, side by side (see
//! `svc_bench::compare`).
//!
//! Usage: `compare [--quick] [--json PATH] [--tsv PATH] [--markdown PATH]`

use std::process::ExitCode;

fn main() -> ExitCode {
    svc_bench::compare::run(std::env::args().skip(1))
}
