//! Breaker benchmarks (filled by the svc-breaker issue).
fn main() {}
