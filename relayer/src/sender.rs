//! Sending delivery transactions on one destination: our own nonces, gas
//! price escalation for a transaction that is not mined, receipts.
//!
//! Nonces are ours: consecutive within a batch, counted on between batches,
//! and checked at the start of each batch against the chain's pending count
//! (nothing of ours is in flight then), which wins on a difference: a
//! transaction reorged out or evicted, or the key used elsewhere. Transactions of one batch take consecutive nonces, are
//! broadcast in nonce order (a failed broadcast stops the rest) and are then
//! awaited together. A transaction not mined within `escalate_after` is
//! signed again with the same nonce at 5/4 of its gas price (above the 10 %
//! replacement rule), up to [`MAX_ESCALATIONS`] times.

use std::{sync::Arc, time::Duration};

use alloy::{
    eips::eip2718::Encodable2718,
    network::{Ethereum, EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{Address, B256, Bytes},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
};
use metalayer_agent::chain::{ChainClient, ChainError};
use tokio::sync::Mutex;

use crate::metrics::RelayerMetrics;

/// Re-sends at a higher price before a transaction is given up on.
pub const MAX_ESCALATIONS: u32 = 6;

/// Receipt polls in flight at once.
const POLL_CONCURRENCY: usize = 8;

/// A mined transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mined {
    /// Its hash (the version that was mined).
    pub tx_hash: B256,
    /// Whether it succeeded.
    pub success: bool,
    /// Its block.
    pub block: u64,
    /// Gas it used.
    pub gas_used: u64,
    /// Price per gas paid, in wei.
    pub effective_gas_price: u128,
}

/// One transaction to send.
#[derive(Debug, Clone)]
pub struct Call {
    /// The contract.
    pub to: Address,
    /// The calldata.
    pub data: Bytes,
    /// The gas limit.
    pub gas_limit: u64,
}

/// Why a transaction did not get mined.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The chain could not be reached.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The transaction could not be signed.
    #[error("signing a transaction for {chain}: {reason}")]
    Sign {
        /// Chain name.
        chain: String,
        /// The signer's error.
        reason: String,
    },
    /// An earlier transaction of the batch failed to broadcast.
    #[error("not sent: an earlier transaction of the batch failed to broadcast")]
    NotSent,
    /// Every version was sent but none was mined.
    #[error("nonce {nonce} on {chain}: not mined after {MAX_ESCALATIONS} gas price escalations")]
    NotMined {
        /// Chain name.
        chain: String,
        /// The nonce.
        nonce: u64,
    },
    /// Another transaction took the nonce.
    #[error("nonce {nonce} on {chain} was used by a transaction we did not see mined")]
    NonceTaken {
        /// Chain name.
        chain: String,
        /// The nonce.
        nonce: u64,
    },
}

/// The signer of one destination.
#[derive(Debug)]
pub struct TxSender {
    client: Arc<ChainClient>,
    wallet: EthereumWallet,
    address: Address,
    chain_id: u64,
    next_nonce: Mutex<Option<u64>>,
    polls: tokio::sync::Semaphore,
    escalate_after: Duration,
    poll: Duration,
    metrics: RelayerMetrics,
}

impl TxSender {
    /// A sender signing with `key` for the chain `chain_id` behind `client`.
    pub fn new(
        client: Arc<ChainClient>,
        key: PrivateKeySigner,
        chain_id: u64,
        escalate_after: Duration,
        poll: Duration,
        metrics: RelayerMetrics,
    ) -> Self {
        let address = key.address();
        Self {
            client,
            wallet: EthereumWallet::from(key),
            address,
            chain_id,
            next_nonce: Mutex::new(None),
            polls: tokio::sync::Semaphore::new(POLL_CONCURRENCY),
            escalate_after,
            poll,
            metrics,
        }
    }

    /// The sending address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Sends `calls` with consecutive nonces and hands each outcome to
    /// `done` (with the call's index) as soon as it is known, so one slow
    /// transaction does not hold back what the others delivered.
    pub async fn send_each(
        &self,
        calls: Vec<Call>,
        mut done: impl FnMut(usize, Result<Mined, SendError>),
    ) {
        let mut failed_all = |n: usize, error: ChainError| {
            let mut error = Some(SendError::from(error));
            for i in 0..n {
                done(i, Err(error.take().unwrap_or(SendError::NotSent)));
            }
        };
        let price = match self
            .client
            .read("eth_gasPrice", |p| async move { p.get_gas_price().await })
            .await
        {
            Ok(p) => p.saturating_mul(11) / 10 + 1,
            Err(e) => return failed_all(calls.len(), e),
        };
        let mut guard = self.next_nonce.lock().await;
        let address = self.address;
        let pending = match self
            .client
            .read("eth_getTransactionCount", |p| async move {
                p.get_transaction_count(address).pending().await
            })
            .await
        {
            Ok(n) => n,
            Err(e) => return failed_all(calls.len(), e),
        };
        // The pending count takes in our pooled transactions (an earlier
        // round still waiting to be mined included), so it must equal ours;
        // if not, a transaction vanished (reorg, eviction) or another
        // process used the key, and the chain is right.
        let mut nonce = match *guard {
            Some(ours) if ours != pending => {
                tracing::warn!(chain = %self.client.chain(), ours, chain_count = pending, "nonce out of step with the chain; resynchronising");
                pending
            }
            _ => pending,
        };
        let mut sent = Vec::with_capacity(calls.len());
        let mut failed = false;
        for call in calls {
            if failed {
                sent.push(Err(SendError::NotSent));
                continue;
            }
            match self.broadcast(&call, nonce, price).await {
                Ok(hash) => {
                    sent.push(Ok((call, nonce, price, hash)));
                    nonce += 1;
                }
                Err(e) => {
                    failed = true;
                    sent.push(Err(e));
                }
            }
        }
        *guard = if failed { None } else { Some(nonce) };
        drop(guard);
        let mut waits: futures::stream::FuturesUnordered<_> = sent
            .into_iter()
            .enumerate()
            .map(|(i, s)| async move {
                let result = match s {
                    Ok((call, nonce, price, hash)) => self.wait(call, nonce, price, hash).await,
                    Err(e) => Err(e),
                };
                (i, result)
            })
            .collect();
        let mut lost = false;
        while let Some((i, result)) = futures::StreamExt::next(&mut waits).await {
            lost |=
                matches!(result, Err(SendError::NotMined { .. } | SendError::NonceTaken { .. }));
            done(i, result);
        }
        if lost {
            *self.next_nonce.lock().await = None;
        }
    }

    /// Waits until every transaction the signer has in the pool when it is
    /// called is mined (the chain's latest count reaches the pending count
    /// read first) or gone from the pool (the pending count falls to the
    /// latest), for at most as long as a send waits for one transaction
    /// through all its escalations. A restarted relayer calls it before
    /// preparing again what the run before it had sent: prepare reads
    /// `delivered`, which a delivery still in the pool does not show yet,
    /// and sending it again would pay for a second transaction that
    /// reverts. Returns whether the pool emptied in time.
    pub async fn wait_for_pooled(&self) -> Result<bool, ChainError> {
        let address = self.address;
        let count = |pending: bool| async move {
            self.client
                .read("eth_getTransactionCount", |p| async move {
                    let call = p.get_transaction_count(address);
                    if pending { call.pending().await } else { call.latest().await }
                })
                .await
        };
        let pooled_up_to = count(true).await?;
        let deadline = tokio::time::Instant::now() + self.escalate_after * (MAX_ESCALATIONS + 1);
        let mut logged = false;
        loop {
            let mined = count(false).await?;
            if mined >= pooled_up_to || count(true).await? <= mined {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(chain = %self.client.chain(), mined, pending = pooled_up_to, "transactions of an earlier run are still pooled; preparing again anyway");
                return Ok(false);
            }
            if !logged {
                tracing::info!(chain = %self.client.chain(), mined, pending = pooled_up_to, "waiting for the transactions an earlier run left in the pool");
                logged = true;
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn broadcast(&self, call: &Call, nonce: u64, price: u128) -> Result<B256, SendError> {
        let tx = TransactionRequest::default()
            .with_from(self.address)
            .with_to(call.to)
            .with_input(call.data.clone())
            .with_nonce(nonce)
            .with_gas_limit(call.gas_limit)
            .with_gas_price(price)
            .with_chain_id(self.chain_id);
        let envelope =
            NetworkTransactionBuilder::<Ethereum>::build(tx, &self.wallet).await.map_err(|e| {
                SendError::Sign { chain: self.client.chain().into(), reason: e.to_string() }
            })?;
        let hash = *envelope.tx_hash();
        let raw = envelope.encoded_2718();
        let outcome = self
            .client
            .read("eth_sendRawTransaction", |p| {
                let raw = raw.clone();
                async move { p.send_raw_transaction(&raw).await.map(|_| ()) }
            })
            .await;
        match outcome {
            Ok(()) => Ok(hash),
            // A retried broadcast may find its own first attempt already in.
            Err(ChainError::Unavailable { error, .. })
                if error.contains("already known") || error.contains("already imported") =>
            {
                Ok(hash)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn receipt(&self, hash: B256) -> Result<Option<Mined>, ChainError> {
        let receipt =
            self.client
                .read("eth_getTransactionReceipt", |p| async move {
                    p.get_transaction_receipt(hash).await
                })
                .await?;
        Ok(receipt.and_then(|r| {
            Some(Mined {
                tx_hash: hash,
                success: r.status(),
                block: r.block_number?,
                gas_used: r.gas_used,
                effective_gas_price: r.effective_gas_price,
            })
        }))
    }

    async fn wait(
        &self,
        call: Call,
        nonce: u64,
        mut price: u128,
        first: B256,
    ) -> Result<Mined, SendError> {
        let chain = self.client.chain().to_owned();
        let mut hashes = vec![first];
        for escalation in 0..=MAX_ESCALATIONS {
            let deadline = tokio::time::Instant::now() + self.escalate_after;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(self.poll).await;
                // A batch of many transactions must not poll with one
                // connection each: nodes cap their connections.
                let Ok(_permit) = self.polls.acquire().await else {
                    return Err(SendError::NotMined { chain, nonce });
                };
                for hash in &hashes {
                    if let Ok(Some(mined)) = self.receipt(*hash).await {
                        return Ok(mined);
                    }
                }
                let address = self.address;
                let mined_count = self
                    .client
                    .read("eth_getTransactionCount", |p| async move {
                        p.get_transaction_count(address).latest().await
                    })
                    .await?;
                if mined_count > nonce {
                    // Mined meanwhile, or taken by another transaction: look once more.
                    for hash in &hashes {
                        if let Some(mined) = self.receipt(*hash).await? {
                            return Ok(mined);
                        }
                    }
                    return Err(SendError::NonceTaken { chain, nonce });
                }
            }
            if escalation == MAX_ESCALATIONS {
                break;
            }
            price = price.saturating_mul(5) / 4 + 1;
            self.metrics.escalations.with_label_values(&[chain.as_str()]).inc();
            tracing::warn!(%chain, nonce, price, "transaction not mined in time; re-sending at a higher gas price");
            match self.broadcast(&call, nonce, price).await {
                Ok(hash) => hashes.push(hash),
                Err(error) => tracing::warn!(%chain, nonce, %error, "re-send failed"),
            }
        }
        Err(SendError::NotMined { chain, nonce })
    }
}
