//! Properties on random input: round trips, and the incremental tree and its
//! proofs against a naive full-tree computation.

use metalayer_protocol::{
    B256, Bytes, Message, U256,
    merkle::{BatchProof, MerkleProver, MerkleTree, branch_root, hash_pair, zero_hashes},
    metadata::{AggregationMetadata, MerkleRootMultisigMetadata, MessageIdMultisigMetadata},
    signature::Signature,
};
use proptest::prelude::*;

/// The root of the depth-32 tree over `leaves`, level by level from scratch.
fn naive_root(leaves: &[B256]) -> B256 {
    let mut level = leaves.to_vec();
    for h in 0..32 {
        if level.is_empty() {
            return zero_hashes()[32];
        }
        if level.len() % 2 == 1 {
            level.push(zero_hashes()[h]);
        }
        level = level.chunks(2).map(|p| hash_pair(&p[0], &p[1])).collect();
    }
    level[0]
}

fn leaves(n: usize, seed: u64) -> Vec<B256> {
    (0..n as u64)
        .map(|i| {
            let mut buf = [0u8; 16];
            buf[..8].copy_from_slice(&seed.to_be_bytes());
            buf[8..].copy_from_slice(&i.to_be_bytes());
            alloy_primitives::keccak256(buf)
        })
        .collect()
}

fn b256() -> impl Strategy<Value = B256> {
    any::<[u8; 32]>().prop_map(B256::from)
}

fn signature() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>(), any::<u8>()).prop_map(|(r, s, v)| Signature {
        r: U256::from_be_bytes(r),
        s: U256::from_be_bytes(s),
        v,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn message_round_trip(version: u8, nonce: u32, origin: u32, destination: u32,
                          sender in b256(), recipient in b256(), body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let message = Message { version, nonce, origin, sender, destination, recipient, body: Bytes::from(body) };
        let bytes = message.encode();
        prop_assert_eq!(bytes.len(), 77 + message.body.len());
        prop_assert_eq!(Message::decode(&bytes).unwrap(), message);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let decoded = Message::decode(&bytes);
        prop_assert_eq!(decoded.is_ok(), bytes.len() >= 77);
        if let Ok(message) = decoded {
            prop_assert_eq!(message.encode(), bytes);
        }
    }

    #[test]
    fn incremental_tree_equals_naive_tree(n in 0usize..130, seed: u64) {
        let leaves = leaves(n, seed);
        let mut tree = MerkleTree::new();
        let mut prover = MerkleProver::new();
        for leaf in &leaves {
            tree.insert(*leaf).unwrap();
            prover.insert(*leaf).unwrap();
        }
        let root = naive_root(&leaves);
        prop_assert_eq!(tree.root(), root);
        prop_assert_eq!(prover.root(), root);
    }

    #[test]
    fn historic_proofs_verify_and_tampered_ones_do_not(n in 1usize..100, seed: u64, pick: prop::sample::Index,
                                                       at: prop::sample::Index, level in 0usize..32) {
        let leaves = leaves(n, seed);
        let mut prover = MerkleProver::new();
        for leaf in &leaves {
            prover.insert(*leaf).unwrap();
        }
        let count = at.index(n) + 1;
        let index = pick.index(count) as u32;
        let historic_root = naive_root(&leaves[..count]);
        let proof = prover.prove_at(index, count as u64).unwrap();
        prop_assert_eq!(proof.leaf, leaves[index as usize]);
        prop_assert_eq!(branch_root(proof.leaf, &proof.path, index), historic_root);
        let mut tampered = proof.path;
        tampered[level].0[0] ^= 1;
        prop_assert_ne!(branch_root(proof.leaf, &tampered, index), historic_root);
        prop_assert_ne!(branch_root(proof.leaf, &proof.path, index ^ 1), historic_root);
    }

    #[test]
    fn batch_proofs_verify_and_tampered_ones_do_not(n in 1usize..100, seed: u64,
                                                    picks in proptest::collection::btree_set(0usize..100, 1..20),
                                                    at: prop::sample::Index) {
        let leaves = leaves(n, seed);
        let mut prover = MerkleProver::new();
        for leaf in &leaves {
            prover.insert(*leaf).unwrap();
        }
        let count = at.index(n) + 1;
        let indices: Vec<u32> = picks.into_iter().filter(|&i| i < count).map(|i| i as u32).collect();
        prop_assume!(!indices.is_empty());
        let proof = prover.prove_batch(&indices, count as u64).unwrap();
        let proved: Vec<B256> = indices.iter().map(|&i| leaves[i as usize]).collect();
        prop_assert_eq!(proof.root(&proved, count as u64).unwrap(), naive_root(&leaves[..count]));
        let decoded = BatchProof::decode(&proof.encode()).unwrap();
        prop_assert_eq!(&decoded, &proof);
        let mut wrong = proved;
        wrong[0].0[5] ^= 0x80;
        prop_assert_ne!(proof.root(&wrong, count as u64).ok(), Some(naive_root(&leaves[..count])));
    }

    #[test]
    fn message_id_metadata_round_trip(hook in b256(), root in b256(), index: u32,
                                      signatures in proptest::collection::vec(signature(), 0..8)) {
        let m = MessageIdMultisigMetadata { merkle_tree_hook: hook, root, index, signatures };
        let bytes = m.encode();
        prop_assert_eq!(bytes.len(), 68 + 65 * m.signatures.len());
        prop_assert_eq!(MessageIdMultisigMetadata::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn merkle_root_metadata_round_trip(hook in b256(), message_index: u32, id in b256(), signed_index: u32,
                                       proof in proptest::array::uniform32(b256()),
                                       signatures in proptest::collection::vec(signature(), 0..8)) {
        let m = MerkleRootMultisigMetadata {
            merkle_tree_hook: hook, message_index, signed_message_id: id, proof, signed_index, signatures,
        };
        let bytes = m.encode();
        prop_assert_eq!(bytes.len(), 1096 + 65 * m.signatures.len());
        prop_assert_eq!(MerkleRootMultisigMetadata::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn aggregation_metadata_round_trip(modules in proptest::collection::vec(
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)), 0..6)) {
        let m = AggregationMetadata { modules };
        let bytes = m.encode().unwrap();
        prop_assert_eq!(AggregationMetadata::decode(&bytes, m.modules.len()).unwrap(), m);
    }

    #[test]
    fn metadata_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1300), n in 0usize..10) {
        let _ = MessageIdMultisigMetadata::decode(&bytes);
        let _ = MerkleRootMultisigMetadata::decode(&bytes);
        let _ = AggregationMetadata::decode(&bytes, n);
        let _ = BatchProof::decode(&bytes);
    }
}
