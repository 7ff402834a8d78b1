//! A revm rollup node with sled state and Ethereum JSON-RPC.
//!
//! # Data flow
//!
//! A signed transaction arrives over JSON-RPC (`eth_sendRawTransaction`, HTTP
//! or WebSocket on one port, [`rpc`]), is decoded and its sender recovered,
//! checked against the latest committed state (chain id, nonce, funds, gas
//! limits, fees; without taking the chain lock) and put in the
//! [`pool::TxPool`]; the call returns there, as anvil's does. The miner thread
//! ([`node`]; instantly, or on an interval) asks the pool for executable
//! transactions, highest tip first, and [`chain::Chain`] executes them with
//! revm ([`executor`]) over a [`state::StateDb`], which reads the latest state
//! and the state at the 64 newest blocks from memory (older state from
//! sled) and collects writes in an overlay.
//! The overlay's changes go to the in-memory [`trie::StateTrie`] for the state
//! root while, for blocks of 16 transactions or more, a second thread builds
//! the receipts (blooms hashed after execution, not during it) and the
//! transactions and receipts roots, as Ethereum does; then
//! [`store::ChainStore::commit_block`] appends the block, its receipts and
//! its change set to the [body file](bodies) and flushes it, then writes the
//! block's pointer and header, the log and transaction indexes, state and
//! code in one sled batch and flushes that. Only then can readers see the
//! block and are subscribers told about it.
//!
//! # Choices
//!
//! - State root: `alloy-trie`'s `HashBuilder` (the trie crate reth uses),
//!   over an in-memory copy of the state ordered by hashed key, with cached
//!   per-account storage roots so a block rehashes only touched storage. The
//!   bench prints its cost per block.
//! - Persistence: one sled tree with key prefixes, so each block is one atomic
//!   batch followed by `flush` while the chain lock is held: a kill at any
//!   moment leaves either the old head or the new one, never a half-written
//!   block, and nothing a client saw is lost. Under load the miner puts every
//!   pending transaction into the next block, so one flush serves many.
//!   Block bodies, receipts and change sets are appended to a file beside
//!   it (as reth keeps them in static files), flushed before the batch that
//!   points at them; reopening cuts off whatever no block points at.
//! - Each block records the previous values of everything it changed (its
//!   change set, indexed by account and block), which serves state queries at
//!   past blocks and rollback for `evm_revert` and `anvil_reorg`. The newest
//!   64 blocks' are also kept in memory, for the reads agents make a block
//!   or two behind the head.
//! - Logs are indexed by (address, block) and (event signature, block), so
//!   `eth_getLogs` reads only blocks that can match; later topics are
//!   matched through each candidate block's bloom, then its logs.
//! - The pool lives in memory, as in anvil: pending transactions do not
//!   survive a restart; mined ones always do.
//!
//! Speed (`BENCH_TXS=1000 cargo bench -p metalayer-rollup --bench
//! throughput`, two runs on the 2-core machine, peers from `npm ci` in
//! `benches/peers`): over HTTP with instant mining, 3,415–3,426 transfers/s
//! and 2,990–3,510 dispatches/s, which is 3.0–3.7× anvil (1,135 / 936
//! transfers/s, 509 / 485 dispatches/s; goal ≥ 1×) and 5.3–6.6× hardhat 2.x
//! (519–611 tx/s; goal ≥ 5×). In-process on the same signed transactions,
//! the executor keeps 66–70% of bare revm on ERC-20-style transfers and
//! 84–88% on `Mailbox.dispatch` (goal ≥ 50%; 54–88% and 72–103% in runs
//! beside other benches); whole blocks (execution, roots, sled commit and
//! flush) run at about 27–29k tx/s.

pub mod bodies;
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
