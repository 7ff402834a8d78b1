//! Contract-log indexing: `Dispatch`/`DispatchId`, `InsertedIntoTree` and
//! `GasPayment`, only from blocks the reorg period has made final.
//!
//! Each [`Indexer`] owns one cursor (the next block to read). A step reads
//! `[cursor, min(cursor + chunk − 1, final block)]` with `eth_getLogs`,
//! decodes the logs, and stores them together with the moved cursor in one
//! transaction. Sequenced data (messages by nonce, insertions by leaf index)
//! is then checked for gaps: if a later entry is stored while an earlier one
//! is missing, or the contract's own count at the final block is ahead of
//! what is stored once the cursor has passed it (a node that returned too few
//! logs), the cursor rewinds to the block of the last gap-free entry and the
//! range is read again. That count is read once per final block (again at
//! the same block only after [`RECHECK`]), not at every poll: with six agents
//! polling a chain every 50 ms, the reads were nine in ten of the node's
//! `eth_call`s.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256},
    rpc::types::{Filter, Log},
    sol_types::SolEvent,
};
use metalayer_contracts::bindings::{InterchainGasPaymaster, Mailbox, MerkleTreeHook};
use metalayer_protocol::Message;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::{
    chain::{ChainClient, ChainError, ReorgPeriod},
    store::{AgentStore, GasPayment, Insertion, StoreError},
};

/// What an indexer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `Dispatch` and `DispatchId` from the Mailbox.
    Dispatch,
    /// `InsertedIntoTree` from the Merkle tree hook.
    Insertion,
    /// `GasPayment` from the interchain gas paymaster.
    GasPayment,
}

impl EventKind {
    fn label(self) -> &'static str {
        match self {
            Self::Dispatch => "dispatch",
            Self::Insertion => "insertion",
            Self::GasPayment => "gas_payment",
        }
    }
}

/// Where and how far to index.
#[derive(Debug, Clone)]
pub struct IndexerConfig {
    /// Chain name (for cursors, metrics and logs).
    pub chain: String,
    /// The chain's domain id.
    pub domain: u32,
    /// What to index.
    pub kind: EventKind,
    /// The emitting contract.
    pub address: Address,
    /// First block to read.
    pub from: u64,
    /// Largest block range per request.
    pub chunk: u64,
    /// How far behind the tip to stay.
    pub reorg_period: ReorgPeriod,
    /// Pause between steps once caught up.
    pub poll_interval: Duration,
}

impl IndexerConfig {
    /// The name of this indexer's cursor in the store: the cursor holds the
    /// next block to read, so every block below it has been read.
    pub fn cursor_name(&self) -> String {
        format!("{}/{}/{}", self.kind.label(), self.domain, self.address)
    }
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    /// The chain could not be read.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The store could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A log from the indexed contract that does not decode.
    #[error("chain {chain}: {kind} log in block {block} (tx {tx}) does not decode: {reason}")]
    BadLog {
        /// Chain name.
        chain: String,
        /// Event kind.
        kind: &'static str,
        /// Its block.
        block: u64,
        /// Its transaction.
        tx: B256,
        /// Decoder message.
        reason: String,
    },
}

/// Indexer metrics (prefixed `metalayer_` by the agent registry):
/// `indexer_block{chain,data_type}` (the next block to read),
/// `indexer_gaps_total` and `indexer_stored_events_total`.
#[derive(Debug, Clone)]
pub struct IndexerMetrics {
    block: IntGaugeVec,
    gaps: IntCounterVec,
    stored: IntCounterVec,
}

impl IndexerMetrics {
    /// Registers the indexer metrics in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let labels = &["chain", "data_type"];
        let block =
            IntGaugeVec::new(Opts::new("indexer_block", "Next block each indexer reads"), labels)?;
        let gaps = IntCounterVec::new(
            Opts::new("indexer_gaps_total", "Sequence gaps found and re-read"),
            labels,
        )?;
        let stored = IntCounterVec::new(
            Opts::new("indexer_stored_events_total", "Events stored by the indexers"),
            labels,
        )?;
        registry.register(Box::new(block.clone()))?;
        registry.register(Box::new(gaps.clone()))?;
        registry.register(Box::new(stored.clone()))?;
        Ok(Self { block, gaps, stored })
    }
}

/// Logs one step aims to read: a busier range is split, so one response
/// (held whole in memory) stays small whatever the backlog.
const TARGET_LOGS_PER_STEP: usize = 1000;

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Read a range; more may follow at once.
    Indexed {
        /// Events stored.
        events: usize,
        /// Last block read.
        to: u64,
    },
    /// Found a gap and moved the cursor back to this block.
    Rewound(u64),
    /// Nothing final to read yet.
    CaughtUp,
}

/// One cursor over one contract's events.
#[derive(Debug)]
pub struct Indexer {
    client: Arc<ChainClient>,
    store: AgentStore,
    config: IndexerConfig,
    cursor_name: String,
    metrics: IndexerMetrics,
    /// Blocks per request now. It starts at one block and doubles while
    /// responses stay small, up to `config.chunk` (a slow start: the first
    /// request over an unknown backlog cannot return it whole), and halves
    /// over busy ranges.
    span: AtomicU64,
    /// The final block whose count last matched what is stored, and when.
    checked: Mutex<Option<(u64, Instant)>>,
}

/// How long a final block's count, once matched, is trusted before it is
/// read again at the same block (Hyperlane's default indexing interval).
pub const RECHECK: Duration = Duration::from_secs(2);

impl Indexer {
    /// An indexer that resumes from its stored cursor (or `config.from`).
    pub fn new(
        client: Arc<ChainClient>,
        store: AgentStore,
        config: IndexerConfig,
        metrics: IndexerMetrics,
    ) -> Self {
        let cursor_name = config.cursor_name();
        let span = AtomicU64::new(1);
        Self { client, store, config, cursor_name, metrics, span, checked: Mutex::new(None) }
    }

    /// Runs steps forever: at once while behind, every poll interval once
    /// caught up, and with the error logged and a pause after a failure.
    pub async fn run(self) {
        loop {
            match self.step().await {
                Ok(Step::Indexed { .. } | Step::Rewound(_)) => continue,
                Ok(Step::CaughtUp) => {}
                Err(error) => {
                    tracing::warn!(chain = %self.config.chain, data_type = self.config.kind.label(), %error, "indexing step failed");
                }
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    /// Reads one range, or rewinds over a gap.
    pub async fn step(&self) -> Result<Step, IndexerError> {
        let c = &self.config;
        let final_block = self.client.final_block(c.reorg_period).await?;
        let cursor = self.store.cursor(&self.cursor_name)?.unwrap_or(c.from);
        let labels = [c.chain.as_str(), c.kind.label()];
        self.metrics
            .block
            .with_label_values(&labels)
            .set(i64::try_from(cursor).unwrap_or(i64::MAX));
        if cursor > final_block {
            return self.check_against_chain(final_block).await;
        }
        let span = self.span.load(Ordering::Relaxed).clamp(1, c.chunk.max(1));
        let to = final_block.min(cursor.saturating_add(span - 1));
        let topics: Vec<B256> = match c.kind {
            EventKind::Dispatch => {
                vec![Mailbox::Dispatch::SIGNATURE_HASH, Mailbox::DispatchId::SIGNATURE_HASH]
            }
            EventKind::Insertion => vec![MerkleTreeHook::InsertedIntoTree::SIGNATURE_HASH],
            EventKind::GasPayment => vec![InterchainGasPaymaster::GasPayment::SIGNATURE_HASH],
        };
        let filter = Filter::new()
            .address(c.address)
            .event_signature(topics)
            .from_block(cursor)
            .to_block(to);
        let read = to - cursor + 1;
        let logs = match self.client.logs(&filter).await {
            Ok(logs) => logs,
            Err(error) => {
                // Nodes cap the logs of one response; a narrower range is
                // the usual cure, so the next step asks for half as much.
                self.span.store((read / 2).max(1), Ordering::Relaxed);
                return Err(error.into());
            }
        };
        if logs.len() > TARGET_LOGS_PER_STEP {
            self.span.store((read / 2).max(1), Ordering::Relaxed);
        } else if logs.len() < TARGET_LOGS_PER_STEP / 4 && read == span {
            self.span.store(span.saturating_mul(2), Ordering::Relaxed);
        }
        let next = to + 1;
        let events = match c.kind {
            EventKind::Dispatch => {
                let messages = self.decode_dispatches(&logs)?;
                self.store.store_dispatches(c.domain, &messages, (&self.cursor_name, next))?;
                messages.len()
            }
            EventKind::Insertion => {
                let insertions =
                    logs.iter().map(|l| self.decode_insertion(l)).collect::<Result<Vec<_>, _>>()?;
                self.store.store_insertions(c.domain, &insertions, (&self.cursor_name, next))?;
                insertions.len()
            }
            EventKind::GasPayment => {
                let payments =
                    logs.iter().map(|l| self.decode_payment(l)).collect::<Result<Vec<_>, _>>()?;
                self.store.store_gas_payments(c.domain, &payments, (&self.cursor_name, next))?;
                payments.len()
            }
        };
        self.metrics.stored.with_label_values(&labels).inc_by(events as u64);
        if let Some(rewind) = self.find_gap()? {
            return self.rewind(rewind);
        }
        Ok(Step::Indexed { events, to })
    }

    fn rewind(&self, block: u64) -> Result<Step, IndexerError> {
        let c = &self.config;
        tracing::warn!(chain = %c.chain, data_type = c.kind.label(), block, "sequence gap: re-reading from block");
        self.metrics.gaps.with_label_values(&[c.chain.as_str(), c.kind.label()]).inc();
        if let Ok(mut checked) = self.checked.lock() {
            *checked = None;
        }
        self.store.set_cursor(&self.cursor_name, block)?;
        Ok(Step::Rewound(block))
    }

    /// Counts stored (gap-free, highest stored) for sequenced kinds.
    fn sequence(&self) -> Result<Option<(u64, Option<u32>)>, StoreError> {
        let d = self.config.domain;
        Ok(match self.config.kind {
            EventKind::Dispatch => {
                Some((self.store.contiguous_dispatches(d)?, self.store.highest_dispatch(d)?))
            }
            EventKind::Insertion => {
                Some((self.store.contiguous_insertions(d)?, self.store.highest_insertion(d)?))
            }
            EventKind::GasPayment => None,
        })
    }

    /// The block to re-read from if a stored entry lies beyond a gap.
    fn find_gap(&self) -> Result<Option<u64>, StoreError> {
        let Some((contiguous, highest)) = self.sequence()? else { return Ok(None) };
        match highest {
            Some(h) if u64::from(h) >= contiguous => self.resume_block(contiguous).map(Some),
            _ => Ok(None),
        }
    }

    /// The block of the last gap-free entry (`contiguous − 1`), or the start.
    fn resume_block(&self, contiguous: u64) -> Result<u64, StoreError> {
        let Some(last) = contiguous.checked_sub(1) else { return Ok(self.config.from) };
        let d = self.config.domain;
        let block = match self.config.kind {
            EventKind::Dispatch => self.store.dispatch(d, last as u32)?.map(|(b, _)| b),
            EventKind::Insertion => self.store.insertion(d, last as u32)?.map(|i| i.block),
            EventKind::GasPayment => None,
        };
        Ok(block.unwrap_or(self.config.from))
    }

    /// Once caught up: the contract's own count at the final block must not
    /// be ahead of what is stored.
    async fn check_against_chain(&self, final_block: u64) -> Result<Step, IndexerError> {
        let c = &self.config;
        let Some((contiguous, _)) = self.sequence()? else { return Ok(Step::CaughtUp) };
        let recent = |checked: &Option<(u64, Instant)>| {
            checked.is_some_and(|(block, at)| block == final_block && at.elapsed() < RECHECK)
        };
        if self.checked.lock().is_ok_and(|checked| recent(&checked)) {
            return Ok(Step::CaughtUp);
        }
        let on_chain = match c.kind {
            EventKind::Dispatch => {
                u64::from(self.client.call(c.address, &Mailbox::nonceCall {}, final_block).await?)
            }
            EventKind::Insertion => u64::from(
                self.client.call(c.address, &MerkleTreeHook::countCall {}, final_block).await?,
            ),
            EventKind::GasPayment => return Ok(Step::CaughtUp),
        };
        if on_chain > contiguous {
            let block = self.resume_block(contiguous)?;
            return self.rewind(block);
        }
        if let Ok(mut checked) = self.checked.lock() {
            *checked = Some((final_block, Instant::now()));
        }
        Ok(Step::CaughtUp)
    }

    fn bad_log(&self, log: &Log, reason: &dyn std::fmt::Display) -> IndexerError {
        IndexerError::BadLog {
            chain: self.config.chain.clone(),
            kind: self.config.kind.label(),
            block: log.block_number.unwrap_or_default(),
            tx: log.transaction_hash.unwrap_or_default(),
            reason: reason.to_string(),
        }
    }

    fn block_of(&self, log: &Log) -> Result<u64, IndexerError> {
        log.block_number.ok_or_else(|| self.bad_log(log, &"log has no block number (pending?)"))
    }

    /// Each `Dispatch` must be followed by the `DispatchId` of its message.
    fn decode_dispatches(&self, logs: &[Log]) -> Result<Vec<(u64, Message)>, IndexerError> {
        let mut out = Vec::new();
        let mut expect_id: Option<(B256, &Log)> = None;
        for log in logs {
            match log.topic0() {
                Some(&Mailbox::Dispatch::SIGNATURE_HASH) => {
                    if let Some((_, prev)) = expect_id {
                        return Err(self.bad_log(prev, &"Dispatch without its DispatchId"));
                    }
                    let event = Mailbox::Dispatch::decode_log(&log.inner)
                        .map_err(|e| self.bad_log(log, &e))?;
                    let message =
                        Message::decode(&event.data.message).map_err(|e| self.bad_log(log, &e))?;
                    expect_id = Some((message.id(), log));
                    out.push((self.block_of(log)?, message));
                }
                Some(&Mailbox::DispatchId::SIGNATURE_HASH) => {
                    let event = Mailbox::DispatchId::decode_log(&log.inner)
                        .map_err(|e| self.bad_log(log, &e))?;
                    match expect_id.take() {
                        Some((id, _)) if id == event.data.messageId => {}
                        _ => {
                            return Err(self.bad_log(
                                log,
                                &"DispatchId does not match the preceding Dispatch",
                            ));
                        }
                    }
                }
                _ => return Err(self.bad_log(log, &"unexpected topic")),
            }
        }
        match expect_id {
            Some((_, prev)) => Err(self.bad_log(prev, &"Dispatch without its DispatchId")),
            None => Ok(out),
        }
    }

    fn decode_insertion(&self, log: &Log) -> Result<Insertion, IndexerError> {
        let event = MerkleTreeHook::InsertedIntoTree::decode_log(&log.inner)
            .map_err(|e| self.bad_log(log, &e))?;
        Ok(Insertion {
            index: event.data.index,
            message_id: event.data.messageId,
            block: self.block_of(log)?,
        })
    }

    fn decode_payment(&self, log: &Log) -> Result<GasPayment, IndexerError> {
        let event = InterchainGasPaymaster::GasPayment::decode_log(&log.inner)
            .map_err(|e| self.bad_log(log, &e))?;
        Ok(GasPayment {
            message_id: event.data.messageId,
            destination: event.data.destinationDomain,
            gas_amount: event.data.gasAmount,
            payment: event.data.payment,
            tx_hash: log
                .transaction_hash
                .ok_or_else(|| self.bad_log(log, &"log has no transaction hash"))?,
            log_index: log.log_index.ok_or_else(|| self.bad_log(log, &"log has no log index"))?,
        })
    }
}
