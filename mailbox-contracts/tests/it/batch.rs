//! Batch delivery: one signature set and one multiproof for many messages, and replay
//! protection shared with `process`. Each case runs twice: through the static MerkleRoot ISM
//! (an external `verifyBatch`) and through the Mailbox's embedded MerkleRoot ISM (verified
//! inside `processBatch`), which must accept and reject exactly the same things.

use alloy::primitives::Bytes;
use metalayer_contracts::bindings::{
    Mailbox, StaticMerkleRootMultisigIsm as RootIsm, TestRecipient,
};
use metalayer_contracts::metadata::BatchMultisigMetadata;
use metalayer_protocol::Message;

use crate::fixture::{MERKLE_ROOT, Origin, Stack, Validators};
use crate::harness::Receipt;

/// Batch metadata for the leaves `indices`, signed at `signed`.
pub(crate) fn batch_metadata(
    origin: &Origin,
    validators: &Validators,
    indices: &[u32],
    signed: u32,
) -> Vec<u8> {
    let checkpoint = origin.checkpoint_at(signed);
    BatchMultisigMetadata {
        merkle_tree_hook: origin.hook,
        signed_index: signed,
        signed_message_id: checkpoint.message_id,
        proof: origin.tree.prove_batch(indices, u64::from(signed) + 1).expect("batch proof"),
        signatures: validators.sign_threshold(&checkpoint),
    }
    .encode()
}

fn process_batch(stack: &mut Stack, metadata: Vec<u8>, messages: &[&Message]) -> Receipt {
    let call = Mailbox::processBatchCall {
        metadata: metadata.into(),
        messages: messages.iter().map(|m| Bytes::from(m.encode())).collect(),
    };
    stack.chain.send_call(stack.relayer, stack.mailbox, &call)
}

struct Setup {
    validators: Validators,
    stack: Stack,
    origin: Origin,
    messages: Vec<Message>,
}

/// `n` messages to the TestRecipient, which names the static MerkleRoot ISM or, when
/// `embedded`, the Mailbox (embedding the same set as a MerkleRoot ISM).
fn setup(seed: u8, n: u8, embedded: bool) -> Setup {
    let validators = Validators::new(5, 3, seed);
    let mut stack = Stack::with_embedded(&validators, MERKLE_ROOT);
    let ism = if embedded { stack.mailbox } else { stack.merkle_root_ism };
    stack.set_recipient_ism(ism);
    let mut origin = Origin::new();
    let messages = (0..n).map(|i| origin.dispatch(stack.recipient, &[i; 32])).collect();
    Setup { validators, stack, origin, messages }
}

fn a_batch_delivers_every_message_once_and_delivered_reports_them(embedded: bool) {
    let mut s = setup(41, 20, embedded);
    let indices = [1u32, 2, 3, 7, 12, 13, 19];
    let metadata = batch_metadata(&s.origin, &s.validators, &indices, 19);
    let batch: Vec<&Message> = indices.iter().map(|&i| &s.messages[i as usize]).collect();
    let receipt = process_batch(&mut s.stack, metadata, &batch).ok();
    let count = s.stack.chain.view(s.stack.recipient, &TestRecipient::handledCountCall {});
    assert_eq!(count.to::<u64>(), indices.len() as u64);
    let process_ids = receipt
        .logs
        .iter()
        .filter_map(|l| alloy::sol_types::SolEvent::decode_log(l).ok())
        .map(|e: alloy::primitives::Log<Mailbox::ProcessId>| e.messageId)
        .collect::<Vec<_>>();
    let expected: Vec<_> = batch.iter().map(|m| m.id()).collect();
    assert_eq!(process_ids, expected);
    for (i, m) in s.messages.iter().enumerate() {
        assert_eq!(s.stack.delivered(m.id()), indices.contains(&(i as u32)), "message {i}");
    }
    // The point of batching: each message costs less than a delivery of its own.
    let single = s.origin.merkle_root_metadata(&s.validators, 0, 19);
    let one = s.stack.process(&single, &s.messages[0].clone()).ok();
    let per_message = receipt.gas_used / indices.len() as u64;
    assert!(
        per_message < one.gas_used,
        "batch {per_message} per message vs single {}",
        one.gas_used
    );
}

fn replay_is_rejected_across_both_paths(embedded: bool) {
    let mut s = setup(42, 4, embedded);
    // process first, then a batch containing the same message.
    let single = s.origin.merkle_root_metadata(&s.validators, 1, 3);
    let m1 = s.messages[1].clone();
    s.stack.process(&single, &m1).ok();
    let metadata = batch_metadata(&s.origin, &s.validators, &[0, 1], 3);
    let receipt = process_batch(&mut s.stack, metadata, &[&s.messages[0].clone(), &m1]);
    assert_eq!(receipt.revert_string().as_deref(), Some("Mailbox: already delivered"));
    assert!(!s.stack.delivered(s.messages[0].id()), "the whole batch reverted");

    // A batch first, then process and a second batch.
    let metadata = batch_metadata(&s.origin, &s.validators, &[2, 3], 3);
    let (m2, m3) = (s.messages[2].clone(), s.messages[3].clone());
    process_batch(&mut s.stack, metadata.clone(), &[&m2, &m3]).ok();
    let single = s.origin.merkle_root_metadata(&s.validators, 3, 3);
    let receipt = s.stack.process(&single, &m3);
    assert_eq!(receipt.revert_string().as_deref(), Some("Mailbox: already delivered"));
    let receipt = process_batch(&mut s.stack, metadata, &[&m2, &m3]);
    assert_eq!(receipt.revert_string().as_deref(), Some("Mailbox: already delivered"));
    let count = s.stack.chain.view(s.stack.recipient, &TestRecipient::handledCountCall {});
    assert_eq!(count.to::<u64>(), 3);
}

fn a_message_twice_in_one_batch_is_rejected(embedded: bool) {
    let mut s = setup(43, 3, embedded);
    // A proof cannot list a leaf twice: indexes must ascend strictly.
    let mut metadata = batch_metadata(&s.origin, &s.validators, &[1, 2], 2);
    metadata[72 + 2 + 4..72 + 2 + 8].copy_from_slice(&1u32.to_be_bytes());
    let m1 = s.messages[1].clone();
    let receipt = process_batch(&mut s.stack, metadata, &[&m1, &m1]);
    assert!(receipt.reverted_with::<RootIsm::LeafIndexesNotAscending>());
}

fn a_batch_leaf_beyond_the_signed_index_is_rejected(embedded: bool) {
    let mut s = setup(44, 6, embedded);
    // Prove leaves 2 and 5 against the tree of 6, but claim the checkpoint at leaf 4.
    let mut metadata = batch_metadata(&s.origin, &s.validators, &[2, 5], 5);
    let signed = s.origin.checkpoint_at(4);
    metadata[32..36].copy_from_slice(&4u32.to_be_bytes());
    metadata[36..68].copy_from_slice(signed.message_id.as_slice());
    let batch = [&s.messages[2].clone(), &s.messages[5].clone()];
    let receipt = process_batch(&mut s.stack, metadata, &batch);
    assert_eq!(receipt.revert_string().as_deref(), Some("Invalid merkle index metadata"));
}

fn a_batch_with_a_wrong_leaf_or_a_short_proof_is_rejected(embedded: bool) {
    let mut s = setup(45, 8, embedded);
    let metadata = batch_metadata(&s.origin, &s.validators, &[0, 5], 7);
    // Message 4 in place of message 5: the root differs, the signers are strangers.
    let batch = [&s.messages[0].clone(), &s.messages[4].clone()];
    let receipt = process_batch(&mut s.stack, metadata.clone(), &batch);
    assert!(receipt.reverted_with::<RootIsm::SignerNotValidator>());
    // Dropping one sibling hash breaks the proof's shape.
    let mut short = metadata.clone();
    let proof_len = u32::from_be_bytes([short[68], short[69], short[70], short[71]]);
    short[68..72].copy_from_slice(&(proof_len - 32).to_be_bytes());
    let cut = 72 + proof_len as usize - 32;
    short.drain(cut..cut + 32);
    let batch = [&s.messages[0].clone(), &s.messages[5].clone()];
    let receipt = process_batch(&mut s.stack, short, &batch);
    assert!(receipt.reverted_with::<RootIsm::MalformedMultiProof>());
    process_batch(&mut s.stack, metadata, &batch).ok();
}

fn every_batch_recipient_must_use_the_batch_ism(embedded: bool) {
    let mut s = setup(46, 2, embedded);
    // The second message goes to a recipient on the default (MessageId) ISM.
    let null = s.stack.null_recipient;
    let stray = s.origin.dispatch(null, b"elsewhere");
    let metadata = batch_metadata(&s.origin, &s.validators, &[0, 2], 2);
    let receipt = process_batch(&mut s.stack, metadata, &[&s.messages[0].clone(), &stray]);
    assert!(receipt.reverted_with::<Mailbox::BatchIsmMismatch>());
    let receipt = process_batch(&mut s.stack, vec![], &[]);
    assert!(receipt.reverted_with::<Mailbox::EmptyBatch>());
}

/// Each case through the static MerkleRoot ISM and through the embedded one.
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
    a_batch_delivers_every_message_once_and_delivered_reports_them,
    replay_is_rejected_across_both_paths,
    a_message_twice_in_one_batch_is_rejected,
    a_batch_leaf_beyond_the_signed_index_is_rejected,
    a_batch_with_a_wrong_leaf_or_a_short_proof_is_rejected,
    every_batch_recipient_must_use_the_batch_ism,
);
