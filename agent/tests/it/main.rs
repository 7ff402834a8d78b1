//! Integration tests for metalayer-agent: batched contract reads against a
//! rollup-core node, the insertion indexer's gap check, the checkpoint
//! storage suite run
//! against a local directory and a real S3-compatible server (moto, started
//! on loopback), the telemetry server over HTTP, and configuration loaded
//! end to end.

mod chain;
mod config;
mod http;
mod indexer;
mod moto;
mod storage;
mod telemetry;
