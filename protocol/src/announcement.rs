//! A validator's announcement of where it publishes its checkpoints.

use alloy_primitives::{Address, B256, keccak256};
use serde::{Deserialize, Serialize};

use crate::eip191_hash;

/// The suffix of an announcement's domain hash.
pub const ANNOUNCEMENT_DOMAIN_SUFFIX: &[u8] = b"HYPERLANE_ANNOUNCEMENT";

/// `keccak(be32(domain) ‖ mailbox ‖ "HYPERLANE_ANNOUNCEMENT")`. Note the
/// Mailbox address here, where checkpoints use the `MerkleTreeHook`.
pub fn announcement_domain_hash(domain: u32, mailbox: B256) -> B256 {
    let mut buf = Vec::with_capacity(4 + 32 + ANNOUNCEMENT_DOMAIN_SUFFIX.len());
    buf.extend_from_slice(&domain.to_be_bytes());
    buf.extend_from_slice(mailbox.as_slice());
    buf.extend_from_slice(ANNOUNCEMENT_DOMAIN_SUFFIX);
    keccak256(buf)
}

/// "Validator `validator` publishes checkpoints for this Mailbox at
/// `storage_location`."
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Announcement {
    /// The validator's signing address.
    pub validator: Address,
    /// The origin Mailbox in 32-byte form.
    pub mailbox_address: B256,
    /// The origin domain id.
    pub mailbox_domain: u32,
    /// Where checkpoints are published, e.g. `s3://bucket/region` or `file:///path`.
    pub storage_location: String,
}

impl Announcement {
    /// `keccak(announcementDomainHash ‖ utf8(storage_location))`.
    pub fn signing_hash(&self) -> B256 {
        let mut buf = Vec::with_capacity(32 + self.storage_location.len());
        buf.extend_from_slice(
            announcement_domain_hash(self.mailbox_domain, self.mailbox_address).as_slice(),
        );
        buf.extend_from_slice(self.storage_location.as_bytes());
        keccak256(buf)
    }

    /// The EIP-191 digest `ValidatorAnnounce.announce` recovers from.
    pub fn digest(&self) -> B256 {
        eip191_hash(self.signing_hash())
    }

    /// `keccak(validator ‖ utf8(storage_location))`: the contract's replay key.
    pub fn replay_id(&self) -> B256 {
        let mut buf = Vec::with_capacity(20 + self.storage_location.len());
        buf.extend_from_slice(self.validator.as_slice());
        buf.extend_from_slice(self.storage_location.as_bytes());
        keccak256(buf)
    }
}
