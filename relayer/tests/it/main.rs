//! Relayer tests on two in-process rollup-core nodes running the real
//! contracts, with in-process validators (3 of 5 per origin), all reached
//! only through JSON-RPC.

mod common;
mod delivery;
mod faults;
mod filters;
mod gas;
mod restart;
mod teardown;
mod validators;

/// Each test runs two nodes and ten validators: at most two such networks
/// at a time keep the tests from starving each other.
pub(crate) static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
