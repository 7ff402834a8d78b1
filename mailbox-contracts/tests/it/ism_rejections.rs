//! Every way a delivery must fail, each with its reason. Each case runs through a static
//! ISM (an external `verify`) and through the Mailbox's embedded ISM of the same type
//! (verified inside `process`), which must reject exactly the same things for the same
//! reasons: the cases common to both metadata layouts run four times (MessageId and
//! MerkleRoot, static and embedded), the layout-specific ones twice.

use alloy::primitives::{B256, U256};
use metalayer_contracts::bindings::{
    Mailbox, StaticMerkleRootMultisigIsm as RootIsm, StaticMessageIdMultisigIsm as IdIsm,
};
use metalayer_protocol::merkle::MerkleTree;
use metalayer_protocol::metadata::MerkleRootMultisigMetadata;
use metalayer_protocol::{
    Checkpoint, CheckpointWithMessageId, LocalSigner, Message, Signature, Signer,
};

use crate::fixture::{MERKLE_ROOT, MESSAGE_ID, Origin, Stack, Validators, message_id_metadata};
use crate::harness::Receipt;

/// secp256k1 group order.
const N: U256 = U256::from_be_slice(&[
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
]);

/// The ISM the TestRecipient is held to: the default ISM of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// StaticMessageIdMultisigIsm.
    StaticMessageId,
    /// The Mailbox's embedded MessageId ISM.
    EmbeddedMessageId,
    /// StaticMerkleRootMultisigIsm.
    StaticMerkleRoot,
    /// The Mailbox's embedded MerkleRoot ISM.
    EmbeddedMerkleRoot,
}

impl Mode {
    fn merkle_root(self) -> bool {
        matches!(self, Self::StaticMerkleRoot | Self::EmbeddedMerkleRoot)
    }
}

struct Setup {
    mode: Mode,
    validators: Validators,
    stack: Stack,
    origin: Origin,
    /// Leaf 0 of the origin tree, to the TestRecipient.
    message: Message,
}

/// A stack whose default ISM is that of `mode` (the Mailbox embeds the set as an ISM of the
/// mode's type), and the message at leaf 0.
fn setup(seed: u8, mode: Mode) -> Setup {
    let validators = Validators::new(5, 3, seed);
    let module_type = if mode.merkle_root() { MERKLE_ROOT } else { MESSAGE_ID };
    let mut stack = Stack::with_embedded(&validators, module_type);
    match mode {
        Mode::StaticMessageId => {}
        Mode::EmbeddedMessageId | Mode::EmbeddedMerkleRoot => stack.use_embedded_ism(),
        Mode::StaticMerkleRoot => {
            let ism = stack.merkle_root_ism;
            stack.set_default_ism(ism);
        }
    }
    let mut origin = Origin::new();
    let message = origin.dispatch(stack.recipient, b"payload");
    Setup { mode, validators, stack, origin, message }
}

impl Setup {
    /// The mode's metadata for the message at leaf `index`, with `signatures` over the
    /// checkpoint at `signed` (MessageId: the checkpoint at `index`; `signed` is ignored).
    fn metadata(&self, index: u32, signed: u32, signatures: Vec<Signature>) -> Vec<u8> {
        if self.mode.merkle_root() {
            let checkpoint = self.origin.checkpoint_at(signed);
            let proof = self.origin.tree.prove_at(index, u64::from(signed) + 1).expect("proof");
            MerkleRootMultisigMetadata {
                merkle_tree_hook: self.origin.hook,
                message_index: index,
                signed_message_id: checkpoint.message_id,
                proof: proof.path,
                signed_index: signed,
                signatures,
            }
            .encode()
        } else {
            message_id_metadata(&self.origin.checkpoint_at(index), signatures)
        }
    }

    /// The checkpoint signatures of the mode's metadata for leaf `index` sign.
    fn checkpoint_for(&self, index: u32) -> CheckpointWithMessageId {
        self.origin.checkpoint_at(self.signed_index(index))
    }

    /// The checkpoint index used for leaf `index`: the latest for MerkleRoot metadata (so
    /// the proof matters), the leaf itself for MessageId metadata.
    fn signed_index(&self, index: u32) -> u32 {
        if self.mode.merkle_root() { self.origin.nonce - 1 } else { index }
    }

    /// Good metadata for the message at leaf `index`, signed by the threshold.
    fn good_metadata(&self, index: u32) -> Vec<u8> {
        let checkpoint = self.checkpoint_for(index);
        self.metadata(index, self.signed_index(index), self.validators.sign_threshold(&checkpoint))
    }

    /// Processes the message with metadata signed by validators `which`.
    fn process_signed_by(&mut self, which: &[usize]) -> Receipt {
        let checkpoint = self.checkpoint_for(0);
        let signatures = self.validators.sign(&checkpoint, which);
        self.process_with(signatures)
    }

    fn process_with(&mut self, signatures: Vec<Signature>) -> Receipt {
        let metadata = self.metadata(0, self.signed_index(0), signatures);
        let receipt = self.stack.process(&metadata, &self.message.clone());
        assert!(!self.stack.delivered(self.message.id()), "a rejected message is not delivered");
        receipt
    }
}

fn wrong_destination_and_wrong_version_are_rejected(mode: Mode) {
    let mut s = setup(21, mode);
    let metadata = s.good_metadata(0);
    let mut wrong = s.message.clone();
    wrong.destination += 1;
    let receipt = s.stack.process(&metadata, &wrong);
    assert_eq!(receipt.revert_string().as_deref(), Some("Mailbox: unexpected destination"));
    let mut old = s.message.clone();
    old.version = 2;
    let receipt = s.stack.process(&metadata, &old);
    assert_eq!(receipt.revert_string().as_deref(), Some("Mailbox: bad version"));
    let short = s.stack.chain.send_call(
        s.stack.relayer,
        s.stack.mailbox,
        &Mailbox::processCall { metadata: metadata.clone().into(), message: vec![3u8; 76].into() },
    );
    assert!(short.reverted_with::<Mailbox::MessageTooShort>());
    // The genuine message still goes through.
    s.stack.process(&metadata, &s.message).ok();
}

fn replay_through_process_is_rejected(mode: Mode) {
    let mut s = setup(22, mode);
    let metadata = s.good_metadata(0);
    s.stack.process(&metadata, &s.message).ok();
    let receipt = s.stack.process(&metadata, &s.message);
    assert_eq!(receipt.revert_string().as_deref(), Some("Mailbox: already delivered"));
}

fn fewer_than_threshold_signatures_are_rejected(mode: Mode) {
    let mut s = setup(23, mode);
    let receipt = s.process_signed_by(&[0, 1]);
    assert!(receipt.reverted_with::<IdIsm::TooFewSignatures>(), "{receipt:?}");
    let receipt = s.process_signed_by(&[]);
    assert!(receipt.reverted_with::<IdIsm::TooFewSignatures>());
    // Exactly the threshold passes, and so does more than it (extras are ignored, as in v3).
    let metadata = s.good_metadata(0);
    s.stack.process(&metadata, &s.message).ok();
    let next = s.origin.dispatch(s.stack.recipient, b"four signatures");
    let checkpoint = s.checkpoint_for(1);
    let signatures = s.validators.sign(&checkpoint, &[0, 1, 2, 3]);
    let metadata = s.metadata(1, s.signed_index(1), signatures);
    s.stack.process(&metadata, &next).ok();
}

fn signatures_out_of_validator_order_are_rejected(mode: Mode) {
    let mut s = setup(24, mode);
    let receipt = s.process_signed_by(&[0, 2, 1]);
    assert!(receipt.reverted_with::<IdIsm::SignersOutOfOrder>());
    let receipt = s.process_signed_by(&[4, 3, 2]);
    assert!(receipt.reverted_with::<IdIsm::SignersOutOfOrder>());
    // Any increasing subsequence is fine.
    s.process_with_ok(&[1, 3, 4]);
}

impl Setup {
    fn process_with_ok(&mut self, which: &[usize]) {
        let checkpoint = self.checkpoint_for(0);
        let signatures = self.validators.sign(&checkpoint, which);
        let metadata = self.metadata(0, self.signed_index(0), signatures);
        self.stack.process(&metadata, &self.message.clone()).ok();
        assert!(self.stack.delivered(self.message.id()));
    }
}

fn a_duplicated_signer_is_rejected(mode: Mode) {
    let mut s = setup(25, mode);
    let receipt = s.process_signed_by(&[0, 0, 1]);
    assert!(receipt.reverted_with::<IdIsm::DuplicateSigner>());
    let receipt = s.process_signed_by(&[0, 1, 1]);
    assert!(receipt.reverted_with::<IdIsm::DuplicateSigner>());
}

fn a_non_validator_signer_is_rejected(mode: Mode) {
    let mut s = setup(26, mode);
    let outsider = LocalSigner::from_bytes(&B256::repeat_byte(0x99)).expect("key");
    let checkpoint = s.checkpoint_for(0);
    let mut signatures = s.validators.sign(&checkpoint, &[0, 1]);
    signatures.push(outsider.sign_digest(checkpoint.digest()).expect("sign"));
    let receipt = s.process_with(signatures);
    assert!(receipt.reverted_with::<IdIsm::SignerNotValidator>());
}

fn a_high_s_signature_is_rejected(mode: Mode) {
    let mut s = setup(27, mode);
    let checkpoint = s.checkpoint_for(0);
    let mut signatures = s.validators.sign(&checkpoint, &[0, 1, 2]);
    // The malleable twin: (r, n - s, v ^ 1) recovers to the same key.
    let low = signatures[1];
    signatures[1] = Signature { r: low.r, s: N - low.s, v: if low.v == 27 { 28 } else { 27 } };
    let receipt = s.process_with(signatures);
    assert!(receipt.reverted_with::<IdIsm::SignatureHighS>());
}

fn a_signature_recovering_to_zero_is_rejected(mode: Mode) {
    let mut s = setup(28, mode);
    let checkpoint = s.checkpoint_for(0);
    let mut signatures = s.validators.sign(&checkpoint, &[0, 1, 2]);
    // r = 0 is not a curve point: ecrecover returns nothing.
    signatures[0] = Signature { r: U256::ZERO, s: U256::from(1), v: 27 };
    let receipt = s.process_with(signatures);
    assert!(receipt.reverted_with::<IdIsm::SignatureRecoversToZero>());
    let mut signatures = s.validators.sign(&checkpoint, &[0, 1, 2]);
    signatures[2].v = 29;
    let receipt = s.process_with(signatures);
    assert!(receipt.reverted_with::<IdIsm::SignatureBadV>());
}

/// MessageId only: a MerkleRoot ISM computes its root from the message and the proof, and no
/// proof leads from a message id to the zero or the empty root.
fn an_empty_or_zero_root_is_rejected_even_when_signed(mode: Mode) {
    let mut s = setup(29, mode);
    for root in [B256::ZERO, MerkleTree::new().root()] {
        let checkpoint = CheckpointWithMessageId {
            checkpoint: Checkpoint { root, ..s.origin.checkpoint_at(0).checkpoint },
            message_id: s.message.id(),
        };
        let signatures = s.validators.sign(&checkpoint, &[0, 1, 2]);
        let metadata = message_id_metadata(&checkpoint, signatures);
        let receipt = s.stack.process(&metadata, &s.message);
        assert!(receipt.reverted_with::<IdIsm::EmptyRoot>(), "root {root}");
    }
    assert!(!s.stack.delivered(s.message.id()));
}

fn a_signature_over_another_message_is_rejected(mode: Mode) {
    let mut s = setup(30, mode);
    let other = s.origin.dispatch(s.stack.recipient, b"other");
    // Metadata for leaf 1 (the other message) presented for leaf 0's message: the digest
    // the ISM computes names this message's id (MessageId) or the root its proof gives from
    // this message (MerkleRoot), so the signers recover to strangers.
    let metadata = s.good_metadata(1);
    let receipt = s.stack.process(&metadata, &s.message);
    assert!(receipt.reverted_with::<IdIsm::SignerNotValidator>(), "{receipt:?}");
    if s.mode.merkle_root() {
        // Leaf 0's proof, but signatures over an earlier state of the tree (leaf 0's
        // checkpoint, while the metadata names the checkpoint at leaf 1).
        let signatures = s.validators.sign_threshold(&s.origin.checkpoint_at(0));
        let stale = s.metadata(0, 1, signatures);
        let receipt = s.stack.process(&stale, &s.message);
        assert!(receipt.reverted_with::<RootIsm::SignerNotValidator>(), "{receipt:?}");
    }
    s.stack.process(&metadata, &other).ok();
    assert!(!s.stack.delivered(s.message.id()));
}

/// MerkleRoot only.
fn a_merkle_proof_for_a_leaf_beyond_the_signed_index_is_rejected(mode: Mode) {
    let mut s = setup(31, mode);
    let late = s.origin.dispatch(s.stack.recipient, b"late");
    // A checkpoint at leaf 0 says nothing about leaf 1: build metadata claiming it does.
    let proof = s.origin.tree.prove_at(1, 2).expect("proof");
    let checkpoint = s.origin.checkpoint_at(0);
    let metadata = metalayer_protocol::metadata::MerkleRootMultisigMetadata {
        merkle_tree_hook: s.origin.hook,
        message_index: 1,
        signed_message_id: checkpoint.message_id,
        proof: proof.path,
        signed_index: 0,
        signatures: s.validators.sign_threshold(&checkpoint),
    }
    .encode();
    let receipt = s.stack.process(&metadata, &late);
    assert_eq!(receipt.revert_string().as_deref(), Some("Invalid merkle index metadata"));
    // A proof against the wrong root recovers strangers.
    let mut bad = s.origin.merkle_root_metadata(&s.validators, 0, 1);
    bad[100] ^= 1;
    let receipt = s.stack.process(&bad, &s.message);
    assert!(receipt.reverted_with::<RootIsm::SignerNotValidator>());
    let good = s.origin.merkle_root_metadata(&s.validators, 1, 1);
    s.stack.process(&good, &late).ok();
}

fn truncated_metadata_is_rejected(mode: Mode) {
    let mut s = setup(32, mode);
    let metadata = s.good_metadata(0);
    let fixed = if s.mode.merkle_root() { 1096 } else { 68 };
    let receipt = s.stack.process(&metadata[..fixed - 1], &s.message);
    assert!(receipt.reverted_with::<IdIsm::MetadataTooShort>(), "{receipt:?}");
    let error: IdIsm::MetadataTooShort =
        alloy::sol_types::SolError::abi_decode(&receipt.output).expect("decodes");
    assert_eq!((error.length, error.minimum), (U256::from(fixed - 1), U256::from(fixed)));
    let receipt = s.stack.process(&metadata[..metadata.len() - 1], &s.message);
    assert!(receipt.reverted_with::<IdIsm::TooFewSignatures>());
    let receipt = s.stack.process(&metadata[..fixed], &s.message);
    assert!(receipt.reverted_with::<IdIsm::TooFewSignatures>());
    assert!(!s.stack.delivered(s.message.id()));
}

/// Each case through the static ISM and through the embedded one, for the given layouts.
macro_rules! cases {
    ($module:ident: $static:ident, $embedded:ident => $($name:ident),* $(,)?) => {
        mod $module {
            mod static_ism {
                $(#[test]
                fn $name() {
                    super::super::$name(super::super::Mode::$static);
                })*
            }
            mod embedded_ism {
                $(#[test]
                fn $name() {
                    super::super::$name(super::super::Mode::$embedded);
                })*
            }
        }
    };
}

cases!(message_id: StaticMessageId, EmbeddedMessageId =>
    wrong_destination_and_wrong_version_are_rejected,
    replay_through_process_is_rejected,
    fewer_than_threshold_signatures_are_rejected,
    signatures_out_of_validator_order_are_rejected,
    a_duplicated_signer_is_rejected,
    a_non_validator_signer_is_rejected,
    a_high_s_signature_is_rejected,
    a_signature_recovering_to_zero_is_rejected,
    an_empty_or_zero_root_is_rejected_even_when_signed,
    a_signature_over_another_message_is_rejected,
    truncated_metadata_is_rejected,
);

cases!(merkle_root: StaticMerkleRoot, EmbeddedMerkleRoot =>
    wrong_destination_and_wrong_version_are_rejected,
    replay_through_process_is_rejected,
    fewer_than_threshold_signatures_are_rejected,
    signatures_out_of_validator_order_are_rejected,
    a_duplicated_signer_is_rejected,
    a_non_validator_signer_is_rejected,
    a_high_s_signature_is_rejected,
    a_signature_recovering_to_zero_is_rejected,
    a_signature_over_another_message_is_rejected,
    a_merkle_proof_for_a_leaf_beyond_the_signed_index_is_rejected,
    truncated_metadata_is_rejected,
);
