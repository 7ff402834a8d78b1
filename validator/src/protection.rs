//! Double-sign protection: a validator never signs two different checkpoints
//! for the same (origin, merkle tree hook, index).
//!
//! Before a signature leaves the process, [`SigningProtection::check_and_record`]
//! looks the index up and records the (root, message id) it is about to sign
//! in one sled batch, then flushes to disk; one writer at a time (a lock
//! in the process, sled's lock on the directory across processes). A request for an index
//! already recorded with the same value is allowed (re-publishing the same
//! checkpoint is harmless); one with a different value is refused and
//! counted. Because the record is durable before the signature exists, a
//! crash at any point can at worst leave a record without a published
//! signature, never a signature without a record.
//!
//! Records are runs: a record keyed by its first index holds the (root,
//! message id) of that index and of each one after it, 64 bytes apiece,
//! so a window the validator signs together is one record (and one sled
//! insert), not one per index. Runs never overlap; a record of 64 bytes
//! (how earlier validators recorded every index) is a run of one.
//!
//! The record can be exported and imported as JSON (in the spirit of
//! EIP-3076), so an operator moving a validator to a new machine carries its
//! history with it. An import that conflicts with what is recorded is refused
//! as a whole.
//!
//! # Pruning
//!
//! A validator signs every leaf, so a record of every index would grow
//! without end (and sled's memory with it, even within one long backlog).
//! [`SigningProtection::prune`] replaces the records of a range of indexes
//! that are all signed and published by the range itself: the range is
//! added to the (origin, hook)'s [`PrunedRanges`] and flushed, and only then
//! are the records in it deleted. A request inside a pruned range is refused
//! whatever its value, as lighthouse's minimal slashing protection refuses
//! anything at or below its watermark, so a record is never lost without
//! the range that replaces it. The validator prunes each backlog window once
//! it is published and older than the newest `retained_leaves`, and, once
//! nothing is pending, saves the tree ([`SigningProtection::save_frontier`])
//! to resume from after a restart, so it never asks for a pruned index
//! again and refusing is never wrong.

use std::{
    collections::{BTreeMap, HashMap, hash_map::Entry},
    path::Path,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use metalayer_protocol::{
    Address, B256, CheckpointWithMessageId,
    merkle::{MerkleTree, TREE_DEPTH},
};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};

/// The interchange format version written and accepted.
pub const INTERCHANGE_VERSION: &str = "1";

/// Why a checkpoint may not be signed, or the record could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProtectionError {
    /// Signing would contradict an earlier signature.
    #[error(
        "refusing to sign origin {} index {}: already signed root {} (message {}), asked to sign \
         root {} (message {})",
        .0.origin, .0.index, .0.signed_root, .0.signed_message_id, .0.root, .0.message_id
    )]
    Conflict(Box<Conflict>),
    /// The index is in a pruned range: signed and published long ago.
    #[error(
        "refusing to sign origin {origin} index {index}: it is in the pruned range {from}..{to}, \
         signed and published before; the validator never signs there again"
    )]
    Pruned {
        /// Origin domain.
        origin: u32,
        /// Leaf index asked for.
        index: u32,
        /// The range's first index.
        from: u32,
        /// The range's end (exclusive).
        to: u32,
    },
    /// The record could not be read or written.
    #[error("signing protection database at {path}: {source}")]
    Db {
        /// Database directory.
        path: String,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// A stored record has the wrong size.
    #[error("signing protection database: corrupt record for key {0}")]
    Corrupt(String),
    /// An interchange file that cannot be used.
    #[error("signing protection interchange: {0}")]
    Interchange(String),
}

/// Two different checkpoints asked for one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Origin domain.
    pub origin: u32,
    /// Leaf index.
    pub index: u32,
    /// Root recorded earlier.
    pub signed_root: B256,
    /// Message id recorded earlier.
    pub signed_message_id: B256,
    /// Root asked for now.
    pub root: B256,
    /// Message id asked for now.
    pub message_id: B256,
}

/// Whether a checkpoint may be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Newly recorded: sign it.
    Recorded,
    /// Recorded before with the same value: signing again is safe.
    AlreadySigned,
}

/// One recorded signature, as exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRecord {
    /// Origin domain.
    pub origin: u32,
    /// The merkle tree hook in 32-byte form.
    pub merkle_tree_hook: B256,
    /// Leaf index.
    pub index: u32,
    /// Root signed.
    pub root: B256,
    /// Message id signed.
    pub message_id: B256,
}

/// The exported record of everything a validator signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interchange {
    /// Format version; [`INTERCHANGE_VERSION`].
    pub interchange_format_version: String,
    /// The validator the records belong to.
    pub validator: Address,
    /// Every record, in key order.
    pub records: Vec<SignedRecord>,
    /// Pruned ranges: every index in them was signed and is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<PrunedRange>,
}

/// Indexes `from..to` of (origin, hook): signed, published, and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunedRange {
    /// Origin domain.
    pub origin: u32,
    /// The merkle tree hook in 32-byte form.
    pub merkle_tree_hook: B256,
    /// First index.
    pub from: u32,
    /// End (exclusive).
    pub to: u32,
}

/// The pruned index ranges `[from, to)` of one (origin, hook): sorted,
/// disjoint and never adjacent (touching ranges merge). A validator has one
/// or two (below its frontier, and behind a backlog in progress).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunedRanges(Vec<(u32, u32)>);

impl PrunedRanges {
    fn decode(v: &[u8]) -> Result<Self, ProtectionError> {
        let corrupt = || ProtectionError::Corrupt(format!("pruned ranges of {} bytes", v.len()));
        if !v.len().is_multiple_of(8) {
            return Err(corrupt());
        }
        let word = |b: &[u8]| b.try_into().map(u32::from_be_bytes).map_err(|_| corrupt());
        let ranges = v
            .chunks_exact(8)
            .map(|pair| Ok((word(&pair[..4])?, word(&pair[4..])?)))
            .collect::<Result<Vec<_>, ProtectionError>>()?;
        let sorted =
            ranges.iter().all(|(from, to)| from < to) && ranges.windows(2).all(|w| w[0].1 < w[1].0);
        if !sorted {
            return Err(corrupt());
        }
        Ok(Self(ranges))
    }

    fn encode(&self) -> Vec<u8> {
        self.0
            .iter()
            .flat_map(|(from, to)| [from.to_be_bytes(), to.to_be_bytes()])
            .flatten()
            .collect()
    }

    /// The ranges, ascending.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.0
    }

    /// The range holding `index`, if any.
    pub fn containing(&self, index: u32) -> Option<(u32, u32)> {
        self.0.iter().copied().find(|&(from, to)| from <= index && index < to)
    }

    /// Adds `from..to`, merging what it overlaps or touches.
    pub fn insert(&mut self, from: u32, to: u32) {
        if from >= to {
            return;
        }
        let (mut from, mut to) = (from, to);
        self.0.retain(|&(a, b)| {
            let apart = b < from || to < a;
            if !apart {
                from = from.min(a);
                to = to.max(b);
            }
            apart
        });
        let at = self.0.partition_point(|&(a, _)| a < from);
        self.0.insert(at, (from, to));
    }
}

/// The durable double-sign protection record.
#[derive(Debug, Clone)]
pub struct SigningProtection {
    path: String,
    db: sled::Db,
    /// origin ‖ hook ‖ be32 first index → 64 bytes of (root, message id)
    /// for it and each index after it (module docs).
    signed: sled::Tree,
    /// Indexes whose signed checkpoint reached storage, as runs: origin ‖
    /// hook ‖ be32 first → be32 last ([`SigningProtection::mark_published`]).
    /// Progress only, not safety (losing a run re-publishes the same
    /// checkpoints).
    published: sled::Tree,
    /// origin ‖ hook → [`PrunedRanges`] as be32 pairs (module docs).
    pruned: sled::Tree,
    /// origin ‖ hook → be64 count ‖ 32 branch nodes: the tree once every
    /// leaf below count was published.
    frontiers: sled::Tree,
    /// Held by whoever reads the record to change it: a check reads runs
    /// (a range lookup, which a sled transaction cannot do), then writes.
    writer: Arc<Mutex<()>>,
}

/// Records deleted per sled batch when pruning: sled holds what a batch
/// supersedes until it ends, so small batches keep memory flat.
const PRUNE_BATCH: usize = 128;

fn chain_key(origin: u32, hook: B256) -> [u8; 36] {
    let mut key = [0u8; 36];
    key[..4].copy_from_slice(&origin.to_be_bytes());
    key[4..].copy_from_slice(hook.as_slice());
    key
}

/// The pruned ranges stored under `key` of a transaction's tree.
fn tx_pruned(
    tree: &sled::transaction::TransactionalTree,
    key: &[u8; 36],
) -> Result<PrunedRanges, ConflictableTransactionError<ProtectionError>> {
    match tree.get(key)? {
        Some(v) => PrunedRanges::decode(&v).map_err(ConflictableTransactionError::Abort),
        None => Ok(PrunedRanges::default()),
    }
}

fn record_key(origin: u32, hook: B256, index: u32) -> [u8; 40] {
    run_key(&chain_key(origin, hook), index)
}

/// The first index of a run record's key (origin ‖ hook ‖ be32 first).
fn run_first(key: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = key.get(36..)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// A published run's (first, last) index from its record.
fn published_run(key: &[u8], value: &[u8]) -> Result<(u32, u32), ProtectionError> {
    let corrupt = || ProtectionError::Corrupt(format!("published run {}", alloy::hex::encode(key)));
    let first = run_first(key).ok_or_else(corrupt)?;
    let last = match value.len() {
        0 => first,
        4 => u32::from_be_bytes(value.try_into().map_err(|_| corrupt())?),
        _ => return Err(corrupt()),
    };
    if last < first {
        return Err(corrupt());
    }
    Ok((first, last))
}

fn record_value(root: B256, message_id: B256) -> [u8; 64] {
    let mut value = [0u8; 64];
    value[..32].copy_from_slice(root.as_slice());
    value[32..].copy_from_slice(message_id.as_slice());
    value
}

/// The record key of index `index` under a [`chain_key`].
fn run_key(chain: &[u8; 36], index: u32) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..36].copy_from_slice(chain);
    key[36..].copy_from_slice(&index.to_be_bytes());
    key
}

/// A signed run's first index and number of indexes, from its record.
fn signed_run(key: &[u8], value: &[u8]) -> Result<(u32, u32), ProtectionError> {
    let corrupt = || ProtectionError::Corrupt(format!("signed run {}", alloy::hex::encode(key)));
    if value.is_empty() || !value.len().is_multiple_of(64) {
        return Err(corrupt());
    }
    let first = run_first(key).ok_or_else(corrupt)?;
    let len = u32::try_from(value.len() / 64).map_err(|_| corrupt())?;
    // The run may end at the last index, not past it.
    if u64::from(first) + u64::from(len) > u64::from(u32::MAX) + 1 {
        return Err(corrupt());
    }
    Ok((first, len))
}

/// The 64 bytes of index `index` in a run starting at `first`, if it
/// holds it.
fn run_slot(first: u32, value: &[u8], index: u32) -> Option<[u8; 64]> {
    let at = usize::try_from(index.checked_sub(first)?).ok()?.checked_mul(64)?;
    value.get(at..at + 64)?.try_into().ok()
}

/// New records (chain, index → value) as runs of consecutive indexes.
fn runs_of(new: &BTreeMap<([u8; 36], u32), [u8; 64]>) -> Vec<([u8; 36], u32, Vec<u8>)> {
    let mut runs: Vec<([u8; 36], u32, Vec<u8>)> = Vec::new();
    for ((chain, index), value) in new {
        match runs.last_mut() {
            Some((c, first, bytes))
                if c == chain
                    && u64::from(*first) + (bytes.len() / 64) as u64 == u64::from(*index) =>
            {
                bytes.extend_from_slice(value);
            }
            _ => runs.push((*chain, *index, value.to_vec())),
        }
    }
    runs
}

fn conflict(c: &CheckpointWithMessageId, existing: &[u8; 64]) -> ProtectionError {
    ProtectionError::Conflict(Box::new(Conflict {
        origin: c.checkpoint.origin,
        index: c.checkpoint.index,
        signed_root: B256::from_slice(&existing[..32]),
        signed_message_id: B256::from_slice(&existing[32..]),
        root: c.checkpoint.root,
        message_id: c.message_id,
    }))
}

impl SigningProtection {
    /// Opens (or creates) the record in directory `path`.
    pub fn open(path: &Path) -> Result<Self, ProtectionError> {
        let name = path.display().to_string();
        // Records are appended and read back at once: a small cache (sled's
        // real footprint is a few times this figure).
        let db = metalayer_agent::store::open_sled(path, 512 << 10)
            .map_err(|source| ProtectionError::Db { path: name.clone(), source })?;
        let tree = |t: &str| {
            db.open_tree(t).map_err(|source| ProtectionError::Db { path: name.clone(), source })
        };
        let signed = tree("signed_checkpoints")?;
        let published = tree("published_checkpoints")?;
        let pruned = tree("pruned_ranges")?;
        let frontiers = tree("frontiers")?;
        Ok(Self { path: name, db, signed, published, pruned, frontiers, writer: Arc::default() })
    }

    fn db_err(&self, source: sled::Error) -> ProtectionError {
        ProtectionError::Db { path: self.path.clone(), source }
    }

    /// The pruned ranges of (origin, hook) in `ranges`, read from the
    /// record the first time.
    fn ranges_in<'a>(
        &self,
        ranges: &'a mut HashMap<[u8; 36], PrunedRanges>,
        origin: u32,
        hook: B256,
    ) -> Result<&'a mut PrunedRanges, ProtectionError> {
        Ok(match ranges.entry(chain_key(origin, hook)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(self.pruned(origin, hook)?),
        })
    }

    /// The record of `tree` (signed or published runs) with the greatest
    /// first index at or below `index` under `chain`.
    fn run_at_or_below(
        &self,
        tree: &sled::Tree,
        chain: &[u8; 36],
        index: u32,
    ) -> Result<Option<(sled::IVec, sled::IVec)>, ProtectionError> {
        let range = run_key(chain, 0)..=run_key(chain, index);
        tree.range(range).next_back().transpose().map_err(|e| self.db_err(e))
    }

    fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The signed run holding `index` of (origin, hook): its first index
    /// and record.
    fn signed_run_at(
        &self,
        chain: &[u8; 36],
        index: u32,
    ) -> Result<Option<(u32, sled::IVec)>, ProtectionError> {
        let Some((key, value)) = self.run_at_or_below(&self.signed, chain, index)? else {
            return Ok(None);
        };
        let (first, len) = signed_run(&key, &value)?;
        Ok((u64::from(index) < u64::from(first) + u64::from(len)).then_some((first, value)))
    }

    /// Checks `checkpoint` against the record and records it, durably,
    /// before the caller signs.
    pub fn check_and_record(
        &self,
        checkpoint: &CheckpointWithMessageId,
    ) -> Result<Verdict, ProtectionError> {
        let verdicts = self.check_and_record_all(std::slice::from_ref(checkpoint))?;
        Ok(verdicts[0])
    }

    /// Checks and records a whole batch in one sled batch and one flush:
    /// all are recorded, or (on any conflict) none. The indexes newly
    /// recorded are written as runs of consecutive ones.
    pub fn check_and_record_all(
        &self,
        batch: &[CheckpointWithMessageId],
    ) -> Result<Vec<Verdict>, ProtectionError> {
        let _writer = self.write_lock();
        let mut verdicts = Vec::with_capacity(batch.len());
        // A batch is one (origin, hook): its ranges are read once.
        let mut ranges: Option<([u8; 36], PrunedRanges)> = None;
        // The run the last lookup found (a batch is a window of
        // consecutive indexes, mostly in one run or in none).
        let mut run: Option<([u8; 36], u32, sled::IVec)> = None;
        let mut new: BTreeMap<([u8; 36], u32), [u8; 64]> = BTreeMap::new();
        for checkpoint in batch {
            let c = &checkpoint.checkpoint;
            let chain = chain_key(c.origin, c.merkle_tree_hook);
            let ranges = match &mut ranges {
                Some((key, ranges)) if *key == chain => ranges,
                slot => &slot.insert((chain, self.pruned(c.origin, c.merkle_tree_hook)?)).1,
            };
            if let Some((from, to)) = ranges.containing(c.index) {
                return Err(ProtectionError::Pruned { origin: c.origin, index: c.index, from, to });
            }
            let cached = match &run {
                Some((key, first, value)) if *key == chain => run_slot(*first, value, c.index),
                _ => None,
            };
            let existing = match cached {
                Some(slot) => Some(slot),
                None => match self.signed_run_at(&chain, c.index)? {
                    Some((first, value)) => {
                        let slot = run_slot(first, &value, c.index);
                        run = Some((chain, first, value));
                        slot
                    }
                    // Asked twice in this batch: the first is the record.
                    None => new.get(&(chain, c.index)).copied(),
                },
            };
            let value = record_value(c.root, checkpoint.message_id);
            verdicts.push(match existing {
                None => {
                    new.insert((chain, c.index), value);
                    Verdict::Recorded
                }
                Some(existing) if existing == value => Verdict::AlreadySigned,
                Some(existing) => return Err(conflict(checkpoint, &existing)),
            });
        }
        if !new.is_empty() {
            let mut writes = sled::Batch::default();
            for (chain, first, bytes) in runs_of(&new) {
                writes.insert(&run_key(&chain, first)[..], bytes);
            }
            self.signed.apply_batch(writes).map_err(|e| self.db_err(e))?;
            self.db.flush().map_err(|e| self.db_err(e))?;
        }
        Ok(verdicts)
    }

    /// Notes that the checkpoints at `indexes` reached storage. Published
    /// indexes are kept as runs: a record keyed by a run's first index holds
    /// its last (a window's group write publishes a run together, so a
    /// window is one record, not one per checkpoint, and the tree does not
    /// split a node every few inserts). A new run merges with the runs it
    /// touches, so runs stay disjoint and apart; a record with an empty
    /// value (an earlier validator's mark of one index) is a run of one.
    pub fn mark_published(
        &self,
        origin: u32,
        hook: B256,
        indexes: impl IntoIterator<Item = u32>,
    ) -> Result<(), ProtectionError> {
        let mut indexes: Vec<u32> = indexes.into_iter().collect();
        indexes.sort_unstable();
        indexes.dedup();
        for run in indexes.chunk_by(|a, b| a.checked_add(1) == Some(*b)) {
            let (mut first, mut last) = (run[0], run[run.len() - 1]);
            let mut batch = sled::Batch::default();
            // The run at or before `first` that reaches it, and the runs
            // that start within the new one or right after it.
            if let Some((f, l)) = self.published_run_at(origin, hook, first)?
                && l.saturating_add(1) >= first
            {
                batch.remove(&record_key(origin, hook, f)[..]);
                (first, last) = (f, last.max(l));
            }
            let after =
                record_key(origin, hook, first)..=record_key(origin, hook, last.saturating_add(1));
            for entry in self.published.range(after) {
                let (k, v) = entry.map_err(|e| self.db_err(e))?;
                let (_, l) = published_run(&k, &v)?;
                batch.remove(k);
                last = last.max(l);
            }
            batch.insert(&record_key(origin, hook, first)[..], &last.to_be_bytes()[..]);
            self.published.apply_batch(batch).map_err(|e| self.db_err(e))?;
        }
        Ok(())
    }

    /// The published run with the greatest first index at or below `index`.
    fn published_run_at(
        &self,
        origin: u32,
        hook: B256,
        index: u32,
    ) -> Result<Option<(u32, u32)>, ProtectionError> {
        match self.run_at_or_below(&self.published, &chain_key(origin, hook), index)? {
            Some((k, v)) => published_run(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Whether the checkpoint at `index` reached storage (everything in a
    /// pruned range did).
    pub fn is_published(
        &self,
        origin: u32,
        hook: B256,
        index: u32,
    ) -> Result<bool, ProtectionError> {
        if self.pruned(origin, hook)?.containing(index).is_some() {
            return Ok(true);
        }
        Ok(self.published_run_at(origin, hook, index)?.is_some_and(|(_, last)| index <= last))
    }

    /// The pruned ranges of (origin, hook).
    pub fn pruned(&self, origin: u32, hook: B256) -> Result<PrunedRanges, ProtectionError> {
        match self.pruned.get(chain_key(origin, hook)).map_err(|e| self.db_err(e))? {
            Some(v) => PrunedRanges::decode(&v),
            None => Ok(PrunedRanges::default()),
        }
    }

    /// The tree last saved by [`Self::save_frontier`].
    pub fn frontier(&self, origin: u32, hook: B256) -> Result<Option<MerkleTree>, ProtectionError> {
        let Some(v) = self.frontiers.get(chain_key(origin, hook)).map_err(|e| self.db_err(e))?
        else {
            return Ok(None);
        };
        let corrupt = || ProtectionError::Corrupt(format!("frontier of origin {origin}"));
        if v.len() != 8 + 32 * TREE_DEPTH {
            return Err(corrupt());
        }
        let count = u64::from_be_bytes(v[..8].try_into().map_err(|_| corrupt())?);
        let mut branch = [B256::ZERO; TREE_DEPTH];
        for (node, bytes) in branch.iter_mut().zip(v[8..].chunks_exact(32)) {
            *node = B256::from_slice(bytes);
        }
        MerkleTree::from_parts(branch, count).map(Some).map_err(|_| corrupt())
    }

    /// Saves `tree`, durably, as the tree to resume from: the caller has
    /// signed and published every leaf below its count.
    pub fn save_frontier(
        &self,
        origin: u32,
        hook: B256,
        tree: &MerkleTree,
    ) -> Result<(), ProtectionError> {
        let mut frontier = tree.count().to_be_bytes().to_vec();
        for node in tree.branch() {
            frontier.extend_from_slice(node.as_slice());
        }
        self.frontiers.insert(chain_key(origin, hook), frontier).map_err(|e| self.db_err(e))?;
        self.db.flush().map(drop).map_err(|e| self.db_err(e))
    }

    /// Replaces the records of `from..to` by the range (module docs): the
    /// caller has signed and published every index in it. The range is
    /// durable before any record in it is deleted.
    pub fn prune(
        &self,
        origin: u32,
        hook: B256,
        from: u32,
        to: u32,
    ) -> Result<(), ProtectionError> {
        if from >= to {
            return Ok(());
        }
        let _writer = self.write_lock();
        let key = chain_key(origin, hook);
        self.pruned
            .transaction(|pruned| {
                let mut ranges = tx_pruned(pruned, &key)?;
                ranges.insert(from, to);
                pruned.insert(&key[..], ranges.encode())?;
                Ok(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(source) => self.db_err(source),
            })?;
        self.db.flush().map_err(|e| self.db_err(e))?;
        let range = record_key(origin, hook, from)..record_key(origin, hook, to);
        // A published run that starts in the range and goes past it keeps
        // its part past the range, as a run of its own.
        if let Some((f, last)) = self.published_run_at(origin, hook, to - 1)?
            && f >= from
            && last >= to
        {
            self.published
                .insert(&record_key(origin, hook, to)[..], &last.to_be_bytes()[..])
                .map_err(|e| self.db_err(e))?;
        }
        loop {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for entry in self.published.range(range.clone()).keys().take(PRUNE_BATCH) {
                batch.remove(entry.map_err(|e| self.db_err(e))?);
                n += 1;
            }
            if n == 0 {
                break;
            }
            self.published.apply_batch(batch).map_err(|e| self.db_err(e))?;
        }
        self.prune_signed(&key, from, to)
    }

    /// Deletes the signed records of `from..to`: runs starting in it go,
    /// each keeping its part past the range as a run at `to` (in the same
    /// sled batch), and a run reaching into it from below keeps its parts
    /// before and past it, so no index outside the range loses its record
    /// at any point.
    fn prune_signed(&self, chain: &[u8; 36], from: u32, to: u32) -> Result<(), ProtectionError> {
        let tail = |first: u32, value: &[u8]| {
            let at = (to - first) as usize * 64;
            (at < value.len()).then(|| value[at..].to_vec())
        };
        let range = run_key(chain, from)..run_key(chain, to);
        loop {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for entry in self.signed.range(range.clone()).take(PRUNE_BATCH) {
                let (key, value) = entry.map_err(|e| self.db_err(e))?;
                let (first, _) = signed_run(&key, &value)?;
                if let Some(rest) = tail(first, &value) {
                    batch.insert(&run_key(chain, to)[..], rest);
                }
                batch.remove(key);
                n += 1;
            }
            if n == 0 {
                break;
            }
            self.signed.apply_batch(batch).map_err(|e| self.db_err(e))?;
        }
        if let Some(below) = from.checked_sub(1)
            && let Some((first, value)) = self.signed_run_at(chain, below)?
        {
            let mut batch = sled::Batch::default();
            if let Some(rest) = tail(first, &value) {
                batch.insert(&run_key(chain, to)[..], rest);
            }
            let head = (from - first) as usize * 64;
            if head < value.len() {
                batch.insert(&run_key(chain, first)[..], &value[..head]);
                self.signed.apply_batch(batch).map_err(|e| self.db_err(e))?;
            }
        }
        Ok(())
    }

    /// The (root, message id) recorded for an index, if any.
    pub fn recorded(
        &self,
        origin: u32,
        hook: B256,
        index: u32,
    ) -> Result<Option<(B256, B256)>, ProtectionError> {
        let chain = chain_key(origin, hook);
        let Some((first, value)) = self.signed_run_at(&chain, index)? else { return Ok(None) };
        let slot = run_slot(first, &value, index)
            .ok_or_else(|| ProtectionError::Corrupt(format!("origin {origin} index {index}")))?;
        Ok(Some((B256::from_slice(&slot[..32]), B256::from_slice(&slot[32..]))))
    }

    /// Every record, for export.
    pub fn export(&self, validator: Address) -> Result<Interchange, ProtectionError> {
        let mut records = Vec::new();
        for entry in self.signed.iter() {
            let (k, v) = entry.map_err(|e| self.db_err(e))?;
            let (first, _) = signed_run(&k, &v)?;
            for (index, slot) in (first..=u32::MAX).zip(v.chunks_exact(64)) {
                records.push(SignedRecord {
                    origin: u32::from_be_bytes([k[0], k[1], k[2], k[3]]),
                    merkle_tree_hook: B256::from_slice(&k[4..36]),
                    index,
                    root: B256::from_slice(&slot[..32]),
                    message_id: B256::from_slice(&slot[32..]),
                });
            }
        }
        let mut pruned = Vec::new();
        for entry in self.pruned.iter() {
            let (k, v) = entry.map_err(|e| self.db_err(e))?;
            if k.len() != 36 {
                return Err(ProtectionError::Corrupt(alloy::hex::encode(&k)));
            }
            for &(from, to) in PrunedRanges::decode(&v)?.ranges() {
                pruned.push(PrunedRange {
                    origin: u32::from_be_bytes([k[0], k[1], k[2], k[3]]),
                    merkle_tree_hook: B256::from_slice(&k[4..]),
                    from,
                    to,
                });
            }
        }
        Ok(Interchange {
            interchange_format_version: INTERCHANGE_VERSION.into(),
            validator,
            records,
            pruned,
        })
    }

    /// Merges an exported record into this one, all or nothing: refused if
    /// it is for another validator, of another version, or contradicts a
    /// record already here. Returns how many records were new.
    pub fn import(
        &self,
        validator: Address,
        interchange: &Interchange,
    ) -> Result<usize, ProtectionError> {
        if interchange.interchange_format_version != INTERCHANGE_VERSION {
            return Err(ProtectionError::Interchange(format!(
                "format version {:?} is not {INTERCHANGE_VERSION:?}",
                interchange.interchange_format_version
            )));
        }
        if interchange.validator != validator {
            return Err(ProtectionError::Interchange(format!(
                "the file is for validator {}, this key is {validator}",
                interchange.validator
            )));
        }
        let _writer = self.write_lock();
        // Everything is checked before anything is written.
        let mut ranges: HashMap<[u8; 36], PrunedRanges> = HashMap::new();
        for p in &interchange.pruned {
            self.ranges_in(&mut ranges, p.origin, p.merkle_tree_hook)?.insert(p.from, p.to);
        }
        let mut new: BTreeMap<([u8; 36], u32), [u8; 64]> = BTreeMap::new();
        for r in &interchange.records {
            let chain = chain_key(r.origin, r.merkle_tree_hook);
            // Inside a pruned range everything is refused anyway.
            if self
                .ranges_in(&mut ranges, r.origin, r.merkle_tree_hook)?
                .containing(r.index)
                .is_some()
            {
                continue;
            }
            let existing = match self.signed_run_at(&chain, r.index)? {
                Some((first, value)) => run_slot(first, &value, r.index),
                None => new.get(&(chain, r.index)).copied(),
            };
            let value = record_value(r.root, r.message_id);
            match existing {
                None => drop(new.insert((chain, r.index), value)),
                Some(existing) if existing == value => {}
                Some(_) => {
                    return Err(ProtectionError::Interchange(format!(
                        "record for origin {} index {} conflicts with the one already here",
                        r.origin, r.index
                    )));
                }
            }
        }
        // The ranges first: a crash before the records leaves more refused,
        // never less.
        let mut pruned = sled::Batch::default();
        for p in &interchange.pruned {
            let key = chain_key(p.origin, p.merkle_tree_hook);
            if let Some(r) = ranges.get(&key) {
                pruned.insert(&key[..], r.encode());
            }
        }
        self.pruned.apply_batch(pruned).map_err(|e| self.db_err(e))?;
        let mut records = sled::Batch::default();
        for (chain, first, bytes) in runs_of(&new) {
            records.insert(&run_key(&chain, first)[..], bytes);
        }
        self.signed.apply_batch(records).map_err(|e| self.db_err(e))?;
        self.db.flush().map_err(|e| self.db_err(e))?;
        Ok(new.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalayer_protocol::Checkpoint;

    fn checkpoint(index: u32, root: u8) -> CheckpointWithMessageId {
        CheckpointWithMessageId {
            checkpoint: Checkpoint {
                merkle_tree_hook: B256::repeat_byte(0xaa),
                origin: 7,
                root: B256::repeat_byte(root),
                index,
            },
            message_id: B256::repeat_byte(index as u8),
        }
    }

    #[test]
    fn same_value_is_allowed_again_a_different_one_never() {
        let dir = tempfile::tempdir().unwrap();
        let p = SigningProtection::open(dir.path()).unwrap();
        assert_eq!(p.check_and_record(&checkpoint(3, 1)).unwrap(), Verdict::Recorded);
        assert_eq!(p.check_and_record(&checkpoint(3, 1)).unwrap(), Verdict::AlreadySigned);
        assert!(matches!(
            p.check_and_record(&checkpoint(3, 2)),
            Err(ProtectionError::Conflict(c)) if c.index == 3
        ));
        assert_eq!(p.check_and_record(&checkpoint(4, 2)).unwrap(), Verdict::Recorded);
    }

    #[test]
    fn the_record_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        SigningProtection::open(dir.path()).unwrap().check_and_record(&checkpoint(1, 1)).unwrap();
        let p = SigningProtection::open(dir.path()).unwrap();
        assert!(p.check_and_record(&checkpoint(1, 9)).is_err());
        assert_eq!(
            p.recorded(7, B256::repeat_byte(0xaa), 1).unwrap(),
            Some((B256::repeat_byte(1), B256::repeat_byte(1)))
        );
    }

    #[test]
    fn pruned_ranges_merge_and_answer_membership() {
        let mut r = PrunedRanges::default();
        r.insert(10, 20);
        r.insert(30, 40);
        r.insert(5, 5);
        assert_eq!(r.ranges(), [(10, 20), (30, 40)]);
        assert_eq!(r.containing(19), Some((10, 20)));
        assert_eq!(r.containing(20), None);
        assert_eq!(r.containing(9), None);
        r.insert(20, 30);
        assert_eq!(r.ranges(), [(10, 40)], "touching ranges merge");
        r.insert(0, 12);
        r.insert(50, 60);
        assert_eq!(r.ranges(), [(0, 40), (50, 60)]);
        assert_eq!(PrunedRanges::decode(&r.encode()).unwrap(), r);
        assert!(PrunedRanges::decode(&[0; 7]).is_err());
        let overlapping = [0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 9];
        assert!(PrunedRanges::decode(&overlapping).is_err());
    }

    #[test]
    fn published_marks_name_exactly_the_indexes_given_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let hook = B256::repeat_byte(0xaa);
        SigningProtection::open(dir.path()).unwrap().mark_published(7, hook, [3, 5, 9]).unwrap();
        let p = SigningProtection::open(dir.path()).unwrap();
        for (index, published) in [(3, true), (4, false), (5, true), (9, true), (10, false)] {
            assert_eq!(p.is_published(7, hook, index).unwrap(), published, "index {index}");
        }
        assert!(!p.is_published(8, hook, 3).unwrap(), "another origin");
    }

    #[test]
    fn published_runs_merge_and_answer_for_every_index_in_them() {
        let dir = tempfile::tempdir().unwrap();
        let hook = B256::repeat_byte(0xaa);
        let p = SigningProtection::open(dir.path()).unwrap();
        // Windows arrive newest first, in pieces, and touch one another.
        p.mark_published(7, hook, (20..30).rev()).unwrap();
        p.mark_published(7, hook, [10, 11, 12]).unwrap();
        p.mark_published(7, hook, [13, 14, 40]).unwrap();
        p.mark_published(7, hook, 30..35).unwrap();
        p.mark_published(7, hook, [15, 16, 17, 18, 19]).unwrap();
        p.mark_published(7, hook, [u32::MAX]).unwrap();
        let published = |i| p.is_published(7, hook, i).unwrap();
        assert!((10..35).all(published));
        assert!(published(40) && published(u32::MAX));
        assert!(![0, 9, 35, 39, 41, u32::MAX - 1].into_iter().any(published));
        // Merged: 10..=34 is one record, 40 and u32::MAX one each.
        assert_eq!(p.published.len(), 3);
        // A run that ends before it starts is refused as corrupt.
        p.published.insert(&record_key(7, hook, 45)[..], &44u32.to_be_bytes()[..]).unwrap();
        assert!(matches!(p.is_published(7, hook, 46), Err(ProtectionError::Corrupt(_))));
        p.published.remove(&record_key(7, hook, 45)[..]).unwrap();
        // A mark written one index at a time by an earlier validator.
        p.published.insert(&record_key(7, hook, 50)[..], &[]).unwrap();
        assert!(published(50) && !published(51));
        p.mark_published(7, hook, [51]).unwrap();
        assert!(published(50) && published(51) && !published(52));
        // Pruning the start of a run keeps the rest of it published.
        p.prune(7, hook, 10, 20).unwrap();
        assert!((10..35).all(published));
        assert_eq!(p.published_run_at(7, hook, 25).unwrap(), Some((20, 34)));
        assert_eq!(p.published_run_at(7, hook, 15).unwrap(), None, "the pruned range answers");
    }

    #[test]
    fn pruning_replaces_records_by_ranges_that_refuse_everything_in_them() {
        let dir = tempfile::tempdir().unwrap();
        let hook = B256::repeat_byte(0xaa);
        let mut tree = MerkleTree::new();
        {
            let p = SigningProtection::open(dir.path()).unwrap();
            for i in 0..300 {
                tree.insert(B256::repeat_byte(i as u8)).unwrap();
                p.check_and_record(&checkpoint(i, 1)).unwrap();
                p.mark_published(7, hook, [i]).unwrap();
            }
            assert_eq!(p.frontier(7, hook).unwrap(), None);
            p.prune(7, hook, 200, 290).unwrap();
            p.save_frontier(7, hook, &tree).unwrap();
        }
        let p = SigningProtection::open(dir.path()).unwrap();
        assert_eq!(p.frontier(7, hook).unwrap(), Some(tree.clone()));
        assert_eq!(p.pruned(7, hook).unwrap().ranges(), [(200, 290)]);
        assert_eq!(p.pruned(8, hook).unwrap().ranges(), [], "other origins have their own");
        assert_eq!(p.recorded(7, hook, 289).unwrap(), None, "pruned");
        assert!(p.recorded(7, hook, 290).unwrap().is_some(), "kept");
        assert!(p.recorded(7, hook, 199).unwrap().is_some(), "kept");
        assert!(p.is_published(7, hook, 250).unwrap());
        // In a pruned range: refused whatever the value, even the one signed.
        for root in [1, 2] {
            assert!(matches!(
                p.check_and_record(&checkpoint(289, root)),
                Err(ProtectionError::Pruned { index: 289, from: 200, to: 290, .. })
            ));
        }
        assert_eq!(p.check_and_record(&checkpoint(199, 1)).unwrap(), Verdict::AlreadySigned);
        assert_eq!(p.check_and_record(&checkpoint(300, 1)).unwrap(), Verdict::Recorded);
        p.prune(7, hook, 0, 200).unwrap();
        assert_eq!(p.pruned(7, hook).unwrap().ranges(), [(0, 290)]);
        // The ranges travel with an export, and the import refuses inside them.
        let validator = Address::repeat_byte(1);
        let exported = p.export(validator).unwrap();
        assert_eq!(exported.records.len(), 11);
        assert_eq!(
            exported.pruned,
            vec![PrunedRange { origin: 7, merkle_tree_hook: hook, from: 0, to: 290 }]
        );
        let other = tempfile::tempdir().unwrap();
        let q = SigningProtection::open(other.path()).unwrap();
        q.check_and_record(&checkpoint(3, 9)).unwrap();
        assert_eq!(q.import(validator, &exported).unwrap(), 11);
        assert!(matches!(
            q.check_and_record(&checkpoint(100, 1)),
            Err(ProtectionError::Pruned { from: 0, to: 290, .. })
        ));
    }

    #[test]
    fn a_window_is_one_record_and_every_index_in_it_answers() {
        let dir = tempfile::tempdir().unwrap();
        let hook = B256::repeat_byte(0xaa);
        let p = SigningProtection::open(dir.path()).unwrap();
        // A window, newest first, as the validator signs it: one run.
        let window: Vec<_> = (10..20).rev().map(|i| checkpoint(i, 1)).collect();
        let verdicts = p.check_and_record_all(&window).unwrap();
        assert!(verdicts.iter().all(|v| *v == Verdict::Recorded));
        assert_eq!(p.signed.len(), 1, "one record for the window");
        for i in 10..20 {
            let expected = (B256::repeat_byte(1), B256::repeat_byte(i as u8));
            assert_eq!(p.recorded(7, hook, i).unwrap(), Some(expected), "index {i}");
        }
        assert_eq!(p.recorded(7, hook, 9).unwrap(), None);
        assert_eq!(p.recorded(7, hook, 20).unwrap(), None);
        let again = p.check_and_record_all(&window).unwrap();
        assert!(again.iter().all(|v| *v == Verdict::AlreadySigned));
        // Another root inside the run is refused, with nothing of its batch kept.
        let mixed = [checkpoint(20, 1), checkpoint(15, 2)];
        assert!(matches!(
            p.check_and_record_all(&mixed),
            Err(ProtectionError::Conflict(c)) if c.index == 15 && c.signed_root == B256::repeat_byte(1)
        ));
        assert_eq!(p.recorded(7, hook, 20).unwrap(), None, "nothing of a refused batch");
        // An index asked twice in one batch: the first is the record.
        let twice = [checkpoint(25, 1), checkpoint(25, 2)];
        assert!(matches!(p.check_and_record_all(&twice), Err(ProtectionError::Conflict(_))));
        // An earlier validator's record of one index is a run of one.
        let old = record_value(B256::repeat_byte(3), B256::repeat_byte(30));
        p.signed.insert(&record_key(7, hook, 30)[..], &old[..]).unwrap();
        assert_eq!(p.check_and_record(&checkpoint(30, 3)).unwrap(), Verdict::AlreadySigned);
        assert!(p.check_and_record(&checkpoint(30, 4)).is_err());
        assert_eq!(p.check_and_record(&checkpoint(31, 3)).unwrap(), Verdict::Recorded);
        // Pruning the middle of a run keeps both of its ends.
        p.prune(7, hook, 12, 15).unwrap();
        for i in (10..12).chain(15..20) {
            assert!(p.recorded(7, hook, i).unwrap().is_some(), "index {i} kept");
        }
        for i in 12..15 {
            assert_eq!(p.recorded(7, hook, i).unwrap(), None, "index {i} pruned");
        }
        // Pruning from inside one run to inside the next.
        p.prune(7, hook, 16, 31).unwrap();
        assert!(p.recorded(7, hook, 15).unwrap().is_some());
        assert!(p.recorded(7, hook, 31).unwrap().is_some());
        assert_eq!(p.recorded(7, hook, 30).unwrap(), None);
        // [10, 12), [15, 16) and 31 are left; an export lists every index.
        assert_eq!(p.signed.len(), 3);
        let exported = p.export(Address::repeat_byte(1)).unwrap();
        let indexes: Vec<u32> = exported.records.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [10, 11, 15, 31]);
        // A record that is not whole 64-byte slots is corrupt.
        p.signed.insert(&record_key(7, hook, 40)[..], &[0u8; 65][..]).unwrap();
        assert!(matches!(p.recorded(7, hook, 40), Err(ProtectionError::Corrupt(_))));
    }

    #[test]
    fn concurrent_conflicting_requests_let_exactly_one_through() {
        let dir = tempfile::tempdir().unwrap();
        let p = SigningProtection::open(dir.path()).unwrap();
        let outcomes: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..10u8)
                .map(|root| {
                    let p = p.clone();
                    s.spawn(move || p.check_and_record(&checkpoint(5, root + 1)).is_ok())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
    }

    #[test]
    fn export_import_round_trip_and_conflicts_are_refused_whole() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let validator = Address::repeat_byte(1);
        let pa = SigningProtection::open(a.path()).unwrap();
        pa.check_and_record(&checkpoint(1, 1)).unwrap();
        pa.check_and_record(&checkpoint(2, 1)).unwrap();
        let exported = pa.export(validator).unwrap();
        let json = serde_json::to_string(&exported).unwrap();
        let parsed: Interchange = serde_json::from_str(&json).unwrap();
        let pb = SigningProtection::open(b.path()).unwrap();
        pb.check_and_record(&checkpoint(3, 1)).unwrap();
        assert_eq!(pb.import(validator, &parsed).unwrap(), 2);
        assert_eq!(pb.import(validator, &parsed).unwrap(), 0);
        assert!(pb.check_and_record(&checkpoint(2, 5)).is_err());
        assert!(pb.import(Address::repeat_byte(2), &parsed).is_err());
        let c = tempfile::tempdir().unwrap();
        let pc = SigningProtection::open(c.path()).unwrap();
        pc.check_and_record(&checkpoint(2, 9)).unwrap();
        assert!(pc.import(validator, &parsed).is_err());
        assert_eq!(
            pc.recorded(7, B256::repeat_byte(0xaa), 1).unwrap(),
            None,
            "nothing of a refused import is kept"
        );
    }
}
