//! What the validator and relayer daemons both stand on.
//!
//! This crate will hold the chain client (alloy over JSON-RPC, fallback and quorum
//! reads), the Dispatch / InsertedIntoTree / GasPayment indexer, the typed sled
//! store, checkpoint storage backends (local directory, S3, gossip), the metrics
//! and health server, configuration and key loading. Not written yet.
//!
//! - [`storage`]: checkpoint storage behind one trait, [`storage::CheckpointStorage`],
//!   with SPEC §4.3's object names: a local directory (`file://`, atomic writes)
//!   and an S3-compatible bucket (`s3://bucket/region[/folder]`);
//!   [`storage::parse_location`] turns an announced location into a reader.
//! - [`config`]: one TOML file, overridden by `METALAYER_A__B=…` environment
//!   variables, overridden by `--set a.b=…` flags, deserialised into any settings
//!   type; and the [`config::ChainSettings`] every daemon shares.
//! - [`keys`]: secp256k1 keys from hex, a private key file or an encrypted
//!   keystore, as a checkpoint signer and a transaction signer; never printed.
//! - [`telemetry`]: the `metalayer_` Prometheus registry, `/metrics` and `/health`
//!   on one port, and human or JSON logs.

pub mod chain;
pub mod config;
pub mod indexer;
pub mod keys;
pub mod storage;
pub mod store;
pub mod telemetry;
