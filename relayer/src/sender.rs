//! Sending delivery transactions on one destination: our own nonces, gas
//! price escalation for a transaction that is not mined, receipts.
//!
//! Nonces are ours: consecutive within a batch, counted on between batches,
//! and checked at the start of each batch against the chain's pending count
//! (nothing of ours is in flight then), which wins on a difference: a
//! transaction reorged out or evicted, or the key used elsewhere. Transactions of one batch take consecutive nonces, are
//! broadcast in nonce order (a failed broadcast stops the rest) and are then
//! awaited together.
//!
//! Fees ([`Fees`]): on a chain whose blocks have a base fee, transactions
//! are EIP-1559: a tip of the chain's suggested tip and a tenth, under a fee
//! cap of twice the latest base fee plus the tip (the cap is headroom for a
//! rising base fee; only the base fee and the tip are paid). On a chain
//! without a base fee, a legacy gas price: the suggested one and a tenth.
//!
//! A transaction not mined within `escalate_after` is signed again with the
//! same nonce, every fee at 5/4 (above the pools' 10 % replacement rule), up
//! to [`MAX_ESCALATIONS`] times (3.8 times its first fees); after that only
//! when the chain's fees have passed it. A sent transaction is awaited until
//! it or another with its nonce is mined: its nonce is never given up, so a
//! message is never sent again under a new nonce while its first
//! transaction may still be mined.

use std::{sync::Arc, time::Duration};

use alloy::{
    eips::eip2718::Encodable2718,
    network::{Ethereum, EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{Address, B256, Bytes},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    transports::RpcError,
};
use metalayer_agent::chain::{ChainClient, ChainError};
use tokio::sync::Mutex;

use crate::metrics::RelayerMetrics;

/// Raises of a transaction's fees by a quarter; after them, its fee cap
/// (gas price) is raised only to follow the chain's.
pub const MAX_ESCALATIONS: u32 = 6;

/// `x` and its `n`th part, and a wei; `u128::MAX` at most.
fn more(x: u128, n: u128) -> u128 {
    x.saturating_add(x / n).saturating_add(1)
}

/// What a transaction offers to pay per gas, in wei.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fees {
    /// A chain without a base fee: one gas price, paid whole.
    Legacy {
        /// The gas price.
        gas_price: u128,
    },
    /// EIP-1559: the base fee and at most `tip` a gas, never above `max_fee`.
    Eip1559 {
        /// The fee cap (`maxFeePerGas`).
        max_fee: u128,
        /// The tip (`maxPriorityFeePerGas`).
        tip: u128,
    },
}

impl Fees {
    /// Every fee at 5/4, and a wei.
    pub fn raised(self) -> Self {
        let up = |x: u128| more(x, 4);
        match self {
            Self::Legacy { gas_price } => Self::Legacy { gas_price: up(gas_price) },
            Self::Eip1559 { max_fee, tip } => Self::Eip1559 { max_fee: up(max_fee), tip: up(tip) },
        }
    }

    /// Each fee the higher of `self`'s and `other`'s (`other` if they are
    /// of different kinds).
    pub fn at_least(self, other: Self) -> Self {
        match (self, other) {
            (Self::Legacy { gas_price: a }, Self::Legacy { gas_price: b }) => {
                Self::Legacy { gas_price: a.max(b) }
            }
            (Self::Eip1559 { max_fee: a, tip: t }, Self::Eip1559 { max_fee: b, tip: u }) => {
                Self::Eip1559 { max_fee: a.max(b), tip: t.max(u) }
            }
            _ => other,
        }
    }

    /// The fee cap: the most a gas may cost.
    pub fn cap(self) -> u128 {
        match self {
            Self::Legacy { gas_price } => gas_price,
            Self::Eip1559 { max_fee, .. } => max_fee,
        }
    }

    /// The fees to re-sign with, past the raises, when `market` is what the
    /// chain asks now: `None` while `self`'s cap is above 4/5 of the
    /// market's. Otherwise the market's cap, with the tip raised by a tenth
    /// and a wei if the market's is not higher (a replacement must raise
    /// both).
    pub fn following(self, market: Self) -> Option<Self> {
        if market.cap() < self.raised().cap() {
            return None;
        }
        Some(match (self, market) {
            (Self::Eip1559 { tip, .. }, Self::Eip1559 { max_fee, tip: offered }) => {
                Self::Eip1559 { max_fee, tip: offered.max(more(tip, 10)) }
            }
            _ => market,
        })
    }
}

/// Earlier-run transactions [`TxSender::wait_for_pooled`] replaces in one
/// period, lowest nonces first (a run leaves at most a few blocks' worth).
const MAX_REPLACED: u64 = 1024;

/// Versions of one transaction whose receipts are looked for.
const TRACKED_VERSIONS: usize = 8;

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

/// Where a sent transaction stands.
enum Settled {
    /// One of its versions is mined.
    Mined(Mined),
    /// Another transaction took its nonce.
    Taken,
    /// Neither yet.
    Pending,
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
    /// The node refused the transaction.
    #[error("{chain} refused the transaction: {reason}")]
    Refused {
        /// Chain name.
        chain: String,
        /// The node's error response.
        reason: String,
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
    /// transaction does not hold back what the others delivered. `base_fee`
    /// is the latest block's, as the caller read it (`None`: the chain has
    /// none).
    pub async fn send_each(
        &self,
        calls: Vec<Call>,
        base_fee: Option<u64>,
        mut done: impl FnMut(usize, Result<Mined, SendError>),
    ) {
        let mut failed_all = |n: usize, error: ChainError| {
            let mut error = Some(SendError::from(error));
            for i in 0..n {
                done(i, Err(error.take().unwrap_or(SendError::NotSent)));
            }
        };
        let fees = match self.quote(base_fee).await {
            Ok(fees) => fees,
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
            match self.broadcast(&call, nonce, fees).await {
                Ok(hash) => {
                    sent.push(Ok((call, nonce, fees, hash)));
                    nonce = nonce.saturating_add(1);
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
                    Ok((call, nonce, fees, hash)) => self.wait(call, nonce, fees, hash).await,
                    Err(e) => Err(e),
                };
                (i, result)
            })
            .collect();
        let mut taken = false;
        while let Some((i, result)) = futures::StreamExt::next(&mut waits).await {
            taken |= matches!(result, Err(SendError::NonceTaken { .. }));
            done(i, result);
        }
        if taken {
            *self.next_nonce.lock().await = None;
        }
    }

    /// Waits until every transaction the signer has in the pool when it is
    /// called is mined (the chain's latest count reaches the pending count
    /// read first) or gone from the pool (the pending count falls to the
    /// latest). A restarted relayer calls it before preparing again what
    /// the run before it had sent: prepare reads `delivered`, which a
    /// delivery still in the pool does not show yet, and sending it again
    /// would pay for a second transaction that reverts.
    ///
    /// Those transactions are not ours to raise (this run never saw them),
    /// and one the market has left behind could wait for hours, with every
    /// later nonce behind it. So each `escalate_after` they stay pooled,
    /// each is replaced by an empty transfer to the signer itself (21,000
    /// gas) at the chain's fees raised by a quarter, or at the last such
    /// offer raised by a quarter if that is more: a pool takes it once it
    /// outbids the transaction it replaces by a tenth, and it outbids the
    /// fillers of a busy chain soon after. A delivery mined first makes its
    /// replacement fail harmlessly (nonce too low); one replaced is
    /// prepared again once the pool is empty.
    pub async fn wait_for_pooled(&self) -> Result<(), ChainError> {
        let address = self.address;
        let count = |pending: bool| async move {
            self.client
                .read("eth_getTransactionCount", |p| async move {
                    let call = p.get_transaction_count(address);
                    if pending { call.pending().await } else { call.latest().await }
                })
                .await
        };
        let chain = self.client.chain();
        let pooled_up_to = count(true).await?;
        let mut replace_at = tokio::time::Instant::now() + self.escalate_after;
        let mut offered: Option<Fees> = None;
        loop {
            let mined = count(false).await?;
            if mined >= pooled_up_to || count(true).await? <= mined {
                return Ok(());
            }
            if tokio::time::Instant::now() >= replace_at {
                let market = self.market().await?.raised();
                let fees = offered.map_or(market, |last| last.raised().at_least(market));
                tracing::warn!(%chain, mined, pending = pooled_up_to, ?fees, "transactions an earlier run left in the pool are still there; replacing them with empty transfers");
                let empty = Call { to: address, data: Bytes::new(), gas_limit: 21_000 };
                // The counts come from the chain: however far apart a node
                // puts them, a period replaces a bounded number.
                for nonce in mined..pooled_up_to.min(mined.saturating_add(MAX_REPLACED)) {
                    if let Err(error) = self.broadcast(&empty, nonce, fees).await {
                        tracing::debug!(%chain, nonce, %error, "replacement refused");
                    }
                }
                offered = Some(fees);
                replace_at = tokio::time::Instant::now() + self.escalate_after;
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn broadcast(&self, call: &Call, nonce: u64, fees: Fees) -> Result<B256, SendError> {
        let tx = TransactionRequest::default()
            .with_from(self.address)
            .with_to(call.to)
            .with_input(call.data.clone())
            .with_nonce(nonce)
            .with_gas_limit(call.gas_limit)
            .with_chain_id(self.chain_id);
        let tx = match fees {
            Fees::Legacy { gas_price } => tx.with_gas_price(gas_price),
            Fees::Eip1559 { max_fee, tip } => {
                tx.with_max_fee_per_gas(max_fee).with_max_priority_fee_per_gas(tip)
            }
        };
        let envelope =
            NetworkTransactionBuilder::<Ethereum>::build(tx, &self.wallet).await.map_err(|e| {
                SendError::Sign { chain: self.client.chain().into(), reason: e.to_string() }
            })?;
        let hash = *envelope.tx_hash();
        let raw = envelope.encoded_2718();
        // A node's refusal (an error response) is its answer and is not
        // asked again; only an endpoint that could not be reached is.
        let outcome = self
            .client
            .read("eth_sendRawTransaction", |p| {
                let raw = raw.clone();
                async move {
                    match p.send_raw_transaction(&raw).await {
                        Ok(_) => Ok(Ok(())),
                        Err(RpcError::ErrorResp(refusal)) => Ok(Err(refusal.to_string())),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        match outcome {
            Ok(()) => Ok(hash),
            // A broadcast may find an earlier one of the same transaction in
            // (a re-broadcast, or a retry after an answer that was lost).
            Err(refusal)
                if refusal.contains("already known") || refusal.contains("already imported") =>
            {
                Ok(hash)
            }
            Err(reason) => Err(SendError::Refused { chain: self.client.chain().into(), reason }),
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

    /// The fees to offer now (see the module's documentation), on a chain
    /// whose latest block has `base_fee`.
    async fn quote(&self, base_fee: Option<u64>) -> Result<Fees, ChainError> {
        match base_fee {
            Some(base_fee) => {
                let tip = self
                    .client
                    .read("eth_maxPriorityFeePerGas", |p| async move {
                        p.get_max_priority_fee_per_gas().await
                    })
                    .await?;
                let tip = more(tip, 10);
                Ok(Fees::Eip1559 {
                    max_fee: u128::from(base_fee).saturating_mul(2).saturating_add(tip),
                    tip,
                })
            }
            None => {
                let price = self
                    .client
                    .read("eth_gasPrice", |p| async move { p.get_gas_price().await })
                    .await?;
                Ok(Fees::Legacy { gas_price: more(price, 10) })
            }
        }
    }

    /// [`Self::quote`] at the latest block's base fee, read now.
    async fn market(&self) -> Result<Fees, ChainError> {
        let block = self
            .client
            .read("eth_getBlockByNumber", |p| async move {
                p.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await
            })
            .await?
            .ok_or_else(|| ChainError::UnknownBlock {
                chain: self.client.chain().to_owned(),
                block: "latest".into(),
            })?;
        self.quote(block.header.base_fee_per_gas).await
    }

    /// Waits for the transaction with `nonce` until it is mined or another
    /// transaction takes its nonce: its nonce is never given up while it
    /// may still be mined, since a message sent again under a new nonce
    /// would pay for a second transaction that reverts, and every later
    /// nonce would wait behind the old one anyway. Each `escalate_after`
    /// without a receipt, it is signed again: with its fees at 5/4 for the
    /// first [`MAX_ESCALATIONS`] times, then only when the chain's fees
    /// have passed it ([`Fees::following`]), and otherwise broadcast again
    /// as it is (a node that dropped it takes it back). A chain that cannot
    /// be read is waited out.
    async fn wait(
        &self,
        call: Call,
        nonce: u64,
        mut fees: Fees,
        first: B256,
    ) -> Result<Mined, SendError> {
        let chain = self.client.chain().to_owned();
        let mut hashes = vec![first];
        let mut escalations = 0;
        loop {
            let deadline = tokio::time::Instant::now() + self.escalate_after;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(self.poll).await;
                // A batch of many transactions must not poll with one
                // connection each: nodes cap their connections.
                let _permit = self.polls.acquire().await.ok();
                match self.settled(&hashes, nonce).await {
                    Ok(Settled::Mined(mined)) => return Ok(mined),
                    Ok(Settled::Taken) => return Err(SendError::NonceTaken { chain, nonce }),
                    Ok(Settled::Pending) => {}
                    Err(error) => {
                        tracing::warn!(%chain, nonce, %error, "reading a pending transaction's state failed; still waiting")
                    }
                }
            }
            let offer = if escalations < MAX_ESCALATIONS {
                escalations += 1;
                Some(fees.raised())
            } else {
                match self.market().await {
                    Ok(market) => fees.following(market),
                    Err(error) => {
                        tracing::warn!(%chain, nonce, %error, "the chain's fees are unknown; re-sending as it is");
                        None
                    }
                }
            };
            match offer {
                Some(offer) => {
                    fees = offer;
                    self.metrics.escalations.with_label_values(&[chain.as_str()]).inc();
                    tracing::warn!(%chain, nonce, ?fees, "transaction not mined in time; re-sending with higher fees");
                }
                None => {
                    tracing::debug!(%chain, nonce, ?fees, "transaction not mined in time; broadcasting it again")
                }
            }
            match self.broadcast(&call, nonce, fees).await {
                Ok(hash) if !hashes.contains(&hash) => {
                    // Each poll reads a receipt per version: the oldest is
                    // let go past a few. Should it be the one mined, the
                    // nonce reads as taken and prepare finds the message
                    // delivered.
                    if hashes.len() == TRACKED_VERSIONS {
                        hashes.remove(0);
                    }
                    hashes.push(hash);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%chain, nonce, %error, "re-send failed"),
            }
        }
    }

    /// Where the transaction with `nonce` stands, `hashes` being its
    /// versions.
    async fn settled(&self, hashes: &[B256], nonce: u64) -> Result<Settled, ChainError> {
        for hash in hashes.iter().rev() {
            if let Ok(Some(mined)) = self.receipt(*hash).await {
                return Ok(Settled::Mined(mined));
            }
        }
        let address = self.address;
        let mined_count = self
            .client
            .read("eth_getTransactionCount", |p| async move {
                p.get_transaction_count(address).latest().await
            })
            .await?;
        if mined_count <= nonce {
            return Ok(Settled::Pending);
        }
        // Mined meanwhile, or taken by another transaction: look once more,
        // and only a full set of answers tells the nonce was taken.
        for hash in hashes {
            if let Some(mined) = self.receipt(*hash).await? {
                return Ok(Settled::Mined(mined));
            }
        }
        Ok(Settled::Taken)
    }
}

#[cfg(test)]
mod tests {
    use super::Fees;

    #[test]
    fn a_raise_lifts_every_fee_by_a_quarter() {
        assert_eq!(Fees::Legacy { gas_price: 100 }.raised(), Fees::Legacy { gas_price: 126 });
        assert_eq!(
            Fees::Eip1559 { max_fee: 400, tip: 8 }.raised(),
            Fees::Eip1559 { max_fee: 501, tip: 11 }
        );
        let top = Fees::Eip1559 { max_fee: u128::MAX - 1, tip: u128::MAX }.raised();
        assert_eq!(top, Fees::Eip1559 { max_fee: u128::MAX, tip: u128::MAX }, "saturates");
    }

    #[test]
    fn past_the_raises_fees_follow_only_a_market_a_quarter_above() {
        let ours = Fees::Eip1559 { max_fee: 400, tip: 40 };
        // A market cap below a raise's: kept as is.
        assert_eq!(ours.following(Fees::Eip1559 { max_fee: 500, tip: 10 }), None);
        // Above: the market's cap, and a tip at least a tenth higher, as a
        // replacement needs.
        assert_eq!(
            ours.following(Fees::Eip1559 { max_fee: 501, tip: 10 }),
            Some(Fees::Eip1559 { max_fee: 501, tip: 45 })
        );
        assert_eq!(
            ours.following(Fees::Eip1559 { max_fee: 900, tip: 60 }),
            Some(Fees::Eip1559 { max_fee: 900, tip: 60 })
        );
        let legacy = Fees::Legacy { gas_price: 400 };
        assert_eq!(legacy.following(Fees::Legacy { gas_price: 500 }), None);
        assert_eq!(
            legacy.following(Fees::Legacy { gas_price: 501 }),
            Some(Fees::Legacy { gas_price: 501 })
        );
    }

    #[test]
    fn at_least_takes_the_higher_of_each_fee() {
        assert_eq!(
            Fees::Eip1559 { max_fee: 500, tip: 9 }
                .at_least(Fees::Eip1559 { max_fee: 400, tip: 40 }),
            Fees::Eip1559 { max_fee: 500, tip: 40 }
        );
        let legacy = Fees::Legacy { gas_price: 400 };
        assert_eq!(legacy.at_least(Fees::Legacy { gas_price: 300 }), legacy);
    }
}
