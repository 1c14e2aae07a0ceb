//! `soak`: a bounded fault storm against the `svc-client` facade, whose
//! exit status says whether every invariant held (see `svc_bench::soak`).
//!
//! Usage: `soak [--quick] [--duration SECS] [--callers N] [--margin-ms MS] [--seed N]
//! [--sabotage replay-posts|unconstrained-loopers]`

use std::process::ExitCode;

fn main() -> ExitCode {
    svc_bench::soak::run(std::env::args().skip(1))
}
