//! Signed objects as validators publish them, and the storage object names.
//!
//! The JSON form is `{"value": …, "signature": {"r","s","v"},
//! "serialized_signature": "0x…"}` written with two-space indentation.
//! Readers also accept `checkpoint` or `announcement` for `value` and ignore
//! `serialized_signature` (the signature fields are authoritative).

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize, Serializer, de::DeserializeOwned, de::IgnoredAny};

use crate::{
    announcement::Announcement,
    checkpoint::CheckpointWithMessageId,
    signature::{Signature, SignatureError, Signer, recover_address},
};

/// Something a validator signs: it names the 32-byte digest.
pub trait Signable {
    /// The EIP-191 digest that is signed.
    fn digest(&self) -> B256;
}

impl Signable for CheckpointWithMessageId {
    fn digest(&self) -> B256 {
        Self::digest(self)
    }
}

impl Signable for Announcement {
    fn digest(&self) -> B256 {
        Self::digest(self)
    }
}

/// A value with the signature over its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<T> {
    /// The signed value.
    pub value: T,
    /// The signature over `value.digest()`.
    pub signature: Signature,
}

/// A signed checkpoint as stored in `checkpoint_{index}_with_id.json`.
pub type SignedCheckpoint = Signed<CheckpointWithMessageId>;
/// A signed announcement as stored in `announcement.json`.
pub type SignedAnnouncement = Signed<Announcement>;

/// Why stored JSON could not be read as a signed object.
#[derive(Debug, thiserror::Error)]
#[error("signed object JSON: {0}")]
pub struct SignedJsonError(#[from] serde_json::Error);

impl<T: Signable> Signed<T> {
    /// Signs `value` with `signer`.
    pub fn sign(value: T, signer: &dyn Signer) -> Result<Self, SignatureError> {
        let signature = signer.sign_digest(value.digest())?;
        Ok(Self { value, signature })
    }

    /// The address that signed, or why none can be recovered.
    pub fn recover(&self) -> Result<Address, SignatureError> {
        recover_address(self.value.digest(), &self.signature)
    }
}

impl<T: Serialize> Signed<T> {
    /// The stored form: pretty JSON, byte-identical to what validators write.
    /// Fails only for a `T` whose own `Serialize` fails; never yields an
    /// empty object in place of one.
    pub fn to_json_pretty(&self) -> Result<String, SignedJsonError> {
        Ok(serde_json::to_string_pretty(self)?)
    }
}

impl<T: DeserializeOwned> Signed<T> {
    /// Parses the stored form.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SignedJsonError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

impl<T: Serialize> Serialize for Signed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a, T> {
            value: &'a T,
            signature: &'a Signature,
            serialized_signature: String,
        }
        Wire {
            value: &self.value,
            signature: &self.signature,
            serialized_signature: format!(
                "0x{}",
                alloy_primitives::hex::encode(self.signature.to_bytes())
            ),
        }
        .serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Signed<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire<T> {
            #[serde(alias = "checkpoint", alias = "announcement")]
            value: T,
            signature: Signature,
            #[serde(default, rename = "serialized_signature")]
            _serialized_signature: Option<IgnoredAny>,
        }
        let wire = Wire::<T>::deserialize(deserializer)?;
        Ok(Self { value: wire.value, signature: wire.signature })
    }
}

/// Which object names a checkpoint store uses: local directories name their
/// files differently from object stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageLayout {
    /// `file://` directories: `{index}_with_id.json`, `index.json`.
    Local,
    /// S3 and other object stores: `checkpoint_{index}_with_id.json`,
    /// `checkpoint_latest_index.json`.
    ObjectStore,
}

/// The signed announcement object.
pub const ANNOUNCEMENT_KEY: &str = "announcement.json";
/// The agent metadata object.
pub const METADATA_KEY: &str = "metadata_latest.json";
/// The reorg flag whose presence stops a validator.
pub const REORG_FLAG_KEY: &str = "reorg_flag.json";
/// Per-RPC diagnostics written with the reorg flag.
pub const REORG_RPC_RESPONSES_KEY: &str = "reorg_rpc_responses.json";

impl StorageLayout {
    /// The object holding the signed checkpoint at `index`.
    pub fn checkpoint_key(self, index: u32) -> String {
        match self {
            Self::Local => format!("{index}_with_id.json"),
            Self::ObjectStore => format!("checkpoint_{index}_with_id.json"),
        }
    }

    /// The object holding the latest signed index.
    pub const fn latest_index_key(self) -> &'static str {
        match self {
            Self::Local => "index.json",
            Self::ObjectStore => "checkpoint_latest_index.json",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Checkpoint, LocalSigner};

    fn checkpoint() -> CheckpointWithMessageId {
        CheckpointWithMessageId {
            checkpoint: Checkpoint {
                merkle_tree_hook: B256::repeat_byte(0xab),
                origin: 5,
                root: B256::repeat_byte(0xcd),
                index: 9,
            },
            message_id: B256::repeat_byte(0xef),
        }
    }

    #[test]
    fn signed_checkpoints_round_trip_and_recover() {
        let signer = LocalSigner::from_bytes(&B256::repeat_byte(3)).unwrap();
        let signed = Signed::sign(checkpoint(), &signer).unwrap();
        assert_eq!(signed.recover(), Ok(signer.address()));
        let json = signed.to_json_pretty().unwrap();
        let back = SignedCheckpoint::from_json(json.as_bytes()).unwrap();
        assert_eq!(back, signed);
        let aliased = json.replacen("\"value\"", "\"checkpoint\"", 1);
        assert_eq!(SignedCheckpoint::from_json(aliased.as_bytes()).unwrap(), signed);
    }

    #[test]
    fn tampered_or_malformed_json_is_refused_or_recovers_someone_else() {
        let signer = LocalSigner::from_bytes(&B256::repeat_byte(3)).unwrap();
        let signed = Signed::sign(checkpoint(), &signer).unwrap();
        let tampered = signed.to_json_pretty().unwrap().replace("\"index\": 9", "\"index\": 10");
        let parsed = SignedCheckpoint::from_json(tampered.as_bytes()).unwrap();
        assert_ne!(parsed.recover(), Ok(signer.address()));
        assert!(SignedCheckpoint::from_json(b"{}").is_err());
        let bad_r = signed.to_json_pretty().unwrap().replacen("\"r\": \"0x", "\"r\": \"", 1);
        assert!(SignedCheckpoint::from_json(bad_r.as_bytes()).is_err());
    }

    #[test]
    fn storage_names_follow_the_layout() {
        assert_eq!(StorageLayout::Local.checkpoint_key(7), "7_with_id.json");
        assert_eq!(StorageLayout::ObjectStore.checkpoint_key(7), "checkpoint_7_with_id.json");
        assert_eq!(StorageLayout::Local.latest_index_key(), "index.json");
        assert_eq!(StorageLayout::ObjectStore.latest_index_key(), "checkpoint_latest_index.json");
    }
}
