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
//! * The Mailbox can be its own multisig ISM, MessageId (module type 5) or MerkleRoot
//!   (module type 4). Its constructor takes a validator set (at most 25), a threshold and
//!   the module type (`embeddedModuleType`: 4 or 5 with a set, 0 without one; anything else
//!   reverts with `InvalidEmbeddedModuleType`), kept in immutables; it answers
//!   `moduleType`, `validatorsAndThreshold` and `verify` (and, as type 4, `verifyBatch`)
//!   exactly as a `StaticMessageIdMultisigIsm` or `StaticMerkleRootMultisigIsm` for that set
//!   (same metadata, digest, checks and errors: the static ISM and the Mailbox call the same
//!   `MultisigLib` function). When the ISM `recipientIsm` names is the Mailbox itself (as
//!   default ISM, or named by a recipient), `process` verifies in place: no cold call to an
//!   ISM, no second copy and hash of the message; as type 4, so does `processBatch` (the
//!   batch path already requires every recipient's ISM to be the verifying one, here the
//!   Mailbox). [`DefaultIsm::Embedded`] (MessageId) and [`DefaultIsm::EmbeddedMerkleRoot`]
//!   select it in [`deploy_core`]. A Mailbox built with an empty set answers module type 0,
//!   verifies nothing and refuses itself as default ISM. Relayers need nothing new: they
//!   read `moduleType()` and `validatorsAndThreshold()` (and look for `verifyBatch`) at
//!   whatever address `recipientIsm` returns.
//! * Ten cold Mailbox functions whose selectors sort below `process` (`count`,
//!   `defaultHook`, `defaultIsm`, `moduleType`, `postDispatch`, `processedAt`, `processor`,
//!   `setRequiredHook`, `validatorsAndThreshold`, `verifyBatch`) are served by the Mailbox's
//!   fallback (`IMailboxFallback`), because solc dispatches by comparing selectors one by one
//!   in increasing order; `build.js` merges that interface into the artifact, so the Mailbox
//!   ABI lists them as functions. The fallback is payable for `postDispatch` (which still
//!   refuses value with `TreeHookTakesNoValue`) and refuses value for the others.
//! * `process(bytes,bytes)` is served by `process_IyJOut()`, a function without arguments
//!   whose name was searched for (as Seaport's `fulfillBasicOrder_efficient_6GL6yc`) so that
//!   its selector is process's, 0x7c39d130: solc dispatches to it at the same place but runs
//!   no ABI decoder, and `process` decodes its two `bytes` arguments itself, rejecting
//!   exactly the encodings solc's decoder rejects (tested against the static ISM's
//!   solc-decoded `verify` over malformed encodings). `build.js` lists it in the ABI as
//!   `IMailboxProcess.process`, matched by selector, so the ABI is unchanged.
//! * The delivery record of message `id` is stored at storage slot `id` (no mapping hash);
//!   ids are keccak256 outputs, so none can land on the Mailbox's fixed slots.
//! * `Mailbox.processBatch` delivers many messages from one origin under one checkpoint
//!   signature set and one Merkle multiproof (`StaticMerkleRootMultisigIsm.verifyBatch`, or
//!   the Mailbox's own embedded MerkleRoot ISM, in place).
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
//! floor = 50.4k + 4.3k per signature; Hyperlane 12.1.0 measured the same way on anvil).
//! "static ISM" rows use `StaticMessageIdMultisigIsm` / `StaticMerkleRootMultisigIsm` as
//! default ISM, "embedded ISM" rows the Mailbox's own of the same type (same validators,
//! same metadata):
//!
//! | row | ours | floor | Hyperlane | ours / Hyperlane | goal |
//! |---|---:|---:|---:|---:|---|
//! | dispatch, embedded tree (mean of 100) | 48,209 | | 68,131 | 0.71 | ≤ 51,000 met |
//! | dispatch, separate MerkleTreeHook | 57,467 | | 68,131 | 0.84 | |
//! | process MessageId 1-of-1, static ISM | 63,865 | 54,700 | 74,046 | 0.86 | |
//! | process MessageId 3-of-5, static ISM | 72,573 | 63,300 | 86,056 | 0.84 | |
//! | process MessageId 6-of-10, static ISM | 85,593 | 76,200 | 103,900 | 0.82 | |
//! | process MessageId 13-of-18, static ISM | 115,953 | 106,300 | 144,973 | 0.80 | |
//! | process MessageId 1-of-1, embedded ISM | 60,333 | 54,700 | 74,046 | 0.81 | ≤ 59,237 missed |
//! | process MessageId 3-of-5, embedded ISM | 68,999 | 63,300 | 86,056 | 0.80 | ≤ 69,000 met |
//! | process MessageId 6-of-10, embedded ISM | 82,162 | 76,200 | 103,900 | 0.79 | ≤ 83,120 met |
//! | process MessageId 13-of-18, embedded ISM | 112,566 | 106,300 | 144,973 | 0.78 | ≤ 115,978 met |
//! | process MerkleRoot 3-of-5, static ISM | 95,290 | 63,300 | 116,396 | 0.82 | |
//! | process MerkleRoot 3-of-5, embedded ISM | 91,560 | 63,300 | 116,396 | 0.79 | ≤ 93,117 met |
//! | batch 3-of-5, k = 1, per message, static ISM | 95,147 | 63,300 | 86,056 | 1.11 | |
//! | batch 3-of-5, k = 16, per message, static ISM | 33,683 | 63,300 | 86,056 | 0.39 | |
//! | batch 3-of-5, k = 64, per message, static ISM | 30,626 | 63,300 | 86,056 | 0.36 | |
//! | batch 3-of-5, k = 1, per message, embedded ISM | 91,297 | 63,300 | 86,056 | 1.06 | |
//! | batch 3-of-5, k = 16, per message, embedded ISM | 33,354 | 63,300 | 86,056 | 0.39 | |
//! | batch 3-of-5, k = 64, per message, embedded ISM | 30,472 | 63,300 | 86,056 | 0.36 | ≤ 12,000 missed |
//!
//! Met: dispatch ≤ 51k (embedded tree); process 3-of-5 ≤ 69k, 6-of-10 and 13-of-18 ≤ 0.8×
//! Hyperlane (embedded ISM; 13-of-18 also with the static ISM); MerkleRoot 3-of-5 ≤ 0.8×
//! Hyperlane (embedded ISM). Missed, and why:
//!
//! * `process` 1-of-1 ≤ 0.8× Hyperlane (59,237): 60,333 with the embedded ISM. Of it, about
//!   58.3k is fixed by the protocol and this design: the 21k base, 4.1k of calldata, the
//!   fresh delivery record (22.1k), one ecrecover (3k), the cold recipient (2.6k, plus its
//!   own `handle`), the default-ISM read (2.1k, it is owner-settable) and the two events
//!   (3k). What is left is about 2.0k of code: selector dispatch (three comparisons before
//!   `process`) and the hand-written decoding of the two `bytes` arguments about 0.2k, the
//!   message checks and id 0.2k, the ISM lookup, record and events around them 0.2k, the
//!   digest and its three hashes about 0.35k, the signature loop about 0.19k per signature,
//!   the `handle` call 0.2k, and the rest goes to the validator list in memory, memory
//!   growth and solc's stack handling. Reaching 59,237 would take 1.1k more, over half of
//!   all code.
//!   The static ISM adds a cold account access (2.6k) and a call. 3-of-5 meets 69k by 1 gas
//!   (68,999): two more signatures cost 2 × (3k + 0.19k) plus 2.1k of calldata.
//! * MerkleRoot 3-of-5 with the static ISM at 0.82 of Hyperlane: the 1 KiB proof alone is
//!   about 16k of calldata, and the ISM is a separate contract (cold access and call, and a
//!   copy of the 1.3 KiB of arguments); the embedded MerkleRoot ISM saves those 3.7k (0.79).
//! * Batch at k = 64 ≤ 12k per message: each message still pays its delivery record (22.1k,
//!   see above), its `Process`/`ProcessId` events (3k) and its calldata; the batch removes
//!   the per-transaction, per-signature and per-ISM-call costs, about 55k per message
//!   against single deliveries. Reaching 12k needs replay protection without a per-id slot,
//!   which `delivered(bytes32)` rules out.
//!
//! `cargo run --release -p metalayer-contracts --example gas_profile -- 5 3 embedded` prints
//! where one delivery's gas goes (per contract and opcode; `TRACE=1` for every step);
//! `root` and `embedded_root` in place of `embedded` profile the static and the embedded
//! MerkleRoot ISM.

pub mod bindings;
pub mod deploy;
pub mod metadata;

use alloy::primitives::{Address, Bytes, address};

/// Where Multicall3 lives on most EVM chains; rollup-core genesis files used
/// by the tests and benches predeploy [`bindings::Multicall3`] here.
pub const MULTICALL3_ADDRESS: Address = address!("cA11bde05977b3631167028862bE2a173976CA11");

/// Runtime code of [`bindings::Multicall3`], for a genesis predeploy at
/// [`MULTICALL3_ADDRESS`] (or `anvil_setCode`).
pub fn multicall3_runtime() -> Bytes {
    bindings::Multicall3::DEPLOYED_BYTECODE.clone()
}

pub use deploy::{
    CoreConfig, CoreDeployment, DefaultIsm, DeployError, MAX_EMBEDDED_VALIDATORS,
    MERKLE_ROOT_MODULE_TYPE, MESSAGE_ID_MODULE_TYPE, RemoteGasConfig, deploy_core,
};
