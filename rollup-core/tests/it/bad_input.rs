//! Bad input of every kind gets a JSON-RPC error with a standard code and a
//! message naming the problem; the node keeps serving and loses nothing.

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope, TypedTransaction};
use alloy::eips::Encodable2718;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Bytes, Signature, TxKind, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use metalayer_rollup::node::MiningMode;
use serde_json::{Value, json};

use crate::common::{TestResult, dev_signer, provider, sign, start, start_with};

async fn post(
    url: &str,
    body: impl Into<reqwest::Body>,
) -> Result<(u16, Value), Box<dyn std::error::Error + Send + Sync>> {
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

fn code(v: &Value) -> i64 {
    v["error"]["code"].as_i64().unwrap_or_else(|| panic!("expected a JSON-RPC error, got {v}"))
}

fn message(v: &Value) -> String {
    format!("{} {}", v["error"]["message"].as_str().unwrap_or_default(), v["error"]["data"])
}

fn transfer(nonce: u64, chain_id: u64, gas_limit: u64, fee: u128) -> TypedTransaction {
    TxEip1559 {
        chain_id,
        nonce,
        gas_limit,
        max_fee_per_gas: fee,
        max_priority_fee_per_gas: 1_000_000_000.min(fee),
        to: TxKind::Call(dev_signer(1).address()),
        value: U256::from(1),
        ..Default::default()
    }
    .into()
}

async fn send_raw(
    url: &str,
    raw: &Bytes,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [raw]});
    Ok(post(url, body.to_string()).await?.1)
}

#[tokio::test]
async fn malformed_requests_get_standard_errors() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let url = node.http_url();
    let p = provider(&node, 0);
    p.send_transaction(
        TransactionRequest::default().with_to(dev_signer(1).address()).with_value(U256::from(1)),
    )
    .await?
    .get_receipt()
    .await?;
    let head = p.get_block_number().await?;

    let (_, v) = post(&url, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ").await?;
    assert_eq!(code(&v), -32700, "malformed JSON: {v}");
    let (_, v) = post(
        &url,
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_doesNotExist", "params": []}).to_string(),
    )
    .await?;
    assert_eq!(code(&v), -32601, "unknown method: {v}");
    let (_, v) = post(
        &url,
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": [42, "latest"]})
            .to_string(),
    )
    .await?;
    assert_eq!(code(&v), -32602, "wrong parameter type: {v}");
    assert!(message(&v).contains("invalid type"), "{v}");
    let (_, v) = post(&url, json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["yesterday", false]}).to_string()).await?;
    assert_eq!(code(&v), -32602, "bad block tag: {v}");
    let (_, v) = post(&url, json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{"fromBlock": "0x0", "toBlock": "0x186a0"}]}).to_string()).await?;
    assert_eq!(code(&v), -32005, "log range cap: {v}");
    assert!(message(&v).contains("max block range"), "{v}");

    let huge = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [{"data": format!("0x{}", "00".repeat(6 << 20))}]}).to_string();
    let (status, v) = post(&url, huge).await?;
    assert!(
        status == 413 || v["error"]["code"].is_i64(),
        "oversized request refused: {status} {v}"
    );
    let batch: Vec<Value> =
        (0..501).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "eth_chainId"})).collect();
    let (_, v) = post(&url, Value::Array(batch).to_string()).await?;
    assert!(v["error"]["code"].is_i64(), "oversized batch refused: {v}");
    assert!(message(&v).to_lowercase().contains("batch"), "{v}");
    let batch = json!([{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, {"jsonrpc": "2.0", "id": 2, "method": "nope"}]);
    let (_, v) = post(&url, batch.to_string()).await?;
    let items = v.as_array().expect("batch answer is an array");
    assert_eq!(items.len(), 2);
    assert!(items.iter().any(|i| i["result"] == json!("0x7a69")));
    assert!(items.iter().any(|i| i["error"]["code"] == json!(-32601)));

    assert_eq!(p.get_block_number().await?, head, "still serving, nothing lost");
    assert_eq!(p.get_transaction_count(dev_signer(0).address()).await?, 1);
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn refused_transactions_use_geth_messages() -> TestResult {
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let url = node.http_url();
    let p = provider(&node, 0);
    let signer = dev_signer(2);
    let fee = 100_000_000_000u128;
    let ok = send_raw(&url, &sign(&signer, transfer(0, 31337, 21_000, fee))).await?;
    let hash = ok["result"].as_str().unwrap_or_else(|| panic!("accepted: {ok}")).parse()?;
    crate::common::wait_receipt(&p, hash).await?;
    let head = p.get_block_number().await?;
    let cases: Vec<(&str, Bytes)> = vec![
        ("nonce too low", sign(&signer, transfer(0, 31337, 21_000, fee))),
        ("invalid chain id", sign(&signer, transfer(1, 999, 21_000, fee))),
        ("exceeds block gas limit", sign(&signer, transfer(1, 31337, 30_000_001, fee))),
        ("intrinsic gas too low", sign(&signer, transfer(1, 31337, 20_000, fee))),
        ("insufficient funds", sign(&PrivateKeySigner::random(), transfer(0, 31337, 21_000, fee))),
        ("max fee per gas less than block base fee", sign(&signer, transfer(1, 31337, 21_000, 1))),
        ("rlp", Bytes::from_static(&[0x02, 0xc0, 0x01])),
    ];
    for (expected, raw) in cases {
        let v = send_raw(&url, &raw).await?;
        assert_eq!(code(&v), -32000, "{expected}: {v}");
        assert!(message(&v).contains(expected), "expected \"{expected}\" in {v}");
    }
    let TypedTransaction::Eip1559(unsigned) = transfer(1, 31337, 21_000, fee) else {
        unreachable!("built as EIP-1559")
    };
    let bad_sig = Signature::new(U256::ZERO, U256::from(1), false);
    let raw: Bytes = TxEnvelope::from(unsigned.into_signed(bad_sig)).encoded_2718().into();
    let v = send_raw(&url, &raw).await?;
    assert!(message(&v).contains("invalid sender"), "invalid signature: {v}");
    assert_eq!(p.get_block_number().await?, head, "no refused transaction made a block");
    assert_eq!(p.get_transaction_count(signer.address()).await?, 1);
    node.stop().await;
    Ok(())
}

#[tokio::test]
async fn replacement_needs_a_ten_percent_bump() -> TestResult {
    let dir = tempfile::tempdir()?;
    // Blocks far apart, so the first transaction is still pooled when the replacement arrives.
    let node =
        start_with(dir.path(), MiningMode::Interval(std::time::Duration::from_secs(3600))).await;
    let url = node.http_url();
    let signer = dev_signer(3);
    let fee = 10_000_000_000u128;
    let first = send_raw(&url, &sign(&signer, transfer(0, 31337, 21_000, fee))).await?;
    assert!(first["result"].is_string(), "{first}");
    let again = send_raw(&url, &sign(&signer, transfer(0, 31337, 21_000, fee))).await?;
    assert!(message(&again).contains("already known"), "{again}");
    let mut cheap = transfer(0, 31337, 21_000, fee + 1);
    if let TypedTransaction::Eip1559(t) = &mut cheap {
        t.max_priority_fee_per_gas += 1;
    }
    let v = send_raw(&url, &sign(&signer, cheap)).await?;
    assert!(message(&v).contains("replacement transaction underpriced"), "{v}");
    let mut bumped = transfer(0, 31337, 21_000, fee * 2);
    if let TypedTransaction::Eip1559(t) = &mut bumped {
        t.max_priority_fee_per_gas *= 2;
    }
    let v = send_raw(&url, &sign(&signer, bumped)).await?;
    let hash = v["result"].as_str().expect("replacement accepted").to_string();
    let p = provider(&node, 0);
    let pooled = p.get_transaction_by_hash(hash.parse()?).await?.expect("replacement is pooled");
    assert!(pooled.block_number.is_none());
    assert_eq!(p.get_transaction_count(signer.address()).pending().await?, 1);
    assert_eq!(p.get_transaction_count(signer.address()).await?, 0);
    let _: Value = p.raw_request("evm_mine".into(), ()).await?;
    let receipt = p.get_transaction_receipt(hash.parse()?).await?.expect("mined by evm_mine");
    assert!(receipt.status());
    node.stop().await;
    Ok(())
}
