//! A tree that keeps every complete node, so it can prove any leaf against the
//! root the tree had at any earlier size.

use alloy_primitives::B256;

use super::{
    BatchProof, MAX_LEAVES, Proof, TREE_DEPTH, TreeFullError, batch, hash_pair, zero_hashes,
};

/// Why a proof could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The tree size asked for is larger than the tree.
    #[error("tree size {count} is beyond the {len} leaves the prover holds")]
    CountBeyondTree {
        /// Requested tree size.
        count: u64,
        /// Leaves held.
        len: u64,
    },
    /// The leaf was not yet in the tree at the requested size.
    #[error("leaf index {index} is not below the tree size {count}")]
    IndexBeyondCount {
        /// Requested leaf.
        index: u32,
        /// Requested tree size.
        count: u64,
    },
    /// The batch request itself is malformed.
    #[error(transparent)]
    Batch(#[from] super::BatchProofError),
}

/// Every leaf and every complete interior node of the tree.
///
/// A complete subtree never changes once its last leaf is in, so the node it
/// had at an earlier tree size is either stored here (complete then), the
/// zero hash (empty then), or the one partial subtree on the boundary, which
/// is rebuilt from stored nodes in at most 32 hashes. Memory is about 64
/// bytes per leaf.
#[derive(Debug, Clone, Default)]
pub struct MerkleProver {
    /// `levels[h][p]`: the complete node at height `h`, position `p`.
    levels: Vec<Vec<B256>>,
}

impl MerkleProver {
    /// An empty prover.
    pub fn new() -> Self {
        Self { levels: vec![Vec::new(); TREE_DEPTH] }
    }

    /// Number of leaves.
    pub fn count(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The leaf at `index`, if present.
    pub fn leaf(&self, index: u32) -> Option<B256> {
        self.levels.first()?.get(index as usize).copied()
    }

    /// Appends a leaf and returns its index.
    pub fn insert(&mut self, leaf: B256) -> Result<u32, TreeFullError> {
        if self.levels.is_empty() {
            self.levels = vec![Vec::new(); TREE_DEPTH];
        }
        let index = self.count();
        if index >= MAX_LEAVES {
            return Err(TreeFullError);
        }
        self.levels[0].push(leaf);
        let mut pos = index as usize;
        for h in 0..TREE_DEPTH - 1 {
            if pos & 1 == 0 {
                break;
            }
            let node = hash_pair(&self.levels[h][pos - 1], &self.levels[h][pos]);
            self.levels[h + 1].push(node);
            pos >>= 1;
        }
        Ok(index as u32)
    }

    /// The root now.
    pub fn root(&self) -> B256 {
        self.node_at(TREE_DEPTH, 0, self.count())
    }

    /// The root the tree had when it held `count` leaves.
    pub fn root_at(&self, count: u64) -> Result<B256, ProofError> {
        self.check_count(count)?;
        Ok(self.node_at(TREE_DEPTH, 0, count))
    }

    /// Proof of leaf `index` against the current root.
    pub fn prove(&self, index: u32) -> Result<Proof, ProofError> {
        self.prove_at(index, self.count())
    }

    /// Proof of leaf `index` against the root the tree had at `count` leaves:
    /// what a MerkleRoot multisig ISM checks against a checkpoint signed at
    /// index `count − 1`.
    pub fn prove_at(&self, index: u32, count: u64) -> Result<Proof, ProofError> {
        self.check_count(count)?;
        if u64::from(index) >= count {
            return Err(ProofError::IndexBeyondCount { index, count });
        }
        let mut path = [B256::ZERO; TREE_DEPTH];
        for (h, sibling) in path.iter_mut().enumerate() {
            *sibling = self.node_at(h, (u64::from(index) >> h) ^ 1, count);
        }
        Ok(Proof { leaf: self.levels[0][index as usize], index, path })
    }

    /// One multiproof for several leaves against the root at `count` leaves.
    pub fn prove_batch(&self, indices: &[u32], count: u64) -> Result<BatchProof, ProofError> {
        self.check_count(count)?;
        if let Some(&index) = indices.iter().find(|&&i| u64::from(i) >= count) {
            return Err(ProofError::IndexBeyondCount { index, count });
        }
        let leaves: Vec<B256> = indices.iter().map(|&i| self.levels[0][i as usize]).collect();
        let mut siblings = Vec::new();
        batch::fold(indices, &leaves, count, |h, pos| {
            let node = self.node_at(h, pos, count);
            siblings.push(node);
            Ok(node)
        })?;
        Ok(BatchProof { indices: indices.to_vec(), siblings })
    }

    fn check_count(&self, count: u64) -> Result<(), ProofError> {
        let len = self.count();
        if count > len {
            return Err(ProofError::CountBeyondTree { count, len });
        }
        Ok(())
    }

    /// The node at height `h`, position `pos`, as it was at `count` leaves.
    fn node_at(&self, h: usize, pos: u64, count: u64) -> B256 {
        let start = pos << h;
        if start >= count {
            return zero_hashes()[h];
        }
        let end = (pos + 1) << h;
        if end <= count {
            return self.levels[h][pos as usize];
        }
        // The partial subtree on the boundary: only one of its children can be
        // partial again, so this recursion costs at most `h` hashes.
        hash_pair(&self.node_at(h - 1, pos * 2, count), &self.node_at(h - 1, pos * 2 + 1, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::MerkleTree;

    fn leaf(i: u32) -> B256 {
        B256::left_padding_from(&(u64::from(i) + 1).to_be_bytes())
    }

    #[test]
    fn historic_roots_match_the_incremental_tree_at_each_size() {
        let mut prover = MerkleProver::new();
        let mut tree = MerkleTree::new();
        let mut roots = vec![tree.root()];
        for i in 0..37 {
            prover.insert(leaf(i)).unwrap();
            tree.insert(leaf(i)).unwrap();
            roots.push(tree.root());
        }
        for (count, root) in roots.iter().enumerate() {
            assert_eq!(prover.root_at(count as u64).unwrap(), *root, "count {count}");
        }
        for count in 1..=37u64 {
            for index in 0..count as u32 {
                let proof = prover.prove_at(index, count).unwrap();
                assert_eq!(proof.root(), roots[count as usize], "leaf {index} at {count}");
            }
        }
    }

    #[test]
    fn requests_beyond_the_tree_are_refused() {
        let mut prover = MerkleProver::new();
        prover.insert(leaf(0)).unwrap();
        assert_eq!(prover.prove_at(0, 2), Err(ProofError::CountBeyondTree { count: 2, len: 1 }));
        assert_eq!(prover.prove_at(1, 1), Err(ProofError::IndexBeyondCount { index: 1, count: 1 }));
        assert!(prover.root_at(2).is_err());
    }
}
