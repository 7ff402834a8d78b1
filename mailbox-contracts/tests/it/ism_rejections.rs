//! Every way a delivery must fail, each with its reason. Each MessageId case runs twice:
//! through the static ISM (an external `verify`) and through the Mailbox's embedded ISM
//! (verified inside `process`), which must reject exactly the same things for the same
//! reasons.

use alloy::primitives::{B256, U256};
use metalayer_contracts::bindings::{
    Mailbox, StaticMerkleRootMultisigIsm as RootIsm, StaticMessageIdMultisigIsm as IdIsm,
};
use metalayer_protocol::merkle::MerkleTree;
use metalayer_protocol::{
    Checkpoint, CheckpointWithMessageId, LocalSigner, Message, Signature, Signer,
};

use crate::fixture::{Origin, Stack, Validators, message_id_metadata};
use crate::harness::Receipt;

/// secp256k1 group order.
const N: U256 = U256::from_be_slice(&[
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
]);

struct Setup {
    validators: Validators,
    stack: Stack,
    origin: Origin,
    message: Message,
}

fn setup(seed: u8, embedded: bool) -> Setup {
    let validators = Validators::new(5, 3, seed);
    let mut stack = Stack::new(&validators);
    if embedded {
        stack.use_embedded_ism();
    }
    let mut origin = Origin::new();
    let message = origin.dispatch(stack.recipient, b"payload");
    Setup { validators, stack, origin, message }
}

impl Setup {
    /// Processes the message with MessageId metadata signed by validators `which`.
    fn process_signed_by(&mut self, which: &[usize]) -> Receipt {
        let checkpoint = self.origin.checkpoint_at(0);
        let signatures = self.validators.sign(&checkpoint, which);
        self.process_with(signatures)
    }

    fn process_with(&mut self, signatures: Vec<Signature>) -> Receipt {
        let metadata = message_id_metadata(&self.origin.checkpoint_at(0), signatures);
        let receipt = self.stack.process(&metadata, &self.message.clone());
        assert!(!self.stack.delivered(self.message.id()), "a rejected message is not delivered");
        receipt
    }
}

fn wrong_destination_and_wrong_version_are_rejected(embedded: bool) {
    let mut s = setup(21, embedded);
    let metadata = s.origin.message_id_metadata(&s.validators, 0);
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

fn replay_through_process_is_rejected(embedded: bool) {
    let mut s = setup(22, embedded);
    let metadata = s.origin.message_id_metadata(&s.validators, 0);
    s.stack.process(&metadata, &s.message).ok();
    let receipt = s.stack.process(&metadata, &s.message);
    assert_eq!(receipt.revert_string().as_deref(), Some("Mailbox: already delivered"));
}

fn fewer_than_threshold_signatures_are_rejected(embedded: bool) {
    let mut s = setup(23, embedded);
    let receipt = s.process_signed_by(&[0, 1]);
    assert!(receipt.reverted_with::<IdIsm::TooFewSignatures>(), "{receipt:?}");
    let receipt = s.process_signed_by(&[]);
    assert!(receipt.reverted_with::<IdIsm::TooFewSignatures>());
    // Exactly the threshold, and more than it, pass (extras are ignored, as in v3).
    let metadata = s.origin.message_id_metadata(&s.validators, 0);
    s.stack.process(&metadata, &s.message).ok();
}

fn signatures_out_of_validator_order_are_rejected(embedded: bool) {
    let mut s = setup(24, embedded);
    let receipt = s.process_signed_by(&[0, 2, 1]);
    assert!(receipt.reverted_with::<IdIsm::SignersOutOfOrder>());
    let receipt = s.process_signed_by(&[4, 3, 2]);
    assert!(receipt.reverted_with::<IdIsm::SignersOutOfOrder>());
    // Any increasing subsequence is fine.
    s.process_with_ok(&[1, 3, 4]);
}

impl Setup {
    fn process_with_ok(&mut self, which: &[usize]) {
        let checkpoint = self.origin.checkpoint_at(0);
        let metadata = message_id_metadata(&checkpoint, self.validators.sign(&checkpoint, which));
        self.stack.process(&metadata, &self.message.clone()).ok();
        assert!(self.stack.delivered(self.message.id()));
    }
}

fn a_duplicated_signer_is_rejected(embedded: bool) {
    let mut s = setup(25, embedded);
    let receipt = s.process_signed_by(&[0, 0, 1]);
    assert!(receipt.reverted_with::<IdIsm::DuplicateSigner>());
    let receipt = s.process_signed_by(&[0, 1, 1]);
    assert!(receipt.reverted_with::<IdIsm::DuplicateSigner>());
}

fn a_non_validator_signer_is_rejected(embedded: bool) {
    let mut s = setup(26, embedded);
    let outsider = LocalSigner::from_bytes(&B256::repeat_byte(0x99)).expect("key");
    let checkpoint = s.origin.checkpoint_at(0);
    let mut signatures = s.validators.sign(&checkpoint, &[0, 1]);
    signatures.push(outsider.sign_digest(checkpoint.digest()).expect("sign"));
    let receipt = s.process_with(signatures);
    assert!(receipt.reverted_with::<IdIsm::SignerNotValidator>());
}

fn a_high_s_signature_is_rejected(embedded: bool) {
    let mut s = setup(27, embedded);
    let checkpoint = s.origin.checkpoint_at(0);
    let mut signatures = s.validators.sign(&checkpoint, &[0, 1, 2]);
    // The malleable twin: (r, n - s, v ^ 1) recovers to the same key.
    let low = signatures[1];
    signatures[1] = Signature { r: low.r, s: N - low.s, v: if low.v == 27 { 28 } else { 27 } };
    let receipt = s.process_with(signatures);
    assert!(receipt.reverted_with::<IdIsm::SignatureHighS>());
}

fn a_signature_recovering_to_zero_is_rejected(embedded: bool) {
    let mut s = setup(28, embedded);
    let checkpoint = s.origin.checkpoint_at(0);
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

fn an_empty_or_zero_root_is_rejected_even_when_signed(embedded: bool) {
    let mut s = setup(29, embedded);
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

fn a_signature_over_another_message_is_rejected(embedded: bool) {
    let mut s = setup(30, embedded);
    let other = s.origin.dispatch(s.stack.recipient, b"other");
    // Signatures for leaf 1 (the other message) presented for leaf 0's message: the digest
    // the ISM computes names this message's id, so the signers recover to strangers.
    let metadata = s.origin.message_id_metadata(&s.validators, 1);
    let receipt = s.stack.process(&metadata, &s.message);
    assert!(receipt.reverted_with::<IdIsm::SignerNotValidator>());
    s.stack.process(&metadata, &other).ok();
}

fn a_merkle_proof_for_a_leaf_beyond_the_signed_index_is_rejected(embedded: bool) {
    let mut s = setup(31, embedded);
    let ism = s.stack.merkle_root_ism;
    s.stack.set_recipient_ism(ism);
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

fn truncated_metadata_is_rejected(embedded: bool) {
    let mut s = setup(32, embedded);
    let metadata = s.origin.message_id_metadata(&s.validators, 0);
    let receipt = s.stack.process(&metadata[..67], &s.message);
    assert!(receipt.reverted_with::<IdIsm::MetadataTooShort>());
    let receipt = s.stack.process(&metadata[..metadata.len() - 1], &s.message);
    assert!(receipt.reverted_with::<IdIsm::TooFewSignatures>());
}

/// Each case through the static ISM and through the embedded one.
macro_rules! both_isms {
    ($($name:ident),* $(,)?) => {
        mod static_ism {
            $(#[test]
            fn $name() {
                super::$name(false);
            })*
        }
        mod embedded_ism {
            $(#[test]
            fn $name() {
                super::$name(true);
            })*
        }
    };
}

both_isms!(
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
    a_merkle_proof_for_a_leaf_beyond_the_signed_index_is_rejected,
    truncated_metadata_is_rejected,
);
