//! Integration tests: the committed contract bytecode running in revm, no mocks.
//! Checkpoints are signed and metadata built with the protocol crate.

mod batch;
mod delivery;
mod deploy;
mod dispatch;
mod embedded_ism;
mod fixture;
mod harness;
mod hooks_and_factories;
mod ism_rejections;
mod multicall;
mod periphery;
mod vectors;

/// The tests' chain runs without an inspector (a no-op inspector; see `harness`).
type ChainInspector = revm::inspector::NoOpInspector;
