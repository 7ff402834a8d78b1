//! The agents' typed sled store: the one place that owns the on-disk schema.
//!
//! Every key starts with the origin domain (`be32`), so one store serves every
//! chain an agent indexes. Trees:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `dispatch` | domain ‖ be32 nonce | be64 block ‖ message bytes |
//! | `insertion` | domain ‖ be32 first leaf index | a run: message id ‖ be64 block of that leaf and each one after it |
//! | `leaf_by_id` | domain ‖ message id | be32 leaf index (optional) |
//! | `gas_payment` | domain ‖ message id ‖ be32 destination | be256 payment ‖ be256 gas amount (sums) |
//! | `gas_payment_seen` | domain ‖ tx hash ‖ be64 log index | empty (each log counted once) |
//! | `cursor` | utf8 name | be64 next block to index |
//! | `contiguous` | utf8 name | be64 count of entries 0..n all present |
//!
//! `leaf_by_id` is kept unless [`StoreOptions::leaf_ids`] is off: the
//! validator never looks a leaf up by message id.
//!
//! Insertions are stored as runs: a record keyed by its first leaf holds
//! that leaf's 40 bytes and those of each consecutive leaf after it, so an
//! indexer step is a sled insert per [`TX_EVENTS`] leaves, not one per leaf
//! (every insert copies a sled leaf node, and pruning removes what was
//! inserted: per leaf, those were a tenth of a busy validator's CPU). Runs
//! never overlap: a run written over stored leaves (an indexer re-reading
//! blocks) is merged with the runs it overlaps, its own values winning. A
//! 40-byte record, as stores before runs held every leaf, is a run of one.
//!
//! Indexed events are written in transactions of at most [`TX_EVENTS`]
//! events, the cursor that follows them together with the last: a crash
//! leaves the cursor at or behind the stored events, never ahead, and
//! events read again are written again identically (keys are leaf indices,
//! nonces and log positions), so indexing resumes losing nothing. Small
//! transactions keep memory flat: sled holds every node version a
//! transaction supersedes until the transaction ends.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex, PoisonError},
};

use alloy::primitives::{B256, U256};
use metalayer_protocol::Message;
use sled::{
    Transactional,
    transaction::{ConflictableTransactionError, TransactionError, TransactionalTree},
};

/// How long [`open_sled`] waits for a database's lock.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the sled database in directory `path` with a cache of
/// `cache_bytes`. sled locks the directory while a handle is open, and one
/// dropped a moment ago (a restart within the process, or the previous
/// process still exiting) can hold the lock a little longer: a refused lock
/// is tried again for up to five seconds, then its error is returned.
pub fn open_sled(path: &Path, cache_bytes: u64) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + LOCK_PATIENCE;
    loop {
        match sled::Config::new().path(path).cache_capacity(cache_bytes).open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            opened => return opened,
        }
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, or a corrupt database).
    #[error("agent store at {path}: {source}")]
    Sled {
        /// Database directory.
        path: String,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// A lookup needs an index this store was opened without.
    #[error("agent store at {path}: opened without the {index} index")]
    NotKept {
        /// Database directory.
        path: String,
        /// The missing index.
        index: &'static str,
    },
    /// A stored value does not have the schema's shape.
    #[error("agent store: corrupt {tree} entry: {reason}")]
    Corrupt {
        /// Which tree.
        tree: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// One `InsertedIntoTree` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insertion {
    /// Leaf index.
    pub index: u32,
    /// The inserted message id.
    pub message_id: B256,
    /// Block it was emitted in.
    pub block: u64,
}

/// One `GasPayment` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasPayment {
    /// The paid-for message.
    pub message_id: B256,
    /// Its destination domain.
    pub destination: u32,
    /// Gas amount paid for.
    pub gas_amount: U256,
    /// Payment in origin native units.
    pub payment: U256,
    /// Transaction that emitted it.
    pub tx_hash: B256,
    /// Its log index in the block.
    pub log_index: u64,
}

/// The summed payments for one (message, destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GasPaymentTotal {
    /// Sum of `payment`.
    pub payment: U256,
    /// Sum of `gas_amount`.
    pub gas_amount: U256,
}

/// The typed agent store.
#[derive(Debug, Clone)]
pub struct AgentStore {
    path: String,
    db: sled::Db,
    dispatch: sled::Tree,
    insertion: sled::Tree,
    leaf_by_id: Option<sled::Tree>,
    gas_payment: sled::Tree,
    gas_payment_seen: sled::Tree,
    cursor: sled::Tree,
    contiguous: sled::Tree,
    /// Held while insertion runs are read and rewritten: a run's merge
    /// reads the runs it overlaps (a range lookup, which a sled
    /// transaction cannot do), then writes.
    insertion_writer: Arc<Mutex<()>>,
}

/// How a store is opened. Open a directory always with the same options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Keep the `leaf_by_id` index ([`AgentStore::leaf_index`] fails without).
    pub leaf_ids: bool,
    /// sled's page cache, in bytes. sled's default is 1 GiB; its real
    /// footprint is a few times the nominal figure.
    pub cache_bytes: u64,
}

impl Default for StoreOptions {
    /// Every index, a 4 MiB cache (the relayer).
    fn default() -> Self {
        Self { leaf_ids: true, cache_bytes: 4 << 20 }
    }
}

impl StoreOptions {
    /// What the validator needs: insertions by index, cursors; a 1 MiB
    /// cache, as it reads back only what it has just written.
    pub const VALIDATOR: Self = Self { leaf_ids: false, cache_bytes: 1 << 20 };
}

/// Most events written in one sled transaction (see the module docs).
pub const TX_EVENTS: usize = 128;

/// Calls `write` for each run of at most [`TX_EVENTS`] items (once with an
/// empty run when there are none), telling it whether the run is the last.
fn in_runs<T>(
    items: &[T],
    mut write: impl FnMut(&[T], bool) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let runs = items.len().div_ceil(TX_EVENTS).max(1);
    let mut chunks = items.chunks(TX_EVENTS);
    for n in 1..=runs {
        write(chunks.next().unwrap_or_default(), n == runs)?;
    }
    Ok(())
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn key(domain: u32, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + rest.len());
    k.extend_from_slice(&domain.to_be_bytes());
    k.extend_from_slice(rest);
    k
}

fn be64(bytes: &[u8], tree: &'static str) -> Result<u64, StoreError> {
    bytes.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes).ok_or_else(|| {
        StoreError::Corrupt { tree, reason: format!("{} bytes, expected 8", bytes.len()) }
    })
}

fn be32(bytes: &[u8], tree: &'static str) -> Result<u32, StoreError> {
    bytes.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes).ok_or_else(|| {
        StoreError::Corrupt { tree, reason: format!("{} bytes, expected 4", bytes.len()) }
    })
}

/// Bytes of one leaf in an insertion run: message id ‖ be64 block.
const LEAF_BYTES: usize = 40;

/// Most leaves in one insertion run record; a merge that joins more is
/// written as several runs.
const RUN_LEAVES: usize = 1024;

/// An insertion run's first leaf and number of leaves, from its record.
fn insertion_run(key: &[u8], value: &[u8]) -> Result<(u32, u32), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { tree: "insertion", reason };
    let first = key
        .get(4..)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| corrupt(format!("key of {} bytes, expected 8", key.len())))?;
    if value.is_empty() || !value.len().is_multiple_of(LEAF_BYTES) {
        return Err(corrupt(format!(
            "run at leaf {first} of {} bytes, not a multiple of {LEAF_BYTES}",
            value.len()
        )));
    }
    let len = u32::try_from(value.len() / LEAF_BYTES)
        .ok()
        .filter(|len| u64::from(first) + u64::from(*len) <= u64::from(u32::MAX) + 1)
        .ok_or_else(|| corrupt(format!("run at leaf {first} runs past the last leaf")))?;
    Ok((first, len))
}

/// Leaf `index` of the run starting at `first`; the caller has checked
/// that the run holds it.
fn run_leaf(first: u32, value: &[u8], index: u32) -> Insertion {
    let at = (index - first) as usize * LEAF_BYTES;
    let leaf = &value[at..at + LEAF_BYTES];
    let mut block = [0u8; 8];
    block.copy_from_slice(&leaf[32..]);
    Insertion { index, message_id: B256::from_slice(&leaf[..32]), block: u64::from_be_bytes(block) }
}

/// One leaf's bytes in a run.
fn leaf_bytes(id: &B256, block: u64) -> [u8; LEAF_BYTES] {
    let mut leaf = [0u8; LEAF_BYTES];
    leaf[..32].copy_from_slice(id.as_slice());
    leaf[32..].copy_from_slice(&block.to_be_bytes());
    leaf
}

/// Consecutive leaves (index → bytes) as runs of at most [`RUN_LEAVES`]:
/// (first, bytes).
fn runs_of(leaves: &BTreeMap<u32, [u8; LEAF_BYTES]>) -> Vec<(u32, Vec<u8>)> {
    let mut runs: Vec<(u32, Vec<u8>)> = Vec::new();
    for (index, leaf) in leaves {
        match runs.last_mut() {
            Some((first, bytes))
                if bytes.len() < RUN_LEAVES * LEAF_BYTES
                    && u64::from(*first) + (bytes.len() / LEAF_BYTES) as u64
                        == u64::from(*index) =>
            {
                bytes.extend_from_slice(leaf);
            }
            _ => runs.push((*index, leaf.to_vec())),
        }
    }
    runs
}

impl AgentStore {
    /// Opens (or creates) the store in directory `path` with every index.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens (or creates) the store in directory `path`.
    pub fn open_with(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        let err = |source| StoreError::Sled { path: name.clone(), source };
        let db = open_sled(path, options.cache_bytes).map_err(err)?;
        // Stores written before the message-id-to-nonce index was dropped
        // still hold it: nothing reads it, so its space is given back.
        db.drop_tree("nonce_by_id").map_err(err)?;
        let tree = |t: &str| db.open_tree(t).map_err(err);
        Ok(Self {
            dispatch: tree("dispatch")?,
            insertion: tree("insertion")?,
            leaf_by_id: if options.leaf_ids { Some(tree("leaf_by_id")?) } else { None },
            gas_payment: tree("gas_payment")?,
            gas_payment_seen: tree("gas_payment_seen")?,
            cursor: tree("cursor")?,
            contiguous: tree("contiguous")?,
            insertion_writer: Arc::default(),
            path: name.clone(),
            db,
        })
    }

    fn sled_err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled { path: self.path.clone(), source }
    }

    fn tx_err(&self, e: TransactionError<StoreError>) -> StoreError {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(source) => self.sled_err(source),
        }
    }

    /// Waits until everything written so far is on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(drop).map_err(|e| self.sled_err(e))
    }

    /// The next block to index for the cursor `name`.
    pub fn cursor(&self, name: &str) -> Result<Option<u64>, StoreError> {
        self.cursor.get(name).map_err(|e| self.sled_err(e))?.map(|v| be64(&v, "cursor")).transpose()
    }

    /// Moves the cursor `name` (used to rewind over a gap).
    pub fn set_cursor(&self, name: &str, next_block: u64) -> Result<(), StoreError> {
        self.cursor.insert(name, &next_block.to_be_bytes()).map(drop).map_err(|e| self.sled_err(e))
    }

    /// Stores dispatched messages, then moves cursor `name` (module docs).
    pub fn store_dispatches(
        &self,
        domain: u32,
        messages: &[(u64, Message)],
        cursor: (&str, u64),
    ) -> Result<(), StoreError> {
        in_runs(messages, |run, last| {
            (&self.dispatch, &self.cursor)
                .transaction(|(dispatch, cur)| -> TxResult<()> {
                    for (block, message) in run {
                        let mut value = block.to_be_bytes().to_vec();
                        message.encode_into(&mut value);
                        dispatch.insert(key(domain, &message.nonce.to_be_bytes()), value)?;
                    }
                    if last {
                        cur.insert(cursor.0, &cursor.1.to_be_bytes())?;
                    }
                    Ok(())
                })
                .map_err(|e| self.tx_err(e))
        })?;
        self.advance_contiguous(&format!("dispatch/{domain}"), &self.dispatch, domain)
    }

    /// The dispatched message with `nonce`, and its block.
    pub fn dispatch(&self, domain: u32, nonce: u32) -> Result<Option<(u64, Message)>, StoreError> {
        let Some(v) =
            self.dispatch.get(key(domain, &nonce.to_be_bytes())).map_err(|e| self.sled_err(e))?
        else {
            return Ok(None);
        };
        let block = be64(&v, "dispatch")?;
        let message = Message::decode(&v[8..])
            .map_err(|e| StoreError::Corrupt { tree: "dispatch", reason: e.to_string() })?;
        Ok(Some((block, message)))
    }

    /// Stores tree insertions, then moves cursor `name` (module docs).
    pub fn store_insertions(
        &self,
        domain: u32,
        insertions: &[Insertion],
        cursor: (&str, u64),
    ) -> Result<(), StoreError> {
        let _writer = self.insertion_writer.lock().unwrap_or_else(PoisonError::into_inner);
        in_runs(insertions, |run, last| {
            let (removed, written) = self.merge_insertions(domain, run)?;
            let write = |insertion: &TransactionalTree,
                         by_id: Option<&TransactionalTree>,
                         cur: &TransactionalTree|
             -> TxResult<()> {
                for first in &removed {
                    insertion.remove(key(domain, &first.to_be_bytes()))?;
                }
                for (first, bytes) in &written {
                    insertion.insert(key(domain, &first.to_be_bytes()), bytes.as_slice())?;
                }
                if let Some(by_id) = by_id {
                    for i in run {
                        by_id
                            .insert(key(domain, i.message_id.as_slice()), &i.index.to_be_bytes())?;
                    }
                }
                if last {
                    cur.insert(cursor.0, &cursor.1.to_be_bytes())?;
                }
                Ok(())
            };
            match &self.leaf_by_id {
                Some(by_id) => (&self.insertion, by_id, &self.cursor)
                    .transaction(|(i, b, c)| write(i, Some(b), c)),
                None => (&self.insertion, &self.cursor).transaction(|(i, c)| write(i, None, c)),
            }
            .map_err(|e| self.tx_err(e))
        })?;
        self.advance_contiguous_insertions(domain)
    }

    /// The runs to write for `run` (its leaves merged with the stored runs
    /// they overlap, its own values winning) and the first leaves of the
    /// stored runs they replace.
    #[allow(clippy::type_complexity)]
    fn merge_insertions(
        &self,
        domain: u32,
        run: &[Insertion],
    ) -> Result<(Vec<u32>, Vec<(u32, Vec<u8>)>), StoreError> {
        let new: BTreeMap<u32, [u8; LEAF_BYTES]> =
            run.iter().map(|i| (i.index, leaf_bytes(&i.message_id, i.block))).collect();
        let (Some(&lowest), Some(&highest)) = (new.keys().next(), new.keys().next_back()) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut merged: BTreeMap<u32, [u8; LEAF_BYTES]> = BTreeMap::new();
        let mut removed = Vec::new();
        let mut take = |first: u32, value: &[u8]| {
            removed.push(first);
            for (i, leaf) in value.chunks_exact(LEAF_BYTES).enumerate() {
                let mut bytes = [0u8; LEAF_BYTES];
                bytes.copy_from_slice(leaf);
                merged.insert(first + i as u32, bytes);
            }
        };
        // Stored runs overlapping lowest..=highest: the one at or below
        // `lowest` if it reaches it, and every one starting after it up to
        // `highest`.
        if let Some((first, value)) = self.insertion_run_at(domain, lowest)? {
            take(first, &value);
        }
        if lowest < highest {
            let later =
                key(domain, &(lowest + 1).to_be_bytes())..=key(domain, &highest.to_be_bytes());
            for entry in self.insertion.range(later) {
                let (k, v) = entry.map_err(|e| self.sled_err(e))?;
                let (first, _) = insertion_run(&k, &v)?;
                take(first, &v);
            }
        }
        merged.extend(new);
        // A run that merges several, or moves a run's first leaf, replaces
        // them; written under the same key, the insert alone replaces it.
        let written = runs_of(&merged);
        removed.retain(|first| !written.iter().any(|(w, _)| w == first));
        Ok((removed, written))
    }

    /// The stored run holding leaf `index` of `domain`: its first leaf and
    /// record.
    fn insertion_run_at(
        &self,
        domain: u32,
        index: u32,
    ) -> Result<Option<(u32, sled::IVec)>, StoreError> {
        let range = key(domain, &0u32.to_be_bytes())..=key(domain, &index.to_be_bytes());
        let Some(entry) = self.insertion.range(range).next_back() else { return Ok(None) };
        let (k, v) = entry.map_err(|e| self.sled_err(e))?;
        let (first, len) = insertion_run(&k, &v)?;
        Ok((u64::from(index) < u64::from(first) + u64::from(len)).then_some((first, v)))
    }

    /// The insertion at leaf `index`.
    pub fn insertion(&self, domain: u32, index: u32) -> Result<Option<Insertion>, StoreError> {
        Ok(self.insertion_run_at(domain, index)?.map(|(first, v)| run_leaf(first, &v, index)))
    }

    /// The stored insertions from leaf `from` on, in leaf order, up to the
    /// first missing leaf and at most `max` of them: what a tree fed leaf
    /// by leaf reads, in one range scan.
    pub fn insertions_from(
        &self,
        domain: u32,
        from: u32,
        max: usize,
    ) -> Result<Vec<Insertion>, StoreError> {
        let mut out = Vec::new();
        let Some((first, value)) = self.insertion_run_at(domain, from)? else { return Ok(out) };
        // Appends the leaves of the run at `first` from `out`'s next leaf on.
        let add = |first: u32, value: &[u8], out: &mut Vec<Insertion>| {
            let end = u64::from(first) + (value.len() / LEAF_BYTES) as u64;
            let mut next = u64::from(from) + out.len() as u64;
            while next < end && out.len() < max {
                out.push(run_leaf(first, value, next as u32));
                next += 1;
            }
        };
        add(first, &value, &mut out);
        let Some(after) = first.checked_add(1) else { return Ok(out) };
        let later = key(domain, &after.to_be_bytes())..=key(domain, &u32::MAX.to_be_bytes());
        for entry in self.insertion.range(later) {
            if out.len() >= max {
                break;
            }
            let (k, v) = entry.map_err(|e| self.sled_err(e))?;
            let (first, _) = insertion_run(&k, &v)?;
            if u64::from(first) != u64::from(from) + out.len() as u64 {
                break;
            }
            add(first, &v, &mut out);
        }
        Ok(out)
    }

    /// Deletes the insertions of `domain` below leaf `below` (and their
    /// `leaf_by_id` entries), [`TX_EVENTS`] runs at a time; a run reaching
    /// past `below` keeps its leaves from `below` on. For agents that have
    /// saved what they need of them (the validator's tree frontier); the
    /// gap-free count is kept, so indexing carries on past them. Returns how
    /// many leaves were deleted.
    pub fn prune_insertions(&self, domain: u32, below: u32) -> Result<usize, StoreError> {
        let _writer = self.insertion_writer.lock().unwrap_or_else(PoisonError::into_inner);
        let range = key(domain, &0u32.to_be_bytes())..key(domain, &below.to_be_bytes());
        let mut pruned = 0;
        loop {
            let (mut insertions, mut ids) = (sled::Batch::default(), sled::Batch::default());
            let mut n = 0;
            for entry in self.insertion.range(range.clone()).take(TX_EVENTS) {
                let (k, v) = entry.map_err(|e| self.sled_err(e))?;
                let (first, len) = insertion_run(&k, &v)?;
                let kept_from = (below - first).min(len) as usize * LEAF_BYTES;
                // The id index's entries go too, where it is kept.
                if self.leaf_by_id.is_some() {
                    for leaf in v[..kept_from].chunks_exact(LEAF_BYTES) {
                        ids.remove(key(domain, &leaf[..32]));
                    }
                }
                insertions.remove(k);
                if kept_from < v.len() {
                    insertions.insert(key(domain, &below.to_be_bytes()), &v[kept_from..]);
                }
                pruned += kept_from / LEAF_BYTES;
                n += 1;
            }
            if n == 0 {
                return Ok(pruned);
            }
            if let Some(by_id) = &self.leaf_by_id {
                by_id.apply_batch(ids).map_err(|e| self.sled_err(e))?;
            }
            self.insertion.apply_batch(insertions).map_err(|e| self.sled_err(e))?;
        }
    }

    /// The leaf index of message `id`.
    pub fn leaf_index(&self, domain: u32, id: B256) -> Result<Option<u32>, StoreError> {
        let Some(leaf_by_id) = &self.leaf_by_id else {
            return Err(StoreError::NotKept { path: self.path.clone(), index: "leaf_by_id" });
        };
        leaf_by_id
            .get(key(domain, id.as_slice()))
            .map_err(|e| self.sled_err(e))?
            .map(|v| be32(&v, "leaf_by_id"))
            .transpose()
    }

    /// Number of dispatches stored without a gap from nonce 0.
    pub fn contiguous_dispatches(&self, domain: u32) -> Result<u64, StoreError> {
        self.contiguous_count(&format!("dispatch/{domain}"))
    }

    /// Number of insertions stored without a gap from leaf 0.
    pub fn contiguous_insertions(&self, domain: u32) -> Result<u64, StoreError> {
        self.contiguous_count(&format!("insertion/{domain}"))
    }

    /// The highest sequence number (nonce or leaf index) stored, gap or not.
    pub fn highest_dispatch(&self, domain: u32) -> Result<Option<u32>, StoreError> {
        self.highest(&self.dispatch, domain)
    }

    /// The highest leaf index stored, gap or not.
    pub fn highest_insertion(&self, domain: u32) -> Result<Option<u32>, StoreError> {
        let last = self
            .insertion
            .scan_prefix(domain.to_be_bytes())
            .next_back()
            .transpose()
            .map_err(|e| self.sled_err(e))?;
        let Some((k, v)) = last else { return Ok(None) };
        let (first, len) = insertion_run(&k, &v)?;
        Ok(Some(first + (len - 1)))
    }

    fn highest(&self, tree: &sled::Tree, domain: u32) -> Result<Option<u32>, StoreError> {
        let last = tree
            .scan_prefix(domain.to_be_bytes())
            .next_back()
            .transpose()
            .map_err(|e| self.sled_err(e))?;
        last.map(|(k, _)| be32(&k[4..], "sequence key")).transpose()
    }

    fn contiguous_count(&self, name: &str) -> Result<u64, StoreError> {
        Ok(self
            .contiguous
            .get(name)
            .map_err(|e| self.sled_err(e))?
            .map(|v| be64(&v, "contiguous"))
            .transpose()?
            .unwrap_or(0))
    }

    /// Raises the gap-free insertion count past every stored run that
    /// follows on from it.
    fn advance_contiguous_insertions(&self, domain: u32) -> Result<(), StoreError> {
        let name = format!("insertion/{domain}");
        let start = self.contiguous_count(&name)?;
        let mut next = start;
        while let Ok(index) = u32::try_from(next)
            && let Some((first, value)) = self.insertion_run_at(domain, index)?
        {
            next = u64::from(first) + (value.len() / LEAF_BYTES) as u64;
        }
        if next != start {
            self.contiguous.insert(name, &next.to_be_bytes()).map_err(|e| self.sled_err(e))?;
        }
        Ok(())
    }

    /// Raises the gap-free watermark of a sequenced tree past every present entry.
    fn advance_contiguous(
        &self,
        name: &str,
        tree: &sled::Tree,
        domain: u32,
    ) -> Result<(), StoreError> {
        let start = self.contiguous_count(name)?;
        let mut next = start;
        while next <= u64::from(u32::MAX)
            && tree
                .contains_key(key(domain, &(next as u32).to_be_bytes()))
                .map_err(|e| self.sled_err(e))?
        {
            next += 1;
        }
        if next != start {
            self.contiguous.insert(name, &next.to_be_bytes()).map_err(|e| self.sled_err(e))?;
        }
        Ok(())
    }

    /// Adds gas payments to their (message, destination) sums, counting each
    /// log once however often it is indexed, and moves cursor `name`.
    pub fn store_gas_payments(
        &self,
        domain: u32,
        payments: &[GasPayment],
        cursor: (&str, u64),
    ) -> Result<(), StoreError> {
        in_runs(payments, |run, last| {
            (&self.gas_payment, &self.gas_payment_seen, &self.cursor)
                .transaction(|(totals, seen, cur)| -> TxResult<()> {
                    for p in run {
                        let mut log_key = p.tx_hash.to_vec();
                        log_key.extend_from_slice(&p.log_index.to_be_bytes());
                        if seen.insert(key(domain, &log_key), &[])?.is_some() {
                            continue;
                        }
                        let mut total_key = p.message_id.to_vec();
                        total_key.extend_from_slice(&p.destination.to_be_bytes());
                        let total_key = key(domain, &total_key);
                        let mut total = read_total(totals, &total_key)?;
                        total.payment = total.payment.saturating_add(p.payment);
                        total.gas_amount = total.gas_amount.saturating_add(p.gas_amount);
                        let mut value = total.payment.to_be_bytes::<32>().to_vec();
                        value.extend_from_slice(&total.gas_amount.to_be_bytes::<32>());
                        totals.insert(total_key, value)?;
                    }
                    if last {
                        cur.insert(cursor.0, &cursor.1.to_be_bytes())?;
                    }
                    Ok(())
                })
                .map_err(|e| self.tx_err(e))
        })
    }

    /// The summed gas payments for `id` to `destination`, if any was seen.
    pub fn gas_payment(
        &self,
        domain: u32,
        id: B256,
        destination: u32,
    ) -> Result<Option<GasPaymentTotal>, StoreError> {
        let mut k = id.to_vec();
        k.extend_from_slice(&destination.to_be_bytes());
        let Some(v) = self.gas_payment.get(key(domain, &k)).map_err(|e| self.sled_err(e))? else {
            return Ok(None);
        };
        parse_total(&v).map(Some)
    }
}

fn parse_total(v: &[u8]) -> Result<GasPaymentTotal, StoreError> {
    if v.len() != 64 {
        return Err(StoreError::Corrupt {
            tree: "gas_payment",
            reason: format!("{} bytes, expected 64", v.len()),
        });
    }
    Ok(GasPaymentTotal {
        payment: U256::from_be_slice(&v[..32]),
        gas_amount: U256::from_be_slice(&v[32..]),
    })
}

fn read_total(tree: &TransactionalTree, k: &[u8]) -> TxResult<GasPaymentTotal> {
    match tree.get(k)? {
        None => Ok(GasPaymentTotal::default()),
        Some(v) => parse_total(&v).map_err(ConflictableTransactionError::Abort),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_stores_unread_nonce_index_is_dropped_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = open_sled(dir.path(), 1 << 20).unwrap();
            db.open_tree("nonce_by_id").unwrap().insert(b"k", b"v").unwrap();
            db.open_tree("dispatch").unwrap().insert(b"kept", b"v").unwrap();
            db.flush().unwrap();
        }
        let store = AgentStore::open(dir.path()).unwrap();
        let names = store.db.tree_names();
        assert!(!names.iter().any(|n| n.as_ref() == b"nonce_by_id"), "{names:?}");
        assert_eq!(store.dispatch.get(b"kept").unwrap().as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn a_database_whose_lock_is_released_a_moment_later_opens() {
        let dir = tempfile::tempdir().unwrap();
        let held = open_sled(dir.path(), 1 << 20).unwrap();
        // A second handle is refused while the first holds the lock...
        let refused = sled::Config::new().path(dir.path()).open();
        assert!(matches!(refused, Err(sled::Error::Io(_))), "{refused:?}");
        // ...and open_sled waits for the lock a handle gives up meanwhile.
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        let db = open_sled(dir.path(), 1 << 20).unwrap();
        release.join().unwrap();
        db.insert(b"k", b"v").unwrap();
    }
    use alloy::primitives::Bytes;

    fn message(nonce: u32) -> Message {
        Message {
            version: 3,
            nonce,
            origin: 7,
            sender: B256::repeat_byte(1),
            destination: 8,
            recipient: B256::repeat_byte(2),
            body: Bytes::from(vec![nonce as u8; 3]),
        }
    }

    #[test]
    fn dispatches_survive_reopen_and_track_gaps() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = AgentStore::open(dir.path()).unwrap();
            store
                .store_dispatches(
                    7,
                    &[(10, message(0)), (11, message(1)), (13, message(3))],
                    ("d", 14),
                )
                .unwrap();
            assert_eq!(store.contiguous_dispatches(7).unwrap(), 2);
            assert_eq!(store.highest_dispatch(7).unwrap(), Some(3));
            store.flush().unwrap();
        }
        let store = AgentStore::open(dir.path()).unwrap();
        assert_eq!(store.cursor("d").unwrap(), Some(14));
        assert_eq!(store.dispatch(7, 1).unwrap(), Some((11, message(1))));
        assert_eq!(store.dispatch(7, 3).unwrap(), Some((13, message(3))));
        assert_eq!(store.dispatch(8, 1).unwrap(), None, "domains do not mix");
        store.store_dispatches(7, &[(12, message(2))], ("d", 15)).unwrap();
        assert_eq!(store.contiguous_dispatches(7).unwrap(), 4);
    }

    #[test]
    fn insertions_by_index_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = AgentStore::open(dir.path()).unwrap();
        let ins = |index| Insertion {
            index,
            message_id: B256::repeat_byte(index as u8 + 1),
            block: 100 + u64::from(index),
        };
        store.store_insertions(1, &[ins(0), ins(1)], ("i", 5)).unwrap();
        assert_eq!(store.insertion(1, 1).unwrap(), Some(ins(1)));
        assert_eq!(store.leaf_index(1, B256::repeat_byte(2)).unwrap(), Some(1));
        assert_eq!(store.contiguous_insertions(1).unwrap(), 2);
        assert_eq!(store.insertion(1, 2).unwrap(), None);

        let lean = tempfile::tempdir().unwrap();
        let store = AgentStore::open_with(lean.path(), StoreOptions::VALIDATOR).unwrap();
        store.store_insertions(1, &[ins(0), ins(1)], ("i", 5)).unwrap();
        assert_eq!(store.insertion(1, 1).unwrap(), Some(ins(1)));
        assert_eq!(store.contiguous_insertions(1).unwrap(), 2);
        let err = store.leaf_index(1, B256::repeat_byte(2)).unwrap_err();
        assert!(err.to_string().contains("without the leaf_by_id index"), "{err}");
    }

    #[test]
    fn pruned_insertions_are_gone_and_indexing_carries_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = AgentStore::open(dir.path()).unwrap();
        let ins = |index: u32| Insertion {
            index,
            message_id: B256::from(U256::from(index + 1)),
            block: u64::from(index),
        };
        let n = TX_EVENTS as u32 + 10;
        store.store_insertions(1, &(0..n).map(ins).collect::<Vec<_>>(), ("i", 5)).unwrap();
        store.store_insertions(2, &[ins(0)], ("j", 5)).unwrap();
        assert_eq!(store.prune_insertions(1, n - 3).unwrap(), n as usize - 3);
        assert_eq!(store.insertion(1, n - 4).unwrap(), None);
        assert_eq!(store.leaf_index(1, ins(0).message_id).unwrap(), None);
        assert_eq!(store.insertion(1, n - 3).unwrap(), Some(ins(n - 3)));
        assert_eq!(store.insertion(2, 0).unwrap(), Some(ins(0)), "other domains are kept");
        assert_eq!(store.contiguous_insertions(1).unwrap(), u64::from(n));
        store.store_insertions(1, &[ins(n)], ("i", 6)).unwrap();
        assert_eq!(store.contiguous_insertions(1).unwrap(), u64::from(n) + 1);
        assert_eq!(store.prune_insertions(1, n - 3).unwrap(), 0);
    }

    #[test]
    fn events_beyond_one_transaction_are_all_stored_and_the_cursor_moves_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = AgentStore::open(dir.path()).unwrap();
        let n = TX_EVENTS * 2 + 5;
        let insertions: Vec<_> = (0..n as u32)
            .map(|index| Insertion {
                index,
                message_id: B256::from(U256::from(index + 1)),
                block: 9,
            })
            .collect();
        store.store_insertions(3, &insertions, ("i", 10)).unwrap();
        assert_eq!(store.contiguous_insertions(3).unwrap(), n as u64);
        assert_eq!(store.insertion(3, n as u32 - 1).unwrap(), insertions.last().copied());
        assert_eq!(store.cursor("i").unwrap(), Some(10));
        // No events: the cursor still moves.
        store.store_insertions(3, &[], ("i", 11)).unwrap();
        assert_eq!(store.cursor("i").unwrap(), Some(11));
        let mut runs = Vec::new();
        in_runs(&insertions, |run, last| {
            runs.push((run.len(), last));
            Ok(())
        })
        .unwrap();
        assert_eq!(runs, [(TX_EVENTS, false), (TX_EVENTS, false), (5, true)]);
    }

    fn leaf(index: u32, tag: u8) -> Insertion {
        Insertion { index, message_id: B256::repeat_byte(tag), block: u64::from(index) * 10 }
    }

    /// Leaves `indexes`, each with message id `tag` repeated.
    fn leaves(indexes: std::ops::Range<u32>, tag: u8) -> Vec<Insertion> {
        indexes.map(|i| leaf(i, tag)).collect()
    }

    /// The stored runs of `domain`: (first leaf, number of leaves).
    fn runs(store: &AgentStore, domain: u32) -> Vec<(u32, u32)> {
        store
            .insertion
            .scan_prefix(domain.to_be_bytes())
            .map(|e| {
                let (k, v) = e.unwrap();
                insertion_run(&k, &v).unwrap()
            })
            .collect()
    }

    #[test]
    fn insertions_are_stored_as_runs_and_a_rewrite_merges_with_what_it_overlaps() {
        let dir = tempfile::tempdir().unwrap();
        let store = AgentStore::open(dir.path()).unwrap();
        store.store_insertions(1, &leaves(0..10, 1), ("i", 1)).unwrap();
        store.store_insertions(1, &leaves(10..20, 1), ("i", 2)).unwrap();
        store.store_insertions(1, &[leaf(25, 1)], ("i", 3)).unwrap();
        assert_eq!(runs(&store, 1), [(0, 10), (10, 10), (25, 1)]);
        assert_eq!(store.contiguous_insertions(1).unwrap(), 20);
        assert_eq!(store.highest_insertion(1).unwrap(), Some(25));
        // Leaves 5..=12 read again with other values (out of order, one
        // twice: the later wins): the two runs they overlap become one.
        let mut again: Vec<_> = (5..=12).rev().map(|i| leaf(i, 2)).collect();
        again.push(leaf(7, 3));
        store.store_insertions(1, &again, ("i", 4)).unwrap();
        assert_eq!(runs(&store, 1), [(0, 20), (25, 1)]);
        for i in 0..20 {
            let tag = match i {
                7 => 3,
                5..=12 => 2,
                _ => 1,
            };
            assert_eq!(store.insertion(1, i).unwrap(), Some(leaf(i, tag)), "leaf {i}");
            assert!(store.leaf_index(1, B256::repeat_byte(tag)).unwrap().is_some());
        }
        assert_eq!(store.insertion(1, 20).unwrap(), None);
        assert_eq!(store.insertion(1, 25).unwrap(), Some(leaf(25, 1)));
        // Filling the gap joins nothing (touching runs stay apart) but
        // counts on past the run beyond it.
        store.store_insertions(1, &leaves(20..25, 4), ("i", 5)).unwrap();
        assert_eq!(runs(&store, 1), [(0, 20), (20, 5), (25, 1)]);
        assert_eq!(store.contiguous_insertions(1).unwrap(), 26);
        assert_eq!(store.cursor("i").unwrap(), Some(5));
    }

    #[test]
    fn insertions_from_reads_on_across_runs_up_to_a_gap_or_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = AgentStore::open(dir.path()).unwrap();
        store.store_insertions(1, &leaves(0..4, 1), ("i", 1)).unwrap();
        store.store_insertions(1, &leaves(4..9, 2), ("i", 2)).unwrap();
        store.store_insertions(1, &[leaf(10, 3)], ("i", 3)).unwrap();
        store.store_insertions(2, &[leaf(9, 4)], ("j", 3)).unwrap();
        let indexes = |v: Vec<Insertion>| v.iter().map(|i| i.index).collect::<Vec<_>>();
        assert_eq!(indexes(store.insertions_from(1, 2, 100).unwrap()), [2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(indexes(store.insertions_from(1, 2, 4).unwrap()), [2, 3, 4, 5]);
        assert_eq!(store.insertions_from(1, 5, 1).unwrap(), [leaf(5, 2)]);
        assert_eq!(store.insertions_from(1, 9, 100).unwrap(), []);
        assert_eq!(indexes(store.insertions_from(1, 10, 100).unwrap()), [10]);
        assert_eq!(store.insertions_from(1, 0, 0).unwrap(), []);
        assert_eq!(store.insertions_from(3, 0, 100).unwrap(), [], "another domain");
    }

    #[test]
    fn records_of_single_leaves_from_earlier_stores_are_runs_of_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = AgentStore::open(dir.path()).unwrap();
        // How stores before runs kept every leaf.
        for i in 0..3u32 {
            let value = leaf_bytes(&B256::repeat_byte(1), u64::from(i) * 10);
            store.insertion.insert(key(1, &i.to_be_bytes()), &value[..]).unwrap();
        }
        assert_eq!(store.insertion(1, 1).unwrap(), Some(leaf(1, 1)));
        store.store_insertions(1, &leaves(2..6, 2), ("i", 1)).unwrap();
        assert_eq!(runs(&store, 1), [(0, 1), (1, 1), (2, 4)]);
        assert_eq!(store.contiguous_insertions(1).unwrap(), 6);
        assert_eq!(store.insertions_from(1, 0, 10).unwrap().len(), 6);
        assert_eq!(store.prune_insertions(1, 3).unwrap(), 3);
        assert_eq!(runs(&store, 1), [(3, 3)]);
    }

    #[test]
    fn pruning_keeps_the_tail_of_a_run_that_reaches_past_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let store = AgentStore::open(dir.path()).unwrap();
        store.store_insertions(1, &leaves(0..10, 1), ("i", 1)).unwrap();
        store.store_insertions(1, &leaves(10..12, 2), ("i", 2)).unwrap();
        assert_eq!(store.prune_insertions(1, 7).unwrap(), 7);
        assert_eq!(runs(&store, 1), [(7, 3), (10, 2)]);
        assert_eq!(store.insertion(1, 6).unwrap(), None);
        assert_eq!(store.insertion(1, 7).unwrap(), Some(leaf(7, 1)));
        // The id index keeps only the leaves kept: ids 1 belong to 7..10.
        assert_eq!(store.leaf_index(1, B256::repeat_byte(2)).unwrap(), Some(11));
        assert_eq!(store.prune_insertions(1, 11).unwrap(), 4);
        assert_eq!(runs(&store, 1), [(11, 1)]);
        assert_eq!(store.contiguous_insertions(1).unwrap(), 12);
    }

    #[test]
    fn a_run_of_the_wrong_size_is_named_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = AgentStore::open(dir.path()).unwrap();
        store.insertion.insert(key(1, &4u32.to_be_bytes()), &[0u8; 41][..]).unwrap();
        let err = store.insertion(1, 4).unwrap_err().to_string();
        assert!(err.contains("run at leaf 4 of 41 bytes"), "{err}");
        store.insertion.insert(key(1, &u32::MAX.to_be_bytes()), &[0u8; 80][..]).unwrap();
        let err = store.highest_insertion(1).unwrap_err().to_string();
        assert!(err.contains("runs past the last leaf"), "{err}");
    }

    #[test]
    fn gas_payments_sum_and_count_each_log_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = AgentStore::open(dir.path()).unwrap();
        let pay = |log_index, payment| GasPayment {
            message_id: B256::repeat_byte(9),
            destination: 2,
            gas_amount: U256::from(1000),
            payment: U256::from(payment),
            tx_hash: B256::repeat_byte(5),
            log_index,
        };
        store.store_gas_payments(1, &[pay(0, 10), pay(1, 5)], ("g", 3)).unwrap();
        store.store_gas_payments(1, &[pay(1, 5)], ("g", 4)).unwrap();
        let total = store.gas_payment(1, B256::repeat_byte(9), 2).unwrap().unwrap();
        assert_eq!(
            total,
            GasPaymentTotal { payment: U256::from(15), gas_amount: U256::from(2000) }
        );
        assert_eq!(store.gas_payment(1, B256::repeat_byte(9), 3).unwrap(), None);
    }
}
