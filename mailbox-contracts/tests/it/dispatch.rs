//! Dispatch: message format, events and topics (SPEC 2.5), and the Merkle tree against
//! the protocol crate's, for the embedded tree and the standalone MerkleTreeHook.

use alloy::primitives::{Address, B256, Bytes, U256, b256, keccak256};
use alloy::sol_types::{SolCall, SolConstructor, SolEvent};
use metalayer_contracts::bindings::{Mailbox, MerkleTreeHook};
use metalayer_protocol::merkle::MerkleTree;
use metalayer_protocol::{Message, address_to_bytes32};

use crate::fixture::{DESTINATION, NO_MODULE, Stack, Validators, creation, mailbox_creation};
use crate::harness::Chain;

/// Topic hashes as listed in SPEC 2.5, independent of the bindings.
const TOPICS: [(&str, B256); 12] = [
    (
        "Dispatch(address,uint32,bytes32,bytes)",
        b256!("769f711d20c679153d382254f59892613b58a97cc876b249134ac25c80f9c814"),
    ),
    (
        "DispatchId(bytes32)",
        b256!("788dbc1b7152732178210e7f4d9d010ef016f9eafbe66786bd7169f56e0c353a"),
    ),
    (
        "Process(uint32,bytes32,address)",
        b256!("0d381c2a574ae8f04e213db7cfb4df8df712cdbd427d9868ffef380660ca6574"),
    ),
    (
        "ProcessId(bytes32)",
        b256!("1cae38cdd3d3919489272725a5ae62a4f48b2989b0dae843d3c279fee18073a9"),
    ),
    (
        "InsertedIntoTree(bytes32,uint32)",
        b256!("253a3a04cab70d47c1504809242d9350cd81627b4f1d50753e159cf8cd76ed33"),
    ),
    (
        "GasPayment(bytes32,uint32,uint256,uint256)",
        b256!("65695c3748edae85a24cc2c60b299b31f463050bc259150d2e5802ec8d11720a"),
    ),
    (
        "ValidatorAnnouncement(address,string)",
        b256!("78066d8adb677a1353d1fc8be28cf03e2a8de7157bbab979953587d78076c11e"),
    ),
    (
        "DefaultIsmSet(address)",
        b256!("a76ad0adbf45318f8633aa0210f711273d50fbb6fef76ed95bbae97082c75daa"),
    ),
    (
        "DefaultHookSet(address)",
        b256!("65a63e5066ee2fcdf9d32a7f1bf7ce71c76066f19d0609dddccd334ab87237d7"),
    ),
    (
        "RequiredHookSet(address)",
        b256!("329ec8e2438a73828ecf31a6568d7a91d7b1d79e342b0692914fd053d1a002b1"),
    ),
    (
        "DestinationGasConfigSet(uint32,address,uint96)",
        b256!("676a23191c2989bd7cc8446122cca792bcdaa0f2d6bbd9c30d8ca031ca946343"),
    ),
    (
        "RemoteGasDataSet(uint32,uint128,uint128)",
        b256!("b48c1cb713397fc0c0649596c221270fec0b3de3f85ccf6a734411a2fe57a694"),
    ),
];

#[test]
fn event_signatures_in_the_bindings_match_the_spec() {
    use metalayer_contracts::bindings::{
        InterchainGasPaymaster as Igp, StorageGasOracle, ValidatorAnnounce,
    };
    for (sig, topic) in TOPICS {
        assert_eq!(keccak256(sig), topic, "{sig}");
    }
    let ours = [
        Mailbox::Dispatch::SIGNATURE_HASH,
        Mailbox::DispatchId::SIGNATURE_HASH,
        Mailbox::Process::SIGNATURE_HASH,
        Mailbox::ProcessId::SIGNATURE_HASH,
        MerkleTreeHook::InsertedIntoTree::SIGNATURE_HASH,
        Igp::GasPayment::SIGNATURE_HASH,
        ValidatorAnnounce::ValidatorAnnouncement::SIGNATURE_HASH,
        Mailbox::DefaultIsmSet::SIGNATURE_HASH,
        Mailbox::DefaultHookSet::SIGNATURE_HASH,
        Mailbox::RequiredHookSet::SIGNATURE_HASH,
        Igp::DestinationGasConfigSet::SIGNATURE_HASH,
        StorageGasOracle::RemoteGasDataSet::SIGNATURE_HASH,
    ];
    for ((sig, topic), got) in TOPICS.iter().zip(ours) {
        assert_eq!(got, *topic, "{sig}");
    }
    assert_eq!(Mailbox::InsertedIntoTree::SIGNATURE_HASH, TOPICS[4].1);
}

#[test]
fn selectors_match_the_spec() {
    let expect: [(&[u8; 4], [u8; 4]); 9] = [
        (&Mailbox::dispatch_2Call::SELECTOR, [0xfa, 0x31, 0xde, 0x01]),
        (&Mailbox::dispatch_1Call::SELECTOR, [0x48, 0xae, 0xe8, 0xd4]),
        (&Mailbox::dispatch_0Call::SELECTOR, [0x10, 0xb8, 0x3d, 0xc0]),
        (&Mailbox::processCall::SELECTOR, [0x7c, 0x39, 0xd1, 0x30]),
        (&Mailbox::deliveredCall::SELECTOR, [0xe4, 0x95, 0xf1, 0xd4]),
        (&Mailbox::recipientIsmCall::SELECTOR, [0xe7, 0x0f, 0x48, 0xac]),
        (&Mailbox::latestDispatchedIdCall::SELECTOR, [0x13, 0x4f, 0xbb, 0x4f]),
        (&MerkleTreeHook::latestCheckpointCall::SELECTOR, [0x90, 0x7c, 0x0f, 0x92]),
        (&MerkleTreeHook::treeCall::SELECTOR, [0xfd, 0x54, 0xb2, 0x28]),
    ];
    for (i, (got, want)) in expect.iter().enumerate() {
        assert_eq!(**got, *want, "selector {i}");
    }
}

fn dispatch_call(recipient: B256, body: &[u8]) -> Mailbox::dispatch_2Call {
    Mailbox::dispatch_2Call {
        destination: DESTINATION,
        recipient,
        body: Bytes::copy_from_slice(body),
    }
}

#[test]
fn dispatch_emits_the_v3_message_and_the_embedded_tree_matches_the_protocol_tree() {
    let validators = Validators::new(1, 1, 1);
    let mut stack = Stack::new(&validators);
    let sender = Address::repeat_byte(0x42);
    let recipient = address_to_bytes32(Address::repeat_byte(0x24));
    let mut tree = MerkleTree::new();
    for n in 0..33u32 {
        let body = n.to_be_bytes().repeat(8);
        let receipt =
            stack.chain.send_call(sender, stack.mailbox, &dispatch_call(recipient, &body)).ok();
        let expected = Message {
            version: 3,
            nonce: n,
            origin: DESTINATION,
            sender: address_to_bytes32(sender),
            destination: DESTINATION,
            recipient,
            body: body.into(),
        };
        let logs = &receipt.logs;
        assert_eq!(logs.len(), 3, "Dispatch, DispatchId, InsertedIntoTree");
        assert_eq!(logs[0].topics()[0], TOPICS[0].1);
        assert_eq!(logs[0].topics()[1], address_to_bytes32(sender));
        assert_eq!(logs[0].topics()[2], B256::from(U256::from(DESTINATION)));
        assert_eq!(logs[0].topics()[3], recipient);
        let dispatch = Mailbox::Dispatch::decode_log(&logs[0]).expect("Dispatch");
        assert_eq!(dispatch.message.as_ref(), expected.encode().as_slice());
        assert_eq!(logs[1].topics(), &[TOPICS[1].1, expected.id()]);
        let inserted = Mailbox::InsertedIntoTree::decode_log(&logs[2]).expect("InsertedIntoTree");
        assert_eq!((inserted.messageId, inserted.index), (expected.id(), n));
        let returned = Mailbox::dispatch_2Call::abi_decode_returns(&receipt.output).expect("id");
        assert_eq!(returned, expected.id());
        tree.insert(expected.id()).expect("not full");

        let root = stack.chain.view(stack.mailbox, &Mailbox::rootCall {});
        assert_eq!(root, tree.root(), "root after {} dispatches", n + 1);
    }
    let (root, index) = {
        let r = stack.chain.view(stack.mailbox, &Mailbox::latestCheckpointCall {});
        (r._0, r._1)
    };
    assert_eq!(Some((root, index)), tree.latest_checkpoint());
    let nonce = stack.chain.view(stack.mailbox, &Mailbox::nonceCall {});
    assert_eq!(nonce, 33);
}

#[test]
fn the_standalone_merkle_tree_hook_matches_the_protocol_tree() {
    let mut chain = Chain::new();
    let owner = Address::repeat_byte(1);
    let mailbox = chain.deploy(owner, mailbox_creation(owner, vec![], 0, NO_MODULE));
    let hook_args = MerkleTreeHook::constructorCall { mailboxAddress: mailbox }.abi_encode();
    let hook = chain.deploy(owner, creation(&MerkleTreeHook::BYTECODE, &hook_args));
    let init =
        Mailbox::initializeCall { newOwner: owner, ism: hook, hook, required: Address::ZERO };
    chain.send_call(owner, mailbox, &init).ok();

    // An empty tree has no checkpoint, and its root is the empty-tree root.
    assert!(
        !chain
            .simulate(owner, hook, MerkleTreeHook::latestCheckpointCall {}.abi_encode().into())
            .success
    );
    assert_eq!(chain.view(hook, &MerkleTreeHook::rootCall {}), MerkleTree::new().root());

    let mut tree = MerkleTree::new();
    for n in 0..20u32 {
        let receipt = chain
            .send_call(owner, mailbox, &dispatch_call(B256::repeat_byte(7), &[n as u8; 32]))
            .ok();
        let inserted = receipt
            .logs
            .iter()
            .find(|l| l.address == hook)
            .map(|l| MerkleTreeHook::InsertedIntoTree::decode_log(l).expect("InsertedIntoTree"))
            .expect("the hook logs the insertion");
        assert_eq!(inserted.index, n);
        tree.insert(inserted.messageId).expect("not full");
        assert_eq!(chain.view(hook, &MerkleTreeHook::rootCall {}), tree.root());
    }
    let t = chain.view(hook, &MerkleTreeHook::treeCall {});
    assert_eq!(t._1, U256::from(20));
    assert_eq!(&t._0, tree.branch());

    // Only the in-flight message may be inserted.
    let forged =
        MerkleTreeHook::postDispatchCall { metadata: Bytes::new(), message: vec![3u8; 100].into() };
    let receipt = chain.send_call(owner, hook, &forged);
    assert_eq!(receipt.revert_string().as_deref(), Some("message not dispatching"));
}

#[test]
fn the_mailbox_as_a_hook_inside_dispatch_inserts_through_its_fallback() {
    // `postDispatch` is served by the fallback (IMailboxFallback). Made the required hook,
    // the Mailbox is called back as a hook during its own dispatch: the in-flight message is
    // inserted once by that call and once more by the default hook (the embedded tree).
    let validators = Validators::new(1, 1, 1);
    let mut stack = Stack::new(&validators);
    let (mailbox, owner) = (stack.mailbox, stack.owner);
    let set = Mailbox::setRequiredHookCall { hook: mailbox };
    stack.chain.send_call(owner, mailbox, &set).ok();
    let recipient = address_to_bytes32(Address::repeat_byte(0x24));
    let receipt = stack.chain.send_call(owner, mailbox, &dispatch_call(recipient, b"hi")).ok();
    let inserted: Vec<_> =
        receipt.logs.iter().filter_map(|l| Mailbox::InsertedIntoTree::decode_log(l).ok()).collect();
    assert_eq!(inserted.len(), 2, "the required hook and the default hook both insert");
    let id = stack.chain.view(mailbox, &Mailbox::latestDispatchedIdCall {});
    assert!(inserted.iter().all(|e| e.messageId == id));
    assert_eq!((inserted[0].index, inserted[1].index), (0, 1));
    assert_eq!(stack.chain.view(mailbox, &Mailbox::countCall {}), 2);

    // Outside a dispatch: the same checks as before, in the same order.
    let call = |metadata: Vec<u8>, message: Vec<u8>| Mailbox::postDispatchCall {
        metadata: metadata.into(),
        message: message.into(),
    };
    let forged = call(Vec::new(), vec![3u8; 100]);
    let receipt = stack.chain.send_call(owner, mailbox, &forged);
    assert_eq!(receipt.revert_string().as_deref(), Some("message not dispatching"));
    let receipt = stack.chain.send_call(owner, mailbox, &call(vec![0x09; 3], vec![3u8; 100]));
    assert!(!receipt.success);
    assert_ne!(receipt.revert_string().as_deref(), Some("message not dispatching"));
    // Value: the payable postDispatch refuses it by name; other served functions as
    // non-payable functions do.
    stack.chain.fund(owner, U256::from(10));
    let receipt = stack.chain.send(owner, mailbox, forged.abi_encode().into(), U256::from(1));
    assert!(receipt.reverted_with::<Mailbox::TreeHookTakesNoValue>(), "{:?}", receipt.output);
    let count = Mailbox::countCall {}.abi_encode();
    let receipt = stack.chain.send(owner, mailbox, count.into(), U256::from(1));
    assert!(!receipt.success && receipt.output.is_empty());
    // Malformed encodings revert.
    let mut bad = forged.abi_encode();
    bad.truncate(bad.len() - 40);
    let receipt = stack.chain.send(owner, mailbox, bad.into(), U256::ZERO);
    assert!(!receipt.success && receipt.output.is_empty());
}
