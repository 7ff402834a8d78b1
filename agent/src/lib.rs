//! What the validator and relayer daemons both stand on.
//!
//! This crate will hold the chain client (alloy over JSON-RPC, fallback and quorum
//! reads), the Dispatch / InsertedIntoTree / GasPayment indexer, the typed sled
//! store, checkpoint storage backends (local directory, S3, gossip), the metrics
//! and health server, configuration and key loading. Not written yet.
