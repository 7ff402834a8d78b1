//! A message on its way to its destination: where it is, why it waits, and
//! when it is tried next.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256, Bytes};
use metalayer_protocol::Message;
use serde::{Deserialize, Serialize};

/// Where a message is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Waiting to be checked, paid for, given metadata and simulated.
    Prepare,
    /// Ready: metadata built and simulated, waiting for a transaction.
    Submit,
    /// Sent and mined: waiting for the destination's reorg period.
    Confirm,
    /// `delivered` is true at a final block. The end.
    Delivered,
    /// Out of retries: waits for an operator's retry.
    Parked,
    /// Will never be deliverable as is (the recipient has no code): waits
    /// for an operator's retry.
    Dropped,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Self; 6] =
        [Self::Prepare, Self::Submit, Self::Confirm, Self::Delivered, Self::Parked, Self::Dropped];

    /// The stage of [`Self::tag`]'s byte.
    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.tag() == tag)
    }

    /// The byte that orders this stage in the queue index.
    pub(crate) fn tag(self) -> u8 {
        match self {
            Self::Prepare => 0,
            Self::Submit => 1,
            Self::Confirm => 2,
            Self::Delivered => 3,
            Self::Parked => 4,
            Self::Dropped => 5,
        }
    }

    /// The name used in metrics, the API and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Prepare => "prepare_queue",
            Self::Submit => "submit_queue",
            Self::Confirm => "confirm_queue",
            Self::Delivered => "delivered",
            Self::Parked => "parked",
            Self::Dropped => "dropped",
        }
    }

    /// Parses a stage name as the API accepts it (`prepare` or `prepare_queue`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| {
            let label = s.label();
            label == name || label.strip_suffix("_queue") == Some(name)
        })
    }
}

/// Why a message went back to wait (Hyperlane's retry reasons, plus ours).
///
/// A stored record keeps a reason as its discriminant (`Reason::tag`): a
/// new reason is appended, never inserted, or stored records would change
/// meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Reason {
    /// An operator asked for a retry.
    Manual,
    /// `delivered` could not be read.
    ErrorCheckingDeliveryStatus,
    /// The recipient's code could not be read.
    ErrorCheckingIfRecipientIsContract,
    /// The recipient has no code.
    RecipientNotContract,
    /// `recipientIsm` or `moduleType` could not be read.
    ErrorFetchingIsmAddress,
    /// The ISM tree is of a type we cannot build metadata for.
    ErrorGettingMetadataBuilder,
    /// Metadata could not be built for a reason other than missing signatures.
    ErrorBuildingMetadata,
    /// Not enough validators have signed a checkpoint covering the message yet.
    CouldNotFetchMetadata,
    /// `eth_estimateGas` of the delivery failed (it would revert).
    ErrorEstimatingGas,
    /// Gas payments could not be read.
    ErrorCheckingGasRequirement,
    /// A payment exists but is below what the policy asks.
    GasPaymentRequirementNotMet,
    /// No payment was seen and the policy needs one.
    GasPaymentNotFound,
    /// The delivery needs more gas than a transaction may use.
    ExceedsMaxGasLimit,
    /// The transaction could not be sent or did not get mined.
    ErrorSubmitting,
    /// The transaction was mined but reverted.
    Reverted,
    /// Confirmed as sent, but `delivered` is false after the reorg period.
    RevertedOrReorged,
    /// The relayer restarted while the message was about to be sent.
    Restarted,
}

impl Reason {
    /// Every reason, in declaration (and so tag) order.
    pub const ALL: [Self; 17] = [
        Self::Manual,
        Self::ErrorCheckingDeliveryStatus,
        Self::ErrorCheckingIfRecipientIsContract,
        Self::RecipientNotContract,
        Self::ErrorFetchingIsmAddress,
        Self::ErrorGettingMetadataBuilder,
        Self::ErrorBuildingMetadata,
        Self::CouldNotFetchMetadata,
        Self::ErrorEstimatingGas,
        Self::ErrorCheckingGasRequirement,
        Self::GasPaymentRequirementNotMet,
        Self::GasPaymentNotFound,
        Self::ExceedsMaxGasLimit,
        Self::ErrorSubmitting,
        Self::Reverted,
        Self::RevertedOrReorged,
        Self::Restarted,
    ];

    /// The byte a stored record keeps this reason as: its discriminant.
    pub(crate) fn tag(self) -> u8 {
        self as u8
    }

    /// The reason of [`Self::tag`]'s byte.
    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.get(usize::from(tag)).copied()
    }
}

/// One operation: a message and everything the pipeline knows about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOp {
    /// The message id.
    pub id: B256,
    /// Origin domain.
    pub origin: u32,
    /// Destination domain.
    pub destination: u32,
    /// Origin nonce.
    pub nonce: u32,
    /// The packed message.
    pub message: Bytes,
    /// Where it is.
    pub stage: Stage,
    /// Failed attempts so far (persisted; drives the backoff).
    pub retries: u32,
    /// Not tried again before this time (unix milliseconds); 0 = at once.
    pub next_attempt_ms: u64,
    /// Why it last went back to wait.
    pub reason: Option<Reason>,
    /// The error or detail behind `reason`.
    pub detail: Option<String>,
    /// Metadata built by the last successful prepare.
    pub metadata: Option<Bytes>,
    /// Transaction gas limit decided by the last successful prepare.
    pub gas_limit: Option<u64>,
    /// The recipient's ISM (the root of its tree).
    pub ism: Option<Address>,
    /// Whether that ISM takes `processBatch`.
    pub batchable: bool,
    /// The message's leaf index in the origin tree, once known.
    pub leaf_index: Option<u32>,
    /// The last delivery transaction.
    pub tx_hash: Option<B256>,
    /// The block that mined it.
    pub submitted_block: Option<u64>,
    /// Gas our transactions spent on this message so far.
    pub gas_used: u64,
    /// First seen (unix milliseconds).
    pub created_ms: u64,
}

impl PendingOp {
    /// A fresh operation for `message`, due at once. Its attempt time is
    /// now, not 0: the queue is ordered by attempt time, and a backlog of
    /// fresh messages must not keep those retrying since earlier waiting.
    pub fn new(message: &Message) -> Self {
        let now = now_ms();
        Self {
            id: message.id(),
            origin: message.origin,
            destination: message.destination,
            nonce: message.nonce,
            message: Bytes::from(message.encode()),
            stage: Stage::Prepare,
            retries: 0,
            next_attempt_ms: now,
            reason: None,
            detail: None,
            metadata: None,
            gas_limit: None,
            ism: None,
            batchable: false,
            leaf_index: None,
            tx_hash: None,
            submitted_block: None,
            gas_used: 0,
            created_ms: now,
        }
    }

    /// The decoded message.
    pub fn decoded(&self) -> Option<Message> {
        Message::decode(&self.message).ok()
    }
}

/// One line of a message's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When (unix milliseconds).
    pub at_ms: u64,
    /// The stage entered.
    pub stage: Stage,
    /// The reason, if it went back to wait.
    pub reason: Option<Reason>,
    /// What happened.
    pub detail: String,
    /// The transaction involved, if any.
    pub tx_hash: Option<B256>,
}

/// Now, in unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_tags_name_each_reason_and_stage_once() {
        for (i, reason) in Reason::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(reason.tag()), i, "{reason:?}");
            assert_eq!(Reason::from_tag(reason.tag()), Some(reason));
        }
        assert_eq!(Reason::from_tag(Reason::ALL.len() as u8), None);
        // A reason appended to the enum but not to ALL would not decode.
        assert_eq!(Reason::ALL.len(), Reason::Restarted as usize + 1);
        for stage in Stage::ALL {
            assert_eq!(Stage::from_tag(stage.tag()), Some(stage));
        }
        assert_eq!(Stage::from_tag(6), None);
    }
}
