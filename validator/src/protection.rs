//! Double-sign protection: a validator never signs two different checkpoints
//! for the same (origin, merkle tree hook, index).
//!
//! Before a signature leaves the process, [`SigningProtection::check_and_record`]
//! looks the index up and records the (root, message id) it is about to sign
//! in one sled transaction, then flushes to disk. A request for an index
//! already recorded with the same value is allowed (re-publishing the same
//! checkpoint is harmless); one with a different value is refused and
//! counted. Because the record is durable before the signature exists, a
//! crash at any point can at worst leave a record without a published
//! signature, never a signature without a record.
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

use std::path::Path;

use metalayer_protocol::{
    Address, B256, CheckpointWithMessageId,
    merkle::{MerkleTree, TREE_DEPTH},
};
use serde::{Deserialize, Serialize};
use sled::{
    Transactional,
    transaction::{ConflictableTransactionError, TransactionError},
};

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
    let mut key = [0u8; 40];
    key[..4].copy_from_slice(&origin.to_be_bytes());
    key[4..36].copy_from_slice(hook.as_slice());
    key[36..].copy_from_slice(&index.to_be_bytes());
    key
}

/// A published run's (first, last) index from its record.
fn published_run(key: &[u8], value: &[u8]) -> Result<(u32, u32), ProtectionError> {
    let corrupt = || ProtectionError::Corrupt(format!("published run {}", alloy::hex::encode(key)));
    let first = key.get(36..40).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
    let first = first.ok_or_else(corrupt)?;
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
        Ok(Self { path: name, db, signed, published, pruned, frontiers })
    }

    fn db_err(&self, source: sled::Error) -> ProtectionError {
        ProtectionError::Db { path: self.path.clone(), source }
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

    /// Checks and records a whole batch in one transaction and one flush:
    /// all are recorded, or (on any conflict) none.
    pub fn check_and_record_all(
        &self,
        batch: &[CheckpointWithMessageId],
    ) -> Result<Vec<Verdict>, ProtectionError> {
        let verdicts = (&self.signed, &self.pruned)
            .transaction(|(tx, pruned)| {
                let mut verdicts = Vec::with_capacity(batch.len());
                // A batch is one (origin, hook): its ranges are read once.
                let mut ranges: Option<([u8; 36], PrunedRanges)> = None;
                for checkpoint in batch {
                    let c = &checkpoint.checkpoint;
                    let chain = chain_key(c.origin, c.merkle_tree_hook);
                    let ranges = match &mut ranges {
                        Some((key, ranges)) if *key == chain => ranges,
                        slot => &slot.insert((chain, tx_pruned(pruned, &chain)?)).1,
                    };
                    if let Some((from, to)) = ranges.containing(c.index) {
                        return Err(ConflictableTransactionError::Abort(ProtectionError::Pruned {
                            origin: c.origin,
                            index: c.index,
                            from,
                            to,
                        }));
                    }
                    let key = record_key(c.origin, c.merkle_tree_hook, c.index);
                    let value = record_value(c.root, checkpoint.message_id);
                    let verdict = match tx.get(key)? {
                        None => {
                            tx.insert(&key[..], &value[..])?;
                            Verdict::Recorded
                        }
                        Some(existing) if existing.as_ref() == value => Verdict::AlreadySigned,
                        Some(existing) if existing.len() == 64 => {
                            return Err(ConflictableTransactionError::Abort(
                                ProtectionError::Conflict(Box::new(Conflict {
                                    origin: c.origin,
                                    index: c.index,
                                    signed_root: B256::from_slice(&existing[..32]),
                                    signed_message_id: B256::from_slice(&existing[32..]),
                                    root: c.root,
                                    message_id: checkpoint.message_id,
                                })),
                            ));
                        }
                        Some(_) => {
                            return Err(ConflictableTransactionError::Abort(
                                ProtectionError::Corrupt(format!(
                                    "origin {} index {}",
                                    c.origin, c.index
                                )),
                            ));
                        }
                    };
                    verdicts.push(verdict);
                }
                Ok(verdicts)
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(source) => self.db_err(source),
            })?;
        if verdicts.contains(&Verdict::Recorded) {
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
        let range = record_key(origin, hook, 0)..=record_key(origin, hook, index);
        match self.published.range(range).next_back() {
            Some(entry) => {
                let (k, v) = entry.map_err(|e| self.db_err(e))?;
                published_run(&k, &v).map(Some)
            }
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
        for tree in [&self.signed, &self.published] {
            loop {
                let mut batch = sled::Batch::default();
                let mut n = 0;
                for entry in tree.range(range.clone()).keys().take(PRUNE_BATCH) {
                    batch.remove(entry.map_err(|e| self.db_err(e))?);
                    n += 1;
                }
                if n == 0 {
                    break;
                }
                tree.apply_batch(batch).map_err(|e| self.db_err(e))?;
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
        let Some(v) =
            self.signed.get(record_key(origin, hook, index)).map_err(|e| self.db_err(e))?
        else {
            return Ok(None);
        };
        if v.len() != 64 {
            return Err(ProtectionError::Corrupt(format!("origin {origin} index {index}")));
        }
        Ok(Some((B256::from_slice(&v[..32]), B256::from_slice(&v[32..]))))
    }

    /// Every record, for export.
    pub fn export(&self, validator: Address) -> Result<Interchange, ProtectionError> {
        let mut records = Vec::new();
        for entry in self.signed.iter() {
            let (k, v) = entry.map_err(|e| self.db_err(e))?;
            if k.len() != 40 || v.len() != 64 {
                return Err(ProtectionError::Corrupt(alloy::hex::encode(&k)));
            }
            records.push(SignedRecord {
                origin: u32::from_be_bytes([k[0], k[1], k[2], k[3]]),
                merkle_tree_hook: B256::from_slice(&k[4..36]),
                index: u32::from_be_bytes([k[36], k[37], k[38], k[39]]),
                root: B256::from_slice(&v[..32]),
                message_id: B256::from_slice(&v[32..]),
            });
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
        let added = (&self.signed, &self.pruned)
            .transaction(|(tx, pruned)| {
                let mut added = 0;
                for p in &interchange.pruned {
                    let key = chain_key(p.origin, p.merkle_tree_hook);
                    let mut ranges = tx_pruned(pruned, &key)?;
                    ranges.insert(p.from, p.to);
                    pruned.insert(&key[..], ranges.encode())?;
                }
                for r in &interchange.records {
                    // Inside a pruned range everything is refused anyway.
                    let key = chain_key(r.origin, r.merkle_tree_hook);
                    if tx_pruned(pruned, &key)?.containing(r.index).is_some() {
                        continue;
                    }
                    let key = record_key(r.origin, r.merkle_tree_hook, r.index);
                    let value = record_value(r.root, r.message_id);
                    match tx.get(key)? {
                        None => {
                            tx.insert(&key[..], &value[..])?;
                            added += 1;
                        }
                        Some(existing) if existing.as_ref() == value => {}
                        Some(_) => {
                            return Err(ConflictableTransactionError::Abort(ProtectionError::Interchange(format!(
                                "record for origin {} index {} conflicts with the one already here",
                                r.origin, r.index
                            ))));
                        }
                    }
                }
                Ok(added)
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(source) => self.db_err(source),
            })?;
        self.db.flush().map_err(|e| self.db_err(e))?;
        Ok(added)
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
