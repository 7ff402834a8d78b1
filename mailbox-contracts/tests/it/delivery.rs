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

/// `process` decodes its two `bytes` arguments by hand (see `Mailbox.sol`); it must accept
/// and reject exactly the encodings solc's decoder does. The oracle is the static ISM's
/// `verify(bytes,bytes)`, which has the same argument encoding and solc's decoder: a decoder
/// rejection is a revert without data, which `process` gives for nothing else here.
#[test]
fn process_decodes_its_arguments_exactly_as_solc_does() {
    use alloy::primitives::U256;
    use alloy::sol_types::SolCall;
    use metalayer_contracts::bindings::StaticMessageIdMultisigIsm;

    let validators = Validators::new(3, 2, 11);
    let mut stack = Stack::new(&validators);
    stack.use_embedded_ism();
    let mut origin = Origin::new();
    let message = origin.dispatch(stack.null_recipient, b"decode me");
    let metadata = origin.message_id_metadata(&validators, 0);
    let call = Mailbox::processCall {
        metadata: metadata.clone().into(),
        message: message.encode().into(),
    };
    let valid = call.abi_encode()[4..].to_vec();
    let word = |v: U256| v.to_be_bytes::<32>();
    let set = |args: &[u8], at: usize, v: U256| {
        let mut a = args.to_vec();
        a[at..at + 32].copy_from_slice(&word(v));
        a
    };
    let md_offset = 0x40usize;
    let md_len = metadata.len();
    let msg_offset = md_offset + 32 + md_len.div_ceil(32) * 32;
    let msg_len = message.encode().len();
    let total = valid.len();
    let big = |bits: usize| U256::from(1) << bits;
    let mut variants: Vec<(String, Vec<u8>)> = vec![
        ("valid".into(), valid.clone()),
        ("empty".into(), Vec::new()),
        ("63-byte head".into(), valid[..63].to_vec()),
        ("head only".into(), valid[..64].to_vec()),
        ("one byte short".into(), valid[..total - 1].to_vec()),
        ("message padding cut".into(), valid[..msg_offset + 32 + msg_len].to_vec()),
        ("message end cut".into(), valid[..msg_offset + 32 + msg_len - 1].to_vec()),
        ("trailing bytes".into(), [valid.clone(), vec![7u8; 33]].concat()),
        ("same offset twice".into(), set(&valid, 0x20, U256::from(md_offset))),
        ("offsets swapped".into(), {
            let mut a = set(&valid, 0, U256::from(msg_offset));
            a[0x20..0x40].copy_from_slice(&word(U256::from(md_offset)));
            a
        }),
    ];
    for (name, at) in [("metadata", 0usize), ("message", 0x20)] {
        for v in [
            big(32),
            big(64) - U256::from(1),
            big(64),
            U256::MAX,
            U256::from(total - 32),
            U256::from(total - 31),
            U256::from(total),
            U256::from(msg_offset + 1),
        ] {
            variants.push((format!("{name} offset {v:#x}"), set(&valid, at, v)));
        }
    }
    for (name, at, len) in [("metadata", md_offset, md_len), ("message", msg_offset, msg_len)] {
        let room = total - at - 32;
        for v in [
            big(32),
            big(64) - U256::from(1),
            big(64),
            U256::MAX,
            U256::MAX - U256::from(at),
            U256::from(room),
            U256::from(room + 1),
            U256::from(len - 1),
            U256::ZERO,
        ] {
            variants.push((format!("{name} length {v:#x}"), set(&valid, at, v)));
        }
    }
    let mut delivered = 0;
    for (name, args) in variants {
        let with = |selector: [u8; 4]| [selector.to_vec(), args.clone()].concat();
        let oracle = stack.chain.simulate(
            stack.relayer,
            stack.message_id_ism,
            with(StaticMessageIdMultisigIsm::verifyCall::SELECTOR).into(),
        );
        let solc_rejects = !oracle.success && oracle.output.is_empty();
        let receipt = stack.chain.send(
            stack.relayer,
            stack.mailbox,
            with(Mailbox::processCall::SELECTOR).into(),
            U256::ZERO,
        );
        let rejects = !receipt.success && receipt.output.is_empty();
        assert_eq!(rejects, solc_rejects, "{name}: {:?} / {:?}", receipt.output, oracle.output);
        delivered += usize::from(receipt.success);
    }
    // The valid encoding delivered; every other accepted one found the record or failed a
    // later check.
    assert_eq!(delivered, 1);
    assert!(stack.delivered(message.id()));
}
