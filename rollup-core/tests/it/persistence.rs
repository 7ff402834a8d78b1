//! Restarting from the sled directory: after a clean stop and after kill -9.

use std::process::{Command, Stdio};

use alloy::network::TransactionBuilder;
use alloy::primitives::{B256, Bytes, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionRequest};

use crate::common::{
    TestRecipient, TestResult, deploy_test_recipient, dev_signer, provider, start,
};

#[tokio::test]
async fn restart_reads_the_same_chain_and_state() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let p = provider(&node, 0);
    let addr = deploy_test_recipient(&p, dev_signer(0).address()).await;
    let recipient = TestRecipient::new(addr, p.clone());
    let receipt = recipient
        .handle(3, B256::ZERO, Bytes::from_static(b"persist"))
        .send()
        .await?
        .get_receipt()
        .await?;
    let head = p.get_block_number().await?;
    let head_block = p.get_block_by_number(head.into()).await?.expect("head");
    let code = p.get_code_at(addr).await?;
    let balance = p.get_balance(dev_signer(0).address()).await?;
    let logs = p.get_logs(&Filter::new().address(addr).from_block(0)).await?;
    drop((p, recipient));
    node.stop().await;

    let node = start(dir.path()).await;
    let p = provider(&node, 0);
    assert_eq!(p.get_block_number().await?, head);
    let again = p.get_block_by_number(head.into()).await?.expect("head after restart");
    assert_eq!(again.header.hash, head_block.header.hash);
    assert_eq!(again.header.state_root, head_block.header.state_root);
    assert_eq!(p.get_code_at(addr).await?, code);
    assert_eq!(p.get_balance(dev_signer(0).address()).await?, balance);
    assert_eq!(p.get_logs(&Filter::new().address(addr).from_block(0)).await?, logs);
    let r = p.get_transaction_receipt(receipt.transaction_hash).await?.expect("receipt survives");
    assert_eq!(r.block_hash, receipt.block_hash);
    let recipient = TestRecipient::new(addr, p.clone());
    assert_eq!(recipient.handledCount().call().await?, U256::from(1));
    let next = recipient.handle(4, B256::ZERO, Bytes::new()).send().await?.get_receipt().await?;
    assert!(next.status());
    let new_head = p.get_block_by_number((head + 1).into()).await?.expect("new block");
    assert_eq!(
        new_head.header.parent_hash, head_block.header.hash,
        "the chain continues from the stored head"
    );
    node.stop().await;
    Ok(())
}

/// Kills the real binary with SIGKILL while transactions stream in, restarts
/// it on the same directory, and checks the chain and state agree: every
/// block is whole and the balances match the transactions the blocks hold.
#[tokio::test]
async fn kill_9_leaves_no_half_written_block() -> TestResult {
    let dir = tempfile::tempdir()?;
    let bin = env!("CARGO_BIN_EXE_metalayer-rollup");
    let port = free_port()?;
    let metrics_port = free_port()?;
    let spawn = || {
        Command::new(bin)
            .args([
                "--data-dir",
                &dir.path().display().to_string(),
                "--block-time",
                "0",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--metrics",
                &format!("127.0.0.1:{metrics_port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    let url: reqwest::Url = format!("http://127.0.0.1:{port}").parse()?;
    let mut child = spawn()?;
    let signer = dev_signer(6);
    let to = dev_signer(7).address();
    let p = ProviderBuilder::new()
        .wallet(alloy::network::EthereumWallet::from(signer.clone()))
        .connect_http(url.clone());
    wait_up(&p).await?;
    let start_balance = p.get_balance(to).await?;
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sender = {
        let (p, acked) = (p.clone(), acked.clone());
        tokio::spawn(async move {
            for nonce in 0..500u64 {
                let tx = TransactionRequest::default()
                    .with_to(to)
                    .with_value(U256::from(1))
                    .with_gas_limit(21_000)
                    .with_nonce(nonce);
                let Ok(pending) = p.send_transaction(tx).await else { break };
                // Count a transaction once its receipt is visible to a client.
                if crate::common::wait_receipt(&p, *pending.tx_hash()).await.is_err() {
                    break;
                }
                acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    // Kill while transactions are still streaming in (bounded wait, no clock limit).
    for _ in 0..10_000 {
        if acked.load(std::sync::atomic::Ordering::SeqCst) >= 25 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    child.kill()?;
    child.wait()?;
    sender.await?;
    let acked = acked.load(std::sync::atomic::Ordering::SeqCst);
    assert!(acked >= 25, "clients saw receipts before the kill");
    let mut child = spawn()?;
    wait_up(&p).await?;
    let head = p.get_block_number().await?;
    let mut mined = 0u64;
    let mut parent = None;
    for n in 0..=head {
        let block = p
            .get_block_by_number(n.into())
            .full()
            .await?
            .expect("every block up to the head exists");
        if let Some(parent) = parent {
            assert_eq!(block.header.parent_hash, parent);
        }
        for tx in block.transactions.txns() {
            let receipt = p
                .get_transaction_receipt(*tx.inner.tx_hash())
                .await?
                .expect("every mined tx has its receipt");
            assert_eq!(receipt.block_number, Some(n));
            mined += 1;
        }
        parent = Some(block.header.hash);
    }
    assert!(mined >= acked, "every receipt a client saw survived the kill ({mined} < {acked})");
    assert_eq!(p.get_balance(to).await?, start_balance + U256::from(mined));
    assert_eq!(p.get_transaction_count(signer.address()).await?, mined);
    let _ = p.raw_request::<_, serde_json::Value>("evm_mine".into(), ()).await?;
    let metrics =
        reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics")).await?.text().await?;
    assert!(metrics.contains(&format!("metalayer_rollup_head_block {}", head + 1)), "{metrics}");
    assert!(metrics.contains("metalayer_rollup_blocks_total 1"), "{metrics}");
    assert!(
        metrics.contains("metalayer_rollup_rpc_seconds_count{method=\"eth_blockNumber\"}"),
        "{metrics}"
    );
    child.kill()?;
    child.wait()?;
    Ok(())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until the node answers; bounded by attempts, not by a clock limit.
async fn wait_up(p: &impl Provider) -> TestResult {
    for _ in 0..600 {
        if p.get_block_number().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err("node did not come up".into())
}
