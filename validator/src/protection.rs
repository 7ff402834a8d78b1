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
//! without end (and sled's memory with it). Once every leaf below a count is
//! signed and published, [`SigningProtection::prune`] saves the tree as it
//! stands there (the *frontier* the validator resumes from), raises a
//! per-(origin, hook) *floor* a number of leaves below it, and only then
//! deletes the records under the floor. A request below the floor is refused
//! whatever its value, as lighthouse's minimal slashing protection refuses
//! anything at or below its watermark: the validator resumes from the
//! frontier and never asks for those indexes again, so refusing is never
//! wrong, and a record cannot be lost without the floor that replaces it.

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
    /// The index is below the pruned floor: signed and published long ago.
    #[error(
        "refusing to sign origin {origin} index {index}: every index below {floor} was signed, \
         published and its record pruned; the validator never signs there again"
    )]
    BelowFloor {
        /// Origin domain.
        origin: u32,
        /// Leaf index asked for.
        index: u32,
        /// The floor.
        floor: u32,
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
    /// Pruned floors: below each, every index was signed and is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub floors: Vec<Floor>,
}

/// Below `floor`, every index of (origin, hook) was signed and is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floor {
    /// Origin domain.
    pub origin: u32,
    /// The merkle tree hook in 32-byte form.
    pub merkle_tree_hook: B256,
    /// The lowest index that may still be signed.
    pub floor: u32,
}

/// The durable double-sign protection record.
#[derive(Debug, Clone)]
pub struct SigningProtection {
    path: String,
    db: sled::Db,
    signed: sled::Tree,
    /// Indexes whose signed checkpoint reached storage: progress only, not
    /// safety (losing a marker re-publishes the same checkpoint).
    published: sled::Tree,
    /// origin ‖ hook → be32 floor (module docs, Pruning).
    floors: sled::Tree,
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

fn parse_floor(v: &[u8]) -> Result<u32, ProtectionError> {
    v.try_into()
        .map(u32::from_be_bytes)
        .map_err(|_| ProtectionError::Corrupt(format!("floor of {} bytes", v.len())))
}

fn record_key(origin: u32, hook: B256, index: u32) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..4].copy_from_slice(&origin.to_be_bytes());
    key[4..36].copy_from_slice(hook.as_slice());
    key[36..].copy_from_slice(&index.to_be_bytes());
    key
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
        let db = sled::Config::new()
            .path(path)
            // Records are appended and read back at once: a small cache
            // (sled's real footprint is a few times this figure).
            .cache_capacity(512 << 10)
            .open()
            .map_err(|source| ProtectionError::Db { path: name.clone(), source })?;
        let tree = |t: &str| {
            db.open_tree(t).map_err(|source| ProtectionError::Db { path: name.clone(), source })
        };
        let signed = tree("signed_checkpoints")?;
        let published = tree("published_checkpoints")?;
        let floors = tree("pruned_floors")?;
        let frontiers = tree("frontiers")?;
        Ok(Self { path: name, db, signed, published, floors, frontiers })
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
        let verdicts = (&self.signed, &self.floors)
            .transaction(|(tx, floors)| {
                let mut verdicts = Vec::with_capacity(batch.len());
                for checkpoint in batch {
                    let c = &checkpoint.checkpoint;
                    let floor = match floors.get(chain_key(c.origin, c.merkle_tree_hook))? {
                        Some(v) => parse_floor(&v).map_err(ConflictableTransactionError::Abort)?,
                        None => 0,
                    };
                    if c.index < floor {
                        return Err(ConflictableTransactionError::Abort(
                            ProtectionError::BelowFloor { origin: c.origin, index: c.index, floor },
                        ));
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

    /// Notes that the checkpoint at `index` reached storage.
    pub fn mark_published(
        &self,
        origin: u32,
        hook: B256,
        index: u32,
    ) -> Result<(), ProtectionError> {
        self.published
            .insert(record_key(origin, hook, index), &[])
            .map(drop)
            .map_err(|e| self.db_err(e))
    }

    /// Whether the checkpoint at `index` reached storage (everything below
    /// the floor did).
    pub fn is_published(
        &self,
        origin: u32,
        hook: B256,
        index: u32,
    ) -> Result<bool, ProtectionError> {
        if index < self.floor(origin, hook)? {
            return Ok(true);
        }
        self.published.contains_key(record_key(origin, hook, index)).map_err(|e| self.db_err(e))
    }

    /// The pruned floor of (origin, hook): 0 until something is pruned.
    pub fn floor(&self, origin: u32, hook: B256) -> Result<u32, ProtectionError> {
        match self.floors.get(chain_key(origin, hook)).map_err(|e| self.db_err(e))? {
            Some(v) => parse_floor(&v),
            None => Ok(0),
        }
    }

    /// The tree saved by the last [`Self::prune`]: every leaf below its
    /// count was signed and published.
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

    /// Called once every leaf below `tree.count()` is signed and published:
    /// saves `tree` as the frontier, raises the floor to `retain` leaves
    /// below it (never lowers it), flushes, then deletes the records and
    /// publication marks under the floor. Returns the floor.
    pub fn prune(
        &self,
        origin: u32,
        hook: B256,
        tree: &MerkleTree,
        retain: u32,
    ) -> Result<u32, ProtectionError> {
        let key = chain_key(origin, hook);
        let mut frontier = tree.count().to_be_bytes().to_vec();
        for node in tree.branch() {
            frontier.extend_from_slice(node.as_slice());
        }
        let target =
            u32::try_from(tree.count().saturating_sub(u64::from(retain))).unwrap_or(u32::MAX);
        let floor = (&self.frontiers, &self.floors)
            .transaction(|(frontiers, floors)| {
                let current = match floors.get(key)? {
                    Some(v) => parse_floor(&v).map_err(ConflictableTransactionError::Abort)?,
                    None => 0,
                };
                let floor = current.max(target);
                frontiers.insert(&key[..], frontier.as_slice())?;
                floors.insert(&key[..], &floor.to_be_bytes())?;
                Ok(floor)
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(source) => self.db_err(source),
            })?;
        // The floor is durable before any record under it goes.
        self.db.flush().map_err(|e| self.db_err(e))?;
        let range = record_key(origin, hook, 0)..record_key(origin, hook, floor);
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
        Ok(floor)
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
        let mut floors = Vec::new();
        for entry in self.floors.iter() {
            let (k, v) = entry.map_err(|e| self.db_err(e))?;
            if k.len() != 36 {
                return Err(ProtectionError::Corrupt(alloy::hex::encode(&k)));
            }
            floors.push(Floor {
                origin: u32::from_be_bytes([k[0], k[1], k[2], k[3]]),
                merkle_tree_hook: B256::from_slice(&k[4..]),
                floor: parse_floor(&v)?,
            });
        }
        Ok(Interchange {
            interchange_format_version: INTERCHANGE_VERSION.into(),
            validator,
            records,
            floors,
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
        let added = (&self.signed, &self.floors)
            .transaction(|(tx, floors)| {
                let mut added = 0;
                let floor_of = |origin, hook| -> Result<u32, ConflictableTransactionError<_>> {
                    match floors.get(chain_key(origin, hook))? {
                        Some(v) => parse_floor(&v).map_err(ConflictableTransactionError::Abort),
                        None => Ok(0),
                    }
                };
                for f in &interchange.floors {
                    let floor = floor_of(f.origin, f.merkle_tree_hook)?.max(f.floor);
                    floors.insert(&chain_key(f.origin, f.merkle_tree_hook)[..], &floor.to_be_bytes())?;
                }
                for r in &interchange.records {
                    // Below a floor everything is refused anyway.
                    if r.index < floor_of(r.origin, r.merkle_tree_hook)? {
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
    fn pruning_keeps_the_frontier_and_refuses_everything_below_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let hook = B256::repeat_byte(0xaa);
        let mut tree = MerkleTree::new();
        {
            let p = SigningProtection::open(dir.path()).unwrap();
            for i in 0..300 {
                tree.insert(B256::repeat_byte(i as u8)).unwrap();
                p.check_and_record(&checkpoint(i, 1)).unwrap();
                p.mark_published(7, hook, i).unwrap();
            }
            assert_eq!(p.frontier(7, hook).unwrap(), None);
            assert_eq!(p.prune(7, hook, &tree, 10).unwrap(), 290);
            // A floor never goes down.
            assert_eq!(p.prune(7, hook, &tree, 100).unwrap(), 290);
        }
        let p = SigningProtection::open(dir.path()).unwrap();
        assert_eq!(p.frontier(7, hook).unwrap(), Some(tree.clone()));
        assert_eq!(p.floor(7, hook).unwrap(), 290);
        assert_eq!(p.floor(8, hook).unwrap(), 0, "other origins have their own floor");
        assert_eq!(p.recorded(7, hook, 289).unwrap(), None, "pruned");
        assert!(p.recorded(7, hook, 290).unwrap().is_some(), "retained");
        assert!(p.is_published(7, hook, 5).unwrap());
        // Below the floor: refused whatever the value, even the one signed.
        for root in [1, 2] {
            assert!(matches!(
                p.check_and_record(&checkpoint(289, root)),
                Err(ProtectionError::BelowFloor { index: 289, floor: 290, .. })
            ));
        }
        assert_eq!(p.check_and_record(&checkpoint(290, 1)).unwrap(), Verdict::AlreadySigned);
        assert_eq!(p.check_and_record(&checkpoint(300, 1)).unwrap(), Verdict::Recorded);
        // The floor travels with an export, and the import refuses below it.
        let validator = Address::repeat_byte(1);
        let exported = p.export(validator).unwrap();
        assert_eq!(exported.records.len(), 11);
        assert_eq!(exported.floors, vec![Floor { origin: 7, merkle_tree_hook: hook, floor: 290 }]);
        let other = tempfile::tempdir().unwrap();
        let q = SigningProtection::open(other.path()).unwrap();
        q.check_and_record(&checkpoint(3, 9)).unwrap();
        assert_eq!(q.import(validator, &exported).unwrap(), 11);
        assert!(matches!(
            q.check_and_record(&checkpoint(100, 1)),
            Err(ProtectionError::BelowFloor { floor: 290, .. })
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
