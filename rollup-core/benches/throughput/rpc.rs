//! Drives one node over HTTP: setup transactions one by one, then each timed
//! phase with one stream per sender (raw transactions in nonce order), and
//! waits for every receipt.

use std::time::{Duration, Instant};

use alloy::eips::Encodable2718;
use alloy::primitives::B256;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};

use crate::workload::{SignedTx, Workload};

/// Transactions per second of the two timed phases.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rates {
    /// Token transfers per second.
    pub(crate) transfers: f64,
    /// Mailbox dispatches per second.
    pub(crate) dispatches: f64,
}

/// Waits until `url` answers `eth_blockNumber` (bounded by attempts).
pub(crate) async fn wait_up(url: &str) -> Result<(), String> {
    let p = ProviderBuilder::new().connect_http(url.parse().map_err(|e| format!("{url}: {e}"))?);
    for _ in 0..600 {
        if p.get_block_number().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{url} did not answer"))
}

async fn receipt_ok(p: &DynProvider, hash: B256) -> Result<(), String> {
    // Bounded poll: instant-mining nodes have the receipt at once or very soon.
    for _ in 0..100_000 {
        match p.get_transaction_receipt(hash).await {
            Ok(Some(r)) if r.status() => return Ok(()),
            Ok(Some(_)) => return Err(format!("transaction {hash} reverted")),
            Ok(None) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(e) => return Err(format!("receipt of {hash}: {e}")),
        }
    }
    Err(format!("transaction {hash} was never mined"))
}

async fn send(p: &DynProvider, tx: &SignedTx) -> Result<B256, String> {
    let raw = tx.0.encoded_2718();
    let pending =
        p.send_raw_transaction(&raw).await.map_err(|e| format!("send {}: {e}", tx.0.tx_hash()))?;
    Ok(*pending.tx_hash())
}

async fn phase(p: &DynProvider, groups: &[Vec<SignedTx>]) -> Result<f64, String> {
    let started = Instant::now();
    let streams = groups.iter().map(|group| {
        let p = p.clone();
        let group = group.clone();
        tokio::spawn(async move {
            let mut hashes = Vec::with_capacity(group.len());
            for tx in &group {
                hashes.push(send(&p, tx).await?);
            }
            Ok::<_, String>(hashes)
        })
    });
    let mut hashes = Vec::new();
    for s in futures::future::join_all(streams).await {
        hashes.extend(s.map_err(|e| e.to_string())??);
    }
    for h in &hashes {
        receipt_ok(p, *h).await?;
    }
    Ok(hashes.len() as f64 / started.elapsed().as_secs_f64())
}

/// Runs the workload against the node at `url`.
pub(crate) async fn run(url: &str, w: &Workload) -> Result<Rates, String> {
    let p = ProviderBuilder::new()
        .connect_http(url.parse().map_err(|e| format!("{url}: {e}"))?)
        .erased();
    for tx in &w.setup {
        let hash = send(&p, tx).await?;
        receipt_ok(&p, hash).await.map_err(|e| format!("setup: {e}"))?;
    }
    let transfers = phase(&p, &w.transfers).await?;
    let dispatches = phase(&p, &w.dispatches).await?;
    Ok(Rates { transfers, dispatches })
}
