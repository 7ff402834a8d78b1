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
//! and restart both in-process and `kill -9` of the binary, batches split
//! to fit 4 M-gas blocks, and two networks one after the other in one
//! process (the regression test of the bench stall below).
//!
//! `cargo bench -p metalayer-relayer --bench relay` (250 ms blocks, 30 M
//! gas, reorg period 1, 3 of 5, MerkleRoot ISM, both directions at once,
//! relayer with `backoff_scale = 0.02` and `metadata_retry_ms = 100`;
//! msg/s from the first dispatch sent to the last delivery seen mined;
//! latency from a dispatch's send to the relayer seeing its delivery's
//! receipt). Single runs on the shared 2-core machine, with other
//! sessions' builds and benches running beside them (2026-11-27):
//!
//! | run | delivered/s | p50 | p99 |
//! |---|---:|---:|---:|
//! | 10 000 messages, batch on | 186 | 20.1 s | 25.5 s |
//! | 10 000 messages, batch off | 136 | 33.8 s | 70.7 s |
//!
//! (`BENCH_PENDING=0 cargo bench -p metalayer-relayer --bench relay`,
//! dispatches sent 8 at a time.) The default run, with the bench's earlier
//! one-at-a-time dispatch sending, gave 128 msg/s (p50 2.6 s, p99 11.0 s)
//! on and 105 msg/s (p50 19.3 s, p99 31.0 s) off: there the burst itself,
//! not the relayer, set the pace. Its memory part: **218.3 MiB** RSS of the
//! `metalayer-relayer` binary holding 100 256 pending messages
//! (`BENCH_PENDING=100000`, no validator signing, so every message cycles
//! through prepare).
//!
//! Goals: RSS ≤ 256 MiB at 100 k pending is met (one run, 15 % margin).
//! ≥ 2 000 msg/s with batches is missed by about 10x. p50 within the
//! reorg wait plus two destination blocks (0.75 s here) is missed: with a
//! 10 k burst the backlog waits in prepare, so latency is queueing time.
//! Where the time goes, from the bench's queue lengths: with batches on,
//! prepare is the bottleneck (about 900 messages per destination waiting
//! in prepare while submit held at most 256): every message still costs
//! a `delivered` read and an `eth_estimateGas` of its own `process` (ISM
//! reads and the recipient's code are read once per pass), 16 in flight
//! per destination. With batches off, submit is (about 1 000 waiting):
//! at most a block's gas of single `process` transactions per round
//! (each asks for its estimate plus 75 000), and a round waits for all its
//! receipts before the next is built. The origins add their own cap: sending 5 000
//! dispatches per chain took about 38 s in the last run (node admission
//! on the shared CPU).
//!
//! The stall of batch-off runs at ≥ 1 000 messages (issue #6) was not the
//! relayer's: batch off always ran second in the bench process, after the
//! first network's directory had been removed while its nodes were still
//! running. sled's last flush on the deleted directory blocked forever
//! holding sled's process-wide concurrency lock; the second network's
//! miner then blocked in a block commit holding its chain lock, every RPC
//! handler waiting on that lock blocked a runtime worker, and nothing
//! moved. The test network now shuts down in order (validators, nodes,
//! every sled store closed, then the directory).
//!
//! # Not done (yet)
//!
//! - Signatures from gossip (none exists yet); `body_regex` in matching
//!   lists; CCIP-read ISMs; Multicall3 batching for ISMs without
//!   `verifyBatch`; aggregation sub-metadata is not dry-run with `verify`
//!   before use (the `process` estimate catches a bad one).
//! - The throughput and latency goals (see the figures above). The next
//!   step, not tried: batchable messages skip their own `process`
//!   estimate (the batch is estimated as a whole) for a plain `eth_call`;
//!   rollup-core's `eth_estimateGas` runs the call 3 to about 15 times
//!   (a binary search), and prepare was the bottleneck with batches on. Signature recovery speed
//!   is the protocol crate's (libsecp256k1), not re-measured here.
//! - Rounds are not pipelined: the next round of a destination is built
//!   only once every transaction of the current one is mined or given up
//!   (each is recorded as soon as it is mined, though).

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
