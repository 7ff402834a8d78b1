//! The incremental tree exactly as `Merkle.sol` keeps it: a branch and a count.

use alloy_primitives::B256;

use super::{MAX_LEAVES, TREE_DEPTH, hash_pair, zero_hashes};

/// The tree already holds [`MAX_LEAVES`] leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("merkle tree full: it holds the maximum of {MAX_LEAVES} leaves")]
pub struct TreeFullError;

/// The on-chain incremental Merkle tree: 32 branch nodes and a leaf count.
///
/// Memory is constant whatever the number of leaves; it can give the root but
/// not proofs (see [`super::MerkleProver`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    branch: [B256; TREE_DEPTH],
    count: u64,
}

impl Default for MerkleTree {
    fn default() -> Self {
        Self::new()
    }
}

impl MerkleTree {
    /// An empty tree.
    pub const fn new() -> Self {
        Self { branch: [B256::ZERO; TREE_DEPTH], count: 0 }
    }

    /// A tree from the `(branch, count)` pair the hook's `tree()` returns.
    pub fn from_parts(branch: [B256; TREE_DEPTH], count: u64) -> Result<Self, TreeFullError> {
        if count > MAX_LEAVES {
            return Err(TreeFullError);
        }
        Ok(Self { branch, count })
    }

    /// Number of leaves inserted.
    pub const fn count(&self) -> u64 {
        self.count
    }

    /// The branch nodes, level 0 first.
    pub const fn branch(&self) -> &[B256; TREE_DEPTH] {
        &self.branch
    }

    /// Appends a leaf and returns its index.
    pub fn insert(&mut self, leaf: B256) -> Result<u32, TreeFullError> {
        if self.count >= MAX_LEAVES {
            return Err(TreeFullError);
        }
        let index = self.count as u32;
        self.count += 1;
        let mut size = self.count;
        let mut node = leaf;
        for level in 0..TREE_DEPTH {
            if size & 1 == 1 {
                self.branch[level] = node;
                return Ok(index);
            }
            node = hash_pair(&self.branch[level], &node);
            size >>= 1;
        }
        // `count <= MAX_LEAVES` keeps `size` odd at some level below 32.
        unreachable!("a tree below MAX_LEAVES always stores the new node")
    }

    /// The current root.
    pub fn root(&self) -> B256 {
        let zero = zero_hashes();
        let mut node = B256::ZERO;
        for (level, (branch, zero)) in self.branch.iter().zip(zero).enumerate() {
            node = if (self.count >> level) & 1 == 1 {
                hash_pair(branch, &node)
            } else {
                hash_pair(&node, zero)
            };
        }
        node
    }

    /// `latestCheckpoint()`: the root and the index of the last leaf, or
    /// `None` on an empty tree (where the contract reverts).
    pub fn latest_checkpoint(&self) -> Option<(B256, u32)> {
        self.count.checked_sub(1).map(|index| (self.root(), index as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tree_has_the_known_root_and_no_checkpoint() {
        let tree = MerkleTree::new();
        assert_eq!(tree.root(), hash_pair(&zero_hashes()[31], &zero_hashes()[31]));
        assert_eq!(tree.latest_checkpoint(), None);
    }

    #[test]
    fn a_full_tree_refuses_more_leaves() {
        let mut tree = MerkleTree::from_parts([B256::ZERO; TREE_DEPTH], MAX_LEAVES - 1).unwrap();
        assert_eq!(tree.insert(B256::repeat_byte(1)), Ok((MAX_LEAVES - 1) as u32));
        assert_eq!(tree.insert(B256::repeat_byte(2)), Err(TreeFullError));
        assert!(MerkleTree::from_parts([B256::ZERO; TREE_DEPTH], MAX_LEAVES + 1).is_err());
    }
}
