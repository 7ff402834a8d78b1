//! A revm rollup node with sled state and Ethereum JSON-RPC.
//!
//! # Data flow
//!
//! A signed transaction arrives over JSON-RPC (`eth_sendRawTransaction`, HTTP
//! or WebSocket on one port), is decoded and its sender recovered, checked
//! against the latest state (chain id, nonce, funds, gas limits, fees) and put
//! in the [`pool::TxPool`]. The miner (instantly, or on an interval) asks the
//! pool for executable transactions, highest tip first, and [`chain::Chain`]
//! executes them with revm ([`executor`]) over a [`state::StateDb`] that reads
//! the sled store and collects writes in an overlay. The overlay's changes go
//! to the in-memory [`trie::StateTrie`] for the state root; transactions and
//! receipts roots and the logs bloom are computed as Ethereum does; then
//! [`store::ChainStore::commit_block`] writes the block, receipts, log index,
//! state, code and the block's change set in one sled batch and flushes it,
//! and only then are subscribers told about the new head.
//!
//! # Choices
//!
//! - State root: `alloy-trie`'s `HashBuilder` (the trie crate reth uses),
//!   over an in-memory copy of the state ordered by hashed key, with cached
//!   per-account storage roots so a block rehashes only touched storage.
//! - Persistence: one sled tree with key prefixes, so each block is one atomic
//!   batch followed by `flush`: a kill at any moment leaves either the old head
//!   or the new one, never a half-written block. Each block also records the
//!   previous values of everything it changed (its change set), which gives
//!   historical state queries (`eth_call` at a past block) and rollback for
//!   `evm_revert` and `anvil_reorg`.
//! - Logs are indexed by (address, block) and (topic, block), so `eth_getLogs`
//!   reads only blocks that can match.
//! - The pool lives in memory, as in anvil: pending transactions do not
//!   survive a restart; mined ones always do.

pub mod chain;
pub mod config;
pub mod error;
pub mod executor;
pub mod genesis;
pub mod metrics;
pub mod node;
pub mod pool;
pub mod rpc;
pub mod service;
pub mod state;
pub mod store;
pub mod trie;
