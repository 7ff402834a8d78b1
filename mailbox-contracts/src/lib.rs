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
//! exactness and pay the slot, so batch delivery costs about 22k gas per message more than
//! a bitmap would allow (see the gas bench, `cargo bench -p metalayer-contracts`).

pub mod bindings;
pub mod deploy;
pub mod metadata;

pub use deploy::{
    CoreConfig, CoreDeployment, DefaultIsm, DeployError, RemoteGasConfig, deploy_core,
};
