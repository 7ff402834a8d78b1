//! The on-chain half of Metalayer: Hyperlane v3-compatible Solidity contracts.
//!
//! The Solidity sources live beside this file (`src/**/*.sol`). `build.js` compiles them with
//! a pinned solc (npm `solc` 0.8.37, `evmVersion` cancun, optimizer 20 000 runs) into
//! `out/<Name>.json`, which is committed, so building this crate needs no Node. This crate
//! turns those artifacts into:
//!
//! * [`bindings`]: alloy `sol!` bindings, one module per contract, each with its creation
//!   and runtime bytecode (`BYTECODE`, `DEPLOYED_BYTECODE`), typed calls and events and,
//!   through `#[sol(rpc)]`, contract instances for any alloy provider;
//! * [`deploy`]: [`deploy::deploy_core`], which puts a full core stack on a chain and
//!   returns its addresses as a serde struct, [`deploy::CoreDeployment`].
//!
//! # What differs from the v3 contracts, on purpose
//!
//! * The Mailbox can be its own Merkle tree hook (set it as its default hook). The tree
//!   count then shares a storage slot with the nonce, which makes a dispatch about 10k gas
//!   cheaper than through a separate `MerkleTreeHook`; checkpoints are then signed with the
//!   Mailbox address as the merkle tree hook address. A separate `MerkleTreeHook` remains
//!   available and behaves as in v3.
//! * A zero required hook means "none".
//! * Static multisig ISMs keep their validator set in their own code, appended by the
//!   factory, instead of behind a delegating proxy: same metadata, same digest, cheaper.
//!   Rejections name their reason (`SignerNotValidator`, `DuplicateSigner`,
//!   `SignersOutOfOrder`, `SignatureHighS`, `SignatureRecoversToZero`, `EmptyRoot`, ...)
//!   rather than the single v3 string `!threshold`.
//! * `Mailbox.processBatch` delivers many messages from one origin under one checkpoint
//!   signature set and one Merkle multiproof (`StaticMerkleRootMultisigIsm.verifyBatch`).
//!
//! # Replay protection
//!
//! Both `process` and `processBatch` record every delivery in one slot keyed by the message
//! id, and both check it first, so a message is delivered at most once across the two paths
//! and `delivered(id)` is exact for either. That slot is a fresh storage write (about 22.1k
//! gas) per message. A per-origin bitmap would be cheaper, but `delivered(bytes32)` is given
//! only the id, from which no nonce or leaf index can be recovered; an exact answer needs
//! storage found from the id alone, which for random ids is one fresh slot per id. We keep
//! exactness and pay the slot. The full argument is in the Mailbox's NatSpec.
//!
//! # Gas
//!
//! `cargo bench -p metalayer-contracts` prints this table (revm, whole-transaction gas,
//! 32-byte bodies, a recipient whose `handle` does nothing and that uses the default ISM;
//! floor = 50.4k + 4.3k per signature; Hyperlane 12.1.0 measured the same way on anvil):
//!
//! | row | ours | floor | Hyperlane | ours / Hyperlane |
//! |---|---:|---:|---:|---:|
//! | dispatch, embedded tree (mean of 100) | 48,306 | | 68,131 | 0.71 |
//! | dispatch, separate MerkleTreeHook | 57,638 | | 68,131 | 0.85 |
//! | process MessageId 1-of-1 | 64,763 | 54,700 | 74,046 | 0.87 |
//! | process MessageId 3-of-5 | 73,885 | 63,300 | 86,056 | 0.86 |
//! | process MessageId 6-of-10 | 87,526 | 76,200 | 103,900 | 0.84 |
//! | process MessageId 13-of-18 | 119,335 | 106,300 | 144,973 | 0.82 |
//! | process MerkleRoot 3-of-5 | 96,390 | 63,300 | 116,396 | 0.83 |
//! | batch 3-of-5, k = 1, per message | 95,992 | 63,300 | 86,056 | 1.12 |
//! | batch 3-of-5, k = 16, per message | 34,093 | 63,300 | 86,056 | 0.40 |
//! | batch 3-of-5, k = 64, per message | 31,014 | 63,300 | 86,056 | 0.36 |
//!
//! Met: dispatch ≤ 51k (embedded tree). Missed, and why:
//!
//! * `process` 3-of-5 ≤ 69k: a delivery pays, beyond the floor, a cold access to the ISM
//!   (2.6k), a cold access to the recipient (2.6k) and the read of the default ISM (2.1k),
//!   7.3k in all against the 5.7k the goal leaves; the rest (about 3.3k) is the code that
//!   parses, forwards and checks (about 400 gas per signature beyond ecrecover and its
//!   calldata). The other thresholds land at 0.82–0.87 of Hyperlane for the same reasons
//!   (the goal is 0.8).
//! * MerkleRoot 3-of-5 at 0.83 of Hyperlane: the 1 KiB proof alone is about 16k of calldata.
//! * Batch at k = 64 ≤ 12k per message: each message still pays its delivery record (22.1k,
//!   see above), its `Process`/`ProcessId` events (3k) and its calldata; the batch removes
//!   the per-transaction, per-signature and per-ISM-call costs, about 55k per message
//!   against single deliveries. Reaching 12k needs replay protection without a per-id slot,
//!   which `delivered(bytes32)` rules out.

pub mod bindings;
pub mod deploy;
pub mod metadata;

pub use deploy::{
    CoreConfig, CoreDeployment, DefaultIsm, DeployError, MAX_EMBEDDED_VALIDATORS, RemoteGasConfig,
    deploy_core,
};
