//! Gas bench (not written yet).
fn main() {}
