//! IGP quotes, payments and refunds; ValidatorAnnounce; aggregation, routing and pausing.

use alloy::primitives::{Address, B256, Bytes, U256, aliases::U96, keccak256};
use alloy::sol_types::{SolConstructor, SolEvent};
use metalayer_contracts::bindings::{
    AggregationIsm, DomainRoutingIsm, InterchainGasPaymaster as Igp, Mailbox, PausableIsm,
    StorageGasOracle, ValidatorAnnounce,
};
use metalayer_protocol::{LocalSigner, Signer, address_to_bytes32, eip191_hash};

use crate::fixture::{DESTINATION, ORIGIN, Origin, Stack, Validators, creation};
use crate::harness::Chain;

const REMOTE: u32 = 4321;

fn igp_stack() -> (Chain, Address, Address) {
    let mut chain = Chain::new();
    let owner = Address::repeat_byte(1);
    let oracle_args = StorageGasOracle::constructorCall { initialOwner: owner }.abi_encode();
    let oracle = chain.deploy(owner, creation(&StorageGasOracle::BYTECODE, &oracle_args));
    let igp_args = Igp::constructorCall {
        initialOwner: owner,
        initialBeneficiary: Address::repeat_byte(0xbe),
    };
    let igp = chain.deploy(owner, creation(&Igp::BYTECODE, &igp_args.abi_encode()));
    let data = StorageGasOracle::setRemoteGasDataConfigsCall {
        configs: vec![StorageGasOracle::RemoteGasDataConfig {
            remoteDomain: REMOTE,
            tokenExchangeRate: 2 * 10u128.pow(10),
            gasPrice: 3_000_000_000,
        }],
    };
    let receipt = chain.send_call(owner, oracle, &data).ok();
    assert_eq!(receipt.logs[0].topics()[0], StorageGasOracle::RemoteGasDataSet::SIGNATURE_HASH);
    let config = Igp::setDestinationGasConfigsCall {
        params: vec![Igp::GasParam {
            remoteDomain: REMOTE,
            config: Igp::DomainGasConfig { gasOracle: oracle, gasOverhead: U96::from(10_000) },
        }],
    };
    chain.send_call(owner, igp, &config).ok();
    (chain, owner, igp)
}

#[test]
fn igp_quotes_with_the_exact_formula_and_refunds_overpayment() {
    let (mut chain, _, igp) = igp_stack();
    let quote = chain.view(
        igp,
        &Igp::quoteGasPaymentCall { destination: REMOTE, gasLimit: U256::from(100_000) },
    );
    // 100 000 gas * 3 gwei * rate 2 (scaled 1e10) / 1e10.
    assert_eq!(quote, U256::from(100_000u64 * 3_000_000_000 * 2));

    let payer = Address::repeat_byte(0x70);
    let refund = Address::repeat_byte(0x71);
    chain.fund(payer, U256::from(10u64).pow(U256::from(18)));
    let id = B256::repeat_byte(0x1d);
    let pay = Igp::payForGasCall {
        id,
        destination: REMOTE,
        gasLimit: U256::from(100_000),
        refundAddress: refund,
    };
    let paid = quote + U256::from(12_345);
    let receipt =
        chain.send(payer, igp, alloy::sol_types::SolCall::abi_encode(&pay).into(), paid).ok();
    assert_eq!(chain.balance(refund), U256::from(12_345));
    assert_eq!(chain.balance(igp), quote);
    let event = Igp::GasPayment::decode_log(&receipt.logs[0]).expect("GasPayment");
    assert_eq!((event.messageId, event.destinationDomain), (id, REMOTE));
    assert_eq!((event.gasAmount, event.payment), (U256::from(100_000), quote));

    // Underpayment and unknown domains are refused.
    let receipt = chain.send(
        payer,
        igp,
        alloy::sol_types::SolCall::abi_encode(&pay).into(),
        quote - U256::from(1),
    );
    assert_eq!(
        receipt.revert_string().as_deref(),
        Some("IGP: insufficient interchain gas payment")
    );
    let unknown = Igp::quoteGasPaymentCall { destination: 77, gasLimit: U256::from(1) };
    let r = chain.simulate(payer, igp, alloy::sol_types::SolCall::abi_encode(&unknown).into());
    assert_eq!(r.revert_string().as_deref(), Some("Configured IGP doesn't support domain 77"));

    // claim sends everything to the beneficiary.
    chain.send_call(payer, igp, &Igp::claimCall {}).ok();
    assert_eq!(chain.balance(Address::repeat_byte(0xbe)), quote);
}

#[test]
fn igp_as_a_hook_adds_the_overhead_and_reads_standard_metadata() {
    let (mut chain, _, igp) = igp_stack();
    let message = metalayer_protocol::Message {
        version: 3,
        nonce: 0,
        origin: 1,
        sender: address_to_bytes32(Address::repeat_byte(0x70)),
        destination: REMOTE,
        recipient: B256::repeat_byte(2),
        body: Bytes::new(),
    };
    let quote = |chain: &mut Chain, metadata: Vec<u8>| {
        chain.view(
            igp,
            &Igp::quoteDispatchCall { metadata: metadata.into(), message: message.encode().into() },
        )
    };
    let per_gas = U256::from(3_000_000_000u64 * 2);
    assert_eq!(quote(&mut chain, vec![]), per_gas * U256::from(50_000 + 10_000));
    let mut metadata = vec![0u8, 1];
    metadata.extend_from_slice(&[0u8; 32]);
    metadata.extend_from_slice(&U256::from(200_000).to_be_bytes::<32>());
    assert_eq!(quote(&mut chain, metadata.clone()), per_gas * U256::from(210_000));
    metadata[1] = 2;
    let bad =
        Igp::quoteDispatchCall { metadata: metadata.into(), message: message.encode().into() };
    let r = chain.simulate(Address::ZERO, igp, alloy::sol_types::SolCall::abi_encode(&bad).into());
    assert_eq!(
        r.revert_string().as_deref(),
        Some("AbstractPostDispatchHook: invalid metadata variant")
    );
}

#[test]
fn validator_announce_checks_the_signature_and_refuses_replays() {
    let validators = Validators::new(1, 1, 50);
    let mut stack = Stack::new(&validators);
    let args = ValidatorAnnounce::constructorCall { mailboxAddress: stack.mailbox }.abi_encode();
    let va = stack.chain.deploy(stack.owner, creation(&ValidatorAnnounce::BYTECODE, &args));
    let signer = &validators.signers[0];
    let location = "s3://bucket/us-east-1".to_string();
    // The digest as SPEC 4.4 defines it, computed here independently.
    let mut domain = DESTINATION.to_be_bytes().to_vec();
    domain.extend_from_slice(address_to_bytes32(stack.mailbox).as_slice());
    domain.extend_from_slice(b"HYPERLANE_ANNOUNCEMENT");
    let inner = keccak256([keccak256(&domain).as_slice(), location.as_bytes()].concat());
    let digest = eip191_hash(inner);
    let on_chain = stack.chain.view(
        va,
        &ValidatorAnnounce::getAnnouncementDigestCall { storageLocation: location.clone() },
    );
    assert_eq!(on_chain, digest);

    let signature = Bytes::from(signer.sign_digest(digest).expect("sign").to_bytes().to_vec());
    let announce = ValidatorAnnounce::announceCall {
        validator: signer.address(),
        storageLocation: location.clone(),
        signature,
    };
    let receipt = stack.chain.send_call(stack.relayer, va, &announce).ok();
    let event =
        ValidatorAnnounce::ValidatorAnnouncement::decode_log(&receipt.logs[0]).expect("event");
    assert_eq!(
        (event.validator, event.storageLocation.clone()),
        (signer.address(), location.clone())
    );
    let replay = stack.chain.send_call(stack.relayer, va, &announce);
    assert_eq!(replay.revert_string().as_deref(), Some("replay"));

    // A signature by someone else, for a fresh location, is refused.
    let other = LocalSigner::from_bytes(&B256::repeat_byte(0x66)).expect("key");
    let location2 = "file:///tmp/checkpoints".to_string();
    let digest2 = stack.chain.view(
        va,
        &ValidatorAnnounce::getAnnouncementDigestCall { storageLocation: location2.clone() },
    );
    let forged = ValidatorAnnounce::announceCall {
        validator: signer.address(),
        storageLocation: location2,
        signature: other.sign_digest(digest2).expect("sign").to_bytes().to_vec().into(),
    };
    let receipt = stack.chain.send_call(stack.relayer, va, &forged);
    assert_eq!(receipt.revert_string().as_deref(), Some("!signature"));

    let listed = stack.chain.view(
        va,
        &ValidatorAnnounce::getAnnouncedStorageLocationsCall {
            validatorList: vec![signer.address()],
        },
    );
    assert_eq!(listed, vec![vec![location]]);
    let all = stack.chain.view(va, &ValidatorAnnounce::getAnnouncedValidatorsCall {});
    assert_eq!(all, vec![signer.address()]);
}

#[test]
fn aggregation_routing_and_pausing_compose() {
    let validators = Validators::new(3, 2, 51);
    let mut stack = Stack::new(&validators);
    let owner = stack.owner;
    let pause_args = PausableIsm::constructorCall { initialOwner: owner }.abi_encode();
    let pausable = stack.chain.deploy(owner, creation(&PausableIsm::BYTECODE, &pause_args));
    let agg_args = AggregationIsm::constructorCall {
        moduleList: vec![stack.message_id_ism, pausable],
        moduleThreshold: 2,
    };
    let aggregation =
        stack.chain.deploy(owner, creation(&AggregationIsm::BYTECODE, &agg_args.abi_encode()));
    let route_args = DomainRoutingIsm::constructorCall {
        initialOwner: owner,
        domains: vec![ORIGIN],
        modules: vec![aggregation],
    };
    let routing =
        stack.chain.deploy(owner, creation(&DomainRoutingIsm::BYTECODE, &route_args.abi_encode()));
    stack
        .chain
        .send_call(owner, stack.mailbox, &Mailbox::setDefaultIsmCall { module: routing })
        .ok();

    let mut origin = Origin::new();
    let message = origin.dispatch(stack.null_recipient, b"composed");
    let multisig = origin.message_id_metadata(&validators, 0);
    let metadata = metalayer_protocol::metadata::AggregationMetadata {
        modules: vec![Some(multisig.clone()), Some(vec![])],
    }
    .encode()
    .expect("aggregation metadata");

    stack.chain.send_call(owner, pausable, &PausableIsm::pauseCall {}).ok();
    let receipt = stack.process(&metadata, &message);
    assert_eq!(receipt.revert_string().as_deref(), Some("Pausable: paused"));
    stack.chain.send_call(owner, pausable, &PausableIsm::unpauseCall {}).ok();

    let only_one =
        metalayer_protocol::metadata::AggregationMetadata { modules: vec![Some(multisig), None] }
            .encode()
            .expect("aggregation metadata");
    let receipt = stack.process(&only_one, &message);
    assert_eq!(receipt.revert_string().as_deref(), Some("!threshold"));

    let mut foreign = message.clone();
    foreign.origin = 9;
    let receipt = stack.process(&metadata, &foreign);
    assert_eq!(receipt.revert_string().as_deref(), Some("No ISM found for origin: 9"));

    stack.process(&metadata, &message).ok();
    assert!(stack.delivered(message.id()));
}
