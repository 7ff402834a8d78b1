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
//!    a bound: skip to confirm if `delivered` (read for the whole pass in
//!    JSON-RPC batches of 100, [`metalayer_agent::chain::ChainClient::call_batch`]);
//!    drop if the recipient has no code; gas policy pre-flight
//!    ([`gas_policy`]); metadata from the recipient's ISM tree
//!    ([`metadata`]); `eth_estimateGas` of `process`; the gas policy again
//!    with the estimate, which sets the gas limit. A message its ISM would
//!    batch, under a policy that does not weigh the estimate (`none`,
//!    `minimum`), is simulated with its batch: the submit stage estimates
//!    each batch whole, splits a failing one in halves until the failing
//!    message is alone, and estimates a message sent alone, which records
//!    why it fails.
//! 4. **Submit** ([`deliver`], [`sender`]): prepared messages whose ISM
//!    takes `processBatch` (a MerkleRoot multisig ISM with `verifyBatch`)
//!    are grouped by origin and ISM and sent as one batch per group, with
//!    the newest checkpoint among their metadata and one multiproof; the
//!    rest as one `process` each. A round is sized to the destination's
//!    block gas limit (read from its latest block every round): it reads at
//!    most as many due messages as the block could hold (at 20 000 gas
//!    each), estimates calls only while the block has room, no transaction
//!    asks for more than a block, a batch that would is split in halves
//!    until each part fits, and the transactions of one round together fit
//!    one block; what does not fit waits for the next round. One signer per
//!    destination hands out its own nonces, escalates the gas price of a
//!    transaction not mined in time, records each transaction as soon as it
//!    is mined, and a reverted receipt sends the message back to prepare.
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
//!   memory beyond a pass. A fresh message's first attempt time is when it
//!   was loaded, so a backlog of fresh messages does not starve retries.
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
//! - Aggregation metadata: every module's sub-metadata is built at once and
//!   dry-run with that module's `verify`; the first `threshold` that pass,
//!   in module order, are used (SPEC §7.3), so a paused or failing module is
//!   passed over.
//! - Batch support is detected from the ISM's module type (MerkleRoot) and
//!   the `verifyBatch` selector in its code, once per ISM.
//!
//! - Nonces are the relayer's own, checked against the chain's pending count
//!   at the start of every batch of transactions (nothing of ours is in
//!   flight then); a difference (a delivery reorged out, the key used
//!   elsewhere) is logged and the chain wins.
//! - A prepare pass commits its results together, so a backlog reaches the
//!   submit stage at once and batches; requests to a node are bounded (16
//!   at a time per stage) because nodes cap their connections, and the
//!   `delivered` reads of a prepare or confirm pass go in JSON-RPC batches
//!   of 100 calls (an endpoint that refuses batches is read one call per
//!   request).
//!
//! # Tests and figures
//!
//! `cargo test -p metalayer-relayer` runs, on two in-process rollup-core
//! nodes with the real contracts and five in-process validators per origin
//! (threshold 3): delivery both ways exactly once with the MessageId and
//! MerkleRoot ISMs, batch delivery, routing over aggregation with a null
//! and a paused module (passed over by the dry-run), two validators offline, four offline then back, a validator
//! serving forged signatures, unpaid messages under `minimum` (through the
//! operator API), a flaky destination RPC, a delivery reorged out, and kill
//! and restart both in-process and `kill -9` of the binary, batches split
//! to fit 4 M-gas blocks, and two networks one after the other in one
//! process (the regression test of the bench stall below).
//!
//! `cargo bench -p metalayer-relayer --bench relay` (250 ms blocks, 30 M
//! gas, reorg period 1, 3 of 5 validators per origin (ten validators in
//! all, writing checkpoints to local directories), the Mailbox's embedded
//! MerkleRoot ISM (`BENCH_ISM=static` for the separate one), both
//! directions at once, relayer with `backoff_scale = 0.02` and
//! `metadata_retry_ms = 100`; msg/s from the first dispatch sent to the
//! last delivery seen mined; latency to the relayer seeing its delivery's
//! receipt, from the dispatch's send and from its block first being seen
//! (blocks polled every 10 ms)). The relayer runs on a runtime of its own,
//! whose threads' CPU time is printed: the relayer's own cost, without the
//! nodes serving its requests or sled's background threads. Single runs on
//! the 2-core machine, which every part of the bench shares (2026-11-28):
//!
//! | run | delivered/s | p50 (from send / block) | p99 (send / block) | relayer CPU per message |
//! |---|---:|---:|---:|---:|
//! | 10 000 at once, batch on | 793–896 | 5.3–6.4 s / 5.1–6.3 s | 7.5–10.2 s / 6.9–8.4 s | 0.33–0.35 ms (2 890–3 067 msg/s per core) |
//! | 10 000 at once, batch off | 243 | 25.1 s / 25.0 s | 32.7 s / 32.1 s | 0.93 ms |
//! | 6 000 at 300/s, batch on | 310 | 812 ms / 665 ms | 1 234 ms / 990 ms | 0.55 ms |
//!
//! Commands: `BENCH_PENDING=0 BENCH_BATCH=on cargo bench -p
//! metalayer-relayer --bench relay`; `BENCH_BATCH=off cargo bench -p
//! metalayer-relayer --bench relay` (batch off, then memory); `BENCH_RATE=300
//! BENCH_MESSAGES=6000 BENCH_PENDING=0 BENCH_BATCH=on cargo bench -p
//! metalayer-relayer --bench relay`. Two runs of the first (the range
//! above); the node's `eth_estimateGas` trying the used gas first took it
//! from 590–719 to 793–896 msg/s. Memory: **127.2 MiB** RSS of the `metalayer-relayer` binary
//! holding 100 512 pending messages (no validator signing, so every message
//! cycles through prepare), with jemalloc
//! ([`metalayer_agent::telemetry::JEMALLOC_CONF`]); 229.9 MiB with the
//! system allocator when last measured.
//!
//! Goals:
//! - RSS ≤ 256 MiB at 100 k pending: met (127.2 MiB).
//! - p50 within the reorg wait plus two destination blocks (250 + 500 ms):
//!   met at a sustained 300 msg/s counted from the dispatch's block (665 ms;
//!   812 ms from the send, which adds the wait for the origin's next
//!   block). Its legs (p50): block seen → loaded 306 ms (the 250 ms reorg
//!   period, then the indexer), loaded → prepared 57 ms, prepared → mined
//!   302 ms (the next destination block, then the receipt poll). At 600
//!   msg/s it was 977 ms, and a 10 k burst is mostly queueing (5–6 s, nearly
//!   all of it waiting in prepare).
//! - ≥ 2 000 msg/s with batches: missed on this machine, 793–896. The
//!   relayer's own CPU is 0.33–0.35 ms per message (about 3 000 msg/s per
//!   core), so it is not what sets the pace: the two nodes (dispatch and
//!   delivery execution, RPC) and the ten validators share the same two
//!   cores. In a CPU profile (`perf`) of the burst run before this change
//!   set, the validators' per-checkpoint file writes and flushes were 31 %
//!   of all CPU (now one flush per window, `syncfs`); file creation in the
//!   kernel is still about a fifth.
//! - What raised batch-on throughput from 323 to 793–896 msg/s: the
//!   validators' group writes; `delivered` read in JSON-RPC batches;
//!   batchable messages no longer simulated one by one; queue transitions
//!   stored in groups; the node's cheaper `eth_estimateGas`. Batch off went
//!   from 164 to 243 msg/s.
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
//! - Signatures from gossip (none exists yet); CCIP-read ISMs; Multicall3
//!   batching for ISMs without `verifyBatch`.
//! - The throughput goal (see the figures above).
//! - Rounds are not pipelined: the next round of a destination is built
//!   only once every transaction of the current one is mined or given up
//!   (each is recorded as soon as it is mined, though). Overlapping rounds
//!   (two in flight, messages in flight left out of the next round) were
//!   tried: on this CPU-bound machine they gave no measurable gain (p50 at
//!   600 msg/s within run-to-run noise), and one run left a destination's
//!   submit queue stalled, so the change was not kept.

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
