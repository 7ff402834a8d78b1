//! Fuzzes every ISM metadata decoder and the batch proof decoder: none may
//! panic, and whatever they accept must encode back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metalayer_protocol::{
    merkle::BatchProof,
    metadata::{AggregationMetadata, MerkleRootMultisigMetadata, MessageIdMultisigMetadata},
};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = MessageIdMultisigMetadata::decode(data) {
        assert_eq!(m.encode(), data);
    }
    if let Ok(m) = MerkleRootMultisigMetadata::decode(data) {
        assert_eq!(m.encode(), data);
    }
    if let Some((&n, rest)) = data.split_first() {
        // Aggregation ranges may overlap or leave gaps, so only decoding is checked.
        let _ = AggregationMetadata::decode(rest, usize::from(n % 16));
    }
    if let Ok(proof) = BatchProof::decode(data) {
        assert_eq!(proof.encode(), data);
    }
});
