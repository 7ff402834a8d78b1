//! The `metalayer-rollup` node binary.
fn main() {}
