//! Single-message delivery through `process` with both multisig ISMs.

use alloy::primitives::{Address, B256};
use alloy::sol_types::SolEvent;
use metalayer_contracts::bindings::{Mailbox, TestRecipient};
use metalayer_protocol::address_to_bytes32;

use crate::fixture::{ORIGIN, Origin, Stack, Validators};

fn handled(stack: &mut Stack) -> (u32, B256, alloy::primitives::Bytes, u64) {
    let r = stack.recipient;
    let origin = stack.chain.view(r, &TestRecipient::lastOriginCall {});
    let sender = stack.chain.view(r, &TestRecipient::lastSenderCall {});
    let body = stack.chain.view(r, &TestRecipient::lastBodyCall {});
    let count = stack.chain.view(r, &TestRecipient::handledCountCall {});
    (origin, sender, body, count.to::<u64>())
}

#[test]
fn message_id_3_of_5_reaches_the_recipient() {
    let validators = Validators::new(5, 3, 7);
    let mut stack = Stack::new(&validators);
    let mut origin = Origin::new();
    let message = origin.dispatch(stack.recipient, b"hello, destination");
    let metadata = origin.message_id_metadata(&validators, 0);
    let receipt = stack.process(&metadata, &message).ok();

    let (o, sender, body, count) = handled(&mut stack);
    assert_eq!((o, sender, count), (ORIGIN, message.sender, 1));
    assert_eq!(body.as_ref(), b"hello, destination");
    assert!(stack.delivered(message.id()));
    let processor = stack.chain.view(stack.mailbox, &Mailbox::processorCall { id: message.id() });
    assert_eq!(processor, stack.relayer);
    let at = stack.chain.view(stack.mailbox, &Mailbox::processedAtCall { id: message.id() });
    assert_eq!(at.to::<u64>(), stack.chain.block_number());

    // Process then ProcessId, with the message's fields as topics.
    let logs: Vec<_> = receipt.logs.iter().filter(|l| l.address == stack.mailbox).collect();
    assert_eq!(logs.len(), 2);
    let process = Mailbox::Process::decode_log(logs[0]).expect("a Process event");
    assert_eq!(process.origin, ORIGIN);
    assert_eq!(process.sender, message.sender);
    assert_eq!(process.recipient, stack.recipient);
    let process_id = Mailbox::ProcessId::decode_log(logs[1]).expect("a ProcessId event");
    assert_eq!(process_id.messageId, message.id());
}

#[test]
fn merkle_root_delivery_with_a_later_checkpoint_reaches_the_recipient() {
    let validators = Validators::new(5, 3, 8);
    let mut stack = Stack::new(&validators);
    let ism = stack.merkle_root_ism;
    stack.set_recipient_ism(ism);
    let mut origin = Origin::new();
    let messages: Vec<_> = (0..6u8).map(|i| origin.dispatch(stack.recipient, &[i; 32])).collect();
    // Leaf 2 proven against the checkpoint signed at leaf 5.
    let metadata = origin.merkle_root_metadata(&validators, 2, 5);
    stack.process(&metadata, &messages[2]).ok();
    let (_, _, body, count) = handled(&mut stack);
    assert_eq!((body.as_ref(), count), (&[2u8; 32][..], 1));
    assert!(stack.delivered(messages[2].id()));
    assert!(!stack.delivered(messages[3].id()));
}

#[test]
fn a_recipient_ism_override_is_honoured() {
    let validators = Validators::new(3, 2, 9);
    let mut stack = Stack::new(&validators);
    let ism = stack.merkle_root_ism;
    stack.set_recipient_ism(ism);
    let recipient_ism =
        stack.chain.view(stack.mailbox, &Mailbox::recipientIsmCall { recipient: stack.recipient });
    assert_eq!(recipient_ism, ism);
    let null_ism = stack
        .chain
        .view(stack.mailbox, &Mailbox::recipientIsmCall { recipient: stack.null_recipient });
    assert_eq!(null_ism, stack.message_id_ism, "no override: the default ISM");

    // MessageId metadata satisfies the default ISM but not the recipient's MerkleRoot ISM.
    let mut origin = Origin::new();
    let message = origin.dispatch(stack.recipient, b"x");
    let metadata = origin.message_id_metadata(&validators, 0);
    let receipt = stack.process(&metadata, &message);
    assert!(!receipt.success, "the default ISM's metadata must not pass the override");
    assert!(!stack.delivered(message.id()));
    let metadata = origin.merkle_root_metadata(&validators, 0, 0);
    stack.process(&metadata, &message).ok();
    assert!(stack.delivered(message.id()));
}

#[test]
fn recipient_must_be_an_evm_address_with_code() {
    let validators = Validators::new(1, 1, 10);
    let mut stack = Stack::new(&validators);
    let mut origin = Origin::new();
    let eoa = Address::repeat_byte(0x77);
    let message = origin.dispatch(eoa, b"to nobody");
    let metadata = origin.message_id_metadata(&validators, 0);
    let receipt = stack.process(&metadata, &message);
    assert!(receipt.reverted_with::<Mailbox::RecipientNotAContract>());
    // Precompiles have no code either, whether their answer to the ISM lookup is a word
    // (sha256, 0x02), nothing (identity, 0x04) or a failure (pairing, 0x08).
    for precompile in [2u8, 4, 8] {
        let mut to = [0u8; 20];
        to[19] = precompile;
        let message = origin.dispatch(Address::from(to), b"to a precompile");
        let index = origin.nonce - 1;
        let metadata = origin.message_id_metadata(&validators, index);
        let receipt = stack.process(&metadata, &message);
        assert!(receipt.reverted_with::<Mailbox::RecipientNotAContract>(), "{precompile}");
    }

    let mut dirty = origin.dispatch(stack.recipient, b"dirty recipient");
    dirty.recipient = {
        let mut w = address_to_bytes32(stack.recipient);
        w[0] = 1;
        w
    };
    let receipt = stack.process(&[], &dirty);
    assert!(receipt.reverted_with::<Mailbox::NotAnEvmAddress>());
}
