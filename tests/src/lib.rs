//! Workspace-level end-to-end, fault and load tests.
//!
//! They will start rollup-core nodes, deploy the contracts, and run validators and
//! relayers against them over JSON-RPC. Not written yet.
