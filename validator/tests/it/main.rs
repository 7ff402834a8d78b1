//! Validator tests against a real rollup-core node running the real
//! contracts, reached only through JSON-RPC.

mod binary;
mod common;
mod reorg;
mod signing;
