//! The chain: genesis, block building on top of the head, and rolling back
//! blocks (for snapshots and reorgs). Synchronous; the node serialises access.

use alloy::consensus::constants::EMPTY_OMMER_ROOT_HASH;
use alloy::consensus::proofs::{calculate_receipt_root, calculate_transaction_root};
use alloy::consensus::{Header, ReceiptEnvelope};
use alloy::eips::eip1559::{BaseFeeParams, calc_next_block_base_fee};
use alloy::eips::eip7685::EMPTY_REQUESTS_HASH;
use alloy::primitives::{Address, B64, B256, Bloom, Bytes, KECCAK256_EMPTY, keccak256};
use alloy_trie::EMPTY_ROOT_HASH;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::error::{NodeError, StoreError};
use crate::executor::{BlockParams, ExecutedTx, execute_block};
use crate::genesis::Genesis;
use crate::state::{CodeCache, StateDb};
use crate::store::{AccountData, BlockCommit, ChainStore, PriorState, StateChanges, StoredBlock};
use crate::trie::StateTrie;

/// Blocks with at least this many transactions build their receipts on a
/// second thread while the state root is computed.
const PARALLEL_RECEIPTS: usize = 16;

const META_GENESIS: &[u8] = b"mgenesis";

/// A block that was just added to the chain.
#[derive(Clone, Debug)]
pub struct MinedBlock {
    /// Its hash.
    pub hash: B256,
    /// The block.
    pub block: StoredBlock,
    /// Its receipts.
    pub receipts: Vec<ReceiptEnvelope>,
    /// Candidates refused by the EVM, with the reason.
    pub rejected: Vec<(B256, String)>,
    /// Time spent computing the state root (and, beside it, the receipts
    /// with their blooms and the transactions and receipts roots), in seconds.
    pub state_root_secs: f64,
    /// Time spent executing transactions, in seconds.
    pub execution_secs: f64,
}

/// A block with its hash and receipts, as readers get it.
#[derive(Debug)]
pub struct BlockRecord {
    /// The block's hash.
    pub hash: B256,
    /// The block.
    pub block: StoredBlock,
    /// Its receipts.
    pub receipts: Vec<ReceiptEnvelope>,
}

/// Recent blocks kept decoded: receipt polling reads them over and over.
const RECENT_BLOCKS: usize = 256;
/// How many of the newest blocks' overwritten state is kept in memory
/// (16 s of 250 ms blocks; a few megabytes when blocks are full).
const HISTORY_BLOCKS: usize = 64;

/// The chain store plus the in-memory trie and the genesis parameters.
#[derive(Debug)]
pub struct Chain {
    /// The persistent store.
    pub store: ChainStore,
    /// The genesis the chain was created with.
    pub genesis: Genesis,
    /// Shared analysed-code cache.
    pub codes: CodeCache,
    trie: StateTrie,
    recent: BTreeMap<u64, Arc<BlockRecord>>,
    /// What each of the newest blocks mined since opening overwrote, up to
    /// [`HISTORY_BLOCKS`], keyed by block: reads at those blocks (agents
    /// read a few blocks behind the head) are served from memory.
    history: BTreeMap<u64, PriorState>,
}

impl Chain {
    /// Opens the chain in `dir`, writing the genesis block if the store is empty.
    /// A store created before keeps its own genesis; a different `genesis` is ignored.
    pub fn open(dir: &Path, genesis: Genesis) -> Result<Self, NodeError> {
        genesis.validate()?;
        let store = ChainStore::open(dir)?;
        let genesis = match store.meta(META_GENESIS)? {
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| StoreError::Corrupt(format!("stored genesis: {e}")))?,
            None => {
                if store.head()?.is_some() {
                    return Err(
                        StoreError::Corrupt("blocks present but no genesis record".into()).into()
                    );
                }
                let raw =
                    serde_json::to_vec(&genesis).map_err(|e| NodeError::Config(e.to_string()))?;
                store.put_meta(META_GENESIS, &raw)?;
                genesis
            }
        };
        let trie = StateTrie::load(&store)?;
        let mut chain = Self {
            store,
            genesis,
            codes: CodeCache::default(),
            trie,
            recent: BTreeMap::new(),
            history: BTreeMap::new(),
        };
        if chain.store.head()?.is_none() {
            chain.commit_genesis()?;
        }
        Ok(chain)
    }

    fn commit_genesis(&mut self) -> Result<(), NodeError> {
        let mut changes = StateChanges::default();
        let g = &self.genesis;
        for signer in g.dev_signers()? {
            let acc = AccountData { nonce: 0, balance: g.dev_balance, code_hash: KECCAK256_EMPTY };
            changes.accounts.insert(signer.address(), Some(acc));
        }
        for (address, a) in &g.alloc {
            let code_hash = if a.code.is_empty() { KECCAK256_EMPTY } else { keccak256(&a.code) };
            if !a.code.is_empty() {
                changes.codes.insert(code_hash, a.code.clone());
            }
            changes.accounts.insert(
                *address,
                Some(AccountData { nonce: a.nonce, balance: a.balance, code_hash }),
            );
            if !a.storage.is_empty() {
                changes
                    .storage
                    .insert(*address, (false, a.storage.iter().map(|(k, v)| (*k, *v)).collect()));
            }
        }
        let prior = self.trie.prior(&changes);
        self.trie.apply(&changes);
        let header = Header {
            state_root: self.trie.root(),
            gas_limit: g.gas_limit,
            timestamp: g.timestamp,
            base_fee_per_gas: Some(g.base_fee),
            ..empty_header()
        };
        let block = StoredBlock { header, txs: vec![], senders: vec![] };
        let hash = block.header.hash_slow();
        self.store.commit_block(&BlockCommit {
            hash,
            block: &block,
            receipts: &[],
            changes: &changes,
            prior: &prior,
        })?;
        Ok(())
    }

    /// Block `number` with its hash and receipts.
    pub fn record(&self, number: u64) -> Result<Option<Arc<BlockRecord>>, NodeError> {
        if let Some(r) = self.recent.get(&number) {
            return Ok(Some(r.clone()));
        }
        let Some((hash, block, receipts)) = self.store.record(number)? else { return Ok(None) };
        Ok(Some(Arc::new(BlockRecord { hash, block, receipts })))
    }

    /// Block `number`'s hash and header, from the newest blocks in memory
    /// or, without decoding its transactions, from the store.
    pub fn header(&self, number: u64) -> Result<Option<(B256, Header)>, NodeError> {
        if let Some(r) = self.recent.get(&number) {
            return Ok(Some((r.hash, r.block.header.clone())));
        }
        Ok(self.store.header(number)?)
    }

    /// The head block number.
    pub fn head_number(&self) -> Result<u64, NodeError> {
        self.store.head()?.ok_or_else(|| StoreError::Corrupt("no head block".into()).into())
    }

    /// The head block's hash and header (its transactions not decoded).
    pub fn head_header(&self) -> Result<(B256, Header), NodeError> {
        let n = self.head_number()?;
        self.header(n)?.ok_or_else(|| StoreError::Corrupt(format!("head block {n} missing")).into())
    }

    /// Parameters of the block that would follow the head at `timestamp`.
    pub fn next_block_params(&self, timestamp: u64) -> Result<BlockParams, NodeError> {
        let (hash, header) = self.head_header()?;
        let h = &header;
        Ok(BlockParams {
            number: h.number + 1,
            timestamp: timestamp.max(h.timestamp),
            gas_limit: self.genesis.gas_limit,
            base_fee: self.next_base_fee_of(h),
            beneficiary: Address::ZERO,
            prevrandao: keccak256(hash),
        })
    }

    /// EIP-1559 base fee of the block after `parent`.
    pub fn next_base_fee_of(&self, parent: &Header) -> u64 {
        let base = parent.base_fee_per_gas.unwrap_or(self.genesis.base_fee);
        calc_next_block_base_fee(parent.gas_used, parent.gas_limit, base, BaseFeeParams::ethereum())
    }

    /// Latest state (`None`) or the state at the end of block `at`.
    pub fn state(&self, at: Option<u64>) -> StateDb<'_> {
        let codes = self.codes.clone();
        match at {
            None => StateDb::latest(&self.store, &self.trie, codes),
            Some(n) => match self.newer_than(n) {
                Some(newer) => StateDb::recent(&self.store, &self.trie, newer, codes),
                None => StateDb::new(&self.store, at, codes),
            },
        }
    }

    /// What each block after `n` up to the head overwrote, oldest first, if
    /// memory holds all of them. The history's newest block is the head:
    /// it is added as each block is mined and cut back by a rollback.
    fn newer_than(&self, n: u64) -> Option<Vec<&PriorState>> {
        let (&first, _) = self.history.first_key_value()?;
        if n.checked_add(1)? < first {
            return None;
        }
        Some(self.history.range(n + 1..).map(|(_, prior)| prior).collect())
    }

    /// Builds, executes and commits the next block: `overrides` first (dev
    /// state edits), then `candidates` in order as far as the gas limit allows.
    pub fn mine(
        &mut self,
        timestamp: u64,
        extra_data: Bytes,
        overrides: Option<StateChanges>,
        candidates: Vec<(alloy::consensus::TxEnvelope, Address)>,
    ) -> Result<MinedBlock, NodeError> {
        let params = self.next_block_params(timestamp)?;
        let parent_hash = self.store.block_hash(params.number - 1)?.unwrap_or_default();
        let started = Instant::now();
        let mut db = self.state(None);
        if let Some(o) = overrides {
            db.overlay = o;
        }
        let exec = execute_block(&mut db, self.genesis.chain_id, &params, candidates)?;
        let execution_secs = started.elapsed().as_secs_f64();
        let changes = db.overlay;
        // The state root and the receipts (blooms, receipts and transactions
        // roots) need nothing of each other: built side by side.
        let started = Instant::now();
        let build_receipts = || {
            let receipts: Vec<ReceiptEnvelope> =
                exec.included.iter().map(ExecutedTx::receipt_envelope).collect();
            let mut bloom = Bloom::ZERO;
            for r in &receipts {
                bloom.accrue_bloom(r.logs_bloom());
            }
            let txs: Vec<_> = exec.included.iter().map(|t| t.tx.clone()).collect();
            let roots = (calculate_transaction_root(&txs), calculate_receipt_root(&receipts));
            (receipts, bloom, txs, roots)
        };
        let prior = self.trie.prior(&changes);
        let trie = &mut self.trie;
        let built = if exec.included.len() >= PARALLEL_RECEIPTS {
            std::thread::scope(|s| {
                let receipts = s.spawn(build_receipts);
                trie.apply(&changes);
                let root = trie.root();
                receipts.join().map(|r| (root, r))
            })
        } else {
            trie.apply(&changes);
            Ok((trie.root(), build_receipts()))
        };
        let Ok((state_root, (receipts, bloom, txs, (transactions_root, receipts_root)))) = built
        else {
            // The trie already holds the block's changes: rebuild it from disk.
            self.trie = StateTrie::load(&self.store)?;
            return Err(NodeError::Evm("building the block's receipts failed".into()));
        };
        let state_root_secs = started.elapsed().as_secs_f64();
        let header = Header {
            parent_hash,
            state_root,
            transactions_root,
            receipts_root,
            logs_bloom: bloom,
            number: params.number,
            gas_limit: params.gas_limit,
            gas_used: exec.gas_used,
            timestamp: params.timestamp,
            extra_data,
            mix_hash: params.prevrandao,
            base_fee_per_gas: Some(params.base_fee),
            ..empty_header()
        };
        let senders = exec.included.iter().map(|t| t.sender).collect();
        let block = StoredBlock { header, txs, senders };
        let hash = block.header.hash_slow();
        let commit = BlockCommit {
            hash,
            block: &block,
            receipts: &receipts,
            changes: &changes,
            prior: &prior,
        };
        if let Err(e) = self.store.commit_block(&commit) {
            // The trie already holds the block's changes: rebuild it from what is on disk.
            self.trie = StateTrie::load(&self.store)?;
            return Err(e.into());
        }
        let record = BlockRecord { hash, block: block.clone(), receipts: receipts.clone() };
        self.recent.insert(block.header.number, Arc::new(record));
        while self.recent.len() > RECENT_BLOCKS {
            self.recent.pop_first();
        }
        self.history.insert(block.header.number, prior);
        while self.history.len() > HISTORY_BLOCKS {
            self.history.pop_first();
        }
        Ok(MinedBlock {
            hash,
            block,
            receipts,
            rejected: exec.rejected,
            state_root_secs,
            execution_secs,
        })
    }

    /// Removes blocks above `number`, newest first, restoring the state.
    /// Returns the removed blocks with their hashes and receipts, newest first.
    pub fn rollback_to(
        &mut self,
        number: u64,
    ) -> Result<Vec<(B256, StoredBlock, Vec<ReceiptEnvelope>)>, NodeError> {
        let mut removed = Vec::new();
        loop {
            let head = self.head_number()?;
            if head <= number {
                break;
            }
            removed.push(self.store.rollback_head()?);
        }
        if !removed.is_empty() {
            self.trie = StateTrie::load(&self.store)?;
            self.recent.split_off(&(number + 1));
            self.history.split_off(&(number + 1));
        }
        Ok(removed)
    }

    /// Number of accounts in the state.
    pub fn account_count(&self) -> usize {
        self.trie.account_count()
    }
}

fn empty_header() -> Header {
    Header {
        parent_hash: B256::ZERO,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: Address::ZERO,
        state_root: EMPTY_ROOT_HASH,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        logs_bloom: Bloom::ZERO,
        difficulty: Default::default(),
        number: 0,
        gas_limit: 0,
        gas_used: 0,
        timestamp: 0,
        extra_data: Bytes::new(),
        mix_hash: B256::ZERO,
        nonce: B64::ZERO,
        base_fee_per_gas: None,
        withdrawals_root: Some(EMPTY_ROOT_HASH),
        blob_gas_used: Some(0),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        requests_hash: Some(EMPTY_REQUESTS_HASH),
        ..Default::default()
    }
}
