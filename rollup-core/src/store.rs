//! The chain store: headers, the log and transaction indexes, accounts,
//! storage, code and state history in one sled tree under key prefixes;
//! each block's transactions, receipts and change set in the append-only
//! [body file](crate::bodies), pointed at from the block's sled record.
//!
//! One tree (rather than one per kind) because sled applies a `Batch` on a
//! single tree atomically: a block's pointer and every index and state write
//! it implies land together, or not at all, and `flush` makes them durable
//! before the block is announced. The body file is flushed before that
//! batch, so a committed pointer never points at bytes that were not
//! written.
//!
//! Stores written before the body file keep their blocks, receipts and
//! change sets as sled records (`b`, `r` and `c` keys): those are still
//! read and rolled back; new blocks go to the file.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use alloy::consensus::{Header, ReceiptEnvelope, TxEnvelope};
use alloy::primitives::map::{AddressHashMap, B256HashMap, HashMap as FastMap};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};

use crate::bodies::{BodyFile, Span};
use crate::error::StoreError;

/// A block's pointer record: hash, where its parts lie, then its header.
const P_BODY: u8 = b'B';
/// A block as stored before the body file: hash, then the RLP block.
const P_BLOCK: u8 = b'b';
const P_HASH: u8 = b'n';
const P_TX: u8 = b't';
/// A block's receipts as stored before the body file.
const P_RECEIPTS: u8 = b'r';
const P_LOG_ADDR: u8 = b'L';
const P_LOG_TOPIC: u8 = b'T';
const P_ACCOUNT: u8 = b'A';
const P_STORAGE: u8 = b'S';
const P_CODE: u8 = b'C';
/// A block's change set as stored before the body file.
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

/// What a block's changes overwrite, as the state stood before the block:
/// the record of each changed account, and the value of each written slot
/// (and, for a wiped storage, of every slot it held). Built from the
/// in-memory state by [`StateTrie::prior`](crate::trie::StateTrie::prior),
/// so a commit reads nothing back from disk to write the history; the
/// chain also keeps the newest blocks' to serve reads at recent blocks
/// from memory.
#[derive(Clone, Debug, Default)]
pub struct PriorState {
    /// Each changed account's record (`None`: it did not exist).
    pub accounts: AddressHashMap<Option<AccountData>>,
    /// Per account with storage writes, the value each written slot had
    /// (zero included) and, for a wiped storage, each slot it held.
    pub storage: AddressHashMap<FastMap<U256, U256>>,
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
    /// The state the changes overwrite.
    pub prior: &'a PriorState,
}

/// The sled-backed chain and state store.
#[derive(Clone, Debug)]
pub struct ChainStore {
    db: sled::Db,
    tree: sled::Tree,
    bodies: Arc<BodyFile>,
}

/// A block's pointer record, read: its hash, where its block, receipts
/// and change set lie in the body file, and its RLP header.
struct Pointer {
    hash: B256,
    block: Span,
    receipts: Span,
    changes: Span,
    raw: sled::IVec,
}

/// Bytes of a pointer record before the header: hash, first offset, three
/// lengths, three CRCs.
const POINTER_FIXED: usize = 32 + 8 + 3 * 4 + 3 * 4;

impl Pointer {
    fn encode(hash: B256, [block, receipts, changes]: [Span; 3], header: &Header) -> Vec<u8> {
        let mut out = Vec::with_capacity(POINTER_FIXED + header.length());
        out.extend_from_slice(hash.as_slice());
        out.extend_from_slice(&block.offset.to_be_bytes());
        for span in [block, receipts, changes] {
            out.extend_from_slice(&span.len.to_be_bytes());
        }
        for span in [block, receipts, changes] {
            out.extend_from_slice(&span.crc.to_be_bytes());
        }
        header.encode(&mut out);
        out
    }

    fn decode(number: u64, raw: sled::IVec) -> Result<Self, StoreError> {
        if raw.len() < POINTER_FIXED {
            return Err(StoreError::Corrupt(format!("block {number}: short pointer record")));
        }
        let word = |at: usize| u32::from_be_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
        let mut offset = u64_at(&raw[32..], "pointer")?;
        let mut spans = [Span::default(); 3];
        for (i, span) in spans.iter_mut().enumerate() {
            *span = Span { offset, len: word(40 + 4 * i), crc: word(52 + 4 * i) };
            offset = span.end();
        }
        let [block, receipts, changes] = spans;
        Ok(Self { hash: B256::from_slice(&raw[..32]), block, receipts, changes, raw })
    }

    fn header(&self, number: u64) -> Result<Header, StoreError> {
        Header::decode(&mut &self.raw[POINTER_FIXED..])
            .map_err(|e| StoreError::Corrupt(format!("header of block {number}: {e}")))
    }
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
    /// Opens (or creates) the store in `dir`: the sled database and, in
    /// it, the body file, cut back to what the head block's pointer covers.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir).cache_capacity(256 << 20).open()?;
        let tree = db.open_tree("chain")?;
        let committed = match head_in(&tree)? {
            Some(number) => pointer_in(&tree, number)?.map_or(0, |p| p.changes.end()),
            None => 0,
        };
        let bodies = Arc::new(BodyFile::open(dir, committed)?);
        Ok(Self { db, tree, bodies })
    }

    fn pointer(&self, number: u64) -> Result<Option<Pointer>, StoreError> {
        pointer_in(&self.tree, number)
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
        head_in(&self.tree)
    }

    /// Block by number, with its hash.
    pub fn block(&self, number: u64) -> Result<Option<(B256, StoredBlock)>, StoreError> {
        self.block_at(number, self.pointer(number)?.as_ref())
    }

    /// Block by number with its hash and receipts, its pointer read once.
    pub fn record(
        &self,
        number: u64,
    ) -> Result<Option<(B256, StoredBlock, Vec<ReceiptEnvelope>)>, StoreError> {
        let pointer = self.pointer(number)?;
        let Some((hash, block)) = self.block_at(number, pointer.as_ref())? else {
            return Ok(None);
        };
        Ok(Some((hash, block, self.receipts_at(number, pointer.as_ref())?)))
    }

    /// Block `number` as `pointer` (read by the caller) places it, or as
    /// stored before the body file if it has none.
    fn block_at(
        &self,
        number: u64,
        pointer: Option<&Pointer>,
    ) -> Result<Option<(B256, StoredBlock)>, StoreError> {
        let (hash, raw) = match pointer {
            Some(p) => (p.hash, self.bodies.read(p.block, &format!("block {number}"))?),
            None => match self.block_record(number)? {
                Some((hash, raw)) => (hash, raw[32..].to_vec()),
                None => return Ok(None),
            },
        };
        let block = StoredBlock::decode(&mut raw.as_slice())
            .map_err(|e| StoreError::Corrupt(format!("block {number}: {e}")))?;
        Ok(Some((hash, block)))
    }

    /// Block `number`'s record as stored before the body file (its hash,
    /// then the RLP block), with the hash read.
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
        if let Some(p) = self.pointer(number)? {
            return Ok(Some((p.hash, p.header(number)?)));
        }
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
        let nb = number.to_be_bytes();
        let raw = match self.tree.get(key(P_BODY, &[&nb]))? {
            Some(raw) => Some(raw),
            None => self.tree.get(key(P_BLOCK, &[&nb]))?,
        };
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
        self.receipts_at(number, self.pointer(number)?.as_ref())
    }

    fn receipts_at(
        &self,
        number: u64,
        pointer: Option<&Pointer>,
    ) -> Result<Vec<ReceiptEnvelope>, StoreError> {
        let raw = match pointer {
            Some(p) => self.bodies.read(p.receipts, &format!("receipts of block {number}"))?,
            None => match self.tree.get(key(P_RECEIPTS, &[&number.to_be_bytes()]))? {
                Some(raw) => raw.to_vec(),
                None => return Ok(Vec::new()),
            },
        };
        Vec::<ReceiptEnvelope>::decode(&mut raw.as_slice())
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

    /// Blocks in `from..=to` with a log from one of `addresses` and, if
    /// `topics`' first position is a non-empty set, a log whose first topic
    /// (its event signature) is one of them; `None` if neither narrows the
    /// range. Later topic positions are not indexed (each indexed event
    /// argument, message ids among them, would be a sled insert at a
    /// random key for every log): callers check them against each
    /// candidate block's bloom, then its logs.
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
        // Stores written before kept every position under the same prefix:
        // their blocks come up for a topic-0 value seen elsewhere too,
        // which the caller's check of the logs sorts out.
        for position in topics.iter().take(1).filter(|t| !t.is_empty()) {
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

    /// Writes a block, its receipts, indexes and state changes: the block's
    /// parts to the body file, flushed, then everything else as one atomic,
    /// flushed sled batch that also moves the head to it.
    pub fn commit_block(&self, commit: &BlockCommit<'_>) -> Result<(), StoreError> {
        let number = commit.block.header.number;
        let nb = number.to_be_bytes();
        let mut batch = sled::Batch::default();
        batch.insert(key(P_HASH, &[commit.hash.as_slice()]), &nb);
        for (i, tx) in commit.block.txs.iter().enumerate() {
            let mut loc = nb.to_vec();
            loc.extend_from_slice(&(i as u64).to_be_bytes());
            batch.insert(key(P_TX, &[tx.tx_hash().as_slice()]), loc);
        }
        for (k, _) in log_index_keys(commit.receipts, number) {
            batch.insert(k, &[]);
        }
        let mut changed_accounts = Vec::new();
        let mut changed_slots = Vec::new();
        for (address, new) in &commit.changes.accounts {
            let old = commit.prior.accounts.get(address).copied().flatten();
            let hist = old.map(|a| a.encode().to_vec()).unwrap_or_default();
            batch.insert(key(P_HIST_ACCOUNT, &[address.as_slice(), &nb]), hist);
            changed_accounts.push(*address);
            let k = key(P_ACCOUNT, &[address.as_slice()]);
            match new {
                Some(acc) => batch.insert(k, acc.encode().to_vec()),
                None => batch.remove(k),
            }
        }
        let none = FastMap::default();
        for (address, (wiped, slots)) in &commit.changes.storage {
            let prior = commit.prior.storage.get(address).unwrap_or(&none);
            let mut writes: HashMap<U256, U256> = HashMap::new();
            if *wiped {
                writes.extend(prior.keys().map(|slot| (*slot, U256::ZERO)));
            }
            writes.extend(slots.iter().map(|(k, v)| (*k, *v)));
            for (slot, value) in writes {
                let s = slot.to_be_bytes::<32>();
                let old = prior.get(&slot).copied().unwrap_or_default();
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
        let mut block = Vec::new();
        commit.block.encode(&mut block);
        let mut receipts = Vec::new();
        alloy_rlp::encode_list::<_, ReceiptEnvelope>(commit.receipts, &mut receipts);
        let changes = encode_changeset(&changed_accounts, &changed_slots);
        let spans = self.bodies.append([&block, &receipts, &changes])?;
        batch
            .insert(key(P_BODY, &[&nb]), Pointer::encode(commit.hash, spans, &commit.block.header));
        batch.insert(KEY_HEAD, &nb);
        if let Err(e) = self.tree.apply_batch(batch) {
            // Nothing points at the parts: the next block goes where they
            // began. (After a failed flush the batch may still reach disk,
            // so its parts stay.)
            self.bodies.truncate(spans[0].offset)?;
            return Err(e.into());
        }
        self.db.flush()?;
        Ok(())
    }

    /// Removes the head block and restores the state before it, atomically.
    /// Returns the removed block's hash, the block and its receipts.
    pub fn rollback_head(&self) -> Result<(B256, StoredBlock, Vec<ReceiptEnvelope>), StoreError> {
        let number =
            self.head()?.ok_or_else(|| StoreError::Corrupt("no head to roll back".into()))?;
        if number == 0 {
            return Err(StoreError::Corrupt("cannot roll back the genesis block".into()));
        }
        let nb = number.to_be_bytes();
        let pointer = self.pointer(number)?;
        let (hash, block) = self
            .block_at(number, pointer.as_ref())?
            .ok_or_else(|| StoreError::Corrupt(format!("head block {number} missing")))?;
        let receipts = self.receipts_at(number, pointer.as_ref())?;
        let raw_changes = match &pointer {
            Some(p) => self.bodies.read(p.changes, &format!("change set of block {number}"))?,
            None => self
                .tree
                .get(key(P_CHANGES, &[&nb]))?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("change set of block {number} missing"))
                })?
                .to_vec(),
        };
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
        for prefix in [P_BODY, P_BLOCK, P_RECEIPTS, P_CHANGES] {
            batch.remove(key(prefix, &[&nb]));
        }
        batch.insert(KEY_HEAD, &(number - 1).to_be_bytes());
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        // Nothing points at the block's parts any more: cut them off.
        if let Some(p) = pointer {
            self.bodies.truncate(p.block.offset)?;
        }
        Ok((hash, block, receipts))
    }
}

fn head_in(tree: &sled::Tree) -> Result<Option<u64>, StoreError> {
    tree.get(KEY_HEAD)?.map(|v| u64_at(&v, "head")).transpose()
}

fn pointer_in(tree: &sled::Tree, number: u64) -> Result<Option<Pointer>, StoreError> {
    tree.get(key(P_BODY, &[&number.to_be_bytes()]))?
        .map(|raw| Pointer::decode(number, raw))
        .transpose()
}

fn log_index_keys(receipts: &[ReceiptEnvelope], number: u64) -> Vec<(Vec<u8>, ())> {
    let nb = number.to_be_bytes();
    let mut keys = Vec::new();
    for r in receipts {
        for log in r.logs() {
            keys.push((key(P_LOG_ADDR, &[log.address.as_slice(), &nb]), ()));
            if let Some(t) = log.topics().first() {
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
    use crate::bodies::BODY_FILE;
    use crate::trie::StateTrie;
    use alloy::consensus::{Receipt, Signed, TxLegacy};
    use alloy::primitives::{KECCAK256_EMPTY, Log, Signature, address};

    fn block(number: u64, txs: usize) -> StoredBlock {
        let tx = |nonce| {
            let tx = TxLegacy { nonce, gas_limit: 21_000, ..Default::default() };
            TxEnvelope::Legacy(Signed::new_unhashed(tx, Signature::test_signature()))
        };
        StoredBlock {
            header: Header { number, timestamp: 40 + number, ..Default::default() },
            txs: (0..txs as u64).map(|i| tx(number * 100 + i)).collect(),
            senders: vec![Address::repeat_byte(1); txs],
        }
    }

    fn receipts(number: u64, count: usize) -> Vec<ReceiptEnvelope> {
        let log =
            Log::new_unchecked(Address::repeat_byte(9), vec![B256::repeat_byte(7)], Bytes::new());
        let receipt = |i: usize| Receipt {
            status: true.into(),
            cumulative_gas_used: 21_000 * (i as u64 + 1) + number,
            logs: vec![log.clone()],
        };
        (0..count).map(|i| ReceiptEnvelope::Legacy(receipt(i).with_bloom())).collect()
    }

    /// Commits `b` as the chain does: the history from the state as loaded.
    fn commit_with(
        store: &ChainStore,
        b: &StoredBlock,
        r: &[ReceiptEnvelope],
        changes: &StateChanges,
    ) {
        let prior = StateTrie::load(store).expect("loads").prior(changes);
        let hash = b.header.hash_slow();
        store
            .commit_block(&BlockCommit { hash, block: b, receipts: r, changes, prior: &prior })
            .expect("commits");
    }

    fn commit(store: &ChainStore, number: u64, changes: &StateChanges) {
        commit_with(store, &block(number, 0), &[], changes);
    }

    fn body_file_len(dir: &Path) -> u64 {
        std::fs::metadata(dir.join(BODY_FILE)).expect("stat").len()
    }

    #[test]
    fn blocks_and_receipts_read_back_from_the_body_file_and_rollback_cuts_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ChainStore::open(dir.path()).expect("opens");
        commit_with(&store, &block(0, 2), &receipts(0, 2), &StateChanges::default());
        let after_genesis = body_file_len(dir.path());
        commit_with(&store, &block(1, 3), &receipts(1, 3), &StateChanges::default());
        assert!(body_file_len(dir.path()) > after_genesis);
        let (hash, b) = store.block(1).expect("reads").expect("stored");
        assert_eq!(hash, block(1, 3).header.hash_slow());
        assert_eq!(b.txs, block(1, 3).txs);
        assert_eq!(store.receipts(1).expect("reads"), receipts(1, 3));
        assert_eq!(store.block_hash(1).expect("reads"), Some(hash));
        let (record_hash, record_block, record_receipts) =
            store.record(1).expect("reads").expect("stored");
        assert_eq!((record_hash, &record_block.txs), (hash, &b.txs));
        assert_eq!(record_receipts, receipts(1, 3));
        let tx1 = *block(1, 3).txs[2].tx_hash();
        assert_eq!(store.tx_location(tx1).expect("reads"), Some((1, 2)));
        drop(store);

        // Reopened: the same blocks, and the next lands after them.
        let store = ChainStore::open(dir.path()).expect("reopens");
        assert_eq!(store.receipts(0).expect("reads"), receipts(0, 2));
        let (removed, _, removed_receipts) = store.rollback_head().expect("rolls back");
        assert_eq!((removed, removed_receipts), (hash, receipts(1, 3)));
        assert_eq!(body_file_len(dir.path()), after_genesis, "block 1's parts are cut off");
        assert!(store.block(1).expect("reads").is_none());
        assert_eq!(store.tx_location(tx1).expect("reads"), None);
        commit_with(&store, &block(1, 1), &receipts(1, 1), &StateChanges::default());
        assert_eq!(store.block(1).expect("reads").expect("stored").1.txs, block(1, 1).txs);
        assert_eq!(store.block(0).expect("reads").expect("stored").1.txs, block(0, 2).txs);
    }

    #[test]
    fn bytes_appended_before_a_crash_are_cut_off_and_lost_ones_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let committed = {
            let store = ChainStore::open(dir.path()).expect("opens");
            commit_with(&store, &block(0, 2), &receipts(0, 2), &StateChanges::default());
            let committed = body_file_len(dir.path());
            // The parts of a block whose sled batch never committed.
            store.bodies.append([b"block", b"receipts", b"changes"]).expect("appends");
            assert_eq!(body_file_len(dir.path()), committed + 20);
            committed
        };
        let store = ChainStore::open(dir.path()).expect("reopens");
        assert_eq!(body_file_len(dir.path()), committed);
        assert_eq!(store.receipts(0).expect("reads"), receipts(0, 2));
        commit_with(&store, &block(1, 1), &receipts(1, 1), &StateChanges::default());
        assert_eq!(store.block(1).expect("reads").expect("stored").1.txs, block(1, 1).txs);
        drop(store);

        // A file shorter than the blocks pointed at is refused, by name.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(BODY_FILE))
            .expect("opens the file");
        file.set_len(committed).expect("cuts");
        let error = ChainStore::open(dir.path()).expect_err("lost bytes").to_string();
        assert!(error.contains(BODY_FILE) && error.contains("reach byte"), "{error}");
    }

    #[test]
    fn a_store_from_before_the_body_file_reads_and_rolls_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = address!("0x00000000000000000000000000000000000000aa");
        let slot = U256::from(3);
        {
            // Block 0 and 1 as the earlier layout wrote them.
            let store = ChainStore::open(dir.path()).expect("opens");
            for number in 0..2u64 {
                let (b, r) = (block(number, 2), receipts(number, 2));
                let nb = number.to_be_bytes();
                let mut raw = b.header.hash_slow().to_vec();
                b.encode(&mut raw);
                store.tree.insert(key(P_BLOCK, &[&nb]), raw).expect("writes");
                let mut rr = Vec::new();
                r.encode(&mut rr);
                store.tree.insert(key(P_RECEIPTS, &[&nb]), rr).expect("writes");
                for (k, _) in log_index_keys(&r, number) {
                    store.tree.insert(k, &[]).expect("writes");
                }
                let slots = if number == 1 { vec![(a, slot)] } else { vec![] };
                let changes = encode_changeset(&[], &slots);
                store.tree.insert(key(P_CHANGES, &[&nb]), changes).expect("writes");
                store.tree.insert(KEY_HEAD, &nb).expect("writes");
            }
            let s = slot.to_be_bytes::<32>();
            store
                .tree
                .insert(key(P_STORAGE, &[a.as_slice(), &s]), &U256::from(8).to_be_bytes::<32>())
                .expect("writes");
            store
                .tree
                .insert(key(P_HIST_STORAGE, &[a.as_slice(), &s, &1u64.to_be_bytes()]), &[0u8; 32])
                .expect("writes");
        }
        let store = ChainStore::open(dir.path()).expect("reopens");
        assert_eq!(body_file_len(dir.path()), 0);
        assert_eq!(store.block(1).expect("reads").expect("stored").1.txs, block(1, 2).txs);
        assert_eq!(store.header(1).expect("reads").expect("stored").1.timestamp, 41);
        assert_eq!(store.receipts(1).expect("reads"), receipts(1, 2));
        // A new block goes to the body file, on top of the earlier ones.
        let mut c2 = StateChanges::default();
        c2.storage.insert(a, (false, [(slot, U256::from(9))].into_iter().collect()));
        commit_with(&store, &block(2, 1), &receipts(2, 1), &c2);
        assert!(body_file_len(dir.path()) > 0);
        assert_eq!(store.storage_at(a, slot, 1).expect("reads"), U256::from(8));
        assert_eq!(store.storage(a, slot).expect("reads"), U256::from(9));
        // Both layouts roll back.
        store.rollback_head().expect("rolls back block 2");
        assert_eq!(body_file_len(dir.path()), 0);
        assert_eq!(store.storage(a, slot).expect("reads"), U256::from(8));
        store.rollback_head().expect("rolls back block 1");
        assert_eq!(store.storage(a, slot).expect("reads"), U256::ZERO);
        assert!(store.block(1).expect("reads").is_none());
        assert!(store.tree.get(key(P_RECEIPTS, &[&1u64.to_be_bytes()])).expect("reads").is_none());
        assert_eq!(store.head().expect("reads"), Some(0));
    }

    #[test]
    fn a_header_reads_alone_as_the_whole_block_has_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ChainStore::open(dir.path()).expect("opens");
        commit_with(&store, &block(0, 3), &[], &StateChanges::default());
        let (whole_hash, whole) = store.block(0).expect("reads").expect("stored");
        assert_eq!(whole.txs.len(), 3);
        let (header_hash, header) = store.header(0).expect("reads").expect("stored");
        assert_eq!((header_hash, &header), (whole_hash, &whole.header));
        assert_eq!(header.timestamp, 40);
        assert!(store.header(1).expect("reads").is_none());
        // A pointer record cut short is named as corrupt.
        store.tree.insert(key(P_BODY, &[&4u64.to_be_bytes()]), vec![0; 40]).expect("writes");
        assert!(store.header(4).expect_err("short").to_string().contains("short pointer record"));
        // A record of the earlier layout whose body is not an RLP list is named as corrupt.
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
