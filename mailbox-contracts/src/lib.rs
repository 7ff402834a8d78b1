//! The on-chain half of Metalayer: Hyperlane v3-compatible Solidity contracts.
//!
//! This crate will hold the alloy `sol!` bindings generated from the committed
//! artifacts in `out/`, the contracts' bytecode, and deploy helpers that put a
//! full core stack (Mailbox, MerkleTreeHook, IGP with its gas oracle,
//! ValidatorAnnounce, a multisig ISM, TestRecipient) on any chain through an
//! alloy provider. Not written yet.
