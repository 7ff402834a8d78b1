//! The incremental tree exactly as `Merkle.sol` keeps it: a branch and a count.

use alloy_primitives::B256;

use super::{MAX_LEAVES, TREE_DEPTH, hash_pair, lanes::keccak64_x8, zero_hashes};

/// Roots computed together by [`MerkleTree::insert_with_roots`].
const LANES: usize = 8;

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

    /// Appends `leaves` and returns the root after each, as [`Self::root`]
    /// after each [`Self::insert`] would, eight roots at a time (see
    /// [`super::lanes`]). Nothing is appended if they do not all fit.
    pub fn insert_with_roots(&mut self, leaves: &[B256]) -> Result<Vec<B256>, TreeFullError> {
        if self.count + leaves.len() as u64 > MAX_LEAVES {
            return Err(TreeFullError);
        }
        let zero = zero_hashes();
        let mut roots = Vec::with_capacity(leaves.len());
        for chunk in leaves.chunks(LANES) {
            // Each lane's tree as of its leaf; lanes past the chunk's end
            // repeat its last tree and are not read.
            let mut states = [(self.branch, self.count); LANES];
            for (lane, leaf) in chunk.iter().enumerate() {
                self.insert(*leaf)?;
                states[lane] = (self.branch, self.count);
            }
            let last = states[chunk.len() - 1];
            states[chunk.len()..].fill(last);
            let mut nodes = [B256::ZERO; LANES];
            for (level, zero) in zero.iter().take(TREE_DEPTH).enumerate() {
                let inputs: [[u8; 64]; LANES] = std::array::from_fn(|lane| {
                    let (branch, count) = &states[lane];
                    let (left, right) = if (count >> level) & 1 == 1 {
                        (&branch[level], &nodes[lane])
                    } else {
                        (&nodes[lane], zero)
                    };
                    let mut input = [0u8; 64];
                    input[..32].copy_from_slice(left.as_slice());
                    input[32..].copy_from_slice(right.as_slice());
                    input
                });
                nodes = keccak64_x8(&inputs);
            }
            roots.extend_from_slice(&nodes[..chunk.len()]);
        }
        Ok(roots)
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
    fn roots_computed_together_equal_one_root_after_each_insert() {
        let leaf = |i: u64| alloy_primitives::keccak256(i.to_be_bytes());
        // Batches of every length around the lane count, from trees of
        // several shapes (empty, odd, a power of two).
        for start in [0u64, 1, 7, 8, 64, 1000] {
            for len in [0usize, 1, 7, 8, 9, 17, 40] {
                let mut one_by_one = MerkleTree::new();
                for i in 0..start {
                    one_by_one.insert(leaf(i)).unwrap();
                }
                let mut together = one_by_one.clone();
                let leaves: Vec<B256> = (start..start + len as u64).map(leaf).collect();
                let expected: Vec<B256> = leaves
                    .iter()
                    .map(|l| {
                        one_by_one.insert(*l).unwrap();
                        one_by_one.root()
                    })
                    .collect();
                assert_eq!(together.insert_with_roots(&leaves).unwrap(), expected, "{start}+{len}");
                assert_eq!(together, one_by_one, "{start}+{len}");
            }
        }
    }

    #[test]
    fn roots_together_refuse_a_batch_that_overfills_and_append_nothing() {
        let mut tree = MerkleTree::from_parts([B256::ZERO; TREE_DEPTH], MAX_LEAVES - 2).unwrap();
        let before = tree.clone();
        assert_eq!(tree.insert_with_roots(&[B256::ZERO; 3]), Err(TreeFullError));
        assert_eq!(tree, before);
        assert_eq!(tree.insert_with_roots(&[B256::ZERO; 2]).unwrap().len(), 2);
    }

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
