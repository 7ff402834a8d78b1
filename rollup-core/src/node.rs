//! The running node: the chain behind a lock, the pool, the miner thread
//! (instant or interval), dev accounts, snapshots and the event stream that
//! subscriptions and filters read.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::consensus::SignableTransaction;
use alloy::consensus::{ReceiptEnvelope, Transaction, TxEnvelope};
use alloy::eips::Decodable2718;
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use revm::context_interface::cfg::gas::calculate_initial_tx_gas_for_tx;
use tokio::sync::{broadcast, watch};

use crate::chain::{Chain, MinedBlock};
use crate::error::{NodeError, TxError};
use crate::executor::{SPEC, TX_GAS_CAP, tx_env};
use crate::genesis::Genesis;
use crate::metrics::Metrics;
use crate::pool::TxPool;
use crate::store::{ChainStore, StateChanges, StoredBlock};

/// Gas limit given to a reorg branch's transaction request that names none.
const REORG_DEFAULT_GAS: u64 = 3_000_000;

/// A transaction for the new branch of a reorg.
#[derive(Clone, Debug)]
pub enum ReorgTx {
    /// A signed transaction and its sender.
    Signed(Box<TxEnvelope>, Address),
    /// A dev account's request, signed after the rollback with the branch's nonces.
    Request(Box<TransactionRequest>),
}

/// When blocks are produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MiningMode {
    /// A block as soon as transactions are pending (one batch per block).
    Instant,
    /// A block every interval, empty or not, timed from one block's start to
    /// the next: a block that takes longer than the interval to build is
    /// followed at once by the next, with no burst to catch up.
    Interval(Duration),
}

/// Node settings that are not part of the genesis.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Directory of the sled database.
    pub data_dir: PathBuf,
    /// Genesis used when the directory is empty.
    pub genesis: Genesis,
    /// Block production.
    pub mining: MiningMode,
    /// Maximum number of pooled transactions.
    pub pool_capacity: usize,
}

/// What happened to the chain, for subscriptions and filters.
#[derive(Clone, Debug)]
pub enum ChainEvent {
    /// A block was added on top of the head.
    Block(Arc<MinedBlock>),
    /// Blocks were removed (newest first), by a revert or a reorg.
    Removed(Arc<Vec<(B256, StoredBlock, Vec<ReceiptEnvelope>)>>),
}

enum MinerMsg {
    Pending,
    Stop,
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    chain: RwLock<Chain>,
    /// The store, also read without the chain lock (pool admission).
    store: ChainStore,
    gas_limit: u64,
    /// Base fee of the next block, kept for pool admission.
    next_base_fee: AtomicU64,
    pool: Mutex<TxPool>,
    signers: HashMap<Address, PrivateKeySigner>,
    accounts: Vec<Address>,
    chain_id: u64,
    mode: MiningMode,
    miner: Mutex<Option<mpsc::Sender<MinerMsg>>>,
    miner_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    head: watch::Sender<u64>,
    events: broadcast::Sender<ChainEvent>,
    snapshots: Mutex<BTreeMap<u64, u64>>,
    /// Seconds added to the clock (`evm_increaseTime`).
    time_offset: AtomicU64,
    /// Timestamp forced on the next block (`evm_setNextBlockTimestamp`).
    next_timestamp: Mutex<Option<u64>>,
    /// Metrics of the node.
    pub metrics: Metrics,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

impl Node {
    /// Opens the chain and starts the miner thread.
    pub fn start(config: NodeConfig) -> Result<Arc<Self>, NodeError> {
        let chain = Chain::open(&config.data_dir, config.genesis)?;
        let signers: Vec<PrivateKeySigner> = chain.genesis.dev_signers()?;
        let accounts = signers.iter().map(|s| s.address()).collect();
        let head_number = chain.head_number()?;
        let next_base_fee = chain.next_base_fee_of(&chain.head_header()?.1);
        let metrics = Metrics::new().map_err(|e| NodeError::Config(format!("metrics: {e}")))?;
        metrics.head.set(head_number as i64);
        let (tx, rx) = mpsc::channel();
        let node = Arc::new(Self {
            chain_id: chain.genesis.chain_id,
            store: chain.store.clone(),
            gas_limit: chain.genesis.gas_limit,
            next_base_fee: AtomicU64::new(next_base_fee),
            chain: RwLock::new(chain),
            pool: Mutex::new(TxPool::new(config.pool_capacity)),
            signers: signers.into_iter().map(|s| (s.address(), s)).collect(),
            accounts,
            mode: config.mining,
            miner: Mutex::new(Some(tx)),
            miner_thread: Mutex::new(None),
            head: watch::channel(head_number).0,
            events: broadcast::channel(1024).0,
            snapshots: Mutex::new(BTreeMap::new()),
            time_offset: AtomicU64::new(0),
            next_timestamp: Mutex::new(None),
            metrics,
        });
        let weak = Arc::downgrade(&node);
        let mode = config.mining;
        let handle = std::thread::Builder::new()
            .name("miner".into())
            .spawn(move || miner_loop(&weak, &rx, mode))
            .map_err(|e| NodeError::Config(format!("miner thread: {e}")))?;
        *lock(&node.miner_thread) = Some(handle);
        Ok(node)
    }

    /// Stops the miner thread (the store closes when the last handle drops).
    pub fn stop(&self) {
        self.request_stop();
        if let Some(handle) = lock(&self.miner_thread).take() {
            let _ = handle.join();
        }
    }

    /// Tells the miner to stop after its current block, without waiting.
    pub fn request_stop(&self) {
        if let Some(tx) = lock(&self.miner).take() {
            let _ = tx.send(MinerMsg::Stop);
        }
    }

    /// The head block's number as last announced, read without the chain
    /// lock: a poll for the tip does not wait while a block is built (the
    /// miner holds the write lock throughout), and answers the block before
    /// it, which is the head until the new one is announced.
    pub fn head_number(&self) -> u64 {
        *self.head.borrow()
    }

    /// Read access to the chain.
    pub fn chain(&self) -> RwLockReadGuard<'_, Chain> {
        self.chain.read().unwrap_or_else(|e| e.into_inner())
    }

    fn chain_mut(&self) -> RwLockWriteGuard<'_, Chain> {
        self.chain.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The transaction pool.
    pub fn pool(&self) -> MutexGuard<'_, TxPool> {
        lock(&self.pool)
    }

    /// EIP-155 chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The mining mode.
    pub fn mining_mode(&self) -> MiningMode {
        self.mode
    }

    /// Dev accounts, in mnemonic order.
    pub fn accounts(&self) -> &[Address] {
        &self.accounts
    }

    /// Signer of a dev account.
    pub fn signer(&self, address: &Address) -> Option<&PrivateKeySigner> {
        self.signers.get(address)
    }

    /// A stream of chain events.
    pub fn subscribe(&self) -> broadcast::Receiver<ChainEvent> {
        self.events.subscribe()
    }

    /// Decodes, checks and pools a raw signed transaction; in instant mode,
    /// returns once it is mined (or dropped).
    pub async fn submit_raw(&self, raw: &[u8]) -> Result<B256, NodeError> {
        let tx = TxEnvelope::decode_2718_exact(raw).map_err(|e| TxError::Decode(e.to_string()))?;
        let sender = alloy::consensus::transaction::SignerRecoverable::recover_signer(&tx)
            .map_err(|e| TxError::InvalidSignature(e.to_string()))?;
        self.submit(tx, sender).await
    }

    /// Checks and pools a transaction with a known sender; in instant mode
    /// the miner is woken and includes it (with whatever else is ready) in the
    /// next block. Returns once the transaction is pooled, as anvil does.
    pub async fn submit(&self, tx: TxEnvelope, sender: Address) -> Result<B256, NodeError> {
        if tx.is_eip4844() {
            return Err(TxError::TypeNotSupported.into());
        }
        self.validate(&tx, sender)?;
        let hash = {
            let mut pool = self.pool();
            let hash = pool.insert(tx, sender)?;
            self.metrics.pool_size.set(pool.len() as i64);
            hash
        };
        if self.mode == MiningMode::Instant
            && let Some(m) = lock(&self.miner).as_ref()
        {
            let _ = m.send(MinerMsg::Pending);
        }
        Ok(hash)
    }

    /// Admission checks against the latest committed state. They read the
    /// store without the chain lock: block building checks again in revm.
    fn validate(&self, tx: &TxEnvelope, sender: Address) -> Result<(), TxError> {
        if let Some(id) = tx.chain_id()
            && id != self.chain_id
        {
            return Err(TxError::WrongChainId { have: id, want: self.chain_id });
        }
        let store_err = |e: crate::error::StoreError| TxError::Decode(e.to_string());
        let account = self.store.account(sender).map_err(store_err)?.unwrap_or_default();
        if tx.nonce() < account.nonce {
            return Err(TxError::NonceTooLow { next: account.nonce, tx: tx.nonce() });
        }
        let max_gas = self.gas_limit.min(TX_GAS_CAP);
        if tx.gas_limit() > max_gas {
            return Err(TxError::GasLimitTooHigh { tx: tx.gas_limit(), max: max_gas });
        }
        let intrinsic = calculate_initial_tx_gas_for_tx(tx_env(tx, sender), SPEC, None);
        let want = intrinsic.initial_total_gas().max(intrinsic.floor_gas());
        if tx.gas_limit() < want {
            return Err(TxError::IntrinsicGasTooLow { have: tx.gas_limit(), want });
        }
        if tx.max_priority_fee_per_gas().is_some_and(|tip| tip > tx.max_fee_per_gas()) {
            return Err(TxError::TipAboveFeeCap);
        }
        let base_fee = self.next_base_fee.load(Ordering::Relaxed);
        if tx.max_fee_per_gas() < u128::from(base_fee) {
            return Err(TxError::FeeCapTooLow { max_fee: tx.max_fee_per_gas(), base_fee });
        }
        let cost = U256::from(tx.gas_limit()) * U256::from(tx.max_fee_per_gas()) + tx.value();
        if account.balance < cost {
            return Err(TxError::InsufficientFunds {
                balance: account.balance.to_string(),
                cost: cost.to_string(),
            });
        }
        Ok(())
    }

    /// Next nonce of `address` including pooled transactions.
    pub fn pending_nonce(&self, address: Address) -> Result<u64, NodeError> {
        let state = self.chain().store.account(address)?.map(|a| a.nonce).unwrap_or_default();
        Ok(self.pool().pending_nonce(address, state))
    }

    /// Mines one block from the pool, applying `overrides` first.
    pub fn mine_one(
        &self,
        overrides: Option<StateChanges>,
        extra_data: Bytes,
    ) -> Result<Arc<MinedBlock>, NodeError> {
        self.mine_block(overrides, extra_data, false)?
            .ok_or_else(|| NodeError::Invalid("no block was mined".into()))
    }

    /// Mines a block if the pool holds executable transactions.
    pub fn mine_ready(&self) -> Result<Option<Arc<MinedBlock>>, NodeError> {
        self.mine_block(None, Bytes::new(), true)
    }

    fn mine_block(
        &self,
        overrides: Option<StateChanges>,
        extra_data: Bytes,
        only_if_ready: bool,
    ) -> Result<Option<Arc<MinedBlock>>, NodeError> {
        let mut chain = self.chain_mut();
        let timestamp = self.block_timestamp();
        let base_fee = chain.next_block_params(timestamp)?.base_fee;
        let candidates = {
            let store = &chain.store;
            let nonce =
                |a: Address| store.account(a).ok().flatten().map(|x| x.nonce).unwrap_or_default();
            self.pool().best(nonce, base_fee)
        };
        if only_if_ready && candidates.is_empty() {
            return Ok(None);
        }
        let hashes: Vec<B256> = candidates.iter().map(|(tx, _)| *tx.tx_hash()).collect();
        let mined = match chain.mine(timestamp, extra_data, overrides, candidates) {
            Ok(m) => Arc::new(m),
            Err(e) => {
                // Drop the candidates so senders waiting on them are released, not stuck.
                let mut pool = self.pool();
                for h in &hashes {
                    pool.remove(h);
                }
                drop((pool, chain));
                self.head.send_modify(|_| {});
                return Err(e);
            }
        };
        {
            let mut pool = self.pool();
            for (tx, sender) in mined.block.txs.iter().zip(&mined.block.senders) {
                pool.remove(tx.tx_hash());
                pool.prune(*sender, tx.nonce() + 1);
            }
            for (hash, reason) in &mined.rejected {
                tracing::debug!(%hash, reason, "dropped transaction the EVM refused");
                pool.remove(hash);
            }
            self.metrics.pool_size.set(pool.len() as i64);
        }
        let h = &mined.block.header;
        self.metrics.blocks.inc();
        self.metrics.txs.inc_by(mined.block.txs.len() as u64);
        self.metrics.gas.inc_by(h.gas_used);
        self.metrics.head.set(h.number as i64);
        self.metrics.state_root_seconds.observe(mined.state_root_secs);
        self.metrics.execution_seconds.observe(mined.execution_secs);
        tracing::debug!(number = h.number, txs = mined.block.txs.len(), gas = h.gas_used, "block");
        self.announce(chain, ChainEvent::Block(mined.clone()), h.number);
        Ok(Some(mined))
    }

    /// Sets the next block's base fee and tells subscribers of a change to
    /// the chain (head `head` now), then releases the chain's write lock.
    /// Announced before anyone can read the change: a client that saw a
    /// block (its receipt, its number) and then subscribed never hears of
    /// that block, as it did when the lock went first.
    fn announce(&self, chain: RwLockWriteGuard<'_, Chain>, event: ChainEvent, head: u64) {
        if let Ok((_, tip)) = chain.head_header() {
            self.next_base_fee.store(chain.next_base_fee_of(&tip), Ordering::Relaxed);
        }
        let _ = self.events.send(event);
        self.head.send_replace(head);
        drop(chain);
    }

    /// Removes blocks above `number` and tells subscribers.
    pub fn rollback_to(&self, number: u64) -> Result<usize, NodeError> {
        let mut chain = self.chain_mut();
        let removed = chain.rollback_to(number)?;
        let count = removed.len();
        if count > 0 {
            self.metrics.head.set(number as i64);
            self.announce(chain, ChainEvent::Removed(Arc::new(removed)), number);
        }
        Ok(count)
    }

    /// Signs a dev account's request for a reorg branch, with the nonce that
    /// follows the rolled-back state and the branch's earlier transactions.
    fn sign_branch_request(
        &self,
        req: &TransactionRequest,
        nonces: &mut HashMap<Address, u64>,
    ) -> Result<(TxEnvelope, Address), NodeError> {
        let bad = |m: String| NodeError::Invalid(format!("anvil_reorg: {m}"));
        let from = req.from.ok_or_else(|| bad("a transaction request needs \"from\"".into()))?;
        let signer =
            self.signers.get(&from).ok_or_else(|| bad(format!("{from} is not a dev account")))?;
        let next = match nonces.get(&from) {
            Some(n) => *n,
            None => self.store.account(from)?.map(|a| a.nonce).unwrap_or_default(),
        };
        let mut req = req.clone();
        let nonce = *req.nonce.get_or_insert(next);
        nonces.insert(from, nonce + 1);
        req.chain_id = Some(self.chain_id);
        req.to.get_or_insert(TxKind::Create);
        req.gas.get_or_insert(REORG_DEFAULT_GAS.min(self.gas_limit));
        if req.gas_price.is_none() {
            let tip = *req.max_priority_fee_per_gas.get_or_insert(1_000_000_000);
            let base = u128::from(self.next_base_fee.load(Ordering::Relaxed));
            req.max_fee_per_gas.get_or_insert(2 * base + tip);
        }
        let mut typed = req
            .build_typed_tx()
            .map_err(|_| bad("the transaction request is incomplete".into()))?;
        let sig =
            signer.sign_transaction_sync(&mut typed).map_err(|e| bad(format!("signing: {e}")))?;
        Ok((typed.into_signed(sig).into(), from))
    }

    /// Timestamp for the next block: a forced one, else the clock plus the offset.
    fn block_timestamp(&self) -> u64 {
        lock(&self.next_timestamp)
            .take()
            .unwrap_or_else(|| now_secs() + self.time_offset.load(Ordering::Relaxed))
    }

    /// Moves the clock forward by `seconds`; returns the total offset.
    pub fn increase_time(&self, seconds: u64) -> u64 {
        self.time_offset.fetch_add(seconds, Ordering::Relaxed).saturating_add(seconds)
    }

    /// Forces the timestamp of the next block; it must not be below the head's.
    pub fn set_next_block_timestamp(&self, timestamp: u64) -> Result<(), NodeError> {
        let head = self.chain().head_header()?.1.timestamp;
        if timestamp < head {
            return Err(NodeError::Invalid(format!(
                "timestamp {timestamp} is below the head block's timestamp {head}"
            )));
        }
        *lock(&self.next_timestamp) = Some(timestamp);
        Ok(())
    }

    /// Records the current head; returns the snapshot id.
    pub fn snapshot(&self) -> Result<u64, NodeError> {
        let head = self.chain().head_number()?;
        let mut snaps = lock(&self.snapshots);
        let id = snaps.keys().next_back().map_or(1, |k| k + 1);
        snaps.insert(id, head);
        Ok(id)
    }

    /// Rolls back to snapshot `id` (dropping it and later ones); false if unknown.
    pub fn revert(&self, id: u64) -> Result<bool, NodeError> {
        let head = {
            let mut snaps = lock(&self.snapshots);
            let Some(head) = snaps.get(&id).copied() else { return Ok(false) };
            snaps.split_off(&id);
            head
        };
        self.rollback_to(head)?;
        Ok(true)
    }

    /// Replaces the last `depth` blocks with `depth` new ones holding `txs`
    /// (raw transaction, block offset within the new branch).
    pub fn reorg(&self, depth: u64, txs: &[(ReorgTx, u64)]) -> Result<(), NodeError> {
        let head = self.chain().head_number()?;
        if depth == 0 || depth > head {
            return Err(NodeError::Invalid(format!(
                "reorg depth {depth} must be between 1 and the head number {head}"
            )));
        }
        self.rollback_to(head - depth)?;
        let mut nonces: HashMap<Address, u64> = HashMap::new();
        for offset in 0..depth {
            let mut branch = Vec::new();
            for (tx, _) in txs.iter().filter(|t| t.1 == offset) {
                match tx {
                    ReorgTx::Signed(tx, sender) => {
                        nonces.insert(*sender, tx.nonce() + 1);
                        branch.push((tx.as_ref().clone(), *sender));
                    }
                    ReorgTx::Request(req) => {
                        branch.push(self.sign_branch_request(req, &mut nonces)?)
                    }
                }
            }
            let mut chain = self.chain_mut();
            let mined = Arc::new(chain.mine(
                self.block_timestamp(),
                Bytes::from_static(b"reorg"),
                None,
                branch,
            )?);
            let number = mined.block.header.number;
            self.metrics.head.set(number as i64);
            self.announce(chain, ChainEvent::Block(mined), number);
        }
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.request_stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long an interval miner waits before its next block: the interval is
/// counted from when the last block's building `started`, so building time
/// does not stretch the block time; a late block starts at once.
fn wait_for_next_block(started: Instant, every: Duration, now: Instant) -> Duration {
    (started + every).saturating_duration_since(now)
}

fn miner_loop(node: &Weak<Node>, rx: &mpsc::Receiver<MinerMsg>, mode: MiningMode) {
    let mut started = Instant::now();
    loop {
        let msg = match mode {
            MiningMode::Instant => rx.recv().map_err(|_| ()),
            MiningMode::Interval(every) => {
                match rx.recv_timeout(wait_for_next_block(started, every, Instant::now())) {
                    Ok(m) => Ok(m),
                    Err(RecvTimeoutError::Timeout) => Ok(MinerMsg::Pending),
                    Err(RecvTimeoutError::Disconnected) => Err(()),
                }
            }
        };
        match msg {
            Err(()) | Ok(MinerMsg::Stop) => return,
            Ok(MinerMsg::Pending) => {}
        }
        let Some(node) = node.upgrade() else { return };
        if mode != MiningMode::Instant {
            started = Instant::now();
            if let Err(e) = node.mine_one(None, Bytes::new()) {
                tracing::error!(error = %e, "block production failed");
            }
            continue;
        }
        // Coalesce the triggers that queued up while the last block was built.
        while let Ok(m) = rx.try_recv() {
            if matches!(m, MinerMsg::Stop) {
                return;
            }
        }
        loop {
            match node.mine_ready() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "block production failed");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_counts_from_the_last_blocks_start() {
        let started = Instant::now();
        let every = Duration::from_millis(250);
        // Built in 40 ms: the rest of the interval is waited.
        assert_eq!(
            wait_for_next_block(started, every, started + Duration::from_millis(40)),
            Duration::from_millis(210)
        );
        // Built in longer than the interval: the next block starts at once.
        assert_eq!(
            wait_for_next_block(started, every, started + Duration::from_millis(300)),
            Duration::ZERO
        );
        assert_eq!(wait_for_next_block(started, every, started), every);
    }

    #[test]
    fn head_number_is_read_without_the_chain_lock() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(NodeConfig {
            data_dir: dir.path().to_path_buf(),
            genesis: Genesis::default(),
            mining: MiningMode::Instant,
            pool_capacity: 16,
        })
        .unwrap();
        assert_eq!(node.head_number(), 0);
        node.mine_one(None, Bytes::new()).unwrap();
        assert_eq!(node.head_number(), 1);
        // While a block is being built (the write lock held, here by this
        // very thread, which a read of the chain would deadlock), the head
        // is still the last announced block.
        let building = node.chain_mut();
        assert_eq!(node.head_number(), 1);
        drop(building);
        assert_eq!(node.rollback_to(0).unwrap(), 1);
        assert_eq!(node.head_number(), 0);
        assert_eq!(node.chain().head_number().unwrap(), 0);
        node.stop();
    }
}
