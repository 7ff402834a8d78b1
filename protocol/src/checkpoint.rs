//! Checkpoints: what a validator attests about the origin tree.

use alloy_primitives::{B256, keccak256};
use serde::{Deserialize, Serialize};

use crate::eip191_hash;

/// The suffix of a checkpoint's domain hash.
pub const CHECKPOINT_DOMAIN_SUFFIX: &[u8] = b"HYPERLANE";

/// `keccak(be32(origin) ‖ merkle_tree_hook ‖ "HYPERLANE")`: binds a checkpoint
/// to one origin domain and one `MerkleTreeHook`.
pub fn domain_hash(origin: u32, merkle_tree_hook: B256) -> B256 {
    let mut buf = [0u8; 4 + 32 + 9];
    buf[..4].copy_from_slice(&origin.to_be_bytes());
    buf[4..36].copy_from_slice(merkle_tree_hook.as_slice());
    buf[36..].copy_from_slice(CHECKPOINT_DOMAIN_SUFFIX);
    keccak256(buf)
}

/// "After leaf `index` was inserted, the origin tree had root `root`."
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The origin's `MerkleTreeHook` in 32-byte form.
    #[serde(rename = "merkle_tree_hook_address")]
    pub merkle_tree_hook: B256,
    /// Origin domain id.
    #[serde(rename = "mailbox_domain")]
    pub origin: u32,
    /// Tree root when the tree held `index + 1` leaves.
    pub root: B256,
    /// Index of the last leaf covered.
    pub index: u32,
}

/// A checkpoint that also names the leaf at its index: what v3 validators sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckpointWithMessageId {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The message id at `checkpoint.index`.
    pub message_id: B256,
}

impl CheckpointWithMessageId {
    /// `keccak(domainHash ‖ root ‖ be32(index) ‖ messageId)`.
    pub fn signing_hash(&self) -> B256 {
        let c = &self.checkpoint;
        let mut buf = [0u8; 32 + 32 + 4 + 32];
        buf[..32].copy_from_slice(domain_hash(c.origin, c.merkle_tree_hook).as_slice());
        buf[32..64].copy_from_slice(c.root.as_slice());
        buf[64..68].copy_from_slice(&c.index.to_be_bytes());
        buf[68..].copy_from_slice(self.message_id.as_slice());
        keccak256(buf)
    }

    /// The EIP-191 digest of [`Self::signing_hash`]: the 32 bytes signed.
    pub fn digest(&self) -> B256 {
        eip191_hash(self.signing_hash())
    }
}
