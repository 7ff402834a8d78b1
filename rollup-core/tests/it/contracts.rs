//! The TestRecipient artifact: deploy, call, revert data, logs by filter,
//! polling filters, subscriptions and state overrides.

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{Provider, ProviderBuilder, WsConnect};
use alloy::rpc::types::state::{AccountOverride, StateOverride};
use alloy::rpc::types::{Filter, Log, TransactionRequest};
use alloy::sol_types::{SolCall, SolEvent};
use futures::StreamExt;

use crate::common::{
    TestRecipient, TestResult, artifact, deploy_test_recipient, dev_signer, provider, start,
};

#[tokio::test]
async fn deploy_call_and_read_logs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let p = provider(&node, 0);
    let owner = dev_signer(0).address();
    let addr = deploy_test_recipient(&p, owner).await;
    assert_eq!(p.get_code_at(addr).await?, artifact("TestRecipient", "deployedBytecode"));
    let recipient = TestRecipient::new(addr, p.clone());
    assert_eq!(recipient.owner().call().await?, owner);

    let body = Bytes::from_static(b"hello metalayer");
    let sender = B256::repeat_byte(0x11);
    let receipt = recipient
        .handle(7, sender, body.clone())
        .value(U256::from(5))
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(receipt.status());
    assert_eq!(receipt.inner.logs().len(), 1);
    assert_eq!(recipient.handledCount().call().await?, U256::from(1));
    // TestRecipient's layout: owner (slot 0), ism (1), handledCount (2).
    assert_eq!(p.get_storage_at(addr, U256::from(2)).await?, U256::from(1));
    assert_eq!(p.get_storage_at(addr, U256::ZERO).await?, U256::from_be_slice(owner.as_slice()));
    assert_eq!(recipient.lastBody().call().await?, body);

    let by_address = Filter::new().address(addr).from_block(0);
    let all = p.get_logs(&by_address).await?;
    assert_eq!(all.len(), 2, "the constructor's OwnershipTransferred, then ReceivedMessage");
    let logs = p
        .get_logs(
            &by_address.clone().event_signature(TestRecipient::ReceivedMessage::SIGNATURE_HASH),
        )
        .await?;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0], all[1]);
    let event = logs[0].log_decode::<TestRecipient::ReceivedMessage>()?;
    assert_eq!(event.inner.data.origin, 7);
    assert_eq!(event.inner.data.sender, sender);
    assert_eq!(event.inner.data.value, U256::from(5));
    assert_eq!(event.inner.data.body, body);
    assert_eq!(logs[0].transaction_hash, Some(receipt.transaction_hash));
    assert_eq!(logs[0].block_number, receipt.block_number);

    let by_topic =
        Filter::new().event_signature(TestRecipient::ReceivedMessage::SIGNATURE_HASH).from_block(0);
    assert_eq!(p.get_logs(&by_topic).await?.len(), 1);
    let by_origin = by_topic.clone().topic1(U256::from(7));
    assert_eq!(p.get_logs(&by_origin).await?.len(), 1);
    let other_origin = by_topic.clone().topic1(U256::from(8));
    assert!(p.get_logs(&other_origin).await?.is_empty());
    // Later positions are matched through each block's bloom and logs, with
    // no address or event signature to narrow the blocks first.
    let origin_alone = Filter::new().topic1(U256::from(7)).from_block(0);
    assert_eq!(p.get_logs(&origin_alone).await?, logs);
    let sender_alone = Filter::new().topic2(sender).from_block(0);
    assert_eq!(p.get_logs(&sender_alone).await?, logs);
    assert!(p.get_logs(&Filter::new().topic1(U256::from(8)).from_block(0)).await?.is_empty());
    let other_address = Filter::new().address(Address::repeat_byte(9)).from_block(0);
    assert!(p.get_logs(&other_address).await?.is_empty());

    let log_filter = p
        .new_filter(
            &Filter::new()
                .address(addr)
                .event_signature(TestRecipient::ReceivedMessage::SIGNATURE_HASH),
        )
        .await?;
    let block_filter = p.new_block_filter().await?;
    let r2 = recipient
        .handle(9, sender, Bytes::from_static(b"second"))
        .send()
        .await?
        .get_receipt()
        .await?;
    let changes: Vec<Log> = p.get_filter_changes(log_filter).await?;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].transaction_hash, Some(r2.transaction_hash));
    let again: Vec<Log> = p.get_filter_changes(log_filter).await?;
    assert!(again.is_empty(), "a filter reports each change once");
    let hashes: Vec<B256> = p.get_filter_changes(block_filter).await?;
    assert_eq!(hashes, vec![r2.block_hash.expect("mined")]);
    assert!(p.uninstall_filter(log_filter).await?);
    assert!(!p.uninstall_filter(log_filter).await?);
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn reverts_carry_custom_error_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let owner_p = provider(&node, 0);
    let addr = deploy_test_recipient(&owner_p, dev_signer(0).address()).await;
    let stranger = dev_signer(1).address();
    let recipient = TestRecipient::new(addr, provider(&node, 1));
    let err = recipient
        .setInterchainSecurityModule(Address::ZERO)
        .from(stranger)
        .call()
        .await
        .expect_err("non-owner reverts");
    let decoded =
        err.as_decoded_error::<TestRecipient::NotOwner>().expect("revert data decodes as NotOwner");
    assert_eq!(decoded.caller, stranger);
    let err = recipient
        .setInterchainSecurityModule(Address::ZERO)
        .from(stranger)
        .estimate_gas()
        .await
        .expect_err("estimate reverts too");
    assert!(
        err.as_decoded_error::<TestRecipient::NotOwner>().is_some(),
        "estimateGas carries the revert data: {err}"
    );
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_estimate_is_enough_and_one_gas_less_is_not() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let p = provider(&node, 0);
    let addr = deploy_test_recipient(&p, dev_signer(0).address()).await;
    let recipient = TestRecipient::new(addr, p.clone());
    let body = Bytes::from(vec![0x5a; 300]);
    let estimate = recipient.handle(7, B256::repeat_byte(1), body.clone()).estimate_gas().await?;
    // One gas less runs out (the estimate is the least that works)...
    let short = recipient
        .handle(7, B256::repeat_byte(1), body.clone())
        .gas(estimate - 1)
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(!short.status(), "{estimate} - 1 gas must not be enough");
    // ...and the estimate itself succeeds.
    let exact = recipient
        .handle(7, B256::repeat_byte(1), body)
        .gas(estimate)
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(exact.status(), "{estimate} gas must be enough");
    assert_eq!(exact.gas_used, estimate);
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_estimate_for_a_call_that_forwards_gas_works_and_is_within_two_percent() -> TestResult {
    // One call is bisected; a hundred and twenty (over 1 M gas, where the
    // 63/64 margin is within the bound) are settled by the margin's run.
    for calls in [1, 120] {
        estimate_through_multicall(calls).await?;
    }
    Ok(())
}

/// Estimates Multicall3 calling the recipient's `handle` `calls` times,
/// and checks the estimate against the least limit that works, found by
/// bisecting with `eth_call`.
async fn estimate_through_multicall(calls: usize) -> TestResult {
    use metalayer_contracts::bindings::Multicall3;
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let p = provider(&node, 0);
    let recipient = deploy_test_recipient(&p, dev_signer(0).address()).await;
    let create = TransactionRequest::default()
        .into_create()
        .input(artifact("Multicall3", "bytecode").into());
    let multicall = p.send_transaction(create).await?.get_receipt().await?.contract_address;
    let multicall = multicall.expect("Multicall3 deployed");
    // Multicall3 calls the recipient with 63/64 of what it has left: the
    // least limit that works is above the gas the call spends.
    let handle = TestRecipient::handleCall {
        origin: 7,
        sender: B256::repeat_byte(1),
        body: Bytes::from(vec![0x5a; 300]),
    };
    let call = Multicall3::Call3 {
        target: recipient,
        allowFailure: false,
        callData: handle.abi_encode().into(),
    };
    let data = Multicall3::aggregate3Call { calls: vec![call; calls] }.abi_encode();
    let tx = TransactionRequest::default()
        .from(dev_signer(0).address())
        .to(multicall)
        .input(Bytes::from(data).into());
    let estimate = p.estimate_gas(tx.clone()).await?;
    let works = |gas: u64| {
        let tx = tx.clone().gas_limit(gas);
        let p = p.clone();
        async move { p.call(tx).await.is_ok() }
    };
    let (mut lo, mut hi) = (21_000u64, estimate);
    assert!(works(hi).await, "{calls} calls: the estimate {estimate} must work");
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if works(mid).await { hi = mid } else { lo = mid }
    }
    let least = hi;
    let mined = p.send_transaction(tx.gas_limit(estimate)).await?.get_receipt().await?;
    assert!(mined.status(), "mined with the estimate");
    if calls == 1 {
        let spent = mined.gas_used;
        assert!(least > spent, "least {least} must exceed the gas spent {spent}");
    } else {
        assert!(mined.gas_used > 1_000_000, "{calls} calls spent {}", mined.gas_used);
    }
    assert!(
        estimate <= least + least * 2 / 100 + 1,
        "{calls} calls: estimate {estimate} is more than 2 % above the least that works, {least}"
    );
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_estimate_with_a_refund_is_the_gas_spent_before_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let p = provider(&node, 0);
    let addr = deploy_test_recipient(&p, dev_signer(0).address()).await;
    let recipient = TestRecipient::new(addr, p.clone());
    let set = recipient.setInterchainSecurityModule(Address::repeat_byte(9));
    assert!(set.send().await?.get_receipt().await?.status());
    // Clearing the slot earns a refund, paid back only at the end: the
    // transaction needs more gas than its receipt shows as used.
    let clear = || recipient.setInterchainSecurityModule(Address::ZERO);
    let estimate = clear().estimate_gas().await?;
    let short = clear().gas(estimate - 1).send().await?.get_receipt().await?;
    assert!(!short.status(), "{estimate} - 1 gas must not be enough");
    let exact = clear().gas(estimate).send().await?.get_receipt().await?;
    assert!(exact.status(), "{estimate} gas must be enough");
    assert!(exact.gas_used < estimate, "the refund: {} used of {estimate}", exact.gas_used);
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn eth_call_with_state_overrides() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let p = provider(&node, 0);
    let fake = Address::repeat_byte(0x42);
    let code = artifact("TestRecipient", "deployedBytecode");
    let call = TestRecipient::handledCountCall {}.abi_encode();
    let tx = TransactionRequest::default().with_to(fake).with_input(call.clone());
    assert_eq!(p.call(tx.clone()).await?, Bytes::new(), "no code at the address without overrides");
    let mut overrides = StateOverride::default();
    // TestRecipient's layout: owner (slot 0), ism (1), handledCount (2).
    let diff = [(B256::from(U256::from(2)), B256::from(U256::from(41)))].into_iter().collect();
    overrides.insert(
        fake,
        AccountOverride { code: Some(code), state_diff: Some(diff), ..Default::default() },
    );
    let out = p.call(tx.clone()).overrides(overrides.clone()).await?;
    assert_eq!(out.len(), 32, "the overriding code ran");
    assert_eq!(U256::from_be_slice(&out), U256::from(41));
    assert!(p.get_code_at(fake).await?.is_empty(), "overrides never touch the chain");
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn subscriptions_over_websocket() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let http = provider(&node, 0);
    let addr = deploy_test_recipient(&http, dev_signer(0).address()).await;
    let ws = ProviderBuilder::new().connect_ws(WsConnect::new(node.ws_url())).await?;
    let mut heads = ws.subscribe_blocks().await?.into_stream();
    let mut logs = ws.subscribe_logs(&Filter::new().address(addr)).await?.into_stream();
    let recipient = TestRecipient::new(addr, http.clone());
    let receipt = recipient
        .handle(1, B256::ZERO, Bytes::from_static(b"sub"))
        .send()
        .await?
        .get_receipt()
        .await?;
    let mined = receipt.block_number.expect("mined");
    // The first news is of the handle's block: the deployment's block was
    // announced before its receipt could be read, so before these
    // subscriptions existed.
    let head = heads.next().await.expect("a new head arrives");
    assert_eq!(head.number, mined);
    assert_eq!(Some(head.hash), receipt.block_hash);
    let log = logs.next().await.expect("a log arrives");
    assert_eq!(log.block_number, Some(mined));
    assert_eq!(log.transaction_hash, Some(receipt.transaction_hash));
    assert!(!log.removed);
    assert_eq!(log.topic0(), Some(&TestRecipient::ReceivedMessage::SIGNATURE_HASH));
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn eth_send_transaction_signs_for_dev_accounts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let url = node.http_url().parse()?;
    let plain = ProviderBuilder::new().disable_recommended_fillers().connect_http(url);
    let from = dev_signer(2).address();
    let to = dev_signer(5).address();
    let before = plain.get_balance(to).await?;
    let tx = serde_json::json!({ "from": from, "to": to, "value": "0x64" });
    let hash: B256 = plain.raw_request("eth_sendTransaction".into(), (tx,)).await?;
    let receipt = crate::common::wait_receipt(&plain, hash).await?;
    assert!(receipt.status());
    assert_eq!(receipt.from, from);
    assert_eq!(plain.get_balance(to).await?, before + U256::from(100));
    let stranger = serde_json::json!({ "from": Address::repeat_byte(1), "to": to, "value": "0x1" });
    let err = plain
        .raw_request::<_, B256>("eth_sendTransaction".into(), (stranger,))
        .await
        .expect_err("not a dev account");
    assert!(err.to_string().contains("unknown account"), "{err}");
    node.stop().await;
    Ok(())
}
