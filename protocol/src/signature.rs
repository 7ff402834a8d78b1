//! secp256k1 signatures as validators make them: 65 bytes `r ‖ s ‖ v`,
//! `v ∈ {27, 28}`, low-s, over an EIP-191 digest.

use std::fmt;

use alloy_primitives::{Address, B256, U256, keccak256, uint};
use serde::{Deserialize, Serialize};

use crate::hex_quantity;

/// The secp256k1 group order `n`.
const ORDER: U256 = uint!(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141_U256);
/// `n / 2`: the largest `s` a canonical (low-s) signature may have.
const HALF_ORDER: U256 =
    uint!(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0_U256);

/// Why a signature was refused or a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not 65 bytes.
    #[error("a signature is 65 bytes (r ‖ s ‖ v), got {0}")]
    Length(usize),
    /// `v` is not 27 or 28.
    #[error("signature v is {0}, expected 27 or 28")]
    BadV(u8),
    /// `r` or `s` is zero or not below the group order.
    #[error("signature {0} is out of range (zero or not below the curve order)")]
    OutOfRange(&'static str),
    /// `s` is in the upper half of the order (a malleated signature).
    #[error("signature s is in the upper half of the curve order (high-s, malleable)")]
    HighS,
    /// No public key recovers from this digest and signature.
    #[error("no public key recovers from this signature")]
    Unrecoverable,
    /// A secret key outside `[1, n − 1]`, or not 32 bytes of hex.
    #[error("invalid secret key: {0}")]
    BadKey(&'static str),
    /// A signing backend failed (a remote signer, for example).
    #[error("signer failed: {0}")]
    Signer(String),
}

/// A recoverable secp256k1 signature in Ethereum's form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature {
    /// The `r` scalar; JSON as a minimal-hex quantity.
    #[serde(with = "hex_quantity")]
    pub r: U256,
    /// The `s` scalar; JSON as a minimal-hex quantity.
    #[serde(with = "hex_quantity")]
    pub s: U256,
    /// 27 or 28 (recovery id + 27).
    pub v: u8,
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(0x{})", alloy_primitives::hex::encode(self.to_bytes()))
    }
}

impl Signature {
    /// `r ‖ s ‖ v`.
    pub fn to_bytes(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[..32].copy_from_slice(&self.r.to_be_bytes::<32>());
        out[32..64].copy_from_slice(&self.s.to_be_bytes::<32>());
        out[64] = self.v;
        out
    }

    /// Parses `r ‖ s ‖ v`. Only the length is checked here; [`recover_address`]
    /// checks the values.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignatureError> {
        let bytes: &[u8; 65] = bytes.try_into().map_err(|_| SignatureError::Length(bytes.len()))?;
        Ok(Self {
            r: U256::from_be_slice(&bytes[..32]),
            s: U256::from_be_slice(&bytes[32..64]),
            v: bytes[64],
        })
    }

    /// Checks what the on-chain `ECDSA.recover` checks before recovering:
    /// `v ∈ {27, 28}`, `0 < r < n`, `0 < s ≤ n/2`. Returns the recovery id.
    fn validate(&self) -> Result<u8, SignatureError> {
        let recid = match self.v {
            27 | 28 => self.v - 27,
            v => return Err(SignatureError::BadV(v)),
        };
        if self.r.is_zero() || self.r >= ORDER {
            return Err(SignatureError::OutOfRange("r"));
        }
        if self.s.is_zero() {
            return Err(SignatureError::OutOfRange("s"));
        }
        if self.s > HALF_ORDER {
            return Err(SignatureError::HighS);
        }
        Ok(recid)
    }
}

/// The address that signed `digest` (already EIP-191 hashed), refusing
/// high-s, out-of-range and wrong-`v` signatures as the ISM contracts do.
pub fn recover_address(digest: B256, signature: &Signature) -> Result<Address, SignatureError> {
    let recid = signature.validate()?;
    let uncompressed =
        backend::recover(&digest.0, &signature.r.to_be_bytes(), &signature.s.to_be_bytes(), recid)?;
    Ok(Address::from_slice(&keccak256(uncompressed)[12..]))
}

/// Something that signs 32-byte digests with one secp256k1 key.
///
/// Implemented by [`LocalSigner`]; remote and hardware keys implement it in
/// the agent crates.
pub trait Signer: Send + Sync {
    /// The signing key's Ethereum address.
    fn address(&self) -> Address;

    /// Signs `digest` as is (the caller applies EIP-191 first); low-s,
    /// `v ∈ {27, 28}`.
    fn sign_digest(&self, digest: B256) -> Result<Signature, SignatureError>;
}

/// A secp256k1 secret key held in memory. `Debug` shows only its address.
pub struct LocalSigner {
    key: backend::SecretKey,
    address: Address,
}

impl fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSigner").field("address", &self.address).finish_non_exhaustive()
    }
}

impl LocalSigner {
    /// A signer from 32 secret-key bytes.
    pub fn from_bytes(bytes: &B256) -> Result<Self, SignatureError> {
        let key = backend::SecretKey::from_bytes(&bytes.0)?;
        let address = Address::from_slice(&keccak256(key.public_uncompressed())[12..]);
        Ok(Self { key, address })
    }

    /// A signer from 64 hex digits, with or without `0x`. The error never
    /// repeats the input.
    pub fn from_hex(hex: &str) -> Result<Self, SignatureError> {
        let hex = hex.trim();
        let hex = hex.strip_prefix("0x").unwrap_or(hex);
        let mut bytes = B256::ZERO;
        alloy_primitives::hex::decode_to_slice(hex, bytes.as_mut_slice())
            .map_err(|_| SignatureError::BadKey("expected 64 hex digits"))?;
        Self::from_bytes(&bytes)
    }
}

impl Signer for LocalSigner {
    fn address(&self) -> Address {
        self.address
    }

    fn sign_digest(&self, digest: B256) -> Result<Signature, SignatureError> {
        let (rs, recid) = self.key.sign(&digest.0)?;
        Ok(Signature {
            r: U256::from_be_slice(&rs[..32]),
            s: U256::from_be_slice(&rs[32..]),
            v: 27 + recid,
        })
    }
}

/// libsecp256k1: the default, fast backend.
#[cfg(feature = "secp256k1")]
mod backend {
    use secp256k1::{Message, PublicKey, SECP256K1, ecdsa};

    use super::SignatureError;

    pub(super) struct SecretKey(secp256k1::SecretKey);

    impl SecretKey {
        pub(super) fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SignatureError> {
            secp256k1::SecretKey::from_byte_array(*bytes)
                .map(Self)
                .map_err(|_| SignatureError::BadKey("zero or not below the curve order"))
        }

        pub(super) fn public_uncompressed(&self) -> [u8; 64] {
            let full = PublicKey::from_secret_key(SECP256K1, &self.0).serialize_uncompressed();
            let mut out = [0u8; 64];
            out.copy_from_slice(&full[1..]);
            out
        }

        /// libsecp256k1 always produces low-s signatures.
        pub(super) fn sign(&self, digest: &[u8; 32]) -> Result<([u8; 64], u8), SignatureError> {
            let sig = SECP256K1.sign_ecdsa_recoverable(Message::from_digest(*digest), &self.0);
            let (recid, rs) = sig.serialize_compact();
            Ok((rs, i32::from(recid) as u8))
        }
    }

    pub(super) fn recover(
        digest: &[u8; 32],
        r: &[u8; 32],
        s: &[u8; 32],
        recid: u8,
    ) -> Result<[u8; 64], SignatureError> {
        let mut rs = [0u8; 64];
        rs[..32].copy_from_slice(r);
        rs[32..].copy_from_slice(s);
        let recid = ecdsa::RecoveryId::try_from(i32::from(recid))
            .map_err(|_| SignatureError::Unrecoverable)?;
        let sig = ecdsa::RecoverableSignature::from_compact(&rs, recid)
            .map_err(|_| SignatureError::Unrecoverable)?;
        let key = SECP256K1
            .recover_ecdsa(Message::from_digest(*digest), &sig)
            .map_err(|_| SignatureError::Unrecoverable)?;
        let full = key.serialize_uncompressed();
        let mut out = [0u8; 64];
        out.copy_from_slice(&full[1..]);
        Ok(out)
    }
}

/// RustCrypto `k256`: pure Rust, used when the `secp256k1` feature is off.
#[cfg(not(feature = "secp256k1"))]
mod backend {
    pub(super) use super::k256_backend::{SecretKey, recover};
}

/// RustCrypto `k256` signing and recovery: the pure-Rust backend, and the one
/// the benchmarks compare against libsecp256k1.
pub mod k256_backend {
    use k256::ecdsa::{RecoveryId, Signature as K256Signature, SigningKey, VerifyingKey};

    use super::SignatureError;

    /// A k256 secret key.
    pub struct SecretKey(SigningKey);

    impl SecretKey {
        /// From 32 bytes in `[1, n − 1]`.
        pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SignatureError> {
            SigningKey::from_bytes(bytes.into())
                .map(Self)
                .map_err(|_| SignatureError::BadKey("zero or not below the curve order"))
        }

        /// The uncompressed public key without its `0x04` tag.
        pub fn public_uncompressed(&self) -> [u8; 64] {
            let point = self.0.verifying_key().to_encoded_point(false);
            let mut out = [0u8; 64];
            out.copy_from_slice(&point.as_bytes()[1..]);
            out
        }

        /// Signs a prehashed digest; normalises to low-s.
        pub fn sign(&self, digest: &[u8; 32]) -> Result<([u8; 64], u8), SignatureError> {
            let (sig, mut recid) = self
                .0
                .sign_prehash_recoverable(digest)
                .map_err(|e| SignatureError::Signer(e.to_string()))?;
            let sig = match sig.normalize_s() {
                Some(low) => {
                    recid = RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced());
                    low
                }
                None => sig,
            };
            Ok((sig.to_bytes().into(), recid.to_byte()))
        }
    }

    /// Recovers the uncompressed public key (without its tag).
    pub fn recover(
        digest: &[u8; 32],
        r: &[u8; 32],
        s: &[u8; 32],
        recid: u8,
    ) -> Result<[u8; 64], SignatureError> {
        let sig = K256Signature::from_scalars(*r, *s).map_err(|_| SignatureError::Unrecoverable)?;
        let recid = RecoveryId::from_byte(recid).ok_or(SignatureError::Unrecoverable)?;
        let key = VerifyingKey::recover_from_prehash(digest, &sig, recid)
            .map_err(|_| SignatureError::Unrecoverable)?;
        let point = key.to_encoded_point(false);
        let mut out = [0u8; 64];
        out.copy_from_slice(&point.as_bytes()[1..]);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(byte: u8) -> LocalSigner {
        LocalSigner::from_bytes(&B256::repeat_byte(byte)).unwrap()
    }

    #[test]
    fn signatures_recover_to_the_signer_and_are_low_s() {
        for byte in 1..=20u8 {
            let s = signer(byte);
            let digest = keccak256([byte]);
            let sig = s.sign_digest(digest).unwrap();
            assert!(sig.s <= HALF_ORDER);
            assert!(sig.v == 27 || sig.v == 28);
            assert_eq!(recover_address(digest, &sig), Ok(s.address()));
            assert_eq!(Signature::from_bytes(&sig.to_bytes()), Ok(sig));
        }
    }

    #[test]
    fn both_backends_agree() {
        let key = [7u8; 32];
        let k = k256_backend::SecretKey::from_bytes(&key).unwrap();
        let local = LocalSigner::from_bytes(&B256::from(key)).unwrap();
        let digest = keccak256(b"both");
        let (rs, recid) = k.sign(&digest.0).unwrap();
        // RFC 6979 makes both deterministic: the same signature.
        let sig = local.sign_digest(digest).unwrap();
        assert_eq!(sig.to_bytes()[..64], rs);
        assert_eq!(sig.v, 27 + recid);
        let pk =
            k256_backend::recover(&digest.0, &sig.r.to_be_bytes(), &sig.s.to_be_bytes(), recid)
                .unwrap();
        assert_eq!(pk, k.public_uncompressed());
    }

    #[test]
    fn malformed_and_malleated_signatures_are_refused() {
        let s = signer(9);
        let digest = keccak256(b"x");
        let sig = s.sign_digest(digest).unwrap();
        let high = Signature { s: ORDER - sig.s, v: if sig.v == 27 { 28 } else { 27 }, ..sig };
        assert_eq!(recover_address(digest, &high), Err(SignatureError::HighS));
        assert_eq!(
            recover_address(digest, &Signature { v: 1, ..sig }),
            Err(SignatureError::BadV(1))
        );
        assert_eq!(
            recover_address(digest, &Signature { r: U256::ZERO, ..sig }),
            Err(SignatureError::OutOfRange("r"))
        );
        assert_eq!(
            recover_address(digest, &Signature { r: ORDER, ..sig }),
            Err(SignatureError::OutOfRange("r"))
        );
        assert_eq!(
            recover_address(digest, &Signature { s: U256::ZERO, ..sig }),
            Err(SignatureError::OutOfRange("s"))
        );
        assert_eq!(Signature::from_bytes(&[0; 64]), Err(SignatureError::Length(64)));
        // A valid-looking signature over another digest recovers someone else.
        assert_ne!(recover_address(keccak256(b"y"), &sig), Ok(s.address()));
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        assert!(LocalSigner::from_bytes(&B256::ZERO).is_err());
        let err = LocalSigner::from_hex("0xhunter2hunter2").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        let hex = format!("0x{}", "11".repeat(32));
        assert_eq!(LocalSigner::from_hex(&hex).unwrap().address(), signer(0x11).address());
        assert!(!format!("{:?}", signer(0x11)).contains("1111111111"));
    }
}
