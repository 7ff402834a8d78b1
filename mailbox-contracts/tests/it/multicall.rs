//! Multicall3: results in order, failures allowed or fatal as each call
//! says, values that must add up, and the caller the targets see.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::{SolCall, SolConstructor};
use metalayer_contracts::bindings::{Multicall3, TestRecipient};

use crate::fixture::creation;
use crate::harness::Chain;

const OWNER: Address = Address::repeat_byte(1);

/// A chain with Multicall3 and a TestRecipient owned by `OWNER`.
fn setup() -> (Chain, Address, Address) {
    let mut chain = Chain::new();
    chain.fund(OWNER, U256::from(10u64).pow(U256::from(20u64)));
    let multicall = chain.deploy(OWNER, Multicall3::BYTECODE.clone());
    let args = TestRecipient::constructorCall { initialOwner: OWNER }.abi_encode();
    let recipient = chain.deploy(OWNER, creation(&TestRecipient::BYTECODE, &args));
    (chain, multicall, recipient)
}

fn handle(body: &[u8]) -> Bytes {
    TestRecipient::handleCall {
        origin: 7,
        sender: B256::repeat_byte(2),
        body: body.to_vec().into(),
    }
    .abi_encode()
    .into()
}

/// Only the owner may set the ISM: from Multicall3 this call reverts.
fn not_owner() -> Bytes {
    TestRecipient::setInterchainSecurityModuleCall { ism: Address::ZERO }.abi_encode().into()
}

fn count() -> Bytes {
    TestRecipient::handledCountCall {}.abi_encode().into()
}

#[test]
fn aggregate3_answers_in_order_and_a_failure_fails_alone_when_allowed() {
    let (mut chain, multicall, recipient) = setup();
    let calls = vec![
        Multicall3::Call3 { target: recipient, allowFailure: false, callData: handle(b"one") },
        Multicall3::Call3 { target: recipient, allowFailure: true, callData: not_owner() },
        Multicall3::Call3 { target: recipient, allowFailure: false, callData: count() },
    ];
    let call = Multicall3::aggregate3Call { calls };
    let receipt = chain.send_call(OWNER, multicall, &call).ok();
    let results = Multicall3::aggregate3Call::abi_decode_returns(&receipt.output).unwrap();
    assert_eq!(results.len(), 3);
    assert!(results[0].success && results[0].returnData.is_empty());
    assert!(!results[1].success, "the owner-only call must fail");
    assert!(results[2].success);
    // The third call saw the first one's effect: calls run in order.
    assert_eq!(U256::from_be_slice(&results[2].returnData), U256::from(1));
    // The target saw Multicall3 as its caller.
    assert_eq!(chain.view(recipient, &TestRecipient::lastCallerCall {}), multicall);
}

#[test]
fn a_failure_not_allowed_reverts_the_whole_batch() {
    let (mut chain, multicall, recipient) = setup();
    let calls = vec![
        Multicall3::Call3 { target: recipient, allowFailure: false, callData: handle(b"one") },
        Multicall3::Call3 { target: recipient, allowFailure: false, callData: not_owner() },
    ];
    let receipt = chain.send_call(OWNER, multicall, &Multicall3::aggregate3Call { calls });
    assert_eq!(receipt.revert_string().as_deref(), Some("Multicall3: call failed"));
    assert_eq!(chain.view(recipient, &TestRecipient::handledCountCall {}), U256::ZERO);
    // `aggregate` takes no failure at all; `tryAggregate(false, ..)` takes them.
    let plain = vec![
        Multicall3::Call { target: recipient, callData: count() },
        Multicall3::Call { target: recipient, callData: not_owner() },
    ];
    let receipt =
        chain.send_call(OWNER, multicall, &Multicall3::aggregateCall { calls: plain.clone() });
    assert_eq!(receipt.revert_string().as_deref(), Some("Multicall3: call failed"));
    let call = Multicall3::tryAggregateCall { requireSuccess: false, calls: plain };
    let receipt = chain.send_call(OWNER, multicall, &call).ok();
    let results = Multicall3::tryAggregateCall::abi_decode_returns(&receipt.output).unwrap();
    assert_eq!(results.iter().map(|r| r.success).collect::<Vec<_>>(), [true, false]);
}

#[test]
fn aggregate3_value_sends_each_value_and_refuses_a_total_that_differs() {
    let (mut chain, multicall, recipient) = setup();
    let calls = vec![
        Multicall3::Call3Value {
            target: recipient,
            allowFailure: false,
            value: U256::from(5),
            callData: handle(b"paid"),
        },
        Multicall3::Call3Value {
            target: recipient,
            allowFailure: false,
            value: U256::from(7),
            callData: handle(b"paid too"),
        },
    ];
    let data: Bytes = Multicall3::aggregate3ValueCall { calls }.abi_encode().into();
    // Too little: the second call has no value left to send, and fails.
    let short = chain.send(OWNER, multicall, data.clone(), U256::from(11));
    assert_eq!(short.revert_string().as_deref(), Some("Multicall3: call failed"));
    // Too much: every call succeeds, but the total does not match.
    let over = chain.send(OWNER, multicall, data.clone(), U256::from(13));
    assert_eq!(over.revert_string().as_deref(), Some("Multicall3: value mismatch"));
    chain.send(OWNER, multicall, data, U256::from(12)).ok();
    assert_eq!(chain.balance(recipient), U256::from(12));
    assert_eq!(chain.balance(multicall), U256::ZERO);
}

#[test]
fn block_helpers_report_the_block() {
    let (mut chain, multicall, recipient) = setup();
    chain.next_block();
    let number = U256::from(chain.block_number());
    assert_eq!(chain.view(multicall, &Multicall3::getBlockNumberCall {}), number);
    let call = Multicall3::aggregateCall {
        calls: vec![Multicall3::Call { target: recipient, callData: count() }],
    };
    let out = chain.view(multicall, &call);
    assert_eq!(out.blockNumber, number);
    assert_eq!(out.returnData.len(), 1);
    assert_eq!(
        chain.view(multicall, &Multicall3::getEthBalanceCall { addr: OWNER }),
        chain.balance(OWNER)
    );
}
