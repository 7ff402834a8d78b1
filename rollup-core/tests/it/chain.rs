//! Blocks, headers, fees and the basic read methods.

use std::collections::BTreeSet;
use std::time::Duration;

use alloy::consensus::proofs::{calculate_receipt_root, calculate_transaction_root};
use alloy::consensus::{
    ReceiptEnvelope, Transaction as _, TxEip1559, TxEip2930, TxEnvelope, TxLegacy, TypedTransaction,
};
use alloy::eips::eip1559::{BaseFeeParams, calc_next_block_base_fee};
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, Bloom, Bytes, TxKind, U256, logs_bloom};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;

use alloy::sol_types::SolCall;
use metalayer_rollup::node::MiningMode;

use crate::common::{
    TestRecipient, TestResult, deploy_test_recipient, dev_signer, provider, sign, start,
    start_with, wait_receipt,
};

#[tokio::test]
async fn identity_and_dev_accounts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let p = provider(&node, 0);
    assert_eq!(p.get_chain_id().await?, 31337);
    assert_eq!(p.get_net_version().await?, 31337);
    assert!(p.get_client_version().await?.starts_with("metalayer-rollup/"));
    let accounts = p.get_accounts().await?;
    assert_eq!(accounts.len(), 10);
    assert_eq!(accounts[0], dev_signer(0).address());
    assert_eq!(accounts[0], "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".parse::<Address>()?);
    let ten_thousand_eth = U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18u64));
    assert_eq!(p.get_balance(accounts[9]).await?, ten_thousand_eth);
    let syncing: bool = p.raw_request("eth_syncing".into(), ()).await?;
    assert!(!syncing);
    assert!(p.get_gas_price().await? > 0);
    assert!(p.get_max_priority_fee_per_gas().await? > 0);
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn headers_chain_with_real_roots_and_moving_base_fee() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let p = provider(&node, 0);
    let to = dev_signer(1).address();
    for i in 0..3u64 {
        let tx = TransactionRequest::default().with_to(to).with_value(U256::from(1000 + i));
        assert!(p.send_transaction(tx).await?.get_receipt().await?.status());
    }
    let _: serde_json::Value = p.raw_request("anvil_mine".into(), (2u64,)).await?;
    let head = p.get_block_number().await?;
    assert_eq!(head, 5);
    let mut prev: Option<alloy::rpc::types::Block> = None;
    for n in 0..=head {
        let block =
            p.get_block_by_number(BlockNumberOrTag::Number(n)).full().await?.expect("block exists");
        assert_eq!(
            block.header.hash,
            block.header.inner.hash_slow(),
            "block {n} hash is the header's keccak"
        );
        let txs: Vec<TxEnvelope> =
            block.transactions.txns().map(|t| t.inner.inner().clone()).collect();
        assert_eq!(block.header.transactions_root, calculate_transaction_root(&txs));
        if let Some(prev) = &prev {
            assert_eq!(
                block.header.parent_hash, prev.header.hash,
                "block {n} chains to its parent"
            );
            let expected = calc_next_block_base_fee(
                prev.header.gas_used,
                prev.header.gas_limit,
                prev.header.base_fee_per_gas.unwrap_or_default(),
                BaseFeeParams::ethereum(),
            );
            assert_eq!(
                block.header.base_fee_per_gas,
                Some(expected),
                "block {n} base fee follows EIP-1559"
            );
            if !txs.is_empty() {
                assert_ne!(block.header.state_root, prev.header.state_root);
            }
        }
        prev = Some(block);
    }
    let b4 = p.get_block_by_number(4.into()).await?.expect("block 4");
    let b5 = p.get_block_by_number(5.into()).await?.expect("block 5");
    assert!(
        b5.header.base_fee_per_gas < b4.header.base_fee_per_gas,
        "empty blocks lower the base fee"
    );
    assert_eq!(b5.header.state_root, b4.header.state_root, "empty blocks keep the state root");
    for tag in [
        BlockNumberOrTag::Latest,
        BlockNumberOrTag::Safe,
        BlockNumberOrTag::Finalized,
        BlockNumberOrTag::Pending,
    ] {
        let b = p.get_block_by_number(tag).await?.expect("tagged block");
        assert_eq!(b.header.number, head);
    }
    let genesis = p.get_block_by_number(BlockNumberOrTag::Earliest).await?.expect("genesis");
    assert_eq!(genesis.header.number, 0);
    let by_hash = p.get_block_by_hash(b4.header.hash).await?.expect("by hash");
    assert_eq!(by_hash.header.number, 4);
    assert!(p.get_block_by_number(99.into()).await?.is_none());
    let history = p.get_fee_history(3, BlockNumberOrTag::Latest, &[50.0]).await?;
    assert_eq!(history.base_fee_per_gas.len(), 4);
    assert_eq!(history.gas_used_ratio.len(), 3);
    assert_eq!(history.oldest_block, head - 2);
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn legacy_2930_and_1559_transactions_and_historical_state() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let p = provider(&node, 0);
    let signer = dev_signer(3);
    let from = signer.address();
    let to = dev_signer(4).address();
    let before = p.get_balance(to).await?;
    let gas_price = 10_000_000_000u128;
    let legacy = TxLegacy {
        chain_id: Some(31337),
        nonce: 0,
        gas_price,
        gas_limit: 21_000,
        to: TxKind::Call(to),
        value: U256::from(1),
        input: Default::default(),
    };
    let eip2930 = TxEip2930 {
        chain_id: 31337,
        nonce: 1,
        gas_price,
        gas_limit: 30_000,
        to: TxKind::Call(to),
        value: U256::from(2),
        ..Default::default()
    };
    let eip1559 = TxEip1559 {
        chain_id: 31337,
        nonce: 2,
        gas_limit: 21_000,
        max_fee_per_gas: gas_price,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value: U256::from(3),
        ..Default::default()
    };
    let mut kinds = Vec::new();
    for tx in [legacy.into(), eip2930.into(), eip1559.into()] {
        let receipt = p.send_raw_transaction(&sign(&signer, tx)).await?.get_receipt().await?;
        assert!(receipt.status());
        kinds.push(receipt.transaction_type() as u8);
    }
    assert_eq!(kinds, vec![0, 1, 2]);
    assert_eq!(p.get_balance(to).await?, before + U256::from(6));
    assert_eq!(p.get_transaction_count(from).await?, 3);
    assert_eq!(p.get_transaction_count(from).pending().await?, 3);
    let head = p.get_block_number().await?;
    let last: Option<alloy::rpc::types::Transaction> = p
        .raw_request(
            "eth_getTransactionByBlockNumberAndIndex".into(),
            (alloy::primitives::U64::from(head), "0x0"),
        )
        .await?;
    let last = last.expect("the head holds the EIP-1559 transaction");
    assert_eq!(last.inner.nonce(), 2);
    assert_eq!(last.block_number, Some(head));
    let count: alloy::primitives::U64 = p
        .raw_request(
            "eth_getBlockTransactionCountByNumber".into(),
            (alloy::primitives::U64::from(head),),
        )
        .await?;
    assert_eq!(count.to::<u64>(), 1);
    assert_eq!(
        p.get_balance(to).block_id(BlockId::number(head - 1)).await?,
        before + U256::from(3)
    );
    assert_eq!(p.get_transaction_count(from).block_id(BlockId::number(head - 3)).await?, 0);
    let gas = p
        .estimate_gas(
            TransactionRequest::default().with_from(from).with_to(to).with_value(U256::from(1)),
        )
        .await?;
    assert_eq!(gas, 21_000);
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn genesis_file_with_predeploy_and_interval_mining() -> TestResult {
    let dir = tempfile::tempdir()?;
    let code = crate::common::artifact("TestRecipient", "deployedBytecode");
    let predeploy = Address::repeat_byte(0x77);
    let file = dir.path().join("genesis.json");
    let genesis = serde_json::json!({
        "chainId": 777,
        "gasLimit": 20_000_000u64,
        "devAccounts": 3,
        "alloc": { predeploy.to_string(): { "balance": "0x5", "code": code, "storage": { "0x2": "0x9" } } },
    });
    std::fs::write(&file, genesis.to_string())?;
    let genesis = metalayer_rollup::genesis::Genesis::from_file(&file)?;
    let config = metalayer_rollup::node::NodeConfig {
        data_dir: dir.path().join("db"),
        genesis,
        mining: metalayer_rollup::node::MiningMode::Interval(std::time::Duration::from_millis(50)),
        pool_capacity: 100,
    };
    let node = metalayer_rollup::service::RunningNode::start(
        config,
        "127.0.0.1:0".parse()?,
        Default::default(),
    )
    .await?;
    let p = provider(&node, 0);
    assert_eq!(p.get_chain_id().await?, 777);
    assert_eq!(p.get_accounts().await?.len(), 3);
    assert_eq!(p.get_code_at(predeploy).await?, code);
    assert_eq!(p.get_balance(predeploy).await?, U256::from(5));
    assert_eq!(p.get_storage_at(predeploy, U256::from(2)).await?, U256::from(9));
    let genesis_block = p.get_block_by_number(0.into()).await?.expect("genesis");
    assert_eq!(genesis_block.header.gas_limit, 20_000_000);
    // Interval mining makes blocks without transactions (bounded wait).
    let mut head = 0;
    for _ in 0..2_000 {
        head = p.get_block_number().await?;
        if head >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(head >= 3, "interval mining produced blocks");
    let b = p.get_block_by_number(3.into()).await?.expect("block 3");
    assert!(b.transactions.is_empty());
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"chainId\": \"seven\"}")?;
    let err = metalayer_rollup::genesis::Genesis::from_file(&bad).expect_err("bad genesis refused");
    assert!(err.to_string().contains("bad.json"), "the error names the file: {err}");
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn receipts_root_and_bloom_match_the_receipts_of_a_full_block() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start_with(dir.path(), MiningMode::Interval(Duration::from_millis(500))).await;
    let p = provider(&node, 0);
    let signer = dev_signer(0);
    let recipient = deploy_test_recipient(&p, signer.address()).await;
    let chain_id = p.get_chain_id().await?;
    let nonce = p.get_transaction_count(signer.address()).await?;
    // Sent at once: most land in one block, whose receipts are built beside
    // its state root (blocks of 16 or more transactions).
    let mut hashes = Vec::new();
    for i in 0..24u64 {
        let call = TestRecipient::handleCall {
            origin: 7,
            sender: B256::repeat_byte(i as u8),
            body: Bytes::from(vec![i as u8; 40]),
        };
        let tx = TypedTransaction::Eip1559(TxEip1559 {
            chain_id,
            nonce: nonce + i,
            gas_limit: 300_000,
            max_fee_per_gas: 100_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(recipient),
            value: U256::ZERO,
            input: call.abi_encode().into(),
            access_list: Default::default(),
        });
        hashes.push(*p.send_raw_transaction(&sign(&signer, tx)).await?.tx_hash());
    }
    let mut blocks = BTreeSet::new();
    for hash in &hashes {
        let receipt = wait_receipt(&p, *hash).await?;
        assert!(receipt.status());
        blocks.insert(receipt.block_number.expect("mined"));
    }
    let mut largest = 0;
    for n in blocks {
        let block = p.get_block_by_number(n.into()).await?.expect("block exists");
        let receipts = p.get_block_receipts(n.into()).await?.expect("receipts exist");
        largest = largest.max(receipts.len());
        let receipts: Vec<ReceiptEnvelope> =
            receipts.into_iter().map(|r| r.inner.into_primitives_receipt()).collect();
        let mut bloom = Bloom::ZERO;
        for r in &receipts {
            assert_eq!(r.logs().len(), 1, "each call logs ReceivedMessage");
            assert_eq!(*r.logs_bloom(), logs_bloom(r.logs().iter()));
            bloom.accrue_bloom(r.logs_bloom());
        }
        assert_eq!(block.header.receipts_root, calculate_receipt_root(&receipts), "block {n}");
        assert_eq!(block.header.logs_bloom, bloom, "block {n}");
    }
    assert!(largest >= 16, "the burst filled a block of {largest} transactions only");
    node.stop().await;
    Ok(())
}

#[test]
fn a_sender_left_out_of_a_full_block_keeps_its_later_nonces_for_the_next() -> TestResult {
    use alloy::eips::Decodable2718;
    use metalayer_rollup::{chain::Chain, genesis::Genesis};

    let dir = tempfile::tempdir()?;
    let genesis = Genesis { gas_limit: 100_000, ..Genesis::default() };
    let chain_id = genesis.chain_id;
    let mut chain = Chain::open(dir.path(), genesis)?;
    let transfer = |signer: u32, nonce: u64, gas_limit: u64| -> (TxEnvelope, Address) {
        let s = dev_signer(signer);
        let tx = TypedTransaction::Eip1559(TxEip1559 {
            chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas: 100_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(dev_signer(9).address()),
            value: U256::from(1),
            input: Bytes::new(),
            access_list: Default::default(),
        });
        let raw = sign(&s, tx);
        (TxEnvelope::decode_2718(&mut raw.as_ref()).expect("decodes"), s.address())
    };
    // B uses 21k of the 100k; A's first (90k limit) no longer fits, so A's
    // second must wait with it rather than fail on its nonce.
    let (b, a0, a1) = (transfer(1, 0, 60_000), transfer(2, 0, 90_000), transfer(2, 1, 21_000));
    let first = chain.mine(1, Bytes::new(), None, vec![b.clone(), a0.clone(), a1.clone()])?;
    let hashes = |m: &metalayer_rollup::chain::MinedBlock| -> Vec<B256> {
        m.block.txs.iter().map(|t| *t.tx_hash()).collect()
    };
    assert_eq!(hashes(&first), vec![*b.0.tx_hash()]);
    assert!(first.rejected.is_empty(), "nothing refused: {:?}", first.rejected);
    let second = chain.mine(2, Bytes::new(), None, vec![a0.clone(), a1.clone()])?;
    assert_eq!(hashes(&second), vec![*a0.0.tx_hash(), *a1.0.tx_hash()]);
    Ok(())
}

/// Reads at the newest blocks are served from the state the chain keeps in
/// memory; they must agree with the store's history, before and after a
/// rollback, and with a reopened chain (which reads the store).
#[test]
fn state_at_recent_blocks_agrees_with_the_stored_history() -> TestResult {
    use metalayer_rollup::chain::Chain;
    use metalayer_rollup::genesis::Genesis;
    use metalayer_rollup::state::StateDb;
    use metalayer_rollup::store::{AccountData, StateChanges};

    let dir = tempfile::tempdir()?;
    let mut chain = Chain::open(dir.path(), Genesis::default())?;
    let (a, b) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xbb));
    let account = |nonce| AccountData {
        nonce,
        balance: U256::from(nonce * 3),
        code_hash: alloy::primitives::KECCAK256_EMPTY,
    };
    let write = |address, wiped, slots: &[(u64, u64)]| {
        let slots = slots.iter().map(|(s, v)| (U256::from(*s), U256::from(*v))).collect();
        (address, (wiped, slots))
    };
    let blocks: Vec<StateChanges> = vec![
        // 1: a gets an account and two slots.
        StateChanges {
            accounts: [(a, Some(account(1)))].into_iter().collect(),
            storage: [write(a, false, &[(1, 5), (2, 6)])].into_iter().collect(),
            ..Default::default()
        },
        // 2: one of a's slots rewritten; b created with a slot.
        StateChanges {
            accounts: [(b, Some(account(4)))].into_iter().collect(),
            storage: [write(a, false, &[(1, 7)]), write(b, false, &[(1, 1)])].into_iter().collect(),
            ..Default::default()
        },
        // 3: a slot deleted.
        StateChanges {
            storage: [write(a, false, &[(2, 0)])].into_iter().collect(),
            ..Default::default()
        },
        // 4: a's storage wiped, one slot written after.
        StateChanges {
            accounts: [(a, Some(account(2)))].into_iter().collect(),
            storage: [write(a, true, &[(3, 9)])].into_iter().collect(),
            ..Default::default()
        },
        // 5: b deleted with its storage.
        StateChanges {
            accounts: [(b, None)].into_iter().collect(),
            storage: [write(b, true, &[])].into_iter().collect(),
            ..Default::default()
        },
    ];
    for (i, changes) in blocks.into_iter().enumerate() {
        chain.mine(10 + i as u64, Bytes::new(), Some(changes), vec![])?;
    }
    type View = Vec<(Option<AccountData>, Vec<U256>)>;
    let read = |db: &StateDb<'_>| -> Result<View, metalayer_rollup::error::StoreError> {
        let mut out = Vec::new();
        for address in [a, b] {
            let slots =
                (0..4).map(|s| db.slot(address, U256::from(s))).collect::<Result<_, _>>()?;
            out.push((db.account(address)?, slots));
        }
        Ok(out)
    };
    let mut seen = Vec::new();
    for n in 0..=6 {
        let memory = read(&chain.state(Some(n)))?;
        let stored = read(&StateDb::new(&chain.store, Some(n), Default::default()))?;
        assert_eq!(memory, stored, "state at block {n}");
        seen.push(memory);
    }
    let slot = |n: usize, who: usize, s: usize| seen[n][who].1[s];
    assert_eq!(
        (slot(1, 0, 1), slot(1, 0, 2), slot(2, 0, 1)),
        (U256::from(5), U256::from(6), U256::from(7))
    );
    assert_eq!((slot(2, 0, 2), slot(3, 0, 2)), (U256::from(6), U256::ZERO), "deleted at 3");
    assert_eq!(
        (slot(3, 0, 1), slot(4, 0, 1), slot(4, 0, 3)),
        (U256::from(7), U256::ZERO, U256::from(9)),
        "wiped at 4"
    );
    assert_eq!(
        (seen[4][1].0, seen[5][1].0, slot(4, 1, 1), slot(5, 1, 1)),
        (Some(account(4)), None, U256::from(1), U256::ZERO)
    );
    assert_eq!(seen[0][0], (None, vec![U256::ZERO; 4]), "nothing at genesis");

    // A rollback drops the newest blocks' kept state with them.
    chain.rollback_to(3)?;
    let rewrite = StateChanges {
        storage: [write(a, false, &[(1, 11)])].into_iter().collect(),
        ..Default::default()
    };
    chain.mine(20, Bytes::new(), Some(rewrite), vec![])?;
    for n in 0..=4 {
        let memory = read(&chain.state(Some(n)))?;
        let stored = read(&StateDb::new(&chain.store, Some(n), Default::default()))?;
        assert_eq!(memory, stored, "state at block {n} after the rollback");
        if n < 4 {
            assert_eq!(memory, seen[n as usize], "block {n} is unchanged by the rollback");
        }
    }
    assert_eq!(read(&chain.state(Some(4)))?[0].1[1], U256::from(11));
    let after = (0..=4).map(|n| read(&chain.state(Some(n)))).collect::<Result<Vec<_>, _>>()?;
    drop(chain);

    // Reopened, the chain keeps no history in memory and reads the store.
    let chain = Chain::open(dir.path(), Genesis::default())?;
    for (n, expected) in after.iter().enumerate() {
        assert_eq!(&read(&chain.state(Some(n as u64)))?, expected, "block {n} after reopening");
    }
    Ok(())
}
