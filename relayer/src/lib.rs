//! The Metalayer relayer daemon: it carries messages from every relayed
//! chain's Mailbox to their destination Mailbox, paying the gas.
//!
//! # Data flow
//!
//! 1. **Index** ([`origin`]): per origin, the agent indexers read
//!    `Dispatch`, `InsertedIntoTree` and `GasPayment` logs at the
//!    reorg-lagged tip into one [`metalayer_agent::store::AgentStore`]. A
//!    feeder appends stored insertions, in leaf order, to the origin's
//!    [`metalayer_protocol::merkle::MerkleProver`], which proves any leaf
//!    against the tree at any signed index.
//! 2. **Load** ([`origin::load_messages`]): gap-free dispatches past the
//!    loader's cursor are filtered (whitelist, blacklist, address blacklist,
//!    destinations served; [`matching`]) and become [`op::PendingOp`]s in the
//!    destination's prepare queue, together with the cursor, in one sled
//!    transaction ([`queue`]).
//! 3. **Prepare** ([`prepare`]), per destination, due messages at once up to
//!    a bound: skip to confirm if `delivered`; drop if the recipient has no
//!    code; gas policy pre-flight ([`gas_policy`]); metadata from the
//!    recipient's ISM tree ([`metadata`]); `eth_estimateGas` of `process`;
//!    the gas policy again with the estimate, which sets the gas limit.
//! 4. **Submit** ([`deliver`], [`sender`]): prepared messages whose ISM
//!    takes `processBatch` (a MerkleRoot multisig ISM with `verifyBatch`)
//!    are grouped by origin and ISM and sent as one batch per group, with
//!    the newest checkpoint among their metadata and one multiproof; the
//!    rest as one `process` each. A round is sized to the destination's
//!    block gas limit (read from its latest block every round): no
//!    transaction asks for more, a batch that would is split in halves
//!    until each part fits, and the transactions of one round together
//!    fit one block; what does not fit waits for the next round. One
//!    signer per destination hands out its own nonces, escalates the gas
//!    price of a transaction not mined in time, records each transaction
//!    as soon as it is mined, and a reverted receipt sends the message back
//!    to prepare.
//! 5. **Confirm**: once the destination's final block (tip − reorg period)
//!    is at or past the delivery's block, `delivered` read there ends the
//!    message's journey; `false` sends it back to prepare
//!    (`RevertedOrReorged`).
//!
//! Every failed attempt counts a retry and waits per Hyperlane's schedule
//! ([`backoff`]), scaled by `backoff_scale`; at `max_retries` the message is
//! parked. Parked and dropped messages stay visible and the operator API
//! ([`api`]) retries them. Every move between queues is one sled
//! transaction that also appends to the message's history.
//!
//! # Choices
//!
//! - Queues are sled trees keyed by (destination, stage, next attempt,
//!   origin, nonce), so "what is due" is a prefix scan; nothing is held in
//!   memory beyond a pass.
//! - After a restart, messages left in the submit queue go back to prepare,
//!   which reads `delivered` first: a message sent just before a kill is
//!   confirmed rather than sent again. The Mailbox refuses a second
//!   delivery in any case, so the worst a crash costs is a reverted
//!   transaction's gas.
//! - Signatures are read from each validator's most recent announced
//!   storage location and checked by recovery before use; a validator
//!   serving a checkpoint it did not sign, or one for another origin,
//!   hook or index, is logged and counted in
//!   `metalayer_invalid_checkpoint_signatures_total`.
//! - Batch support is detected from the ISM's module type (MerkleRoot) and
//!   the `verifyBatch` selector in its code, once per ISM.
//!
//! - Nonces are the relayer's own, checked against the chain's pending count
//!   at the start of every batch of transactions (nothing of ours is in
//!   flight then); a difference (a delivery reorged out, the key used
//!   elsewhere) is logged and the chain wins.
//! - A prepare pass commits its results together, so a backlog reaches the
//!   submit stage at once and batches; requests to a node are bounded (16
//!   at a time per stage) because nodes cap their connections.
//!
//! # Tests and figures
//!
//! `cargo test -p metalayer-relayer` runs, on two in-process rollup-core
//! nodes with the real contracts and five in-process validators per origin
//! (threshold 3): delivery both ways exactly once with the MessageId and
//! MerkleRoot ISMs, batch delivery, routing over aggregation with a null
//! module, two validators offline, four offline then back, a validator
//! serving forged signatures, unpaid messages under `minimum` (through the
//! operator API), a flaky destination RPC, a delivery reorged out, and kill
//! and restart both in-process and `kill -9` of the binary.
//!
//! `cargo bench -p metalayer-relayer --bench relay` (250 ms blocks, 3 of 5,
//! MerkleRoot ISM, both directions, relayer with `backoff_scale = 0.02` and
//! `metadata_retry_ms = 100`; latency from sending the dispatch to the block
//! that delivered it). Single runs on the shared 2-core machine, with other
//! builds running beside them:
//!
//! | messages | batch | delivered/s | p50 | p99 |
//! |---:|---|---:|---:|---:|
//! | 300 | on | 92 | 3.0 s | 3.2 s |
//! | 300 | off | 135 | 2.2 s | 2.2 s |
//! | 1 000 | on | 163 | 4.7 s | 6.0 s |
//! | 4 000 | on | 145 | 6.0 s | 13.0 s |
//! | 1 000, 4 000 | off | did not finish within 5 minutes | | |
//!
//! Every goal is missed: 2 000 msg/s with batches (by more than 10x), p50
//! within the reorg wait plus two blocks (0.75 s here), and the RSS at
//! 100 000 pending was not measured (the bench has the code, `BENCH_PENDING`,
//! but no run finished in the session). Where the time goes, as far as was
//! looked at: each message still costs about four JSON-RPC calls in
//! prepare (`delivered`, code, `eth_estimateGas`, and the ISM reads the
//! per-pass cache does not catch) and the validators publish one file per
//! checkpoint; the dispatch burst itself runs for several seconds. Batch
//! off at 1 000 and more messages stalls: an earlier build without the
//! bounds on RPC concurrency did 1 000 in 7.8 s (128 msg/s); the suspect,
//! not confirmed, is one stuck transaction holding up a round of 256 that
//! [`sender::TxSender::send_all`] awaits together (each stuck one waits
//! through its gas price escalations). The origin also caps the rate: a
//! 30 M gas block holds about 430 dispatches, 1 700/s per chain at 250 ms.
//!
//! # Not done (yet)
//!
//! - Signatures from gossip (none exists yet); `body_regex` in matching
//!   lists; CCIP-read ISMs; Multicall3 batching for ISMs without
//!   `verifyBatch`; aggregation sub-metadata is not dry-run with `verify`
//!   before use (the `process` estimate catches a bad one).
//! - Batches are capped by `max_batch_size` and fall back to single
//!   deliveries when their estimate fails or exceeds
//!   `transaction_gas_limit`; they are not split to fit the block gas limit.
//! - The Speed section of the issue (see the figures above); signature
//!   recovery speed is the protocol crate's (libsecp256k1), not re-measured.

pub mod api;
pub mod backoff;
pub mod deliver;
pub mod gas_policy;
pub mod matching;
pub mod metadata;
pub mod metrics;
pub mod op;
pub mod origin;
pub mod prepare;
pub mod queue;
pub mod relayer;
pub mod sender;
pub mod settings;

pub use relayer::{Context, Relayer, RelayerError};
