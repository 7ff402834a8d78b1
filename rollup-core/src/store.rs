//! The chain store: blocks, receipts, the log index, accounts, storage, code
//! and per-block change sets, all in one sled tree under key prefixes.
//!
//! One tree (rather than one per kind) because sled applies a `Batch` on a
//! single tree atomically: a block and every index and state write it implies
//! land together, or not at all, and `flush` makes them durable before the
//! block is announced.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use alloy::consensus::{Header, ReceiptEnvelope, TxEnvelope};
use alloy::primitives::map::{AddressHashMap, B256HashMap, HashMap as FastMap};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};

use crate::error::StoreError;

const P_BLOCK: u8 = b'b';
const P_HASH: u8 = b'n';
const P_TX: u8 = b't';
const P_RECEIPTS: u8 = b'r';
const P_LOG_ADDR: u8 = b'L';
const P_LOG_TOPIC: u8 = b'T';
const P_ACCOUNT: u8 = b'A';
const P_STORAGE: u8 = b'S';
const P_CODE: u8 = b'C';
const P_CHANGES: u8 = b'c';
const P_HIST_ACCOUNT: u8 = b'a';
const P_HIST_STORAGE: u8 = b's';
const KEY_HEAD: &[u8] = b"mhead";

/// An account as the node keeps it: no storage, code by hash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountData {
    /// Transaction count.
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
    /// Keccak of the code (the empty-code hash for plain accounts).
    pub code_hash: B256,
}

impl AccountData {
    fn encode(&self) -> [u8; 72] {
        let mut out = [0u8; 72];
        out[..8].copy_from_slice(&self.nonce.to_be_bytes());
        out[8..40].copy_from_slice(&self.balance.to_be_bytes::<32>());
        out[40..].copy_from_slice(self.code_hash.as_slice());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() != 72 {
            return Err(StoreError::Corrupt(format!("account record of {} bytes", bytes.len())));
        }
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&bytes[..8]);
        Ok(Self {
            nonce: u64::from_be_bytes(nonce),
            balance: U256::from_be_slice(&bytes[8..40]),
            code_hash: B256::from_slice(&bytes[40..]),
        })
    }
}

/// A block as stored: header, transactions in order and their recovered senders.
#[derive(Clone, Debug, RlpEncodable, RlpDecodable)]
pub struct StoredBlock {
    /// The sealed header's fields.
    pub header: Header,
    /// Transactions in block order.
    pub txs: Vec<TxEnvelope>,
    /// Sender of each transaction, recovered once at admission.
    pub senders: Vec<Address>,
}

/// State writes produced by executing one block (post-state values).
#[derive(Clone, Debug, Default)]
pub struct StateChanges {
    /// New account records; `None` deletes the account.
    pub accounts: AddressHashMap<Option<AccountData>>,
    /// Storage writes per account; the flag says the storage was wiped first.
    pub storage: AddressHashMap<(bool, FastMap<U256, U256>)>,
    /// New code by hash.
    pub codes: B256HashMap<Bytes>,
}

/// Everything one block commit writes.
#[derive(Debug)]
pub struct BlockCommit<'a> {
    /// The block's hash (of `block.header`).
    pub hash: B256,
    /// The block.
    pub block: &'a StoredBlock,
    /// One receipt per transaction.
    pub receipts: &'a [ReceiptEnvelope],
    /// State changes of the block.
    pub changes: &'a StateChanges,
}

/// The sled-backed chain and state store.
#[derive(Clone, Debug)]
pub struct ChainStore {
    db: sled::Db,
    tree: sled::Tree,
}

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    k.push(prefix);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

fn u64_at(bytes: &[u8], what: &str) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: short record")))?;
    Ok(u64::from_be_bytes(arr))
}

impl ChainStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir).cache_capacity(256 << 20).open()?;
        let tree = db.open_tree("chain")?;
        Ok(Self { db, tree })
    }

    /// A metadata record.
    pub fn meta(&self, name: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(name)?.map(|v| v.to_vec()))
    }

    /// Writes a metadata record durably.
    pub fn put_meta(&self, name: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(name, value)?;
        self.db.flush()?;
        Ok(())
    }

    /// Number of the head block, or `None` for an empty store.
    pub fn head(&self) -> Result<Option<u64>, StoreError> {
        self.tree.get(KEY_HEAD)?.map(|v| u64_at(&v, "head")).transpose()
    }

    /// Block by number, with its hash.
    pub fn block(&self, number: u64) -> Result<Option<(B256, StoredBlock)>, StoreError> {
        let Some((hash, raw)) = self.block_record(number)? else { return Ok(None) };
        let block = StoredBlock::decode(&mut &raw[32..])
            .map_err(|e| StoreError::Corrupt(format!("block {number}: {e}")))?;
        Ok(Some((hash, block)))
    }

    /// Block `number`'s stored record (its hash, then the RLP block), with
    /// the hash read.
    fn block_record(&self, number: u64) -> Result<Option<(B256, sled::IVec)>, StoreError> {
        let Some(raw) = self.tree.get(key(P_BLOCK, &[&number.to_be_bytes()]))? else {
            return Ok(None);
        };
        if raw.len() < 32 {
            return Err(StoreError::Corrupt(format!("block {number}: short record")));
        }
        Ok(Some((B256::from_slice(&raw[..32]), raw)))
    }

    /// Block `number`'s hash and header, without decoding its
    /// transactions: what `eth_call` at a block and the next block's
    /// parameters need, where decoding the whole block (a few hundred
    /// signed transactions) cost more than the call.
    pub fn header(&self, number: u64) -> Result<Option<(B256, Header)>, StoreError> {
        let Some((hash, raw)) = self.block_record(number)? else { return Ok(None) };
        let corrupt = |e: alloy_rlp::Error| StoreError::Corrupt(format!("block {number}: {e}"));
        // The block is an RLP list whose first item is the header.
        let mut rest = &raw[32..];
        let list = alloy_rlp::Header::decode(&mut rest).map_err(corrupt)?;
        if !list.list {
            return Err(corrupt(alloy_rlp::Error::UnexpectedString));
        }
        let header = Header::decode(&mut rest).map_err(corrupt)?;
        Ok(Some((hash, header)))
    }

    /// Hash of block `number`.
    pub fn block_hash(&self, number: u64) -> Result<Option<B256>, StoreError> {
        let raw = self.tree.get(key(P_BLOCK, &[&number.to_be_bytes()]))?;
        Ok(raw.filter(|r| r.len() >= 32).map(|r| B256::from_slice(&r[..32])))
    }

    /// Number of the block with `hash`.
    pub fn block_number(&self, hash: B256) -> Result<Option<u64>, StoreError> {
        self.tree
            .get(key(P_HASH, &[hash.as_slice()]))?
            .map(|v| u64_at(&v, "hash index"))
            .transpose()
    }

    /// Block number and index of a mined transaction.
    pub fn tx_location(&self, hash: B256) -> Result<Option<(u64, usize)>, StoreError> {
        let Some(v) = self.tree.get(key(P_TX, &[hash.as_slice()]))? else { return Ok(None) };
        let number = u64_at(&v, "tx index")?;
        let index = u64_at(&v[8..], "tx index")?;
        Ok(Some((number, index as usize)))
    }

    /// Receipts of block `number`.
    pub fn receipts(&self, number: u64) -> Result<Vec<ReceiptEnvelope>, StoreError> {
        let Some(raw) = self.tree.get(key(P_RECEIPTS, &[&number.to_be_bytes()]))? else {
            return Ok(Vec::new());
        };
        Vec::<ReceiptEnvelope>::decode(&mut raw.as_ref())
            .map_err(|e| StoreError::Corrupt(format!("receipts of block {number}: {e}")))
    }

    /// Current account record.
    pub fn account(&self, address: Address) -> Result<Option<AccountData>, StoreError> {
        self.tree
            .get(key(P_ACCOUNT, &[address.as_slice()]))?
            .map(|v| AccountData::decode(&v))
            .transpose()
    }

    /// Current storage value.
    pub fn storage(&self, address: Address, slot: U256) -> Result<U256, StoreError> {
        let k = key(P_STORAGE, &[address.as_slice(), &slot.to_be_bytes::<32>()]);
        Ok(self.tree.get(k)?.map(|v| U256::from_be_slice(&v)).unwrap_or_default())
    }

    /// Code by hash.
    pub fn code(&self, hash: B256) -> Result<Option<Bytes>, StoreError> {
        Ok(self.tree.get(key(P_CODE, &[hash.as_slice()]))?.map(|v| Bytes::copy_from_slice(&v)))
    }

    /// Account as it was at the end of block `number`.
    pub fn account_at(
        &self,
        address: Address,
        number: u64,
    ) -> Result<Option<AccountData>, StoreError> {
        let from = key(P_HIST_ACCOUNT, &[address.as_slice(), &(number + 1).to_be_bytes()]);
        let to = key(P_HIST_ACCOUNT, &[address.as_slice(), &u64::MAX.to_be_bytes()]);
        match self.tree.range(from..=to).next() {
            Some(entry) => {
                let (_, v) = entry?;
                if v.is_empty() { Ok(None) } else { AccountData::decode(&v).map(Some) }
            }
            None => self.account(address),
        }
    }

    /// Storage value as it was at the end of block `number`.
    pub fn storage_at(
        &self,
        address: Address,
        slot: U256,
        number: u64,
    ) -> Result<U256, StoreError> {
        let s = slot.to_be_bytes::<32>();
        let from = key(P_HIST_STORAGE, &[address.as_slice(), &s, &(number + 1).to_be_bytes()]);
        let to = key(P_HIST_STORAGE, &[address.as_slice(), &s, &u64::MAX.to_be_bytes()]);
        match self.tree.range(from..=to).next() {
            Some(entry) => Ok(U256::from_be_slice(&entry?.1)),
            None => self.storage(address, slot),
        }
    }

    /// Every account, for rebuilding the state trie cache.
    pub fn all_accounts(
        &self,
    ) -> impl Iterator<Item = Result<(Address, AccountData), StoreError>> + '_ {
        self.tree.scan_prefix([P_ACCOUNT]).map(|e| {
            let (k, v) = e?;
            if k.len() != 21 {
                return Err(StoreError::Corrupt("account key length".into()));
            }
            Ok((Address::from_slice(&k[1..]), AccountData::decode(&v)?))
        })
    }

    /// Every non-zero storage slot, as (account, slot, value).
    pub fn all_storage(
        &self,
    ) -> impl Iterator<Item = Result<(Address, U256, U256), StoreError>> + '_ {
        self.tree.scan_prefix([P_STORAGE]).map(|e| {
            let (k, v) = e?;
            if k.len() != 53 {
                return Err(StoreError::Corrupt("storage key length".into()));
            }
            Ok((
                Address::from_slice(&k[1..21]),
                U256::from_be_slice(&k[21..]),
                U256::from_be_slice(&v),
            ))
        })
    }

    /// Blocks in `from..=to` with a log from one of `addresses` (all blocks if empty)
    /// and, for each topic position with a non-empty set, a log carrying one of its topics.
    pub fn candidate_log_blocks(
        &self,
        addresses: &[Address],
        topics: &[Vec<B256>],
        from: u64,
        to: u64,
    ) -> Result<Option<BTreeSet<u64>>, StoreError> {
        let mut sets: Vec<BTreeSet<u64>> = Vec::new();
        if !addresses.is_empty() {
            let mut set = BTreeSet::new();
            for a in addresses {
                self.index_range(P_LOG_ADDR, a.as_slice(), from, to, &mut set)?;
            }
            sets.push(set);
        }
        for position in topics.iter().filter(|t| !t.is_empty()) {
            let mut set = BTreeSet::new();
            for t in position {
                self.index_range(P_LOG_TOPIC, t.as_slice(), from, to, &mut set)?;
            }
            sets.push(set);
        }
        let mut iter = sets.into_iter();
        let Some(mut acc) = iter.next() else { return Ok(None) };
        for s in iter {
            acc = acc.intersection(&s).copied().collect();
        }
        Ok(Some(acc))
    }

    fn index_range(
        &self,
        prefix: u8,
        id: &[u8],
        from: u64,
        to: u64,
        out: &mut BTreeSet<u64>,
    ) -> Result<(), StoreError> {
        let lo = key(prefix, &[id, &from.to_be_bytes()]);
        let hi = key(prefix, &[id, &to.to_be_bytes()]);
        for e in self.tree.range(lo..=hi) {
            let (k, _) = e?;
            out.insert(u64_at(&k[k.len() - 8..], "log index")?);
        }
        Ok(())
    }

    /// Writes a block, its receipts, indexes and state changes as one atomic,
    /// flushed batch, and moves the head to it.
    pub fn commit_block(&self, commit: &BlockCommit<'_>) -> Result<(), StoreError> {
        let number = commit.block.header.number;
        let nb = number.to_be_bytes();
        let mut batch = sled::Batch::default();
        let mut raw = commit.hash.to_vec();
        commit.block.encode(&mut raw);
        batch.insert(key(P_BLOCK, &[&nb]), raw);
        batch.insert(key(P_HASH, &[commit.hash.as_slice()]), &nb);
        for (i, tx) in commit.block.txs.iter().enumerate() {
            let mut loc = nb.to_vec();
            loc.extend_from_slice(&(i as u64).to_be_bytes());
            batch.insert(key(P_TX, &[tx.tx_hash().as_slice()]), loc);
        }
        let mut receipts = Vec::new();
        commit.receipts.to_vec().encode(&mut receipts);
        batch.insert(key(P_RECEIPTS, &[&nb]), receipts);
        for (k, _) in log_index_keys(commit.receipts, number) {
            batch.insert(k, &[]);
        }
        let mut changed_accounts = Vec::new();
        let mut changed_slots = Vec::new();
        for (address, new) in &commit.changes.accounts {
            let old = self.account(*address)?;
            let hist = old.map(|a| a.encode().to_vec()).unwrap_or_default();
            batch.insert(key(P_HIST_ACCOUNT, &[address.as_slice(), &nb]), hist);
            changed_accounts.push(*address);
            let k = key(P_ACCOUNT, &[address.as_slice()]);
            match new {
                Some(acc) => batch.insert(k, acc.encode().to_vec()),
                None => batch.remove(k),
            }
        }
        for (address, (wiped, slots)) in &commit.changes.storage {
            let mut writes: HashMap<U256, U256> = HashMap::new();
            if *wiped {
                for e in self.tree.scan_prefix(key(P_STORAGE, &[address.as_slice()])) {
                    let (k, _) = e?;
                    writes.insert(U256::from_be_slice(&k[21..]), U256::ZERO);
                }
            }
            writes.extend(slots.iter().map(|(k, v)| (*k, *v)));
            for (slot, value) in writes {
                let s = slot.to_be_bytes::<32>();
                let old = self.storage(*address, slot)?;
                if old == value {
                    continue;
                }
                batch.insert(
                    key(P_HIST_STORAGE, &[address.as_slice(), &s, &nb]),
                    &old.to_be_bytes::<32>(),
                );
                changed_slots.push((*address, slot));
                let k = key(P_STORAGE, &[address.as_slice(), &s]);
                if value.is_zero() {
                    batch.remove(k);
                } else {
                    batch.insert(k, &value.to_be_bytes::<32>());
                }
            }
        }
        for (hash, code) in &commit.changes.codes {
            batch.insert(key(P_CODE, &[hash.as_slice()]), code.as_ref());
        }
        batch.insert(key(P_CHANGES, &[&nb]), encode_changeset(&changed_accounts, &changed_slots));
        batch.insert(KEY_HEAD, &nb);
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes the head block and restores the state before it, atomically.
    /// Returns the removed block and its receipts.
    pub fn rollback_head(&self) -> Result<(StoredBlock, Vec<ReceiptEnvelope>), StoreError> {
        let number =
            self.head()?.ok_or_else(|| StoreError::Corrupt("no head to roll back".into()))?;
        if number == 0 {
            return Err(StoreError::Corrupt("cannot roll back the genesis block".into()));
        }
        let nb = number.to_be_bytes();
        let (hash, block) = self
            .block(number)?
            .ok_or_else(|| StoreError::Corrupt(format!("head block {number} missing")))?;
        let receipts = self.receipts(number)?;
        let raw_changes = self
            .tree
            .get(key(P_CHANGES, &[&nb]))?
            .ok_or_else(|| StoreError::Corrupt(format!("change set of block {number} missing")))?;
        let (accounts, slots) = decode_changeset(&raw_changes)?;
        let mut batch = sled::Batch::default();
        for address in accounts {
            let hk = key(P_HIST_ACCOUNT, &[address.as_slice(), &nb]);
            let old = self.tree.get(&hk)?.unwrap_or_default();
            let k = key(P_ACCOUNT, &[address.as_slice()]);
            if old.is_empty() {
                batch.remove(k)
            } else {
                batch.insert(k, old)
            }
            batch.remove(hk);
        }
        for (address, slot) in slots {
            let s = slot.to_be_bytes::<32>();
            let hk = key(P_HIST_STORAGE, &[address.as_slice(), &s, &nb]);
            let old = self.tree.get(&hk)?.map(|v| U256::from_be_slice(&v)).unwrap_or_default();
            let k = key(P_STORAGE, &[address.as_slice(), &s]);
            if old.is_zero() {
                batch.remove(k)
            } else {
                batch.insert(k, &old.to_be_bytes::<32>())
            }
            batch.remove(hk);
        }
        for (k, _) in log_index_keys(&receipts, number) {
            batch.remove(k);
        }
        for tx in &block.txs {
            batch.remove(key(P_TX, &[tx.tx_hash().as_slice()]));
        }
        batch.remove(key(P_HASH, &[hash.as_slice()]));
        batch.remove(key(P_BLOCK, &[&nb]));
        batch.remove(key(P_RECEIPTS, &[&nb]));
        batch.remove(key(P_CHANGES, &[&nb]));
        batch.insert(KEY_HEAD, &(number - 1).to_be_bytes());
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok((block, receipts))
    }
}

fn log_index_keys(receipts: &[ReceiptEnvelope], number: u64) -> Vec<(Vec<u8>, ())> {
    let nb = number.to_be_bytes();
    let mut keys = Vec::new();
    for r in receipts {
        for log in r.logs() {
            keys.push((key(P_LOG_ADDR, &[log.address.as_slice(), &nb]), ()));
            for t in log.topics() {
                keys.push((key(P_LOG_TOPIC, &[t.as_slice(), &nb]), ()));
            }
        }
    }
    keys
}

fn encode_changeset(accounts: &[Address], slots: &[(Address, U256)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + accounts.len() * 20 + slots.len() * 52);
    out.extend_from_slice(&(accounts.len() as u32).to_be_bytes());
    for a in accounts {
        out.extend_from_slice(a.as_slice());
    }
    out.extend_from_slice(&(slots.len() as u32).to_be_bytes());
    for (a, s) in slots {
        out.extend_from_slice(a.as_slice());
        out.extend_from_slice(&s.to_be_bytes::<32>());
    }
    out
}

type ChangeSet = (Vec<Address>, Vec<(Address, U256)>);

fn decode_changeset(raw: &[u8]) -> Result<ChangeSet, StoreError> {
    let bad = || StoreError::Corrupt("change set truncated".into());
    let count = |b: &[u8]| -> Result<usize, StoreError> {
        Ok(u32::from_be_bytes(b.get(..4).and_then(|x| x.try_into().ok()).ok_or_else(bad)?) as usize)
    };
    let n = count(raw)?;
    let mut pos = 4;
    let mut accounts = Vec::with_capacity(n);
    for _ in 0..n {
        accounts.push(Address::from_slice(raw.get(pos..pos + 20).ok_or_else(bad)?));
        pos += 20;
    }
    let m = count(raw.get(pos..).ok_or_else(bad)?)?;
    pos += 4;
    let mut slots = Vec::with_capacity(m);
    for _ in 0..m {
        let rec = raw.get(pos..pos + 52).ok_or_else(bad)?;
        slots.push((Address::from_slice(&rec[..20]), U256::from_be_slice(&rec[20..])));
        pos += 52;
    }
    Ok((accounts, slots))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{KECCAK256_EMPTY, address};

    fn commit(store: &ChainStore, number: u64, changes: &StateChanges) {
        let b = StoredBlock {
            header: Header { number, ..Default::default() },
            txs: vec![],
            senders: vec![],
        };
        let hash = b.header.hash_slow();
        store
            .commit_block(&BlockCommit { hash, block: &b, receipts: &[], changes })
            .expect("commits");
    }

    #[test]
    fn a_header_reads_alone_as_the_whole_block_has_it() {
        use alloy::consensus::{Signed, TxLegacy};
        use alloy::primitives::Signature;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ChainStore::open(dir.path()).expect("opens");
        let tx = TxLegacy { nonce: 7, gas_limit: 21_000, ..Default::default() };
        let signed = Signed::new_unhashed(tx, Signature::test_signature());
        let b = StoredBlock {
            header: Header { number: 0, gas_used: 21_000, timestamp: 42, ..Default::default() },
            txs: vec![TxEnvelope::Legacy(signed); 3],
            senders: vec![Address::repeat_byte(1); 3],
        };
        let hash = b.header.hash_slow();
        let changes = StateChanges::default();
        store
            .commit_block(&BlockCommit { hash, block: &b, receipts: &[], changes: &changes })
            .expect("commits");
        let (whole_hash, whole) = store.block(0).expect("reads").expect("stored");
        assert_eq!(whole.txs.len(), 3);
        let (header_hash, header) = store.header(0).expect("reads").expect("stored");
        assert_eq!((header_hash, &header), (whole_hash, &whole.header));
        assert_eq!(header.timestamp, 42);
        assert!(store.header(1).expect("reads").is_none());
        // A record whose body is not an RLP list is named as corrupt.
        store.tree.insert(key(P_BLOCK, &[&5u64.to_be_bytes()]), vec![0x80; 40]).expect("writes");
        let error = store.header(5).expect_err("not a list").to_string();
        assert!(error.contains("block 5"), "{error}");
        store.tree.insert(key(P_BLOCK, &[&6u64.to_be_bytes()]), vec![0; 10]).expect("writes");
        assert!(store.header(6).expect_err("short").to_string().contains("short record"));
    }

    #[test]
    fn history_and_rollback_restore_every_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ChainStore::open(dir.path()).expect("opens");
        let a = address!("0x00000000000000000000000000000000000000aa");
        let acc = |n: u64| AccountData {
            nonce: n,
            balance: U256::from(n * 10),
            code_hash: KECCAK256_EMPTY,
        };
        let mut c0 = StateChanges::default();
        c0.accounts.insert(a, Some(acc(1)));
        c0.storage.insert(a, (false, [(U256::from(1), U256::from(5))].into_iter().collect()));
        commit(&store, 0, &c0);
        let mut c1 = StateChanges::default();
        c1.accounts.insert(a, Some(acc(2)));
        c1.storage.insert(a, (true, [(U256::from(2), U256::from(6))].into_iter().collect()));
        commit(&store, 1, &c1);

        assert_eq!(store.head().expect("reads"), Some(1));
        assert_eq!(store.account(a).expect("reads"), Some(acc(2)));
        assert_eq!(store.storage(a, U256::from(1)).expect("reads"), U256::ZERO, "wiped");
        assert_eq!(store.storage(a, U256::from(2)).expect("reads"), U256::from(6));
        assert_eq!(store.account_at(a, 0).expect("reads"), Some(acc(1)));
        assert_eq!(store.storage_at(a, U256::from(1), 0).expect("reads"), U256::from(5));
        assert_eq!(store.storage_at(a, U256::from(2), 0).expect("reads"), U256::ZERO);

        store.rollback_head().expect("rolls back");
        assert_eq!(store.head().expect("reads"), Some(0));
        assert_eq!(store.account(a).expect("reads"), Some(acc(1)));
        assert_eq!(store.storage(a, U256::from(1)).expect("reads"), U256::from(5));
        assert_eq!(store.storage(a, U256::from(2)).expect("reads"), U256::ZERO);
        assert!(store.block(1).expect("reads").is_none());
        assert!(store.rollback_head().is_err(), "genesis stays");
    }
}
