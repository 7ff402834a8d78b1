//! The metadata bytes ISMs read, and the ordering of collected signatures.

use alloy_primitives::{Address, B256};

use crate::{
    merkle::TREE_DEPTH,
    signature::{Signature, SignatureError},
};

/// Length of one signature in metadata.
pub const SIGNATURE_LEN: usize = 65;

/// Why metadata could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// Shorter than the fixed part of its layout.
    #[error("{kind} metadata is {len} bytes, shorter than its {min}-byte fixed part")]
    TooShort {
        /// Which layout.
        kind: &'static str,
        /// Bytes given.
        len: usize,
        /// Fixed part.
        min: usize,
    },
    /// The signature bytes are not a whole number of 65-byte signatures.
    #[error("{kind} metadata has {len} signature bytes, not a multiple of 65")]
    SignatureBytes {
        /// Which layout.
        kind: &'static str,
        /// Bytes after the fixed part.
        len: usize,
    },
    /// A signature did not parse.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// An aggregation range points outside the metadata or runs backwards.
    #[error("aggregation range {index} is [{start}, {end}) in {len} bytes")]
    BadRange {
        /// Module index.
        index: usize,
        /// Start offset.
        start: u32,
        /// End offset.
        end: u32,
        /// Metadata length.
        len: usize,
    },
    /// Aggregation metadata larger than a u32 offset can address.
    #[error("aggregation metadata of {0} bytes does not fit 32-bit offsets")]
    TooLarge(usize),
    /// Fewer distinct validator signatures than the threshold.
    #[error("{have} signatures from distinct validators in the set, threshold is {threshold}")]
    BelowThreshold {
        /// Usable signatures.
        have: usize,
        /// Required.
        threshold: usize,
    },
    /// A threshold of zero or above the validator count.
    #[error("threshold {threshold} is not within 1..={validators}")]
    BadThreshold {
        /// Given threshold.
        threshold: usize,
        /// Validator set size.
        validators: usize,
    },
}

fn read_signatures(kind: &'static str, bytes: &[u8]) -> Result<Vec<Signature>, MetadataError> {
    if !bytes.len().is_multiple_of(SIGNATURE_LEN) {
        return Err(MetadataError::SignatureBytes { kind, len: bytes.len() });
    }
    Ok(bytes.chunks_exact(SIGNATURE_LEN).map(Signature::from_bytes).collect::<Result<_, _>>()?)
}

fn write_signatures(out: &mut Vec<u8>, signatures: &[Signature]) {
    for s in signatures {
        out.extend_from_slice(&s.to_bytes());
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// MessageId multisig metadata: `hook ‖ root ‖ be32(index) ‖ signatures`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageIdMultisigMetadata {
    /// The origin `MerkleTreeHook` in 32-byte form.
    pub merkle_tree_hook: B256,
    /// The signed checkpoint root.
    pub root: B256,
    /// The signed checkpoint index.
    pub index: u32,
    /// Exactly `threshold` signatures in validator-list order.
    pub signatures: Vec<Signature>,
}

impl MessageIdMultisigMetadata {
    /// Bytes before the signatures.
    pub const FIXED_LEN: usize = 68;

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::FIXED_LEN + SIGNATURE_LEN * self.signatures.len());
        out.extend_from_slice(self.merkle_tree_hook.as_slice());
        out.extend_from_slice(self.root.as_slice());
        out.extend_from_slice(&self.index.to_be_bytes());
        write_signatures(&mut out, &self.signatures);
        out
    }

    /// Parses the wire form.
    pub fn decode(bytes: &[u8]) -> Result<Self, MetadataError> {
        if bytes.len() < Self::FIXED_LEN {
            return Err(MetadataError::TooShort {
                kind: "MessageId multisig",
                len: bytes.len(),
                min: Self::FIXED_LEN,
            });
        }
        Ok(Self {
            merkle_tree_hook: B256::from_slice(&bytes[..32]),
            root: B256::from_slice(&bytes[32..64]),
            index: u32_at(bytes, 64),
            signatures: read_signatures("MessageId multisig", &bytes[Self::FIXED_LEN..])?,
        })
    }
}

/// MerkleRoot multisig metadata: `hook ‖ be32(messageIndex) ‖ signedMessageId
/// ‖ proof[32] ‖ be32(signedIndex) ‖ signatures`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleRootMultisigMetadata {
    /// The origin `MerkleTreeHook` in 32-byte form.
    pub merkle_tree_hook: B256,
    /// Leaf index of the message being delivered.
    pub message_index: u32,
    /// The message id at the signed index.
    pub signed_message_id: B256,
    /// Proof of the message against the tree at the signed index.
    pub proof: [B256; TREE_DEPTH],
    /// The signed checkpoint index (≥ `message_index`).
    pub signed_index: u32,
    /// Exactly `threshold` signatures in validator-list order.
    pub signatures: Vec<Signature>,
}

impl MerkleRootMultisigMetadata {
    /// Bytes before the signatures.
    pub const FIXED_LEN: usize = 1096;

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::FIXED_LEN + SIGNATURE_LEN * self.signatures.len());
        out.extend_from_slice(self.merkle_tree_hook.as_slice());
        out.extend_from_slice(&self.message_index.to_be_bytes());
        out.extend_from_slice(self.signed_message_id.as_slice());
        for node in &self.proof {
            out.extend_from_slice(node.as_slice());
        }
        out.extend_from_slice(&self.signed_index.to_be_bytes());
        write_signatures(&mut out, &self.signatures);
        out
    }

    /// Parses the wire form.
    pub fn decode(bytes: &[u8]) -> Result<Self, MetadataError> {
        if bytes.len() < Self::FIXED_LEN {
            return Err(MetadataError::TooShort {
                kind: "MerkleRoot multisig",
                len: bytes.len(),
                min: Self::FIXED_LEN,
            });
        }
        let mut proof = [B256::ZERO; TREE_DEPTH];
        for (i, node) in proof.iter_mut().enumerate() {
            *node = B256::from_slice(&bytes[68 + 32 * i..100 + 32 * i]);
        }
        Ok(Self {
            merkle_tree_hook: B256::from_slice(&bytes[..32]),
            message_index: u32_at(bytes, 32),
            signed_message_id: B256::from_slice(&bytes[36..68]),
            proof,
            signed_index: u32_at(bytes, 1092),
            signatures: read_signatures("MerkleRoot multisig", &bytes[Self::FIXED_LEN..])?,
        })
    }
}

/// Aggregation ISM metadata: one optional sub-metadata per module.
///
/// Wire form: a header of `8·n` bytes (per module `be32(start) ‖ be32(end)`,
/// absolute offsets, `start = 0` meaning "skipped"), then the blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregationMetadata {
    /// Sub-metadata per module, in module order; `None` skips the module.
    pub modules: Vec<Option<Vec<u8>>>,
}

impl AggregationMetadata {
    /// The wire form. An empty blob (a NULL module) still gets a non-zero
    /// start, so the ISM runs it.
    pub fn encode(&self) -> Result<Vec<u8>, MetadataError> {
        let header = 8 * self.modules.len();
        let total = header + self.modules.iter().flatten().map(Vec::len).sum::<usize>();
        if u32::try_from(total).is_err() {
            return Err(MetadataError::TooLarge(total));
        }
        let mut out = vec![0u8; header];
        for (i, blob) in self.modules.iter().enumerate() {
            if let Some(blob) = blob {
                let start = out.len() as u32;
                out.extend_from_slice(blob);
                out[8 * i..8 * i + 4].copy_from_slice(&start.to_be_bytes());
                let end = out.len() as u32;
                out[8 * i + 4..8 * i + 8].copy_from_slice(&end.to_be_bytes());
            }
        }
        Ok(out)
    }

    /// Parses the wire form for an ISM with `module_count` modules.
    pub fn decode(bytes: &[u8], module_count: usize) -> Result<Self, MetadataError> {
        let header = 8 * module_count;
        if bytes.len() < header {
            return Err(MetadataError::TooShort {
                kind: "aggregation",
                len: bytes.len(),
                min: header,
            });
        }
        let modules = (0..module_count)
            .map(|index| {
                let (start, end) = (u32_at(bytes, 8 * index), u32_at(bytes, 8 * index + 4));
                if start == 0 {
                    return Ok(None);
                }
                bytes
                    .get(start as usize..end as usize)
                    .map(|blob| Some(blob.to_vec()))
                    .ok_or(MetadataError::BadRange { index, start, end, len: bytes.len() })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { modules })
    }
}

/// Keeps exactly `threshold` signatures, ordered as the multisig ISM needs:
/// by the signer's position in `validators`.
///
/// `collected` pairs each signature with the address recovered from it
/// (recover before calling). Signers outside the set are dropped, and a
/// validator that appears twice counts once.
pub fn order_signatures(
    validators: &[Address],
    threshold: usize,
    collected: impl IntoIterator<Item = (Address, Signature)>,
) -> Result<Vec<Signature>, MetadataError> {
    if threshold == 0 || threshold > validators.len() {
        return Err(MetadataError::BadThreshold { threshold, validators: validators.len() });
    }
    let mut by_position: Vec<Option<Signature>> = vec![None; validators.len()];
    for (signer, signature) in collected {
        if let Some(pos) = validators.iter().position(|v| *v == signer) {
            by_position[pos].get_or_insert(signature);
        }
    }
    let ordered: Vec<Signature> = by_position.into_iter().flatten().take(threshold).collect();
    if ordered.len() < threshold {
        return Err(MetadataError::BelowThreshold { have: ordered.len(), threshold });
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;

    fn sig(n: u64) -> Signature {
        Signature { r: U256::from(n), s: U256::from(n + 1), v: 27 }
    }

    #[test]
    fn signatures_follow_validator_order_and_stop_at_threshold() {
        let v: Vec<Address> = (1..=5u8).map(Address::repeat_byte).collect();
        let collected = vec![
            (v[4], sig(5)),
            (Address::repeat_byte(9), sig(9)),
            (v[1], sig(2)),
            (v[1], sig(22)),
            (v[3], sig(4)),
        ];
        assert_eq!(order_signatures(&v, 3, collected.clone()), Ok(vec![sig(2), sig(4), sig(5)]));
        assert_eq!(order_signatures(&v, 2, collected.clone()), Ok(vec![sig(2), sig(4)]));
        assert_eq!(
            order_signatures(&v, 4, collected),
            Err(MetadataError::BelowThreshold { have: 3, threshold: 4 })
        );
        assert_eq!(
            order_signatures(&v, 0, []),
            Err(MetadataError::BadThreshold { threshold: 0, validators: 5 })
        );
    }

    #[test]
    fn aggregation_skips_and_null_modules() {
        let meta = AggregationMetadata { modules: vec![None, Some(vec![]), Some(vec![1, 2, 3])] };
        let bytes = meta.encode().unwrap();
        assert_eq!(&bytes[..8], &[0; 8]);
        assert_eq!(&bytes[8..16], &[0, 0, 0, 24, 0, 0, 0, 24]);
        assert_eq!(&bytes[16..24], &[0, 0, 0, 24, 0, 0, 0, 27]);
        assert_eq!(AggregationMetadata::decode(&bytes, 3), Ok(meta));
        let mut bad = bytes.clone();
        bad[23] = 99;
        assert!(matches!(
            AggregationMetadata::decode(&bad, 3),
            Err(MetadataError::BadRange { index: 2, .. })
        ));
        assert!(AggregationMetadata::decode(&bytes[..20], 3).is_err());
    }

    #[test]
    fn multisig_metadata_length_checks() {
        assert!(matches!(
            MessageIdMultisigMetadata::decode(&[0; 67]),
            Err(MetadataError::TooShort { .. })
        ));
        assert!(matches!(
            MessageIdMultisigMetadata::decode(&[0; 69]),
            Err(MetadataError::SignatureBytes { len: 1, .. })
        ));
        assert!(MessageIdMultisigMetadata::decode(&[0; 68]).is_ok_and(|m| m.signatures.is_empty()));
        assert!(matches!(
            MerkleRootMultisigMetadata::decode(&[0; 1095]),
            Err(MetadataError::TooShort { .. })
        ));
        assert!(
            MerkleRootMultisigMetadata::decode(&[0; 1096 + 130])
                .is_ok_and(|m| m.signatures.len() == 2)
        );
    }
}
