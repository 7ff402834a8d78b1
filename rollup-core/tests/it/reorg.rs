//! Dev methods: reorgs, snapshots and state edits.

use alloy::consensus::TxEip1559;
use alloy::network::TransactionBuilder;
use alloy::primitives::{B256, Bytes, TxKind, U256};
use alloy::providers::{Provider, ProviderBuilder, WsConnect};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::sol_types::{SolCall, SolEvent};
use futures::StreamExt;

use crate::common::{
    TestRecipient, TestResult, deploy_test_recipient, dev_signer, provider, sign, start,
};

#[tokio::test]
async fn reorg_replaces_blocks_and_their_logs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let p = provider(&node, 0);
    let addr = deploy_test_recipient(&p, dev_signer(0).address()).await;
    let ws = ProviderBuilder::new().connect_ws(WsConnect::new(node.ws_url())).await?;
    let filter = Filter::new()
        .address(addr)
        .event_signature(TestRecipient::ReceivedMessage::SIGNATURE_HASH)
        .from_block(0);
    let mut logs_sub = ws.subscribe_logs(&filter).await?.into_stream();
    let recipient = TestRecipient::new(addr, p.clone());
    let old = recipient
        .handle(1, B256::ZERO, Bytes::from_static(b"old branch"))
        .send()
        .await?
        .get_receipt()
        .await?;
    let old_number = old.block_number.expect("mined");
    let old_hash = old.block_hash.expect("mined");
    let first = logs_sub.next().await.expect("log of the old branch");
    assert!(!first.removed);
    assert_eq!(p.get_logs(&filter).await?.len(), 1);

    // A different branch of the same height, whose first block calls handle with another body.
    let signer = dev_signer(8);
    let call = TestRecipient::handleCall {
        origin: 2,
        sender: B256::ZERO,
        body: Bytes::from_static(b"new branch"),
    }
    .abi_encode();
    let tx = TxEip1559 {
        chain_id: 31337,
        nonce: 0,
        gas_limit: 200_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(addr),
        input: call.into(),
        ..Default::default()
    };
    let raw = sign(&signer, tx.into());
    let head = p.get_block_number().await?;
    let _: serde_json::Value =
        p.raw_request("anvil_reorg".into(), (U256::from(1), vec![(raw, 0u64)])).await?;
    assert_eq!(p.get_block_number().await?, head, "a reorg keeps the height");
    let replaced =
        p.get_block_by_number(old_number.into()).await?.expect("block at the old height");
    assert_ne!(replaced.header.hash, old_hash, "the block was replaced");
    assert!(
        p.get_transaction_receipt(old.transaction_hash).await?.is_none(),
        "old-branch receipt is gone"
    );
    assert!(p.get_block_by_hash(old_hash).await?.is_none());

    let removed = logs_sub.next().await.expect("removal notice");
    assert!(removed.removed, "subscribers see the old log as removed");
    assert_eq!(removed.transaction_hash, Some(old.transaction_hash));
    let added = logs_sub.next().await.expect("new-branch log");
    assert!(!added.removed);

    let logs = p.get_logs(&filter).await?;
    assert_eq!(logs.len(), 1);
    let event = logs[0].log_decode::<TestRecipient::ReceivedMessage>()?;
    assert_eq!(event.inner.data.body, Bytes::from_static(b"new branch"));
    assert_eq!(recipient.lastBody().call().await?, Bytes::from_static(b"new branch"));
    assert_eq!(
        p.get_transaction_count(dev_signer(0).address()).await?,
        1,
        "the old branch's handle tx is undone"
    );

    // A request from a dev account is signed after the rollback, with the branch's nonce.
    let call = TestRecipient::handleCall {
        origin: 3,
        sender: B256::ZERO,
        body: Bytes::from_static(b"json branch"),
    };
    let request = serde_json::json!({ "from": dev_signer(0).address(), "to": addr, "input": Bytes::from(call.abi_encode()) });
    let _: serde_json::Value =
        p.raw_request("anvil_reorg".into(), (U256::from(1), vec![(request, 0u64)])).await?;
    let logs = p.get_logs(&filter).await?;
    assert_eq!(logs.len(), 1, "the reorged-out block's log is gone and the new one is there");
    let event = logs[0].log_decode::<TestRecipient::ReceivedMessage>()?;
    assert_eq!(event.inner.data.body, Bytes::from_static(b"json branch"));
    assert_eq!(
        p.get_transaction_count(dev_signer(0).address()).await?,
        2,
        "deploy, then the branch's call"
    );
    let err = p
        .raw_request::<_, serde_json::Value>("anvil_reorg".into(), (U256::from(1000),))
        .await
        .expect_err("too deep");
    assert!(err.to_string().contains("reorg depth"), "{err}");
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn snapshot_revert_and_set_balance() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let p = provider(&node, 0);
    let who = dev_signer(9).address();
    let original = p.get_balance(who).await?;
    let snap: U256 = p.raw_request("evm_snapshot".into(), ()).await?;
    let head = p.get_block_number().await?;
    let _: serde_json::Value =
        p.raw_request("anvil_setBalance".into(), (who, U256::from(12345))).await?;
    assert_eq!(p.get_balance(who).await?, U256::from(12345));
    let tx = TransactionRequest::default().with_to(who).with_value(U256::from(5));
    p.send_transaction(tx).await?.get_receipt().await?;
    assert_eq!(p.get_balance(who).await?, U256::from(12350));
    let reverted: bool = p.raw_request("evm_revert".into(), (snap,)).await?;
    assert!(reverted);
    assert_eq!(p.get_block_number().await?, head);
    assert_eq!(p.get_balance(who).await?, original);
    assert_eq!(p.get_transaction_count(dev_signer(0).address()).await?, 0);
    let again: bool = p.raw_request("evm_revert".into(), (snap,)).await?;
    assert!(!again, "a snapshot is used up by its revert");
    let _: serde_json::Value = p.raw_request("evm_mine".into(), ()).await?;
    assert_eq!(p.get_block_number().await?, head + 1);

    let now = p
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .expect("head")
        .header
        .timestamp;
    let _: serde_json::Value =
        p.raw_request("evm_setNextBlockTimestamp".into(), (now + 1000,)).await?;
    let _: serde_json::Value = p.raw_request("evm_mine".into(), ()).await?;
    let forced = p.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await?.expect("head");
    assert_eq!(forced.header.timestamp, now + 1000);
    let offset: alloy::primitives::U64 = p.raw_request("evm_increaseTime".into(), (7200,)).await?;
    assert_eq!(offset.to::<u64>(), 7200);
    let _: serde_json::Value = p.raw_request("evm_mine".into(), ()).await?;
    let later = p.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await?.expect("head");
    assert!(later.header.timestamp >= now + 7200, "the clock moved forward");
    let err = p
        .raw_request::<_, serde_json::Value>("evm_setNextBlockTimestamp".into(), (1,))
        .await
        .expect_err("back in time");
    assert!(err.to_string().contains("below the head"), "{err}");
    node.stop().await;
    Ok(())
}
