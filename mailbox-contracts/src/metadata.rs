//! Metadata for batch delivery (`Mailbox.processBatch`), which the protocol crate's
//! single-message layouts do not cover.

use alloy::primitives::B256;
use metalayer_protocol::{Signature, merkle::BatchProof};

/// What `StaticMerkleRootMultisigIsm.verifyBatch` reads: one checkpoint signature set
/// and one multiproof for every message of the batch.
///
/// Wire form: `merkleTreeHook (32) ‖ be32(signedIndex) ‖ signedMessageId (32) ‖
/// be32(len(proof)) ‖ proof ‖ signatures (65 each)`, where `proof` is
/// [`BatchProof::encode`] against the tree of `signedIndex + 1` leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMultisigMetadata {
    /// The origin merkle tree hook, 32-byte form.
    pub merkle_tree_hook: B256,
    /// Index of the signed checkpoint; every proven leaf is at or below it.
    pub signed_index: u32,
    /// The message id at `signed_index`, as signed.
    pub signed_message_id: B256,
    /// Multiproof of the batch's message ids, in the order of the batch.
    pub proof: BatchProof,
    /// Exactly `threshold` signatures, in validator-list order.
    pub signatures: Vec<Signature>,
}

impl BatchMultisigMetadata {
    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let proof = self.proof.encode();
        let mut out = Vec::with_capacity(72 + proof.len() + 65 * self.signatures.len());
        out.extend_from_slice(self.merkle_tree_hook.as_slice());
        out.extend_from_slice(&self.signed_index.to_be_bytes());
        out.extend_from_slice(self.signed_message_id.as_slice());
        // A proof of up to 65535 leaves is far below 4 GiB.
        out.extend_from_slice(&(proof.len() as u32).to_be_bytes());
        out.extend_from_slice(&proof);
        for signature in &self.signatures {
            out.extend_from_slice(&signature.to_bytes());
        }
        out
    }
}
