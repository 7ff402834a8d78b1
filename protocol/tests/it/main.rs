//! Integration tests of the protocol crate: every published test vector, and
//! properties checked on random input.

mod properties;
mod vectors;
