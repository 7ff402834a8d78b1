//! The depth-32 append-only Merkle tree of message ids.
//!
//! Leaves are message ids as they are; a node is `keccak(left ‖ right)`; an
//! empty subtree of height `h` hashes to `Z[h]` with `Z[0] = 0` and
//! `Z[h+1] = keccak(Z[h] ‖ Z[h])`. The on-chain `MerkleTreeHook` keeps only
//! the 32-entry branch ([`MerkleTree`]); agents that must prove leaves keep
//! every complete node ([`MerkleProver`]).

mod batch;
mod lanes;
mod prover;
mod tree;

use std::sync::OnceLock;

use alloy_primitives::{B256, keccak256};

pub use batch::{BatchProof, BatchProofError};
pub use lanes::eight_lane_keccak;
pub use prover::{MerkleProver, ProofError};
pub use tree::{MerkleTree, TreeFullError};

/// Number of levels above the leaves.
pub const TREE_DEPTH: usize = 32;
/// Most leaves the tree accepts (`2^32 − 1`; the last slot stays unused).
pub const MAX_LEAVES: u64 = (1 << TREE_DEPTH) - 1;

/// `keccak(left ‖ right)`.
pub fn hash_pair(left: &B256, right: &B256) -> B256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(left.as_slice());
    buf[32..].copy_from_slice(right.as_slice());
    keccak256(buf)
}

/// `Z[0..=32]`: the root of an empty subtree of each height.
pub fn zero_hashes() -> &'static [B256; TREE_DEPTH + 1] {
    static ZERO: OnceLock<[B256; TREE_DEPTH + 1]> = OnceLock::new();
    ZERO.get_or_init(|| {
        let mut z = [B256::ZERO; TREE_DEPTH + 1];
        for h in 0..TREE_DEPTH {
            z[h + 1] = hash_pair(&z[h], &z[h]);
        }
        z
    })
}

/// The 32 sibling hashes that prove one leaf, level 0 first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The proven leaf (a message id).
    pub leaf: B256,
    /// The leaf's index in the tree.
    pub index: u32,
    /// Sibling hashes from the leaf's level up.
    pub path: [B256; TREE_DEPTH],
}

impl Proof {
    /// The root this proof yields: [`branch_root`] of its own fields.
    pub fn root(&self) -> B256 {
        branch_root(self.leaf, &self.path, self.index)
    }
}

/// `branchRoot`: hashes `leaf` up through `path`, taking the sibling on the
/// left wherever bit `i` of `index` is set.
pub fn branch_root(leaf: B256, path: &[B256; TREE_DEPTH], index: u32) -> B256 {
    let mut node = leaf;
    for (i, sibling) in path.iter().enumerate() {
        node = if (index >> i) & 1 == 1 {
            hash_pair(sibling, &node)
        } else {
            hash_pair(&node, sibling)
        };
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::b256;

    #[test]
    fn zero_hashes_match_the_specification() {
        let z = zero_hashes();
        assert_eq!(z[1], b256!("ad3228b676f7d3cd4284a5443f17f1962b36e491b30a40b2405849e597ba5fb5"));
        assert_eq!(z[2], b256!("b4c11951957c6f8f642c4af61cd6b24640fec6dc7fc607ee8206a99e92410d30"));
        assert_eq!(
            hash_pair(&z[31], &z[31]),
            b256!("27ae5ba08d7291c96c8cbddcc148bf48a6d68c7974b94356f53754ef6171d757")
        );
    }
}
