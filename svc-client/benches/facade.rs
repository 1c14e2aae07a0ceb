//! Facade benchmarks (filled by the svc-client issue).
fn main() {}
