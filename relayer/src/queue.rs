//! The relayer's queues in sled: the one place that owns their schema.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `ops` | be32 origin ‖ be32 nonce ‖ message id | [`PendingOp`] as a [`record`] (binary; the earlier JSON form is still read) |
//! | `ids` | message id | be32 origin ‖ be32 nonce |
//! | `op` | message id | a record, as relayers before the `ops` tree kept them: moved to `ops` when the store opens |
//! | `history` | message id ‖ be64 sequence | [`HistoryEntry`] as JSON, as relayers before record version 2 wrote it: read, no longer written |
//! | `loader` | be32 origin | be32 next nonce to load |
//!
//! The queue index, in memory, orders each destination's stage by next
//! attempt, then by origin and nonce (be32 destination ‖ stage tag ‖ be64
//! next attempt ‖ be32 origin ‖ be32 nonce → message id), so "what is due"
//! is a range read that stops at the first entry in the future. It holds
//! every operation not delivered and is rebuilt from the records when the
//! store opens: each record carries its own placement, so the record is
//! the one thing a move writes. (A sled `queue` tree kept the index on disk
//! until each move was a transaction over two trees and three keys, a
//! quarter of the relayer's CPU 40 s into a 120,000-message run; stores
//! that have one drop it at open.) Delivered operations are not indexed:
//! listing them reads the records. Opening reads every record: a store of
//! 1,000,000 pending records opened in 2.9 s, sled's own open included.
//!
//! Records are keyed by origin and nonce first,
//! so the messages in flight, the newest, sit together at the end of the
//! `ops` tree and sled's cache holds them however many delivered ones lie
//! before: keyed by message id alone they were spread over the whole tree,
//! and once it outgrew the cache every move read pages back from disk (a
//! fifth of the relayer's CPU 50 s into a 120,000-message run). The small
//! `ids` index finds a record by message id.
//!
//! Every change of an operation rewrites its record, a group of changes in
//! one sled batch (atomic within the tree), under a lock that keeps one
//! writer at a time in the process (sled's lock on the directory keeps out
//! other processes); loading new messages and moving the loader's cursor
//! is one transaction. A crash leaves each operation wholly before or
//! wholly after a transition, and loading resumes where the cursor says.
//! A move's history line is part of the record it writes ([`record`]), so
//! it is stored with the move or not at all. (A history tree keyed by message id cost a sled insert per line
//! into a tree growing at random places: a sixth of the relayer's CPU at
//! 2,000 messages a second.)
//!
//! Metadata is not stored: a message in the submit stage keeps its metadata
//! (about 1.3 kB for a MerkleRoot multisig, five times the rest of the
//! record) in memory, filled into what [`QueueStore::get`] and
//! [`QueueStore::due`] return. A restarted relayer sends every message left
//! in submit back to prepare, which builds it again, so a stored copy was
//! never read; writing it made every submit-stage record six times larger,
//! and the sled cache held that many fewer. The map holds at most the
//! submit stages' backlog (prepare waits while it is a full round).

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use alloy::primitives::{B256, Bytes};
use sled::{
    Transactional,
    transaction::{ConflictableTransactionError, TransactionError},
};

use crate::{
    op::{HistoryEntry, PendingOp, Stage, now_ms},
    record::{self, Placement},
};

/// Why the queue store failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// sled failed.
    #[error("relayer queue store at {path}: {source}")]
    Sled {
        /// Database directory.
        path: String,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// A stored value does not have the schema's shape.
    #[error("relayer queue store: corrupt {tree} entry: {reason}")]
    Corrupt {
        /// Which tree.
        tree: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The operation is not in the stage the caller expected (someone else
    /// moved it first).
    #[error("message {id} is in {actual:?}, not {expected:?}")]
    Conflict {
        /// The message.
        id: B256,
        /// What the caller expected.
        expected: Stage,
        /// What is stored (`None`: no such message).
        actual: Option<Stage>,
    },
}

type TxResult<T> = Result<T, ConflictableTransactionError<QueueError>>;

/// Moves per sled batch in [`QueueStore::transition_all`]: sled holds every
/// write of a batch in memory until it is applied.
pub const TRANSITIONS_PER_TX: usize = 128;

/// The persistent queues of every destination.
#[derive(Debug, Clone)]
pub struct QueueStore {
    path: String,
    db: sled::Db,
    ops: sled::Tree,
    ids: sled::Tree,
    /// Records of the earlier layout, moved to `ops` at open.
    op: sled::Tree,
    history: sled::Tree,
    loader: sled::Tree,
    /// The queue index (module docs): placement key → message id of every
    /// operation not delivered.
    index: Arc<Mutex<BTreeMap<[u8; 21], B256>>>,
    /// Held while records are read to be changed, and written.
    writer: Arc<Mutex<()>>,
    /// The metadata of operations in the submit stage (not stored).
    prepared: Arc<Mutex<HashMap<B256, Bytes>>>,
}

/// The key of a record in `ops`.
fn op_key(origin: u32, nonce: u32, id: &B256) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..4].copy_from_slice(&origin.to_be_bytes());
    k[4..8].copy_from_slice(&nonce.to_be_bytes());
    k[8..].copy_from_slice(id.as_slice());
    k
}

fn key_of(op: &PendingOp) -> [u8; 40] {
    op_key(op.origin, op.nonce, &op.id)
}

/// An `ids` value: the message's origin and nonce.
fn origin_nonce(origin: u32, nonce: u32) -> [u8; 8] {
    let mut v = [0u8; 8];
    v[..4].copy_from_slice(&origin.to_be_bytes());
    v[4..].copy_from_slice(&nonce.to_be_bytes());
    v
}

fn index_key(op: &PendingOp) -> [u8; 21] {
    placement_key(&Placement::from(op))
}

fn placement_key(p: &Placement) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[..4].copy_from_slice(&p.destination.to_be_bytes());
    k[4] = p.stage.tag();
    k[5..13].copy_from_slice(&p.next_attempt_ms.to_be_bytes());
    k[13..17].copy_from_slice(&p.origin.to_be_bytes());
    k[17..].copy_from_slice(&p.nonce.to_be_bytes());
    k
}

fn decode_placement(bytes: &[u8]) -> Result<Placement, QueueError> {
    record::placement(bytes).map_err(|reason| QueueError::Corrupt { tree: "ops", reason })
}

fn stage_prefix(destination: u32, stage: Stage) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[..4].copy_from_slice(&destination.to_be_bytes());
    k[4] = stage.tag();
    k
}

/// A queue index key's next attempt, origin and nonce.
fn index_fields(key: &[u8; 21]) -> (u64, u32, u32) {
    let at =
        u64::from_be_bytes([key[5], key[6], key[7], key[8], key[9], key[10], key[11], key[12]]);
    let origin = u32::from_be_bytes([key[13], key[14], key[15], key[16]]);
    let nonce = u32::from_be_bytes([key[17], key[18], key[19], key[20]]);
    (at, origin, nonce)
}

/// The index keys of one destination's stage.
fn stage_range(destination: u32, stage: Stage) -> std::ops::RangeInclusive<[u8; 21]> {
    let prefix = stage_prefix(destination, stage);
    let (mut first, mut last) = ([0u8; 21], [0xffu8; 21]);
    first[..5].copy_from_slice(&prefix);
    last[..5].copy_from_slice(&prefix);
    first..=last
}

/// The message id of an `ops` key (origin ‖ nonce ‖ id).
fn record_id(key: &[u8]) -> Option<B256> {
    key.get(8..).and_then(|id| <[u8; 32]>::try_from(id).ok()).map(B256::from)
}

fn decode_op(bytes: &[u8]) -> Result<PendingOp, QueueError> {
    record::decode(bytes).map_err(|reason| QueueError::Corrupt { tree: "ops", reason })
}

impl QueueStore {
    /// Opens (or creates) the store in directory `path`.
    pub fn open(path: &Path) -> Result<Self, QueueError> {
        let name = path.display().to_string();
        let err = |source| QueueError::Sled { path: name.clone(), source };
        let db = metalayer_agent::store::open_sled(path, 32 << 20).map_err(err)?;
        let tree = |t: &str| db.open_tree(t).map_err(err);
        let store = Self {
            ops: tree("ops")?,
            ids: tree("ids")?,
            op: tree("op")?,
            history: tree("history")?,
            loader: tree("loader")?,
            index: Arc::default(),
            writer: Arc::default(),
            prepared: Arc::default(),
            path: name.clone(),
            db,
        };
        store.move_earlier_records()?;
        store.build_index()?;
        // The index on disk that relayers before the in-memory one kept.
        store.db.drop_tree("queue").map_err(err)?;
        Ok(store)
    }

    /// Fills the queue index from the records. A record whose placement
    /// cannot be read is left out, logged: reading it by id names what is
    /// wrong with it.
    fn build_index(&self) -> Result<(), QueueError> {
        let mut index = self.index();
        for entry in self.ops.iter() {
            let (key, value) = entry.map_err(|e| self.sled_err(e))?;
            let Some(id) = record_id(&key) else {
                tracing::error!(path = %self.path, key = %alloy::primitives::hex::encode(&key), "record with a malformed key left out of the queue");
                continue;
            };
            match decode_placement(&value) {
                Ok(p) if p.stage == Stage::Delivered => {}
                Ok(p) => drop(index.insert(placement_key(&p), id)),
                Err(error) => {
                    tracing::error!(path = %self.path, %id, %error, "record left out of the queue");
                }
            }
        }
        Ok(())
    }

    fn index(&self) -> MutexGuard<'_, BTreeMap<[u8; 21], B256>> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves records of the earlier layout (keyed by message id alone) into
    /// `ops` and `ids`, then removes them from `op`. Run before anything
    /// else touches the store, so a crash midway leaves records that are
    /// moved again at the next open. A record already under its new key is
    /// kept, not overwritten: if the removal from `op` was lost in a crash
    /// after the relayer had moved the operation on, the old copy is stale.
    /// A record whose placement cannot be read stays where it is, logged.
    fn move_earlier_records(&self) -> Result<(), QueueError> {
        if self.op.is_empty() {
            return Ok(());
        }
        let (mut ops, mut ids, mut moved) =
            (sled::Batch::default(), sled::Batch::default(), sled::Batch::default());
        let mut count = 0usize;
        for entry in self.op.iter() {
            let (id, value) = entry.map_err(|e| self.sled_err(e))?;
            let key = alloy::primitives::hex::encode(&id);
            let placement = match decode_placement(&value) {
                Ok(placement) if id.len() == 32 => placement,
                Ok(_) => {
                    tracing::error!(path = %self.path, %key, "earlier record with a key that is not a message id left unmoved");
                    continue;
                }
                Err(error) => {
                    tracing::error!(path = %self.path, %key, %error, "earlier record left unmoved");
                    continue;
                }
            };
            let id = B256::from_slice(&id);
            let new_key = op_key(placement.origin, placement.nonce, &id);
            if !self.ops.contains_key(&new_key[..]).map_err(|e| self.sled_err(e))? {
                ops.insert(&new_key[..], value);
            }
            ids.insert(id.as_slice(), &origin_nonce(placement.origin, placement.nonce)[..]);
            moved.remove(id.as_slice());
            count += 1;
        }
        self.ops.apply_batch(ops).map_err(|e| self.sled_err(e))?;
        self.ids.apply_batch(ids).map_err(|e| self.sled_err(e))?;
        self.db.flush().map_err(|e| self.sled_err(e))?;
        self.op.apply_batch(moved).map_err(|e| self.sled_err(e))?;
        self.db.flush().map_err(|e| self.sled_err(e))?;
        tracing::info!(path = %self.path, count, "moved queue records to the origin-and-nonce layout");
        Ok(())
    }

    fn prepared(&self) -> MutexGuard<'_, HashMap<B256, Bytes>> {
        self.prepared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sled_err(&self, source: sled::Error) -> QueueError {
        QueueError::Sled { path: self.path.clone(), source }
    }

    fn tx_err(&self, e: TransactionError<QueueError>) -> QueueError {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(source) => self.sled_err(source),
        }
    }

    /// Waits until everything written so far is on disk.
    pub fn flush(&self) -> Result<(), QueueError> {
        self.db.flush().map(drop).map_err(|e| self.sled_err(e))
    }

    /// The next origin nonce the loader has not looked at.
    pub fn loader_cursor(&self, origin: u32) -> Result<u32, QueueError> {
        let Some(v) = self.loader.get(origin.to_be_bytes()).map_err(|e| self.sled_err(e))? else {
            return Ok(0);
        };
        v.as_ref().try_into().map(u32::from_be_bytes).map_err(|_| QueueError::Corrupt {
            tree: "loader",
            reason: format!("{} bytes, expected 4", v.len()),
        })
    }

    /// Adds `ops` (those not already known) and moves the loader cursor of
    /// `origin` to `next_nonce`, atomically. Returns how many were new.
    pub fn load(
        &self,
        origin: u32,
        ops: &[PendingOp],
        next_nonce: u32,
    ) -> Result<usize, QueueError> {
        let at_ms = now_ms();
        let _writer = self.write_lock();
        let added = (&self.ops, &self.ids, &self.loader)
            .transaction(|(ops_t, ids_t, loader_t)| -> TxResult<Vec<&PendingOp>> {
                let mut added = Vec::new();
                for op in ops {
                    if ops_t.get(&key_of(op)[..])?.is_some() {
                        continue;
                    }
                    let line = HistoryEntry {
                        at_ms,
                        stage: op.stage,
                        reason: None,
                        detail: "dispatched and indexed".into(),
                        tx_hash: None,
                    };
                    ops_t.insert(&key_of(op)[..], record::encode_new(op, &line))?;
                    ids_t.insert(op.id.as_slice(), &origin_nonce(op.origin, op.nonce)[..])?;
                    added.push(op);
                }
                loader_t.insert(&origin.to_be_bytes()[..], &next_nonce.to_be_bytes()[..])?;
                Ok(added)
            })
            .map_err(|e| self.tx_err(e))?;
        let mut index = self.index();
        for op in &added {
            if op.stage != Stage::Delivered {
                index.insert(index_key(op), op.id);
            }
        }
        Ok(added.len())
    }

    /// The operation for message `id` (in the submit stage, with the
    /// metadata this process prepared it with).
    pub fn get(&self, id: B256) -> Result<Option<PendingOp>, QueueError> {
        let Some(value) = self.record(id)? else { return Ok(None) };
        self.op_of(id, &value).map(Some)
    }

    /// The stored record of message `id`, found through `ids`.
    fn record(&self, id: B256) -> Result<Option<sled::IVec>, QueueError> {
        let Some(at) = self.ids.get(id.as_slice()).map_err(|e| self.sled_err(e))? else {
            return Ok(None);
        };
        let at: [u8; 8] = at.as_ref().try_into().map_err(|_| QueueError::Corrupt {
            tree: "ids",
            reason: format!("{} bytes for message {id}, expected 8", at.len()),
        })?;
        let (origin, nonce) = (
            u32::from_be_bytes([at[0], at[1], at[2], at[3]]),
            u32::from_be_bytes([at[4], at[5], at[6], at[7]]),
        );
        self.ops.get(&op_key(origin, nonce, &id)[..]).map_err(|e| self.sled_err(e))
    }

    /// The record at `origin`/`nonce` of message `id`, as [`Self::get`]
    /// gives it: what a queue index entry points at.
    fn get_at(&self, origin: u32, nonce: u32, id: B256) -> Result<Option<PendingOp>, QueueError> {
        let key = op_key(origin, nonce, &id);
        let Some(value) = self.ops.get(&key[..]).map_err(|e| self.sled_err(e))? else {
            return Ok(None);
        };
        self.op_of(id, &value).map(Some)
    }

    /// A record decoded, with the metadata held for it if in submit.
    fn op_of(&self, id: B256, value: &[u8]) -> Result<PendingOp, QueueError> {
        let mut op = decode_op(value)?;
        op.metadata = match op.stage {
            Stage::Submit => self.prepared().get(&id).cloned(),
            _ => None,
        };
        Ok(op)
    }

    /// Stores `op` (its new stage, attempt time and fields) if the stored
    /// operation is still in `expected`, and records `detail` in its history.
    pub fn transition(
        &self,
        op: &PendingOp,
        expected: Stage,
        detail: &str,
    ) -> Result<(), QueueError> {
        let mut answers = self.transition_all(&[(op.clone(), expected, detail.to_owned())])?;
        answers.pop().unwrap_or(Ok(()))
    }

    /// [`Self::transition`] for many operations, [`TRANSITIONS_PER_TX`] to a
    /// sled transaction: each move is whole or absent after a crash, and one
    /// whose stored stage is not its expected one ([`QueueError::Conflict`])
    /// or whose stored record is unreadable ([`QueueError::Corrupt`]) is
    /// left alone and answered with that error without holding back the
    /// others. The answers are in the order of `moves`.
    pub fn transition_all(
        &self,
        moves: &[(PendingOp, Stage, String)],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let mut answers = Vec::with_capacity(moves.len());
        for chunk in moves.chunks(TRANSITIONS_PER_TX) {
            // Metadata of a move into submit is in memory before the record
            // is, so a reader never finds a submit-stage record without it;
            // settled per transaction, by what that transaction did.
            let replaced = self.hold_metadata(chunk);
            let stored = self.store_chunk(chunk);
            self.settle_metadata(chunk, &replaced, stored.as_deref().ok());
            answers.extend(stored?);
        }
        Ok(answers)
    }

    /// Puts the metadata of `chunk`'s moves into submit in memory; returns
    /// what each replaced.
    fn hold_metadata(&self, chunk: &[(PendingOp, Stage, String)]) -> HashMap<B256, Option<Bytes>> {
        let mut replaced = HashMap::new();
        let mut prepared = self.prepared();
        for (op, _, _) in chunk {
            if op.stage == Stage::Submit
                && let Some(metadata) = &op.metadata
            {
                let before = prepared.insert(op.id, metadata.clone());
                replaced.entry(op.id).or_insert(before);
            }
        }
        replaced
    }

    /// After `chunk` was stored (`answers`; `None`: its transaction failed,
    /// nothing moved): a move out of submit (or into it without metadata)
    /// lets the metadata go, a refused move puts back what was there.
    fn settle_metadata(
        &self,
        chunk: &[(PendingOp, Stage, String)],
        replaced: &HashMap<B256, Option<Bytes>>,
        answers: Option<&[Result<(), QueueError>]>,
    ) {
        let mut prepared = self.prepared();
        for (i, (op, _, _)) in chunk.iter().enumerate() {
            match answers.and_then(|a| a.get(i)) {
                Some(Ok(())) if op.stage != Stage::Submit || op.metadata.is_none() => {
                    prepared.remove(&op.id);
                }
                Some(Ok(())) => {}
                Some(Err(_)) | None => match replaced.get(&op.id) {
                    Some(Some(before)) => drop(prepared.insert(op.id, before.clone())),
                    Some(None) => drop(prepared.remove(&op.id)),
                    None => {}
                },
            }
        }
    }

    /// One sled batch moving `chunk`, answered move by move; the index
    /// follows once the batch is applied.
    fn store_chunk(
        &self,
        chunk: &[(PendingOp, Stage, String)],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let at_ms = now_ms();
        let _writer = self.write_lock();
        let mut out = Vec::with_capacity(chunk.len());
        let mut batch = sled::Batch::default();
        // Records this batch writes, so a second move of one operation
        // starts from the first.
        let mut written: HashMap<[u8; 40], Vec<u8>> = HashMap::new();
        // (index key removed, index key added or none, id)
        let mut moved: Vec<([u8; 21], Option<[u8; 21]>, B256)> = Vec::new();
        for (op, expected, detail) in chunk {
            let key = key_of(op);
            let stored_value = match written.get(&key) {
                Some(v) => Some(sled::IVec::from(v.as_slice())),
                None => self.ops.get(&key[..]).map_err(|e| self.sled_err(e))?,
            };
            let Some(v) = stored_value else {
                out.push(Err(QueueError::Conflict {
                    id: op.id,
                    expected: *expected,
                    actual: None,
                }));
                continue;
            };
            let stored = match decode_placement(&v) {
                Ok(stored) => stored,
                // One unreadable record fails its own move only; the rest
                // of the group goes on.
                Err(error) => {
                    out.push(Err(error));
                    continue;
                }
            };
            if stored.stage != *expected {
                out.push(Err(QueueError::Conflict {
                    id: op.id,
                    expected: *expected,
                    actual: Some(stored.stage),
                }));
                continue;
            }
            let line = HistoryEntry {
                at_ms,
                stage: op.stage,
                reason: op.reason,
                detail: detail.clone(),
                tx_hash: op.tx_hash,
            };
            let record = record::encode_moved(op, &v, &line);
            batch.insert(&key[..], record.as_slice());
            written.insert(key, record);
            let added = (op.stage != Stage::Delivered).then(|| index_key(op));
            moved.push((placement_key(&stored), added, op.id));
            out.push(Ok(()));
        }
        self.ops.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        let mut index = self.index();
        for (removed, added, id) in moved {
            index.remove(&removed);
            if let Some(added) = added {
                index.insert(added, id);
            }
        }
        Ok(out)
    }

    /// The entries of `destination`'s `stage` in the index, in queue order,
    /// after skipping `skip`, at most `limit`, while `keep` holds for the
    /// next attempt time: (next attempt, origin, nonce, id).
    fn indexed(
        &self,
        destination: u32,
        stage: Stage,
        skip: usize,
        limit: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Vec<(u64, u32, u32, B256)> {
        self.index()
            .range(stage_range(destination, stage))
            .skip(skip)
            .take(limit)
            .map(|(k, id)| {
                let (at, origin, nonce) = index_fields(k);
                (at, origin, nonce, *id)
            })
            .take_while(|(at, ..)| keep(*at))
            .collect()
    }

    /// The records of `destination`'s delivered operations, in record
    /// order (origin, nonce), after skipping `skip`, at most `limit`, with
    /// their ids: a walk over every record, as the index leaves them out.
    fn delivered_records(
        &self,
        destination: u32,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<(B256, sled::IVec)>, QueueError> {
        let mut out = Vec::new();
        let mut skipped = 0;
        for entry in self.ops.iter() {
            if out.len() >= limit {
                break;
            }
            let (key, value) = entry.map_err(|e| self.sled_err(e))?;
            let Ok(p) = decode_placement(&value) else { continue };
            if p.destination != destination || p.stage != Stage::Delivered {
                continue;
            }
            let Some(id) = record_id(&key) else { continue };
            if skipped < skip {
                skipped += 1;
                continue;
            }
            out.push((id, value));
        }
        Ok(out)
    }

    /// Up to `limit` operations of `destination` in `stage`, due at `now_ms`,
    /// earliest first.
    pub fn due(
        &self,
        destination: u32,
        stage: Stage,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<PendingOp>, QueueError> {
        let mut out = Vec::new();
        for (_, origin, nonce, id) in self.indexed(destination, stage, 0, limit, |at| at <= now_ms)
        {
            // Moved on since the index was read: not due here any more.
            if let Some(op) = self.get_at(origin, nonce, id)?
                && op.stage == stage
            {
                out.push(op);
            }
        }
        Ok(out)
    }

    /// Operations of `destination` in `stage`, in queue order, after
    /// skipping `skip`, at most `limit`.
    pub fn list(
        &self,
        destination: u32,
        stage: Stage,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<PendingOp>, QueueError> {
        if stage == Stage::Delivered {
            let records = self.delivered_records(destination, skip, limit)?;
            return records.iter().map(|(id, value)| self.op_of(*id, value)).collect();
        }
        let mut out = Vec::new();
        for (_, origin, nonce, id) in self.indexed(destination, stage, skip, limit, |_| true) {
            if let Some(op) = self.get_at(origin, nonce, id)? {
                out.push(op);
            }
        }
        Ok(out)
    }

    /// The ids of `destination`'s operations in `stage`, in queue order,
    /// without reading their records (delivered ones: in record order,
    /// read from the records).
    pub fn ids(&self, destination: u32, stage: Stage) -> Result<Vec<B256>, QueueError> {
        if stage == Stage::Delivered {
            let records = self.delivered_records(destination, 0, usize::MAX)?;
            return Ok(records.into_iter().map(|(id, _)| id).collect());
        }
        Ok(self
            .indexed(destination, stage, 0, usize::MAX, |_| true)
            .into_iter()
            .map(|(.., id)| id)
            .collect())
    }

    /// Number of operations of `destination` in `stage`.
    pub fn len(&self, destination: u32, stage: Stage) -> usize {
        self.len_up_to(destination, stage, usize::MAX)
    }

    /// [`Self::len`], counting no further than `limit`: what the stages'
    /// loops ask each pass ("is there more than this?") without walking a
    /// long queue.
    pub fn len_up_to(&self, destination: u32, stage: Stage, limit: usize) -> usize {
        if stage == Stage::Delivered {
            return self.delivered_records(destination, 0, limit).map_or(0, |r| r.len());
        }
        self.index().range(stage_range(destination, stage)).take(limit).count()
    }

    /// The history of message `id`, oldest first: lines an earlier relayer
    /// kept in the `history` tree, then those its record holds. When the
    /// record dropped lines ([`record::MAX_HISTORY`]), a line after the
    /// first says how many.
    pub fn history(&self, id: B256) -> Result<Vec<HistoryEntry>, QueueError> {
        let mut lines = self
            .history
            .scan_prefix(id.as_slice())
            .map(|entry| {
                let (_, v) = entry.map_err(|e| self.sled_err(e))?;
                serde_json::from_slice(&v)
                    .map_err(|e| QueueError::Corrupt { tree: "history", reason: e.to_string() })
            })
            .collect::<Result<Vec<HistoryEntry>, _>>()?;
        let Some(value) = self.record(id)? else { return Ok(lines) };
        let (dropped, mut kept) = record::history(&value)
            .map_err(|reason| QueueError::Corrupt { tree: "ops", reason })?;
        if dropped > 0 && kept.len() > 1 {
            let next = &kept[1];
            let note = HistoryEntry {
                at_ms: next.at_ms,
                stage: next.stage,
                reason: None,
                detail: format!("{dropped} earlier lines were not kept"),
                tx_hash: None,
            };
            kept.insert(1, note);
        }
        lines.extend(kept);
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::op::Reason;
    use alloy::primitives::Bytes;
    use metalayer_protocol::Message;

    fn fresh(nonce: u32, destination: u32) -> PendingOp {
        PendingOp::new(&Message {
            version: 3,
            nonce,
            origin: 1,
            sender: B256::repeat_byte(1),
            destination,
            recipient: B256::repeat_byte(2),
            body: Bytes::from(vec![nonce as u8]),
        })
    }

    fn op(nonce: u32, destination: u32) -> PendingOp {
        PendingOp { next_attempt_ms: 0, ..fresh(nonce, destination) }
    }

    #[test]
    fn fresh_messages_do_not_overtake_earlier_retries() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::open(dir.path()).unwrap();
        // A message that failed once and is due again since a moment ago...
        let mut retried = fresh(7, 2);
        retried.retries = 1;
        retried.next_attempt_ms = now_ms() - 5;
        // ...and a backlog of fresh ones (lower nonces) loaded after it.
        let backlog: Vec<_> = (0..3).map(|n| fresh(n, 2)).collect();
        store.load(1, std::slice::from_ref(&retried), 8).unwrap();
        store.load(1, &backlog, 8).unwrap();
        let due: Vec<u32> = store
            .due(2, Stage::Prepare, now_ms() + 1, 10)
            .unwrap()
            .iter()
            .map(|o| o.nonce)
            .collect();
        assert_eq!(due, [7, 0, 1, 2]);
    }

    #[test]
    fn due_orders_by_attempt_then_nonce_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = QueueStore::open(dir.path()).unwrap();
            let ops: Vec<_> = (0..4).map(|n| op(n, 2)).collect();
            assert_eq!(store.load(1, &ops, 4).unwrap(), 4);
            assert_eq!(store.load(1, &ops[..1], 4).unwrap(), 0, "known ops are not added twice");
            let mut later = ops[0].clone();
            later.next_attempt_ms = 500;
            later.retries = 1;
            store.transition(&later, Stage::Prepare, "retry").unwrap();
            let due: Vec<u32> =
                store.due(2, Stage::Prepare, 100, 10).unwrap().iter().map(|o| o.nonce).collect();
            assert_eq!(due, [1, 2, 3]);
            let due: Vec<u32> =
                store.due(2, Stage::Prepare, 1000, 10).unwrap().iter().map(|o| o.nonce).collect();
            assert_eq!(due, [1, 2, 3, 0]);
            store.flush().unwrap();
        }
        let store = QueueStore::open(dir.path()).unwrap();
        assert_eq!(store.loader_cursor(1).unwrap(), 4);
        assert_eq!(store.len(2, Stage::Prepare), 4);
        assert_eq!(store.len_up_to(2, Stage::Prepare, 3), 3);
        assert_eq!(store.len_up_to(2, Stage::Prepare, 5), 4);
        assert_eq!(store.len_up_to(2, Stage::Submit, 5), 0);
        // In queue order, as `due` gave them.
        let expected: Vec<B256> = [1, 2, 3, 0].map(|n| op(n, 2).id).to_vec();
        assert_eq!(store.ids(2, Stage::Prepare).unwrap(), expected);
        assert!(store.ids(2, Stage::Submit).unwrap().is_empty());
        assert!(store.due(3, Stage::Prepare, u64::MAX, 10).unwrap().is_empty());
        let stored = store.get(op(0, 2).id).unwrap().unwrap();
        assert_eq!(stored.retries, 1);
        assert_eq!(store.history(stored.id).unwrap().len(), 2);
    }

    #[test]
    fn submit_metadata_is_held_in_memory_while_submitted_and_never_stored() {
        let dir = tempfile::tempdir().unwrap();
        let ops: Vec<_> = (0..3).map(|n| op(n, 2)).collect();
        let prepared = |op: &PendingOp, byte: u8| PendingOp {
            stage: Stage::Submit,
            metadata: Some(Bytes::from(vec![byte; 1_300])),
            ..op.clone()
        };
        {
            let store = QueueStore::open(dir.path()).unwrap();
            store.load(1, &ops, 3).unwrap();
            let moves: Vec<_> = ops
                .iter()
                .zip([1u8, 2, 3])
                .map(|(op, byte)| (prepared(op, byte), Stage::Prepare, "prepared".to_owned()))
                .collect();
            assert!(store.transition_all(&moves).unwrap().iter().all(Result::is_ok));
            let due = store.due(2, Stage::Submit, u64::MAX, 10).unwrap();
            let held: Vec<u8> = due.iter().map(|o| o.metadata.as_ref().unwrap()[0]).collect();
            assert_eq!(held, [1, 2, 3]);
            // The stored record is without it: about 250 bytes, not 1.5 kB.
            let raw = store.record(ops[0].id).unwrap().unwrap();
            assert!(raw.len() < 400, "record of {} bytes", raw.len());
            assert!(record::decode(&raw).unwrap().metadata.is_none());
            // A stale move into submit (the message is there already) leaves
            // the metadata held alone; one out of submit lets it go.
            let stale = prepared(&ops[1], 9);
            assert!(store.transition(&stale, Stage::Prepare, "again").is_err());
            assert_eq!(store.get(ops[1].id).unwrap().unwrap().metadata.unwrap()[0], 2);
            let mined = PendingOp { stage: Stage::Confirm, metadata: None, ..due[0].clone() };
            store.transition(&mined, Stage::Submit, "mined").unwrap();
            assert!(store.get(ops[0].id).unwrap().unwrap().metadata.is_none());
            assert!(!store.prepared().contains_key(&ops[0].id));
            assert_eq!(store.prepared().len(), 2);
            store.flush().unwrap();
        }
        // A new process has none: its relayer sends these back to prepare.
        let store = QueueStore::open(dir.path()).unwrap();
        let due = store.due(2, Stage::Submit, u64::MAX, 10).unwrap();
        assert_eq!(due.len(), 2);
        assert!(due.iter().all(|o| o.metadata.is_none()));
    }

    #[test]
    fn grouped_transitions_move_each_and_refuse_only_the_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::open(dir.path()).unwrap();
        // More than one sled transaction's worth.
        let n = TRANSITIONS_PER_TX as u32 * 2 + 5;
        let ops: Vec<_> = (0..n).map(|i| op(i, 2)).collect();
        store.load(1, &ops, n).unwrap();
        // Every seventh was moved meanwhile (an operator, another pass).
        for o in ops.iter().step_by(7) {
            let mut parked = o.clone();
            parked.stage = Stage::Parked;
            store.transition(&parked, Stage::Prepare, "parked").unwrap();
        }
        let moves: Vec<_> = ops
            .iter()
            .map(|o| {
                let mut next = o.clone();
                next.stage = Stage::Submit;
                (next, Stage::Prepare, format!("prepared {}", o.nonce))
            })
            .collect();
        let answers = store.transition_all(&moves).unwrap();
        assert_eq!(answers.len(), n as usize);
        for (i, answer) in answers.iter().enumerate() {
            if i % 7 == 0 {
                assert!(
                    matches!(answer, Err(QueueError::Conflict { actual: Some(Stage::Parked), .. })),
                    "{i}: {answer:?}"
                );
            } else {
                assert!(answer.is_ok(), "{i}: {answer:?}");
            }
        }
        let stale = (0..n).step_by(7).count();
        assert_eq!(store.len(2, Stage::Submit), n as usize - stale);
        assert_eq!(store.len(2, Stage::Parked), stale);
        assert_eq!(store.len(2, Stage::Prepare), 0);
        let moved = store.get(ops[1].id).unwrap().unwrap();
        assert_eq!(moved.stage, Stage::Submit);
        let history = store.history(ops[1].id).unwrap();
        assert_eq!(history.last().unwrap().detail, "prepared 1");
        assert_eq!(store.history(ops[7].id).unwrap().last().unwrap().detail, "parked");
    }

    #[test]
    fn history_gives_an_earlier_relayers_lines_then_the_records_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::open(dir.path()).unwrap();
        let o = op(0, 2);
        // A line an earlier relayer wrote to the history tree, before it
        // kept lines in the record.
        let earlier = HistoryEntry {
            at_ms: 5,
            stage: Stage::Prepare,
            reason: None,
            detail: "from an earlier relayer".into(),
            tx_hash: None,
        };
        let mut key = o.id.to_vec();
        key.extend_from_slice(&0u64.to_be_bytes());
        store.history.insert(key, serde_json::to_vec(&earlier).unwrap()).unwrap();
        store.load(1, std::slice::from_ref(&o), 1).unwrap();
        let retried = PendingOp { retries: 1, reason: Some(Reason::CouldNotFetchMetadata), ..o };
        for n in 0..u64::from(record::MAX_HISTORY) + 2 {
            store.transition(&retried, Stage::Prepare, &format!("retry {n}")).unwrap();
        }
        let history = store.history(retried.id).unwrap();
        let details: Vec<&str> = history.iter().map(|h| h.detail.as_str()).collect();
        assert_eq!(
            details[..3],
            ["from an earlier relayer", "dispatched and indexed", "3 earlier lines were not kept"]
        );
        assert_eq!(details[3], "retry 3");
        assert_eq!(*details.last().unwrap(), "retry 65");
        assert_eq!(history.len(), 2 + record::MAX_HISTORY as usize);
        assert!(history[3..].iter().all(|h| h.reason == Some(Reason::CouldNotFetchMetadata)));
        // Nothing is written to the history tree any more.
        assert_eq!(store.history.len(), 1);
    }

    #[test]
    fn records_of_the_earlier_layout_move_to_origin_and_nonce_keys_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let ops: Vec<_> = (0..5).map(|i| op(i, 2)).collect();
        {
            let store = QueueStore::open(dir.path()).unwrap();
            store.load(1, &ops, 5).unwrap();
            let submit = PendingOp { stage: Stage::Submit, ..ops[3].clone() };
            store.transition(&submit, Stage::Prepare, "prepared").unwrap();
            // The earlier layout: records keyed by message id in `op`, one
            // of them written as JSON, and one unreadable.
            for o in &ops {
                let value = store.ops.remove(&key_of(o)[..]).unwrap().unwrap();
                store.ids.remove(o.id.as_slice()).unwrap();
                store.op.insert(o.id.as_slice(), value).unwrap();
            }
            let json = serde_json::to_vec(&ops[1]).unwrap();
            store.op.insert(ops[1].id.as_slice(), json).unwrap();
            store.op.insert(B256::repeat_byte(9).as_slice(), &b"\x01broken"[..]).unwrap();
            assert!(store.get(ops[0].id).unwrap().is_none());
            store.flush().unwrap();
        }
        for _ in 0..2 {
            let store = QueueStore::open(dir.path()).unwrap();
            for (i, o) in ops.iter().enumerate() {
                let stored = store.get(o.id).unwrap().unwrap();
                let stage = if i == 3 { Stage::Submit } else { Stage::Prepare };
                assert_eq!((stored.id, stored.stage), (o.id, stage), "{i}");
            }
            assert_eq!(store.due(2, Stage::Prepare, u64::MAX, 10).unwrap().len(), 4);
            assert_eq!(store.history(ops[3].id).unwrap().len(), 2);
            // Only the unreadable record is left where it was.
            let left: Vec<_> = store.op.iter().keys().map(Result::unwrap).collect();
            assert_eq!(left, [sled::IVec::from(B256::repeat_byte(9).as_slice())]);
            let moved = PendingOp { stage: Stage::Submit, ..ops[0].clone() };
            store.transition(&moved, Stage::Prepare, "prepared").unwrap();
            assert_eq!(store.len(2, Stage::Submit), 2);
            let back = PendingOp { stage: Stage::Prepare, ..ops[0].clone() };
            store.transition(&back, Stage::Submit, "back").unwrap();
            store.flush().unwrap();
        }
    }

    #[test]
    fn a_stale_earlier_copy_does_not_overwrite_the_record_moved_on() {
        let dir = tempfile::tempdir().unwrap();
        let o = op(0, 2);
        {
            let store = QueueStore::open(dir.path()).unwrap();
            store.load(1, std::slice::from_ref(&o), 1).unwrap();
            // The earlier layout's copy, still in prepare, as left by a
            // crash that lost its removal ...
            let stale = store.ops.get(&key_of(&o)[..]).unwrap().unwrap();
            store.op.insert(o.id.as_slice(), stale).unwrap();
            // ... after the relayer had moved the operation on.
            let submit = PendingOp { stage: Stage::Submit, ..o.clone() };
            store.transition(&submit, Stage::Prepare, "prepared").unwrap();
            store.flush().unwrap();
        }
        let store = QueueStore::open(dir.path()).unwrap();
        assert_eq!(store.get(o.id).unwrap().unwrap().stage, Stage::Submit);
        assert_eq!(store.history(o.id).unwrap().len(), 2);
        assert!(store.op.is_empty(), "the stale copy is removed");
    }

    #[test]
    fn an_unreadable_record_fails_its_own_move_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::open(dir.path()).unwrap();
        let ops: Vec<_> = (0..3).map(|i| op(i, 2)).collect();
        store.load(1, &ops, 3).unwrap();
        store.ops.insert(&key_of(&ops[1])[..], &b"{not json"[..]).unwrap();
        let moves: Vec<_> = ops
            .iter()
            .map(|o| (PendingOp { stage: Stage::Submit, ..o.clone() }, Stage::Prepare, "p".into()))
            .collect();
        let answers = store.transition_all(&moves).unwrap();
        assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
        assert!(matches!(answers[1], Err(QueueError::Corrupt { tree: "ops", .. })), "{answers:?}");
        assert_eq!(store.len(2, Stage::Submit), 2);
    }

    #[test]
    fn the_index_is_rebuilt_from_the_records_and_an_earlier_index_tree_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut ops: Vec<_> = (0..6).map(|n| op(n, 2)).collect();
        ops.push(op(6, 3));
        let to = |o: &PendingOp, stage: Stage| PendingOp { stage, ..o.clone() };
        {
            let store = QueueStore::open(dir.path()).unwrap();
            store.load(1, &ops, 7).unwrap();
            let moves = vec![
                (to(&ops[1], Stage::Submit), Stage::Prepare, "p".to_owned()),
                (to(&ops[2], Stage::Confirm), Stage::Prepare, "p".to_owned()),
                (to(&ops[3], Stage::Confirm), Stage::Prepare, "p".to_owned()),
                (to(&ops[3], Stage::Delivered), Stage::Confirm, "d".to_owned()),
                (to(&ops[4], Stage::Parked), Stage::Prepare, "p".to_owned()),
                (PendingOp { next_attempt_ms: 900, ..ops[5].clone() }, Stage::Prepare, "r".into()),
            ];
            assert!(store.transition_all(&moves).unwrap().iter().all(Result::is_ok));
            // The index tree relayers before the in-memory index kept.
            store.db.open_tree("queue").unwrap().insert(b"k", b"v").unwrap();
            store.flush().unwrap();
        }
        let store = QueueStore::open(dir.path()).unwrap();
        assert!(!store.db.tree_names().iter().any(|n| n.as_ref() == b"queue"));
        let nonces = |v: Vec<PendingOp>| v.iter().map(|o| o.nonce).collect::<Vec<_>>();
        assert_eq!(nonces(store.due(2, Stage::Prepare, 100, 10).unwrap()), [0]);
        assert_eq!(nonces(store.due(2, Stage::Prepare, 1000, 10).unwrap()), [0, 5]);
        assert_eq!(nonces(store.due(3, Stage::Prepare, 1000, 10).unwrap()), [6]);
        for (stage, nonce) in
            [(Stage::Submit, 1), (Stage::Confirm, 2), (Stage::Parked, 4), (Stage::Delivered, 3)]
        {
            assert_eq!(store.len(2, stage), 1, "{stage:?}");
            assert_eq!(nonces(store.list(2, stage, 0, 10).unwrap()), [nonce], "{stage:?}");
            assert_eq!(store.ids(2, stage).unwrap(), [ops[nonce as usize].id], "{stage:?}");
        }
        assert!(store.list(2, Stage::Delivered, 1, 10).unwrap().is_empty());
        assert_eq!(store.len(3, Stage::Delivered), 0);
        assert_eq!(store.history(ops[3].id).unwrap().len(), 3);
    }

    #[test]
    fn a_second_move_of_one_operation_in_a_group_starts_from_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::open(dir.path()).unwrap();
        let o = op(0, 2);
        store.load(1, std::slice::from_ref(&o), 1).unwrap();
        let moves = vec![
            (PendingOp { stage: Stage::Submit, ..o.clone() }, Stage::Prepare, "p".to_owned()),
            (PendingOp { stage: Stage::Confirm, ..o.clone() }, Stage::Submit, "s".to_owned()),
            (PendingOp { stage: Stage::Prepare, ..o.clone() }, Stage::Submit, "late".to_owned()),
        ];
        let answers = store.transition_all(&moves).unwrap();
        assert!(answers[0].is_ok() && answers[1].is_ok(), "{answers:?}");
        assert!(
            matches!(answers[2], Err(QueueError::Conflict { actual: Some(Stage::Confirm), .. })),
            "{answers:?}"
        );
        assert_eq!(store.get(o.id).unwrap().unwrap().stage, Stage::Confirm);
        assert_eq!((store.len(2, Stage::Submit), store.len(2, Stage::Confirm)), (0, 1));
        assert_eq!(store.history(o.id).unwrap().len(), 3);
    }

    #[test]
    fn a_stale_transition_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::open(dir.path()).unwrap();
        let o = op(0, 2);
        store.load(1, std::slice::from_ref(&o), 1).unwrap();
        let mut submit = o;
        submit.stage = Stage::Submit;
        store.transition(&submit, Stage::Prepare, "prepared").unwrap();
        let err = store.transition(&submit, Stage::Prepare, "again").unwrap_err();
        assert!(matches!(err, QueueError::Conflict { actual: Some(Stage::Submit), .. }), "{err}");
        assert_eq!(store.len(2, Stage::Prepare), 0);
        assert_eq!(store.len(2, Stage::Submit), 1);
    }
}
