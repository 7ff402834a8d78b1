//! The validator's work: announce, follow the origin tree, sign and publish.
//!
//! Each tick reads, at the reorg-lagged block and by quorum over the origin's
//! endpoints, the hook's leaf count and `latestCheckpoint()`; feeds the
//! indexed insertions up to that index into the local tree, queueing one
//! checkpoint per new leaf; and compares the local root with the chain's.
//! Only when they match is the queue signed, newest first, each batch passed
//! through the double-sign protection (recorded and flushed) before any of
//! its signatures is made. A mismatch raises the reorg flag and stops the
//! validator.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alloy::{
    network::EthereumWallet,
    primitives::Bytes,
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use metalayer_agent::{
    chain::{ChainClient, ChainError, RetryPolicy, RpcMetrics},
    config::ChainSettings,
    indexer::{EventKind, Indexer, IndexerConfig, IndexerMetrics},
    storage::{AgentMetadata, CheckpointStorage, ReorgEvent, StorageError},
    store::{AgentStore, StoreError, StoreOptions},
};
use metalayer_contracts::bindings::{MerkleTreeHook, ValidatorAnnounce};
use metalayer_protocol::{
    B256, Checkpoint, CheckpointWithMessageId, LocalSigner, Signer, address_to_bytes32,
    announcement::Announcement, merkle::MerkleTree, signature::SignatureError, signed::Signed,
};
use prometheus::Registry;

use crate::{
    metrics::ValidatorMetrics,
    protection::{ProtectionError, SigningProtection, Verdict},
    settings::ValidatorSettings,
};

/// Longest pause between announcement attempts.
const MAX_ANNOUNCE_RETRY: Duration = Duration::from_secs(900);
/// Unpublished leaves whose ids a validator keeps in memory (2 MiB); a
/// longer backlog reads the older ones from the store when it signs them.
const RECENT_IDS: usize = 65_536;
/// Stored insertions read at once while extending the tree.
const READ_LEAVES: usize = 4_096;

/// Why the validator stopped or a tick failed.
#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    /// A reorg flag from an earlier run is in the checkpoint storage.
    #[error(
        "the reorg flag is raised in {location}: at leaf {} the validator's root was {} but the chain \
         said {} (reorg period {}, seen at unix time {}). The validator will not sign until an operator \
         has found the cause. Check the origin's canonical history and every RPC endpoint; if the chain \
         reorganised deeper than the reorg period, raise `reorg_period`. Then delete reorg_flag.json \
         from the checkpoint storage and restart. Never delete the signing protection database.",
        .event.checkpoint_index, .event.local_merkle_root, .event.canonical_merkle_root,
        .event.reorg_period, .event.unix_timestamp
    )]
    ReorgFlagRaised {
        /// The recorded event.
        event: ReorgEvent,
        /// The storage location holding it.
        location: String,
    },
    /// The local tree disagrees with the chain: the flag has just been raised.
    #[error(
        "merkle root mismatch at leaf {}: local {} vs chain {} at the reorg-lagged block. The origin \
         reorganised deeper than the reorg period ({}), or an RPC endpoint serves another chain. The \
         reorg flag is raised in the checkpoint storage and signing has stopped; see \
         reorg_rpc_responses.json beside it. Investigate before restarting.",
        .0.checkpoint_index, .0.local_merkle_root, .0.canonical_merkle_root, .0.reorg_period
    )]
    RootMismatch(ReorgEvent),
    /// The double-sign protection refused, or its database failed.
    #[error(transparent)]
    Protection(#[from] ProtectionError),
    /// The origin chain could not be read.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Checkpoint storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signature(#[from] SignatureError),
    /// The local tree is full (2^32 − 1 leaves).
    #[error("the local merkle tree is full")]
    TreeFull,
    /// The RPC endpoints serve another chain than configured.
    #[error(
        "chain {chain}: the RPC endpoints report chain id {actual}, the configuration says {expected}"
    )]
    WrongChain {
        /// Chain name.
        chain: String,
        /// Configured chain id.
        expected: u64,
        /// Reported chain id.
        actual: u64,
    },
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl ValidatorError {
    /// Errors after which the validator must stop rather than retry.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Self::Chain(_) | Self::Storage(_))
    }
}

/// What a tick did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// The origin tree is still empty.
    EmptyTree,
    /// Leaves are on chain that the indexer has not stored yet.
    WaitingForIndexer,
    /// The chain's count is below the local tree's (endpoints behind): retry.
    ChainBehind,
    /// Everything up to this index is signed and published.
    Published(u32),
    /// The block to read is the one the last complete tick read, less than
    /// `recheck_ms` ago: nothing was read again.
    Unchanged,
}

/// A running validator's state.
pub struct Validator {
    origin: ChainSettings,
    client: Arc<ChainClient>,
    store: AgentStore,
    protection: SigningProtection,
    storage: Arc<dyn CheckpointStorage>,
    signer: Arc<LocalSigner>,
    chain_signer: Option<PrivateKeySigner>,
    metrics: ValidatorMetrics,
    indexer_metrics: IndexerMetrics,
    interval: Duration,
    sign_batch: usize,
    retained_leaves: u32,
    /// The tree count at the last prune.
    pruned_at: u64,
    announce_retry: Duration,
    tree: MerkleTree,
    /// Leaves appended to `tree` but not yet published, as windows of at
    /// most `sign_batch` leaves: each entry is the tree as it stood at its
    /// window's first leaf, oldest window first. These frontiers (about
    /// 1 KiB each) and at most [`RECENT_IDS`] message ids are held; a
    /// window's checkpoints are rebuilt from those ids, or from the stored
    /// insertions for leaves older than them, when it is signed, so memory
    /// does not grow with the backlog.
    windows: Vec<MerkleTree>,
    /// Message ids of the newest unpublished leaves (from leaf
    /// `recent_ids.0`), as the tick read them from the store, so signing
    /// them does not read the store again; at most [`RECENT_IDS`].
    recent_ids: (u64, VecDeque<B256>),
    hook32: B256,
    /// The final block the last complete tick (everything at it signed and
    /// published) read the tree at, and when.
    last_complete: Option<(u64, std::time::Instant)>,
    /// The insertion indexer's cursor in `store`.
    insertion_cursor: String,
    /// How long an unchanged block's tree is trusted (`recheck_ms`).
    recheck: Duration,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("origin", &self.origin.name)
            .field("validator", &self.signer.address())
            .field("leaves", &self.tree.count())
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// Opens the databases and storage and connects to the origin.
    pub async fn new(
        origin: ChainSettings,
        settings: &ValidatorSettings,
        signer: LocalSigner,
        chain_signer: Option<PrivateKeySigner>,
        storage: Arc<dyn CheckpointStorage>,
        registry: &Registry,
    ) -> Result<Self, ValidatorError> {
        let client = ChainClient::connect(
            &origin.name,
            &origin.rpc_urls,
            RetryPolicy::default(),
            RpcMetrics::new(registry)?,
        )
        .await?;
        let actual = client.read("eth_chainId", |p| async move { p.get_chain_id().await }).await?;
        if actual != origin.chain_id {
            return Err(ValidatorError::WrongChain {
                chain: origin.name,
                expected: origin.chain_id,
                actual,
            });
        }
        let store = AgentStore::open_with(&settings.db.join("index"), StoreOptions::VALIDATOR)?;
        let protection = SigningProtection::open(&settings.db.join("signing_protection"))?;
        let hook32 = address_to_bytes32(origin.addresses.merkle_tree_hook);
        // Resume from the saved frontier: every leaf below it is published.
        let tree = protection.frontier(origin.domain, hook32)?.unwrap_or_default();
        Ok(Self {
            hook32,
            pruned_at: tree.count(),
            tree,
            client: Arc::new(client),
            store,
            protection,
            storage,
            signer: Arc::new(signer),
            chain_signer,
            metrics: ValidatorMetrics::new(registry)?,
            indexer_metrics: IndexerMetrics::new(registry)?,
            interval: settings.interval(),
            sign_batch: settings.sign_batch.max(1),
            retained_leaves: settings.retained_leaves.max(1),
            announce_retry: Duration::from_millis(settings.announce_retry_ms.max(10)),
            windows: Vec::new(),
            recent_ids: (0, VecDeque::new()),
            last_complete: None,
            insertion_cursor: insertion_config(&origin, settings.interval()).cursor_name(),
            recheck: settings.recheck(),
            origin,
        })
    }

    /// The double-sign protection record (for export and tests).
    pub fn protection(&self) -> &SigningProtection {
        &self.protection
    }

    /// Runs until a fatal error: refuses to start under a raised reorg flag,
    /// announces, then indexes and signs forever.
    pub async fn run(mut self) -> Result<(), ValidatorError> {
        self.preflight().await?;
        self.announce().await?;
        let indexer = tokio::spawn(self.insertion_indexer().run());
        let _stop_indexer = AbortOnDrop(indexer);
        loop {
            match self.tick().await {
                Ok(tick) => tracing::debug!(?tick, "tick"),
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => tracing::warn!(%error, "tick failed; retrying"),
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    /// Refuses to start while the reorg flag is raised; writes the agent metadata.
    pub async fn preflight(&self) -> Result<(), ValidatorError> {
        if let Some(event) = self.storage.read_reorg_flag().await? {
            return Err(ValidatorError::ReorgFlagRaised {
                event,
                location: self.storage.announcement_location(),
            });
        }
        let metadata = AgentMetadata {
            git_sha: option_env!("METALAYER_GIT_SHA").unwrap_or("unknown").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        Ok(self.storage.write_metadata(&metadata).await?)
    }

    /// The indexer of this origin's tree insertions, sharing the store.
    pub fn insertion_indexer(&self) -> Indexer {
        let config = insertion_config(&self.origin, self.interval);
        Indexer::new(self.client.clone(), self.store.clone(), config, self.indexer_metrics.clone())
    }

    /// Writes the signed announcement to storage, then waits until the
    /// location is on chain, submitting the announcement if a funded chain
    /// signer is configured.
    pub async fn announce(&self) -> Result<(), ValidatorError> {
        let location = self.storage.announcement_location();
        let announcement = Announcement {
            validator: self.signer.address(),
            mailbox_address: address_to_bytes32(self.origin.addresses.mailbox),
            mailbox_domain: self.origin.domain,
            storage_location: location.clone(),
        };
        let signed = Signed::sign(announcement, self.signer.as_ref())?;
        self.storage.write_announcement(&signed).await?;
        let mut delay = self.announce_retry;
        loop {
            match self.is_announced(&location).await {
                Ok(true) => {
                    self.metrics.announced.set(1);
                    tracing::info!(%location, "storage location is announced");
                    return Ok(());
                }
                Ok(false) => match &self.chain_signer {
                    Some(key) => match self.send_announcement(key, &signed).await {
                        Ok(()) => continue,
                        Err(error) => tracing::warn!(%error, "announcing failed; retrying"),
                    },
                    None => tracing::warn!(
                        %location, validator = %self.signer.address(),
                        "the storage location is not announced and no chain_signer is configured: \
                         announce it from a funded account; waiting"
                    ),
                },
                Err(error) => tracing::warn!(%error, "reading announcements failed; retrying"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_ANNOUNCE_RETRY);
        }
    }

    async fn is_announced(&self, location: &str) -> Result<bool, ChainError> {
        let tip = self.client.block_number().await?;
        let call = ValidatorAnnounce::getAnnouncedStorageLocationsCall {
            validatorList: vec![self.signer.address()],
        };
        let locations =
            self.client.call(self.origin.addresses.validator_announce, &call, tip).await?;
        Ok(locations.first().is_some_and(|l| l.iter().any(|l| l == location)))
    }

    async fn send_announcement(
        &self,
        key: &PrivateKeySigner,
        signed: &Signed<Announcement>,
    ) -> Result<(), String> {
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(key.clone()))
            .connect_provider(self.client.provider());
        let balance = provider.get_balance(key.address()).await.map_err(|e| e.to_string())?;
        if balance.is_zero() {
            return Err(format!(
                "chain signer {} has no funds on {}",
                key.address(),
                self.origin.name
            ));
        }
        let contract = ValidatorAnnounce::new(self.origin.addresses.validator_announce, &provider);
        let call = contract.announce(
            signed.value.validator,
            signed.value.storage_location.clone(),
            Bytes::from(signed.signature.to_bytes().to_vec()),
        );
        let receipt = call
            .send()
            .await
            .map_err(|e| e.to_string())?
            .get_receipt()
            .await
            .map_err(|e| e.to_string())?;
        if !receipt.status() {
            return Err(format!("announce transaction {} reverted", receipt.transaction_hash));
        }
        Ok(())
    }

    /// One look at the origin: extend the local tree, check it, sign and publish.
    pub async fn tick(&mut self) -> Result<Tick, ValidatorError> {
        let hook = self.origin.addresses.merkle_tree_hook;
        let block = self.tree_block().await?;
        // Blocks come slower than a tick when the interval is short: the
        // tree at a block already read, checked and published is read again
        // only once `recheck` has passed (Hyperlane's validator reads it
        // every interval, 2 s by default).
        if let Some((last, at)) = self.last_complete
            && last == block
            && at.elapsed() < self.recheck
        {
            return Ok(Tick::Unchanged);
        }
        self.last_complete = None;
        // `latestCheckpoint()` reverts on an empty tree: the count tells the
        // two apart while the local tree is empty. Once it has leaves, the
        // chain's tree has them too at every block read since, so one call
        // a block is enough; if it fails, the count tells a tree a reorg
        // emptied from a failing endpoint.
        let checkpoint = MerkleTreeHook::latestCheckpointCall {};
        let latest = if self.tree.count() == 0 {
            let count = self.client.call_quorum(hook, &MerkleTreeHook::countCall {}, block).await?;
            if count == 0 {
                return Ok(Tick::EmptyTree);
            }
            self.client.call_quorum(hook, &checkpoint, block).await?
        } else {
            match self.client.call_quorum(hook, &checkpoint, block).await {
                Ok(latest) => latest,
                // An emptied tree; otherwise the read's own error, even if
                // the count cannot be read either.
                Err(error) => {
                    let count = self.client.call_quorum(hook, &MerkleTreeHook::countCall {}, block);
                    if matches!(count.await, Ok(0)) {
                        return Ok(Tick::EmptyTree);
                    }
                    return Err(error.into());
                }
            }
        };
        let (root, index) = (latest._0, latest._1);
        self.metrics
            .latest_checkpoint
            .with_label_values(&["validator_observed"])
            .set(i64::from(index));
        if self.tree.count() > u64::from(index) + 1 {
            tracing::warn!(
                local = self.tree.count(),
                chain = u64::from(index) + 1,
                "the chain's tree is behind ours; retrying"
            );
            return Ok(Tick::ChainBehind);
        }
        while self.tree.count() <= u64::from(index) {
            let next = self.tree.count() as u32;
            let wanted = (u64::from(index) + 1 - self.tree.count()).min(READ_LEAVES as u64);
            let insertions =
                self.store.insertions_from(self.origin.domain, next, wanted as usize)?;
            for insertion in &insertions {
                let window_full = self.windows.last().is_none_or(|start| {
                    self.tree.count() - start.count() >= self.sign_batch as u64
                });
                if window_full {
                    self.windows.push(self.tree.clone());
                }
                self.tree.insert(insertion.message_id).map_err(|_| ValidatorError::TreeFull)?;
                self.remember_id(u64::from(insertion.index), insertion.message_id);
            }
            if (insertions.len() as u64) < wanted {
                return Ok(Tick::WaitingForIndexer);
            }
        }
        if self.tree.root() != root {
            return Err(self.raise_reorg_flag(root, index, block).await);
        }
        self.publish_windows().await?;
        self.prune()?;
        self.last_complete = Some((block, std::time::Instant::now()));
        self.metrics
            .latest_checkpoint
            .with_label_values(&["validator_processed"])
            .set(i64::from(index));
        self.metrics.backfill_complete.set(1);
        Ok(Tick::Published(index))
    }

    /// The block a tick reads the tree at: the newest block the insertion
    /// indexer has read (final by the same reorg lag), so every leaf the
    /// tree holds there is already stored and no RPC is needed to learn it;
    /// the origin's final block before the indexer has read any.
    async fn tree_block(&self) -> Result<u64, ValidatorError> {
        match self.store.cursor(&self.insertion_cursor)? {
            Some(next) if next > self.origin.index.from => Ok(next - 1),
            _ => Ok(self.client.final_block(self.origin.reorg_period).await?),
        }
    }

    /// Signs and publishes every pending window, newest first (the newest
    /// window first, and newest first within each), so relayers get the
    /// latest checkpoint before the backlog.
    async fn publish_windows(&mut self) -> Result<(), ValidatorError> {
        let mut end = self.tree.count();
        let mut newest = true;
        while let Some(start) = self.windows.last() {
            let checkpoints = self.window_checkpoints(start.clone(), end)?;
            self.publish(&checkpoints).await?;
            if newest {
                if let Some(highest) = checkpoints.first() {
                    self.storage.raise_latest_index(highest.checkpoint.index).await?;
                }
                newest = false;
            }
            // Published: the next older window ends where this one began.
            let start = self.windows.pop().map_or(0, |start| start.count());
            // Within a long backlog, records of published windows older
            // than the retained leaves go at once (the insertions stay until
            // the frontier passes them: a restart rebuilds from there).
            if end <= u64::from(self.prunable_below()) {
                self.protection.prune(self.origin.domain, self.hook32, start as u32, end as u32)?;
            }
            end = start;
        }
        // Everything is published: no leaf's id is needed again.
        self.recent_ids.1.clear();
        Ok(())
    }

    /// Keeps the id of leaf `index` (the next one after those kept, else
    /// the ones kept are dropped for it) for signing, dropping the oldest
    /// beyond [`RECENT_IDS`].
    fn remember_id(&mut self, index: u64, id: B256) {
        let (from, ids) = &mut self.recent_ids;
        if *from + ids.len() as u64 != index {
            ids.clear();
            *from = index;
        }
        ids.push_back(id);
        if ids.len() > RECENT_IDS {
            ids.pop_front();
            *from += 1;
        }
    }

    /// Once everything is published: saves the tree as the frontier to
    /// resume from, and prunes records and insertions more than
    /// `retained_leaves` below it, so the databases (and sled's memory) stay
    /// the same size however long the validator runs.
    fn prune(&mut self) -> Result<(), ValidatorError> {
        let pending = !self.windows.is_empty();
        if pending
            || self.tree.count() < self.pruned_at + u64::from(self.retained_leaves / 4).max(1)
        {
            return Ok(());
        }
        let (domain, hook) = (self.origin.domain, self.hook32);
        self.protection.save_frontier(domain, hook, &self.tree)?;
        let floor = self.prunable_below();
        self.protection.prune(domain, hook, 0, floor)?;
        let pruned = self.store.prune_insertions(domain, floor)?;
        self.pruned_at = self.tree.count();
        tracing::debug!(floor, pruned, "pruned records and insertions below the floor");
        Ok(())
    }

    /// Leaves below this are older than the newest `retained_leaves`.
    fn prunable_below(&self) -> u32 {
        let below = self.tree.count().saturating_sub(u64::from(self.retained_leaves));
        u32::try_from(below).unwrap_or(u32::MAX)
    }

    /// The checkpoints of leaves `tree.count()..end`, newest first, with
    /// `tree` the tree as it stood before the first of them.
    fn window_checkpoints(
        &self,
        mut tree: MerkleTree,
        end: u64,
    ) -> Result<Vec<CheckpointWithMessageId>, ValidatorError> {
        let first = tree.count();
        let (from, kept) = &self.recent_ids;
        // Leaves older than the ids kept in memory are read from the store
        // in one range read.
        let stored_end = end.min(*from).max(first);
        let mut ids = self.stored_ids(first, stored_end)?;
        for leaf in stored_end..end {
            match leaf.checked_sub(*from).and_then(|i| kept.get(i as usize)) {
                Some(id) => ids.push(*id),
                None => ids.extend(self.stored_ids(leaf, leaf + 1)?),
            }
        }
        let roots = tree.insert_with_roots(&ids).map_err(|_| ValidatorError::TreeFull)?;
        let mut out: Vec<CheckpointWithMessageId> = (first..end)
            .zip(ids.into_iter().zip(roots))
            .map(|(leaf, (message_id, root))| CheckpointWithMessageId {
                checkpoint: Checkpoint {
                    merkle_tree_hook: self.hook32,
                    origin: self.origin.domain,
                    root,
                    index: leaf as u32,
                },
                message_id,
            })
            .collect();
        out.reverse();
        Ok(out)
    }

    /// The message ids of leaves `from..to` from the store.
    fn stored_ids(&self, from: u64, to: u64) -> Result<Vec<B256>, ValidatorError> {
        let want = to.saturating_sub(from);
        if want == 0 {
            return Ok(Vec::new());
        }
        let stored = self.store.insertions_from(self.origin.domain, from as u32, want as usize)?;
        if (stored.len() as u64) < want {
            let leaf = from + stored.len() as u64;
            return Err(StoreError::Corrupt {
                tree: "insertion",
                reason: format!("leaf {leaf} was in the tree but is no longer stored"),
            }
            .into());
        }
        Ok(stored.into_iter().map(|i| i.message_id).collect())
    }

    /// Passes `batch` through the double-sign protection, then signs and
    /// writes what is not yet published.
    async fn publish(&self, batch: &[CheckpointWithMessageId]) -> Result<(), ValidatorError> {
        let (domain, hook) = (self.origin.domain, self.hook32);
        // Pruned ranges were signed and published (a validator restarted
        // within a backlog, or rebuilding its tree after an import).
        let pruned = self.protection.pruned(domain, hook)?;
        let batch: Vec<_> = batch
            .iter()
            .filter(|c| pruned.containing(c.checkpoint.index).is_none())
            .copied()
            .collect();
        let verdicts = match self.protection.check_and_record_all(&batch) {
            Ok(v) => v,
            Err(error) => {
                if matches!(error, ProtectionError::Conflict(_) | ProtectionError::Pruned { .. }) {
                    self.metrics.signing_refused.inc();
                }
                return Err(error.into());
            }
        };
        let mut todo = Vec::with_capacity(batch.len());
        for (checkpoint, verdict) in batch.iter().zip(verdicts) {
            let index = checkpoint.checkpoint.index;
            if verdict == Verdict::Recorded || !self.protection.is_published(domain, hook, index)? {
                todo.push(*checkpoint);
            }
        }
        let signed = todo
            .iter()
            .map(|checkpoint| Signed::sign(*checkpoint, self.signer.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        // One group write: a local directory makes the whole group durable
        // with one flush. Only then is any of it marked published.
        self.storage.write_checkpoints(&signed).await?;
        self.protection.mark_published(domain, hook, todo.iter().map(|c| c.checkpoint.index))?;
        self.metrics.signed.inc_by(todo.len() as u64);
        Ok(())
    }

    async fn raise_reorg_flag(&self, canonical: B256, index: u32, block: u64) -> ValidatorError {
        let event = ReorgEvent {
            local_merkle_root: self.tree.root(),
            canonical_merkle_root: canonical,
            checkpoint_index: index,
            unix_timestamp: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            reorg_period: self.origin.reorg_period,
        };
        self.metrics.root_mismatch.set(1);
        tracing::error!(?event, "merkle root mismatch: raising the reorg flag and stopping");
        let hook = self.origin.addresses.merkle_tree_hook;
        let answers =
            self.client.call_each(hook, &MerkleTreeHook::latestCheckpointCall {}, block).await;
        let diagnostics = serde_json::json!({
            "block": block,
            "endpoints": answers.into_iter().map(|(endpoint, answer)| match answer {
                Ok(r) => serde_json::json!({"endpoint": endpoint, "root": r._0, "index": r._1}),
                Err(e) => serde_json::json!({"endpoint": endpoint, "error": e}),
            }).collect::<Vec<_>>(),
        });
        if let Err(error) = self.storage.write_reorg_rpc_responses(&diagnostics).await {
            tracing::error!(%error, "could not write the reorg diagnostics");
        }
        if let Err(error) = self.storage.write_reorg_flag(&event).await {
            tracing::error!(%error, "could not write the reorg flag: do not restart this validator before investigating");
        }
        ValidatorError::RootMismatch(event)
    }
}

/// The indexer of `origin`'s tree insertions.
fn insertion_config(origin: &ChainSettings, poll_interval: Duration) -> IndexerConfig {
    IndexerConfig {
        chain: origin.name.clone(),
        domain: origin.domain,
        kind: EventKind::Insertion,
        address: origin.addresses.merkle_tree_hook,
        from: origin.index.from,
        chunk: origin.index.chunk,
        reorg_period: origin.reorg_period,
        poll_interval,
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
