//! Hyperlane v3 wire formats, byte for byte: pure data and cryptography, no I/O.
//!
//! Everything the rest of Metalayer exchanges with a chain or with another agent
//! is defined here, and nothing here touches a socket, a file or a runtime:
//!
//! - [`message`]: the packed message (`version ‖ nonce ‖ origin ‖ sender ‖
//!   destination ‖ recipient ‖ body`) and its id, `keccak(message)`.
//! - [`merkle`]: the depth-32 incremental tree the origin `MerkleTreeHook`
//!   keeps ([`merkle::MerkleTree`]), a prover that answers for any leaf *as of
//!   any earlier tree size* ([`merkle::MerkleProver`]), branch-root checks and
//!   a multiproof for batch delivery ([`merkle::BatchProof`]).
//! - [`checkpoint`]: the checkpoint a validator signs, its domain hash, signing
//!   hash and EIP-191 digest.
//! - [`signature`]: 65-byte `r‖s‖v` signatures, recovery that rejects high-s
//!   and malformed input, and the [`signature::Signer`] trait with a local key.
//! - [`signed`] and [`announcement`]: the JSON objects validators publish to
//!   checkpoint storage, and the storage object names.
//! - [`metadata`]: the bytes a multisig, aggregation or batch ISM reads.
//! - [`domain`]: domain ids and the chain metadata every crate shares.
//!
//! The data path: a validator rebuilds the origin tree with [`merkle::MerkleTree`],
//! builds a [`checkpoint::CheckpointWithMessageId`] per leaf, signs its digest
//! with a [`signature::Signer`] and publishes the [`signed::SignedCheckpoint`]
//! JSON; a relayer parses it, recovers the signer, orders a threshold of
//! signatures with [`metadata::order_signatures`] and encodes ISM metadata.
//!
//! # Signature backend
//!
//! Signing and recovery use libsecp256k1 (the `secp256k1` crate, feature
//! `secp256k1`, on by default): recovery is the hot path of every relayer, and
//! the pure-Rust `k256` 0.13 recovery re-verifies the signature and runs about
//! five times slower. Without the feature the same API falls back to `k256`.
//! `cargo bench -p metalayer-protocol` prints both beside raw libsecp256k1.

pub mod announcement;
pub mod checkpoint;
pub mod domain;
mod hex_quantity;
pub mod merkle;
pub mod message;
pub mod metadata;
pub mod signature;
pub mod signed;

pub use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
pub use checkpoint::{Checkpoint, CheckpointWithMessageId};
pub use message::{Message, MessageError};
pub use signature::{LocalSigner, Signature, SignatureError, Signer};

/// The 32-byte form of an EVM address: left-padded with 12 zero bytes.
pub fn address_to_bytes32(address: Address) -> B256 {
    address.into_word()
}

/// The EVM address held in a 32-byte word, if its upper 12 bytes are zero.
///
/// Returns `None` for a word with non-zero upper bytes, as the v3 contracts'
/// `bytes32ToAddress` reverts on one.
pub fn bytes32_to_address(word: B256) -> Option<Address> {
    word[..12].iter().all(|b| *b == 0).then(|| Address::from_word(word))
}

/// `keccak("\x19Ethereum Signed Message:\n32" ‖ hash)`: the EIP-191 digest of
/// a 32-byte hash, which is what validators sign.
pub fn eip191_hash(hash: B256) -> B256 {
    let mut buf = [0u8; 60];
    buf[..28].copy_from_slice(b"\x19Ethereum Signed Message:\n32");
    buf[28..].copy_from_slice(hash.as_slice());
    keccak256(buf)
}

/// `keccak("\x19Ethereum Signed Message:\n" ‖ len ‖ data)`: EIP-191 over any
/// byte string (the Merkle test vectors hash their string leaves this way).
pub fn eip191_hash_bytes(data: &[u8]) -> B256 {
    let mut buf = Vec::with_capacity(28 + 20 + data.len());
    buf.extend_from_slice(b"\x19Ethereum Signed Message:\n");
    buf.extend_from_slice(data.len().to_string().as_bytes());
    buf.extend_from_slice(data);
    keccak256(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip191_of_a_hash_equals_the_generic_form() {
        let h = keccak256(b"metalayer");
        assert_eq!(eip191_hash(h), eip191_hash_bytes(h.as_slice()));
    }

    #[test]
    fn bytes32_address_round_trip_and_rejects_dirty_words() {
        let a = Address::repeat_byte(0x11);
        assert_eq!(bytes32_to_address(address_to_bytes32(a)), Some(a));
        let mut dirty = address_to_bytes32(a);
        dirty[0] = 1;
        assert_eq!(bytes32_to_address(dirty), None);
    }
}
