//! A multiproof: several leaves against one root, sharing their siblings.
//!
//! # Algorithm
//!
//! The proof holds the leaf indices, strictly ascending, and the sibling
//! hashes the verifier cannot compute itself, in the order it consumes them.
//! The verifier knows the tree size `count` (the signed checkpoint index plus
//! one). Level by level from the leaves, for each known node at position `p`
//! (in ascending order):
//! - if `p` is even and the next known node is `p + 1`, the two are hashed
//!   together;
//! - if `p` is even and the subtree at `p + 1` starts at or beyond `count`,
//!   the sibling is the zero hash of that height and is not in the proof;
//! - otherwise the sibling (right of an even `p`, left of an odd `p`) is the
//!   next hash of the proof.
//!
//! The parents, at `p / 2`, form the next level; after 32 levels one node is
//! left, the root. Every sibling must be consumed.
//!
//! # Encoding
//!
//! `be16(k) ‖ k × be32(index) ‖ m × bytes32(sibling)`, where `m` is whatever
//! remains divided by 32 (the remainder must be a whole number of hashes).

use alloy_primitives::B256;

use super::{MAX_LEAVES, TREE_DEPTH, hash_pair, zero_hashes};

/// Why a batch proof is malformed or does not fit its leaves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchProofError {
    /// A batch proves at least one leaf and at most `u16::MAX`.
    #[error("a batch proof covers 1 to 65535 leaves, this one {0}")]
    LeafCount(usize),
    /// Indices must be strictly ascending (no leaf twice).
    #[error("leaf indices must be strictly ascending: {prev} then {next}")]
    NotAscending {
        /// The earlier index.
        prev: u32,
        /// The index that does not follow it.
        next: u32,
    },
    /// A leaf index is not inside the tree the proof is checked against.
    #[error("leaf index {index} is not below the tree size {count}")]
    IndexBeyondCount {
        /// Offending index.
        index: u32,
        /// Tree size.
        count: u64,
    },
    /// The tree size is impossible.
    #[error("tree size {0} exceeds the maximum of {MAX_LEAVES} leaves")]
    CountTooLarge(u64),
    /// Number of leaves supplied differs from the number of indices.
    #[error("{leaves} leaves given for {indices} indices")]
    LeafMismatch {
        /// Leaves supplied.
        leaves: usize,
        /// Indices in the proof.
        indices: usize,
    },
    /// The proof ran out of sibling hashes.
    #[error("the proof has too few sibling hashes")]
    MissingSibling,
    /// Sibling hashes were left unused.
    #[error("the proof has {0} unused sibling hashes")]
    UnusedSiblings(usize),
    /// The encoded bytes do not parse.
    #[error("encoded batch proof is malformed: {0}")]
    Malformed(&'static str),
}

/// A multiproof of several leaves against one root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchProof {
    /// Leaf indices, strictly ascending.
    pub indices: Vec<u32>,
    /// Sibling hashes in the order the verifier consumes them.
    pub siblings: Vec<B256>,
}

impl BatchProof {
    /// The root of the tree of `count` leaves that these `leaves` (one per
    /// index, same order) and siblings imply.
    pub fn root(&self, leaves: &[B256], count: u64) -> Result<B256, BatchProofError> {
        let mut next = self.siblings.iter();
        let root = fold(&self.indices, leaves, count, |_, _| {
            next.next().copied().ok_or(BatchProofError::MissingSibling)
        })?;
        match next.len() {
            0 => Ok(root),
            unused => Err(BatchProofError::UnusedSiblings(unused)),
        }
    }

    /// The wire form (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 4 * self.indices.len() + 32 * self.siblings.len());
        out.extend_from_slice(&(self.indices.len() as u16).to_be_bytes());
        for index in &self.indices {
            out.extend_from_slice(&index.to_be_bytes());
        }
        for sibling in &self.siblings {
            out.extend_from_slice(sibling.as_slice());
        }
        out
    }

    /// Parses the wire form. Index order and sibling count are checked
    /// against the leaves by [`Self::root`].
    pub fn decode(bytes: &[u8]) -> Result<Self, BatchProofError> {
        let (k, rest) =
            bytes.split_first_chunk::<2>().ok_or(BatchProofError::Malformed("no leaf count"))?;
        let k = usize::from(u16::from_be_bytes(*k));
        let (index_bytes, sibling_bytes) = rest
            .split_at_checked(4 * k)
            .ok_or(BatchProofError::Malformed("fewer index bytes than the leaf count says"))?;
        if !sibling_bytes.len().is_multiple_of(32) {
            return Err(BatchProofError::Malformed(
                "sibling bytes are not a whole number of hashes",
            ));
        }
        let indices = index_bytes
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let siblings = sibling_bytes.chunks_exact(32).map(B256::from_slice).collect();
        Ok(Self { indices, siblings })
    }
}

/// Hashes `leaves` at `indices` up to the root of a tree of `count` leaves,
/// asking `sibling(height, position)` for every node it cannot compute.
pub(super) fn fold<F>(
    indices: &[u32],
    leaves: &[B256],
    count: u64,
    mut sibling: F,
) -> Result<B256, BatchProofError>
where
    F: FnMut(usize, u64) -> Result<B256, BatchProofError>,
{
    check_indices(indices, count)?;
    if leaves.len() != indices.len() {
        return Err(BatchProofError::LeafMismatch { leaves: leaves.len(), indices: indices.len() });
    }
    let zero = zero_hashes();
    let mut nodes: Vec<(u64, B256)> =
        indices.iter().map(|&i| u64::from(i)).zip(leaves.iter().copied()).collect();
    for (h, zero_h) in zero.iter().enumerate().take(TREE_DEPTH) {
        let mut parents = Vec::with_capacity(nodes.len().div_ceil(2));
        let mut i = 0;
        while i < nodes.len() {
            let (pos, node) = nodes[i];
            let parent = if pos & 1 == 1 {
                hash_pair(&sibling(h, pos - 1)?, &node)
            } else if nodes.get(i + 1).is_some_and(|(p, _)| *p == pos + 1) {
                i += 1;
                hash_pair(&node, &nodes[i].1)
            } else if (pos + 1) << h >= count {
                hash_pair(&node, zero_h)
            } else {
                hash_pair(&node, &sibling(h, pos + 1)?)
            };
            parents.push((pos >> 1, parent));
            i += 1;
        }
        nodes = parents;
    }
    Ok(nodes[0].1)
}

fn check_indices(indices: &[u32], count: u64) -> Result<(), BatchProofError> {
    if indices.is_empty() || indices.len() > usize::from(u16::MAX) {
        return Err(BatchProofError::LeafCount(indices.len()));
    }
    if count > MAX_LEAVES {
        return Err(BatchProofError::CountTooLarge(count));
    }
    for pair in indices.windows(2) {
        if pair[0] >= pair[1] {
            return Err(BatchProofError::NotAscending { prev: pair[0], next: pair[1] });
        }
    }
    let last = indices[indices.len() - 1];
    if u64::from(last) >= count {
        return Err(BatchProofError::IndexBeyondCount { index: last, count });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::MerkleProver;

    fn prover(n: u32) -> MerkleProver {
        let mut p = MerkleProver::new();
        for i in 0..n {
            p.insert(alloy_primitives::keccak256(i.to_be_bytes())).unwrap();
        }
        p
    }

    #[test]
    fn batch_proofs_give_the_historic_root_and_round_trip() {
        let p = prover(50);
        for (indices, count) in
            [(vec![0], 1), (vec![3, 4, 9], 10), (vec![0, 1, 2, 3], 4), (vec![5, 17, 40, 41], 50)]
        {
            let proof = p.prove_batch(&indices, count).unwrap();
            let leaves: Vec<_> = indices.iter().map(|&i| p.leaf(i).unwrap()).collect();
            assert_eq!(proof.root(&leaves, count).unwrap(), p.root_at(count).unwrap());
            assert_eq!(BatchProof::decode(&proof.encode()).as_ref(), Ok(&proof));
        }
    }

    #[test]
    fn a_contiguous_batch_shares_siblings() {
        let p = prover(64);
        let indices: Vec<u32> = (0..64).collect();
        // A full 64-leaf subtree needs no sibling below height 6 and none
        // above it either: everything to its right is empty.
        assert!(p.prove_batch(&indices, 64).unwrap().siblings.is_empty());
        let single = p.prove_batch(&[10], 64).unwrap();
        assert_eq!(single.siblings.len(), 6);
    }

    #[test]
    fn malformed_batches_are_refused() {
        let p = prover(8);
        let leaf = |i| p.leaf(i).unwrap();
        let proof = p.prove_batch(&[1, 2], 8).unwrap();
        assert_eq!(
            proof.root(&[leaf(1)], 8),
            Err(BatchProofError::LeafMismatch { leaves: 1, indices: 2 })
        );
        let mut short = proof.clone();
        short.siblings.pop();
        assert_eq!(short.root(&[leaf(1), leaf(2)], 8), Err(BatchProofError::MissingSibling));
        let mut long = proof.clone();
        long.siblings.push(B256::ZERO);
        assert_eq!(long.root(&[leaf(1), leaf(2)], 8), Err(BatchProofError::UnusedSiblings(1)));
        let swapped = BatchProof { indices: vec![2, 1], siblings: proof.siblings.clone() };
        assert_eq!(
            swapped.root(&[leaf(2), leaf(1)], 8),
            Err(BatchProofError::NotAscending { prev: 2, next: 1 })
        );
        assert!(matches!(
            proof.root(&[leaf(1), leaf(2)], 2),
            Err(BatchProofError::IndexBeyondCount { .. })
        ));
        assert!(BatchProof::decode(&[0]).is_err());
        assert!(BatchProof::decode(&[0, 2, 0, 0, 0, 1]).is_err());
        assert!(BatchProof::decode(&[0, 0, 1]).is_err());
    }
}
