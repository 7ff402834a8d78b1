//! Dispatch through a required hook and a paying default hook; deterministic ISM factories.

use alloy::primitives::{Address, B256, Bytes, U256, aliases::U96};
use alloy::sol_types::{SolCall, SolConstructor, SolEvent};
use metalayer_contracts::bindings::{
    InterchainGasPaymaster as Igp, Mailbox, MerkleTreeHook,
    StaticMessageIdMultisigIsmFactory as Factory, StorageGasOracle,
};

use crate::fixture::{NO_MODULE, creation, mailbox_creation};
use crate::harness::Chain;

const REMOTE: u32 = 77;

#[test]
fn required_hook_runs_first_and_the_default_hook_is_paid_the_rest() {
    let mut chain = Chain::new();
    let owner = Address::repeat_byte(1);
    let mailbox = chain.deploy(owner, mailbox_creation(owner, vec![], 0, NO_MODULE));
    let tree_args = MerkleTreeHook::constructorCall { mailboxAddress: mailbox }.abi_encode();
    let tree = chain.deploy(owner, creation(&MerkleTreeHook::BYTECODE, &tree_args));
    let oracle_args = StorageGasOracle::constructorCall { initialOwner: owner }.abi_encode();
    let oracle = chain.deploy(owner, creation(&StorageGasOracle::BYTECODE, &oracle_args));
    let igp_args =
        Igp::constructorCall { initialOwner: owner, initialBeneficiary: owner }.abi_encode();
    let igp = chain.deploy(owner, creation(&Igp::BYTECODE, &igp_args));
    let data = StorageGasOracle::RemoteGasDataConfig {
        remoteDomain: REMOTE,
        tokenExchangeRate: 10u128.pow(10),
        gasPrice: 7,
    };
    chain
        .send_call(
            owner,
            oracle,
            &StorageGasOracle::setRemoteGasDataConfigsCall { configs: vec![data] },
        )
        .ok();
    let config = Igp::DomainGasConfig { gasOracle: oracle, gasOverhead: U96::from(1_000) };
    let params = vec![Igp::GasParam { remoteDomain: REMOTE, config }];
    chain.send_call(owner, igp, &Igp::setDestinationGasConfigsCall { params }).ok();
    // The tree is required (every message is inserted); the IGP is the default hook.
    let init = Mailbox::initializeCall { newOwner: owner, ism: tree, hook: igp, required: tree };
    chain.send_call(owner, mailbox, &init).ok();
    assert_eq!(chain.view(mailbox, &Mailbox::requiredHookCall {}), tree);

    let sender = Address::repeat_byte(0x5e);
    chain.fund(sender, U256::from(10_000_000u64));
    let (recipient, body) = (B256::repeat_byte(9), Bytes::from_static(&[1; 32]));
    let quote = chain.view(
        mailbox,
        &Mailbox::quoteDispatch_1Call { destination: REMOTE, recipient, body: body.clone() },
    );
    assert_eq!(quote, U256::from((50_000 + 1_000) * 7));

    let dispatch = Mailbox::dispatch_2Call { destination: REMOTE, recipient, body };
    let receipt = chain.send(sender, mailbox, dispatch.abi_encode().into(), quote + U256::from(5));
    let receipt = receipt.ok();
    assert_eq!(
        chain.balance(sender),
        U256::from(10_000_000u64) - quote,
        "the extra 5 wei came back"
    );
    assert_eq!(chain.balance(igp), quote);
    let inserted = receipt.logs.iter().position(|l| l.address == tree).expect("tree insertion");
    let paid = receipt.logs.iter().position(|l| l.address == igp).expect("gas payment");
    assert!(inserted < paid, "the required hook runs before the default hook");
    let payment = Igp::GasPayment::decode_log(&receipt.logs[paid]).expect("GasPayment");
    assert_eq!(payment.gasAmount, U256::from(51_000));
    assert_eq!(chain.view(tree, &MerkleTreeHook::countCall {}), 1);

    let under = Mailbox::dispatch_2Call { destination: REMOTE, recipient, body: Bytes::new() };
    let receipt = chain.send(sender, mailbox, under.abi_encode().into(), quote - U256::from(1));
    assert_eq!(
        receipt.revert_string().as_deref(),
        Some("IGP: insufficient interchain gas payment")
    );
    assert_eq!(chain.view(mailbox, &Mailbox::nonceCall {}), 1, "the failed dispatch left no trace");
}

#[test]
fn ism_factories_give_deterministic_idempotent_addresses() {
    let mut chain = Chain::new();
    let owner = Address::repeat_byte(1);
    let factory = chain.deploy(owner, Factory::BYTECODE.clone());
    let set: Vec<Address> = (1..=4).map(Address::repeat_byte).collect();
    let predicted =
        chain.view(factory, &Factory::getAddressCall { validators: set.clone(), threshold: 3 });
    let receipt = chain
        .send_call(owner, factory, &Factory::deployCall { validators: set.clone(), threshold: 3 })
        .ok();
    let event = Factory::ModuleDeployed::decode_log(&receipt.logs[0]).expect("ModuleDeployed");
    assert_eq!(event.module, predicted);
    let again = chain
        .send_call(owner, factory, &Factory::deployCall { validators: set.clone(), threshold: 3 })
        .ok();
    assert!(again.logs.is_empty(), "a second deploy returns the existing ISM");
    assert_eq!(Factory::deployCall::abi_decode_returns(&again.output).expect("address"), predicted);

    let mut reordered = set.clone();
    reordered.swap(0, 1);
    let other =
        chain.view(factory, &Factory::getAddressCall { validators: reordered, threshold: 3 });
    assert_ne!(other, predicted, "validator order is part of the ISM's identity");
    let lower =
        chain.view(factory, &Factory::getAddressCall { validators: set.clone(), threshold: 2 });
    assert_ne!(lower, predicted);

    let dup = vec![set[0], set[1], set[0]];
    let r = chain.send_call(owner, factory, &Factory::deployCall { validators: dup, threshold: 2 });
    assert!(r.reverted_with::<Factory::DuplicateValidator>());
    let zero = vec![set[0], Address::ZERO];
    let r =
        chain.send_call(owner, factory, &Factory::deployCall { validators: zero, threshold: 1 });
    assert!(r.reverted_with::<Factory::ZeroValidator>());
    let r = chain.send_call(
        owner,
        factory,
        &Factory::deployCall { validators: set.clone(), threshold: 5 },
    );
    assert!(r.reverted_with::<Factory::InvalidThreshold>());
    let r = chain.send_call(owner, factory, &Factory::deployCall { validators: set, threshold: 0 });
    assert!(r.reverted_with::<Factory::InvalidThreshold>());
}
