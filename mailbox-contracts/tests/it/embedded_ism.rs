//! The Mailbox's embedded multisig ISM, MessageId (type 5) or MerkleRoot (type 4): what it
//! answers as an ISM, deliveries through it, and the sets, module types and configurations
//! it refuses. (Every rejection case of the static ISMs is also run through the embedded
//! ones in `ism_rejections`, and every batch case through the embedded MerkleRoot ISM in
//! `batch`.)

use alloy::primitives::{Address, Bytes};
use alloy::sol_types::{SolCall, SolEvent};
use metalayer_contracts::bindings::{
    Mailbox, StaticMerkleRootMultisigIsm as RootIsm, StaticMessageIdMultisigIsm as IdIsm,
    TestRecipient,
};

use crate::fixture::{
    MERKLE_ROOT, MESSAGE_ID, NO_MODULE, Origin, Stack, Validators, mailbox_creation,
};
use crate::harness::Chain;

#[test]
fn the_embedded_ism_answers_as_a_static_message_id_ism_and_delivers() {
    let validators = Validators::new(5, 3, 40);
    let mut stack = Stack::new(&validators);
    stack.use_embedded_ism();
    let mailbox = stack.mailbox;
    let recipient = stack.recipient;
    assert_eq!(stack.chain.view(mailbox, &Mailbox::defaultIsmCall {}), mailbox);
    assert_eq!(stack.chain.view(mailbox, &Mailbox::recipientIsmCall { recipient }), mailbox);
    assert_eq!(stack.chain.view(mailbox, &Mailbox::moduleTypeCall {}), 5);
    let set = stack.chain.view(mailbox, &Mailbox::validatorsAndThresholdCall::new((Bytes::new(),)));
    assert_eq!((set.validators, set.threshold), (validators.addresses(), 3));

    let mut origin = Origin::new();
    let message = origin.dispatch(recipient, b"through the embedded ISM");
    let metadata: Bytes = origin.message_id_metadata(&validators, 0).into();
    let encoded: Bytes = message.encode().into();
    // `verify` agrees with the static ISM for the same set, as a view.
    let verify = IdIsm::verifyCall { metadata: metadata.clone(), message: encoded };
    assert!(stack.chain.view(mailbox, &verify));
    assert!(stack.chain.view(stack.message_id_ism, &verify));

    let receipt = stack.process(&metadata, &message).ok();
    assert!(stack.delivered(message.id()));
    let logs: Vec<_> = receipt.logs.iter().filter(|l| l.address == mailbox).collect();
    assert_eq!(logs.len(), 2, "Process and ProcessId only");
    let process = Mailbox::Process::decode_log(logs[0]).expect("a Process event");
    assert_eq!((process.origin, process.recipient), (origin.domain, recipient));
    let process_id = Mailbox::ProcessId::decode_log(logs[1]).expect("a ProcessId event");
    assert_eq!(process_id.messageId, message.id());
    let count = stack
        .chain
        .view(recipient, &metalayer_contracts::bindings::TestRecipient::handledCountCall {});
    assert_eq!(count.to::<u64>(), 1);
    // And only once.
    let again = stack.process(&metadata, &message);
    assert_eq!(again.revert_string().as_deref(), Some("Mailbox: already delivered"));
}

#[test]
fn the_embedded_merkle_root_ism_answers_as_a_static_merkle_root_ism_and_delivers_3_of_5() {
    let validators = Validators::new(5, 3, 46);
    let mut stack = Stack::with_embedded(&validators, MERKLE_ROOT);
    stack.use_embedded_ism();
    let (mailbox, recipient, root_ism) = (stack.mailbox, stack.recipient, stack.merkle_root_ism);
    assert_eq!(stack.chain.view(mailbox, &Mailbox::recipientIsmCall { recipient }), mailbox);
    assert_eq!(stack.chain.view(mailbox, &Mailbox::moduleTypeCall {}), 4);
    assert_eq!(stack.chain.view(root_ism, &RootIsm::moduleTypeCall {}), 4);
    let call = Mailbox::validatorsAndThresholdCall::new((Bytes::new(),));
    let set = stack.chain.view(mailbox, &call);
    let static_set =
        stack.chain.view(root_ism, &RootIsm::validatorsAndThresholdCall::new((Bytes::new(),)));
    assert_eq!((set.validators.clone(), set.threshold), (validators.addresses(), 3));
    assert_eq!((set.validators, set.threshold), (static_set.validators, static_set.threshold));

    // Three messages, proven against a checkpoint at the last one.
    let mut origin = Origin::new();
    let messages: Vec<_> = (0..3u8).map(|i| origin.dispatch(recipient, &[i; 32])).collect();
    for (i, message) in messages.iter().enumerate() {
        let metadata: Bytes = origin.merkle_root_metadata(&validators, i as u32, 2).into();
        let encoded: Bytes = message.encode().into();
        // `verify` agrees with the static ISM for the same set, as a view.
        let verify = RootIsm::verifyCall { metadata: metadata.clone(), message: encoded };
        assert!(stack.chain.view(mailbox, &verify));
        assert!(stack.chain.view(root_ism, &verify));
        let receipt = stack.process(&metadata, message).ok();
        assert!(stack.delivered(message.id()));
        let logs: Vec<_> = receipt.logs.iter().filter(|l| l.address == mailbox).collect();
        assert_eq!(logs.len(), 2, "Process and ProcessId only");
        let process_id = Mailbox::ProcessId::decode_log(logs[1]).expect("a ProcessId event");
        assert_eq!(process_id.messageId, message.id());
        let again = stack.process(&metadata, message);
        assert_eq!(again.revert_string().as_deref(), Some("Mailbox: already delivered"));
    }
    let count = stack.chain.view(recipient, &TestRecipient::handledCountCall {});
    assert_eq!(count.to::<u64>(), 3);

    // MessageId metadata is not MerkleRoot metadata: the embedded MerkleRoot ISM refuses it
    // (too short for the layout), exactly as the static one does.
    let fourth = origin.dispatch(recipient, b"wrong layout");
    let metadata = origin.message_id_metadata(&validators, 3);
    let receipt = stack.process(&metadata, &fourth);
    assert!(receipt.reverted_with::<Mailbox::MetadataTooShort>(), "{receipt:?}");
    stack.set_default_ism(root_ism);
    let receipt = stack.process(&metadata, &fourth);
    assert!(receipt.reverted_with::<RootIsm::MetadataTooShort>(), "{receipt:?}");
    assert!(!stack.delivered(fourth.id()));
}

#[test]
fn the_embedded_merkle_root_ism_verifies_batches_and_the_message_id_one_refuses_them() {
    let validators = Validators::new(5, 3, 47);
    let mut stack = Stack::with_embedded(&validators, MERKLE_ROOT);
    let mut origin = Origin::new();
    let messages: Vec<_> = (0..4u8).map(|i| origin.dispatch(stack.recipient, &[i; 32])).collect();
    let call = Mailbox::verifyBatchCall {
        metadata: crate::batch::batch_metadata(&origin, &validators, &[1, 3], 3).into(),
        origin: origin.domain,
        ids: vec![messages[1].id(), messages[3].id()],
    };
    // The Mailbox answers `verifyBatch` as the static ISM does, from its fallback.
    assert!(stack.chain.view(stack.mailbox, &call));
    assert!(stack.chain.view(stack.merkle_root_ism, &call));
    // Relayers tell that an ISM takes batches by its module type (4) and a PUSH4 of the
    // `verifyBatch` selector in its code, which the Mailbox's fallback holds as the static
    // ISM's dispatcher does.
    let push4: Vec<u8> = [&[0x63u8][..], &Mailbox::verifyBatchCall::SELECTOR[..]].concat();
    for code in [&Mailbox::DEPLOYED_BYTECODE, &RootIsm::DEPLOYED_BYTECODE] {
        assert!(code.windows(5).any(|w| w == push4.as_slice()));
    }
    let swapped =
        Mailbox::verifyBatchCall { ids: vec![messages[1].id(), messages[2].id()], ..call.clone() };
    let receipt = stack.chain.simulate(Address::ZERO, stack.mailbox, swapped.abi_encode().into());
    assert!(receipt.reverted_with::<Mailbox::SignerNotValidator>(), "{receipt:?}");
    // Malformed arguments are refused by the decoder.
    let mut truncated = call.abi_encode();
    truncated.truncate(truncated.len() - 1);
    let receipt = stack.chain.simulate(Address::ZERO, stack.mailbox, truncated.into());
    assert!(!receipt.success);

    // A Mailbox whose embedded ISM is MessageId cannot verify batches, through
    // `verifyBatch` or `processBatch`.
    let mut id_stack = Stack::new(&validators);
    let receipt =
        id_stack.chain.simulate(Address::ZERO, id_stack.mailbox, call.abi_encode().into());
    assert!(receipt.reverted_with::<Mailbox::EmbeddedIsmNotMerkleRoot>(), "{receipt:?}");
    id_stack.use_embedded_ism();
    let mut id_origin = Origin::new();
    let batch: Vec<_> =
        (0..2u8).map(|i| id_origin.dispatch(id_stack.recipient, &[i; 32])).collect();
    let process = Mailbox::processBatchCall {
        metadata: crate::batch::batch_metadata(&id_origin, &validators, &[0, 1], 1).into(),
        messages: batch.iter().map(|m| Bytes::from(m.encode())).collect(),
    };
    let receipt = id_stack.chain.send_call(id_stack.relayer, id_stack.mailbox, &process);
    assert!(receipt.reverted_with::<Mailbox::EmbeddedIsmNotMerkleRoot>(), "{receipt:?}");
    assert!(!id_stack.delivered(batch[0].id()));
}

#[test]
fn a_recipient_may_name_the_mailbox_and_a_default_embedded_ism_yields_to_overrides() {
    let validators = Validators::new(4, 2, 41);
    let mut stack = Stack::new(&validators);
    let mut origin = Origin::new();
    // Default ISM static, the recipient names the Mailbox: the embedded check applies.
    let mailbox = stack.mailbox;
    stack.set_recipient_ism(mailbox);
    let first = origin.dispatch(stack.recipient, b"named");
    let bad = {
        let mut m = origin.message_id_metadata(&validators, 0);
        m[40] ^= 1; // another root: the signers recover to strangers
        m
    };
    let receipt = stack.process(&bad, &first);
    assert!(receipt.reverted_with::<Mailbox::SignerNotValidator>(), "{receipt:?}");
    stack.process(&origin.message_id_metadata(&validators, 0), &first).ok();

    // Default ISM embedded, the recipient names the MerkleRoot ISM: MessageId metadata,
    // good enough for the embedded ISM, must not pass.
    stack.use_embedded_ism();
    let root_ism = stack.merkle_root_ism;
    stack.set_recipient_ism(root_ism);
    let second = origin.dispatch(stack.recipient, b"overridden");
    let receipt = stack.process(&origin.message_id_metadata(&validators, 1), &second);
    assert!(!receipt.success);
    assert!(!stack.delivered(second.id()));
    stack.process(&origin.merkle_root_metadata(&validators, 1, 1), &second).ok();

    // MerkleRoot metadata is not MessageId metadata: the embedded ISM refuses it.
    let third = origin.dispatch(stack.null_recipient, b"wrong layout");
    let receipt = stack.process(&origin.merkle_root_metadata(&validators, 2, 2), &third);
    assert!(!receipt.success);
    assert!(!stack.delivered(third.id()));
}

#[test]
fn every_validator_slot_of_the_embedded_list_is_read() {
    // The list is written to memory in tiers of 4, 8 and 16 words; sets at and around each
    // boundary, with every validator signing, reach its last entry.
    for n in [1usize, 6, 7, 12, 13, 25] {
        let validators = Validators::new(n, n as u8, 42);
        let mut stack = Stack::new(&validators);
        stack.use_embedded_ism();
        let mut origin = Origin::new();
        let message = origin.dispatch(stack.null_recipient, b"all sign");
        let checkpoint = origin.checkpoint_at(0);
        let all: Vec<usize> = (0..n).collect();
        let metadata =
            crate::fixture::message_id_metadata(&checkpoint, validators.sign(&checkpoint, &all));
        stack.process(&metadata, &message).ok();
        // Without the last validator's signature it fails, naming the stranger it found.
        if n > 1 {
            let mut origin = Origin::new();
            origin.nonce = 1;
            let message = origin.dispatch(stack.null_recipient, b"one short");
            let checkpoint = origin.checkpoint_at(0);
            let mut sigs = validators.sign(&checkpoint, &all[..n - 1]);
            let outsider = Validators::new(1, 1, 43);
            sigs.extend(outsider.sign(&checkpoint, &[0]));
            let metadata = crate::fixture::message_id_metadata(&checkpoint, sigs);
            let receipt = stack.process(&metadata, &message);
            assert!(receipt.reverted_with::<Mailbox::SignerNotValidator>(), "n = {n}");
        }
    }
}

/// Deploys a Mailbox embedding `validators`/`threshold` as an ISM of `module_type`; `None`
/// when the constructor refuses the set (`InvalidValidatorSet`).
fn deploy_mailbox_as(
    chain: &mut Chain,
    validators: Vec<Address>,
    threshold: u8,
    module_type: u8,
) -> Option<Address> {
    let owner = Address::repeat_byte(1);
    let creation = mailbox_creation(owner, validators, threshold, module_type);
    let receipt = chain.try_deploy(owner, creation);
    if receipt.success {
        receipt.created
    } else {
        assert!(receipt.reverted_with::<Mailbox::InvalidValidatorSet>(), "{receipt:?}");
        None
    }
}

/// As [`deploy_mailbox_as`], as MessageId with a set and as no module without one.
fn deploy_mailbox(chain: &mut Chain, validators: Vec<Address>, threshold: u8) -> Option<Address> {
    let module_type = if validators.is_empty() { NO_MODULE } else { MESSAGE_ID };
    deploy_mailbox_as(chain, validators, threshold, module_type)
}

#[test]
fn the_constructor_refuses_malformed_sets() {
    let mut chain = Chain::new();
    let v = |i: u8| Address::repeat_byte(i);
    let many: Vec<Address> = (1..=26).map(v).collect();
    for module_type in [MESSAGE_ID, MERKLE_ROOT] {
        let mut deploy =
            |set: Vec<Address>, t: u8| deploy_mailbox_as(&mut chain, set, t, module_type);
        assert!(deploy(vec![v(1), v(2)], 0).is_none(), "threshold 0");
        assert!(deploy(vec![v(1), v(2)], 3).is_none(), "threshold above n");
        assert!(deploy(vec![v(1), Address::ZERO], 1).is_none(), "zero");
        assert!(deploy(vec![v(1), v(2), v(1)], 2).is_none(), "duplicate");
        assert!(deploy(many.clone(), 1).is_none(), "26 validators");
        assert!(deploy(many[..25].to_vec(), 25).is_some(), "25 validators");
    }
    assert!(deploy_mailbox(&mut chain, vec![], 1).is_none(), "threshold without validators");
    assert!(deploy_mailbox(&mut chain, vec![], 0).is_some(), "no embedded ISM");
}

#[test]
fn the_constructor_refuses_a_bad_module_type() {
    let mut chain = Chain::new();
    let set = vec![Address::repeat_byte(1), Address::repeat_byte(2)];
    let deploy = |chain: &mut Chain, set: &[Address], t: u8, module_type: u8| {
        let owner = Address::repeat_byte(1);
        chain.try_deploy(owner, mailbox_creation(owner, set.to_vec(), t, module_type))
    };
    // With a set: only 4 (MerkleRoot) or 5 (MessageId).
    for bad in [0u8, 1, 2, 3, 6, 7, 255] {
        let receipt = deploy(&mut chain, &set, 2, bad);
        assert!(receipt.reverted_with::<Mailbox::InvalidEmbeddedModuleType>(), "type {bad}");
        let error = alloy::sol_types::SolError::abi_decode(&receipt.output);
        let error: Mailbox::InvalidEmbeddedModuleType = error.expect("decodes");
        assert_eq!(error.moduleType, bad);
    }
    // Without a set: only 0 (no embedded ISM).
    for bad in [4u8, 5, 1] {
        let receipt = deploy(&mut chain, &[], 0, bad);
        assert!(receipt.reverted_with::<Mailbox::InvalidEmbeddedModuleType>(), "type {bad}");
    }
    for good in [MERKLE_ROOT, MESSAGE_ID] {
        let receipt = deploy(&mut chain, &set, 2, good);
        assert!(receipt.success, "type {good}: {receipt:?}");
        let mailbox = receipt.created.expect("an address");
        assert_eq!(chain.view(mailbox, &Mailbox::moduleTypeCall {}), good);
    }
    let bare = deploy(&mut chain, &[], 0, NO_MODULE).created.expect("an address");
    assert_eq!(chain.view(bare, &Mailbox::moduleTypeCall {}), NO_MODULE);
}

#[test]
fn a_mailbox_without_a_set_verifies_nothing_and_refuses_itself_as_default_ism() {
    let validators = Validators::new(3, 2, 44);
    let mut stack = Stack::new(&validators);
    // Replace the stack's Mailbox by one without an embedded set.
    let owner = stack.owner;
    let bare = deploy_mailbox(&mut stack.chain, vec![], 0).expect("deploys");
    let init = Mailbox::initializeCall {
        newOwner: owner,
        ism: stack.message_id_ism,
        hook: bare,
        required: Address::ZERO,
    };
    stack.chain.send_call(owner, bare, &init).ok();
    let receipt = stack.chain.send_call(owner, bare, &Mailbox::setDefaultIsmCall { module: bare });
    assert!(receipt.reverted_with::<Mailbox::NotAContract>(), "{receipt:?}");
    let set = stack.chain.view(bare, &Mailbox::validatorsAndThresholdCall::new((Bytes::new(),)));
    assert_eq!((set.validators.len(), set.threshold), (0, 0));

    // Even a full threshold of real signatures is refused by its `verify`...
    let mut origin = Origin::new();
    let message = origin.dispatch(stack.recipient, b"x");
    let metadata: Bytes = origin.message_id_metadata(&validators, 0).into();
    let call = Mailbox::verifyCall { metadata: metadata.clone(), message: message.encode().into() };
    let receipt = stack.chain.simulate(Address::ZERO, bare, call.abi_encode().into());
    assert!(receipt.reverted_with::<Mailbox::NoValidatorSet>(), "{receipt:?}");
    // ...and by `process` when a recipient names that Mailbox as its ISM.
    stack.set_recipient_ism(bare);
    let process = Mailbox::processCall { metadata, message: message.encode().into() };
    let receipt = stack.chain.send_call(stack.relayer, bare, &process);
    assert!(receipt.reverted_with::<Mailbox::NoValidatorSet>(), "{receipt:?}");
    assert!(!stack.chain.view(bare, &Mailbox::deliveredCall { id: message.id() }));
}

#[test]
fn the_fallback_serves_exactly_its_functions() {
    let validators = Validators::new(3, 2, 45);
    let mut stack = Stack::new(&validators);
    let (mailbox, owner) = (stack.mailbox, stack.owner);
    // Fixed storage slots are never delivery records.
    for slot in [0u8, 1, 4, 63] {
        let id = alloy::primitives::B256::with_last_byte(slot);
        assert!(!stack.delivered(id), "slot {slot}");
        assert_eq!(stack.chain.view(mailbox, &Mailbox::processorCall { id }), Address::ZERO);
    }
    // Served functions answer as declared (other tests read them through the bindings too).
    assert_eq!(stack.chain.view(mailbox, &Mailbox::defaultIsmCall {}), stack.message_id_ism);
    assert_eq!(stack.chain.view(mailbox, &Mailbox::defaultHookCall {}), mailbox);
    assert_eq!(stack.chain.view(mailbox, &Mailbox::countCall {}), 0);
    // Value is refused, as by a non-payable function.
    stack.chain.fund(owner, alloy::primitives::U256::from(10));
    let call = Mailbox::moduleTypeCall {};
    let receipt = stack.chain.send(
        owner,
        mailbox,
        call.abi_encode().into(),
        alloy::primitives::U256::from(1),
    );
    assert!(!receipt.success);
    // Unknown selectors, short calldata and plain transfers revert.
    for data in [vec![0xde, 0xad, 0xbe, 0xef], vec![0x01], vec![]] {
        let receipt = stack.chain.send(owner, mailbox, data.into(), alloy::primitives::U256::ZERO);
        assert!(!receipt.success);
    }
    // Truncated arguments revert.
    let receipt = stack.chain.send(
        owner,
        mailbox,
        Mailbox::processorCall::SELECTOR.to_vec().into(),
        alloy::primitives::U256::ZERO,
    );
    assert!(!receipt.success);
    // setRequiredHook stays owner-only.
    let set = Mailbox::setRequiredHookCall { hook: mailbox };
    let receipt = stack.chain.send_call(stack.relayer, mailbox, &set);
    assert!(receipt.reverted_with::<Mailbox::NotOwner>(), "{receipt:?}");
    stack.chain.send_call(owner, mailbox, &set).ok();
    assert_eq!(stack.chain.view(mailbox, &Mailbox::requiredHookCall {}), mailbox);
}
