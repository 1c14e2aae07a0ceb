//! Client benchmarks (filled by the svc-httpclient issue).
fn main() {}
