//! Throughput bench (placeholder).
fn main() {}
