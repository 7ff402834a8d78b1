//! The v3 message: tightly packed, big-endian, 77-byte header then the body.

use alloy_primitives::{B256, Bytes, keccak256};
use serde::{Deserialize, Serialize};

/// The only message version the v3 Mailbox accepts.
pub const VERSION: u8 = 3;
/// Length of the fixed header before the body.
pub const HEADER_LEN: usize = 77;

/// Why a byte string is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Fewer bytes than the 77-byte header.
    #[error("message is {len} bytes, shorter than the {HEADER_LEN}-byte header")]
    TooShort {
        /// Length of the rejected buffer.
        len: usize,
    },
}

/// A Hyperlane v3 message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// Protocol version; [`VERSION`] for every message a v3 Mailbox emits.
    pub version: u8,
    /// The origin Mailbox's counter before this dispatch.
    pub nonce: u32,
    /// Origin domain id.
    pub origin: u32,
    /// The dispatch caller in 32-byte form.
    pub sender: B256,
    /// Destination domain id.
    pub destination: u32,
    /// The recipient on the destination in 32-byte form.
    pub recipient: B256,
    /// Arbitrary payload, no length prefix on the wire.
    pub body: Bytes,
}

impl Message {
    /// The packed encoding, exactly as `Message.formatMessage` builds it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the packed encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out.extend_from_slice(&self.origin.to_be_bytes());
        out.extend_from_slice(self.sender.as_slice());
        out.extend_from_slice(&self.destination.to_be_bytes());
        out.extend_from_slice(self.recipient.as_slice());
        out.extend_from_slice(&self.body);
    }

    /// Parses a packed message. The version is not checked here: a Mailbox
    /// rejects a wrong version, a parser only rejects what cannot be read.
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        if bytes.len() < HEADER_LEN {
            return Err(MessageError::TooShort { len: bytes.len() });
        }
        let u32_at = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        Ok(Self {
            version: bytes[0],
            nonce: u32_at(1),
            origin: u32_at(5),
            sender: B256::from_slice(&bytes[9..41]),
            destination: u32_at(41),
            recipient: B256::from_slice(&bytes[45..77]),
            body: Bytes::copy_from_slice(&bytes[HEADER_LEN..]),
        })
    }

    /// The message id: `keccak(encode())`, which is also its Merkle leaf.
    pub fn id(&self) -> B256 {
        keccak256(self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffers_are_refused_with_their_length() {
        for len in [0, 1, 76] {
            assert_eq!(Message::decode(&vec![3; len]), Err(MessageError::TooShort { len }));
        }
        assert!(Message::decode(&[3; 77]).is_ok_and(|m| m.body.is_empty()));
    }
}
