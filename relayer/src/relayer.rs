//! The relayer: what it holds, how it is built from settings, and the tasks
//! it runs.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use metalayer_agent::{
    chain::{ChainClient, ChainError, RetryPolicy, RpcMetrics},
    config::ChainSettings,
    indexer::IndexerMetrics,
    storage::LocationOptions,
    store::{AgentStore, StoreError},
};
use prometheus::Registry;
use tokio::task::JoinSet;

use crate::{
    backoff::backoff,
    gas_policy::GasPolicyRule,
    metadata::{IsmCache, IsmCaches},
    metrics::RelayerMetrics,
    op::{PendingOp, Reason, Stage, now_ms},
    origin::{MessageFilter, Origin, load_messages},
    queue::{QueueError, QueueStore},
    sender::TxSender,
    settings::RelayerSettings,
};

/// Why the relayer could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayerError {
    /// Settings are inconsistent.
    #[error("settings: {0}")]
    Settings(String),
    /// A chain could not be reached.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// An RPC endpoint serves another chain than configured.
    #[error("chain {chain}: configured chain id {expected}, the RPC reports {actual}")]
    WrongChain {
        /// Chain name.
        chain: String,
        /// Configured.
        expected: u64,
        /// Reported.
        actual: u64,
    },
    /// The index store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue store failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Metrics could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Attempts lacking signatures that retry after `metadata_retry` instead of
/// the backoff schedule.
pub const FAST_RETRIES: u32 = 3;

/// One destination: its chain, client and signer.
#[derive(Debug)]
pub struct Destination {
    /// The chain's settings.
    pub chain: ChainSettings,
    /// Its RPC client.
    pub client: Arc<ChainClient>,
    /// The signer of delivery transactions.
    pub sender: TxSender,
}

/// Everything the pipeline's tasks share.
#[derive(Debug)]
pub struct Context {
    /// The queues.
    pub queue: QueueStore,
    /// Indexed dispatches, insertions and gas payments.
    pub store: AgentStore,
    /// Origins by domain.
    pub origins: BTreeMap<u32, Arc<Origin>>,
    /// Destinations by domain.
    pub destinations: BTreeMap<u32, Arc<Destination>>,
    /// Which messages are relayed.
    pub filter: MessageFilter,
    /// Gas payment policies, first match wins.
    pub gas_rules: Vec<GasPolicyRule>,
    /// Failed attempts before parking.
    pub max_retries: u32,
    /// Multiplier of the retry schedule.
    pub backoff_scale: f64,
    /// Whether `processBatch` is used when the ISM takes it.
    pub batch_delivery: bool,
    /// The most messages per transaction.
    pub max_batch_size: usize,
    /// The most gas per transaction.
    pub transaction_gas_limit: u64,
    /// Pause between passes.
    pub interval: Duration,
    /// Pause after the first attempts that found too few signatures.
    pub metadata_retry: Duration,
    /// Metrics.
    pub metrics: RelayerMetrics,
    /// Whether each ISM takes `processBatch` (by destination and address).
    pub(crate) batch_isms: Mutex<HashMap<(u32, Address), bool>>,
    /// Each destination's ISM answers and when they were first read.
    pub(crate) ism_caches: IsmCaches,
}

/// The relayer, built and ready to run.
#[derive(Debug)]
pub struct Relayer {
    ctx: Arc<Context>,
    indexer_metrics: IndexerMetrics,
}

impl Relayer {
    /// Opens the databases and connects to every relayed chain.
    pub async fn new(
        mut settings: RelayerSettings,
        key: PrivateKeySigner,
        registry: &Registry,
    ) -> Result<Self, RelayerError> {
        let chains = settings.relayed().map_err(|e| RelayerError::Settings(e.to_string()))?;
        let rpc_metrics = RpcMetrics::new(registry)?;
        let metrics = RelayerMetrics::new(registry)?;
        let options = LocationOptions {
            allow_local: settings.allow_local_checkpoint_syncers,
            ..Default::default()
        };
        let mut origins = BTreeMap::new();
        let mut destinations = BTreeMap::new();
        for chain in chains {
            let client = Arc::new(
                ChainClient::connect(
                    &chain.name,
                    &chain.rpc_urls,
                    RetryPolicy::default(),
                    rpc_metrics.clone(),
                )
                .await?,
            );
            let actual = client
                .read("eth_chainId", |p| async move {
                    alloy::providers::Provider::get_chain_id(&p).await
                })
                .await?;
            if actual != chain.chain_id {
                return Err(RelayerError::WrongChain {
                    chain: chain.name,
                    expected: chain.chain_id,
                    actual,
                });
            }
            let sender = TxSender::new(
                client.clone(),
                key.clone(),
                chain.chain_id,
                Duration::from_millis(settings.escalate_after_ms.max(100)),
                settings.interval().min(Duration::from_millis(100)),
                metrics.clone(),
            );
            origins.insert(
                chain.domain,
                Arc::new(Origin::new(chain.clone(), client.clone(), options.clone())),
            );
            destinations.insert(chain.domain, Arc::new(Destination { chain, client, sender }));
        }
        let filter = MessageFilter {
            whitelist: settings.whitelist.clone(),
            blacklist: settings.blacklist.clone(),
            address_blacklist: settings
                .address_blacklist_bytes()
                .map_err(RelayerError::Settings)?,
            destinations: destinations.keys().copied().collect::<BTreeSet<_>>(),
        };
        let ctx = Context {
            queue: QueueStore::open(&settings.db.join("queue"))?,
            store: AgentStore::open(&settings.db.join("index"))?,
            origins,
            destinations,
            filter,
            gas_rules: settings.gas_payment_enforcement.clone(),
            max_retries: settings.max_retries,
            backoff_scale: settings.backoff_scale,
            batch_delivery: settings.batch_delivery,
            max_batch_size: settings.max_batch_size,
            transaction_gas_limit: settings.transaction_gas_limit,
            interval: settings.interval(),
            metadata_retry: Duration::from_millis(settings.metadata_retry_ms),
            metrics,
            batch_isms: Mutex::new(HashMap::new()),
            ism_caches: IsmCaches::default(),
        };
        Ok(Self { ctx: Arc::new(ctx), indexer_metrics: IndexerMetrics::new(registry)? })
    }

    /// The shared state (for the operator API and tests).
    pub fn context(&self) -> Arc<Context> {
        self.ctx.clone()
    }

    /// Runs every task until the returned future is dropped: the indexers,
    /// per origin the prover feeder and loader, per destination the prepare,
    /// submit and confirm loops, and the queue gauges.
    pub async fn run(self) {
        let ctx = self.ctx;
        let mut requeued = BTreeMap::new();
        for domain in ctx.destinations.keys() {
            let n = ctx.requeue_submitted(*domain).unwrap_or_else(|error| {
                tracing::error!(%error, "could not requeue messages left in the submit queue");
                // Whatever is left, prepare waits for the pool as if it had.
                1
            });
            requeued.insert(*domain, n);
        }
        let mut tasks = JoinSet::new();
        for origin in ctx.origins.values() {
            for indexer in origin.indexers(&ctx.store, &self.indexer_metrics, ctx.interval) {
                tasks.spawn(indexer.run());
            }
            let (ctx, origin) = (ctx.clone(), origin.clone());
            tasks.spawn(async move {
                loop {
                    match origin.feed_prover(&ctx.store) {
                        Ok(leaves) => ctx
                            .metrics
                            .prover_leaves
                            .with_label_values(&[origin.chain.name.as_str()])
                            .set(i64::try_from(leaves).unwrap_or(i64::MAX)),
                        Err(error) => tracing::warn!(origin = %origin.chain.name, %error, "feeding the tree failed"),
                    }
                    if let Err(error) =
                        load_messages(&origin.chain, &ctx.store, &ctx.queue, &ctx.filter, &ctx.metrics)
                    {
                        tracing::warn!(origin = %origin.chain.name, %error, "loading messages failed");
                    }
                    tokio::time::sleep(ctx.interval).await;
                }
            });
        }
        for domain in ctx.destinations.keys().copied() {
            let c = ctx.clone();
            let wait = requeued.get(&domain).is_some_and(|n| *n > 0);
            tasks.spawn(async move {
                if wait {
                    c.wait_for_pooled(domain).await;
                }
                c.prepare_loop(domain).await
            });
            let c = ctx.clone();
            tasks.spawn(async move { c.submit_loop(domain).await });
            let c = ctx.clone();
            tasks.spawn(async move { c.confirm_loop(domain).await });
        }
        let c = ctx.clone();
        tasks.spawn(async move {
            loop {
                c.update_queue_gauges();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        while tasks.join_next().await.is_some() {}
    }
}

impl Context {
    /// Messages left in the submit queue by an earlier run go back to
    /// prepare, which checks `delivered` first (once the earlier run's
    /// pooled transactions are mined: [`Context::wait_for_pooled`]).
    /// Returns how many.
    fn requeue_submitted(&self, domain: u32) -> Result<usize, QueueError> {
        let moves: Vec<_> = self
            .queue
            .due(domain, Stage::Submit, u64::MAX, usize::MAX)?
            .into_iter()
            .map(|mut op| {
                op.stage = Stage::Prepare;
                op.next_attempt_ms = 0;
                op.reason = Some(Reason::Restarted);
                (op, Stage::Submit, "relayer restarted before sending".to_owned())
            })
            .collect();
        for answer in self.queue.transition_all(&moves)? {
            answer?;
        }
        Ok(moves.len())
    }

    /// Before the first prepare pass of `domain` after a restart that left
    /// messages in submit: waits for the signer's pooled transactions
    /// ([`crate::sender::TxSender::wait_for_pooled`]), retrying a failed
    /// read until it answers.
    async fn wait_for_pooled(&self, domain: u32) {
        let Some(dest) = self.destinations.get(&domain) else { return };
        loop {
            match dest.sender.wait_for_pooled().await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(destination = %dest.chain.name, %error, "could not read the signer's transaction counts or the chain's fees");
                    tokio::time::sleep(self.interval.max(Duration::from_millis(100))).await;
                }
            }
        }
    }

    /// Sets the queue-length gauges.
    pub fn update_queue_gauges(&self) {
        for d in self.destinations.values() {
            for stage in
                [Stage::Prepare, Stage::Submit, Stage::Confirm, Stage::Parked, Stage::Dropped]
            {
                let len = self.queue.len(d.chain.domain, stage);
                self.metrics
                    .queue_length
                    .with_label_values(&[d.chain.name.as_str(), stage.label()])
                    .set(i64::try_from(len).unwrap_or(i64::MAX));
            }
        }
    }

    /// `domain`'s ISM answers, read afresh once older than
    /// [`crate::metadata::ISM_CACHE_TTL`].
    pub(crate) fn ism_cache(&self, domain: u32) -> Arc<IsmCache> {
        self.ism_caches.get(domain, std::time::Instant::now())
    }

    /// The chain name of a domain, for labels.
    pub fn chain_name(&self, domain: u32) -> String {
        self.destinations.get(&domain).map_or_else(|| domain.to_string(), |d| d.chain.name.clone())
    }

    /// `op` after a failed attempt: back to prepare after the backoff, or
    /// parked once out of retries. A parked message keeps the reason of its
    /// last attempt, which tells the operator more than "out of retries"
    /// (its stage already says that).
    pub(crate) fn retry(&self, op: &mut PendingOp, reason: Reason, detail: String) {
        op.retries = op.retries.saturating_add(1);
        op.reason = Some(reason);
        op.detail = Some(detail);
        op.metadata = None;
        if op.retries >= self.max_retries {
            op.stage = Stage::Parked;
            op.next_attempt_ms = 0;
            self.metrics
                .operations
                .with_label_values(&["failed", &self.chain_name(op.destination)])
                .inc();
        } else {
            op.stage = Stage::Prepare;
            // Hyperlane's fast path: signatures usually appear within a few
            // blocks, so the first attempts that lack them retry quickly.
            let pause = if reason == Reason::CouldNotFetchMetadata && op.retries <= FAST_RETRIES {
                self.metadata_retry
            } else {
                backoff(op.retries, self.max_retries, self.backoff_scale)
            };
            op.next_attempt_ms = now_ms().saturating_add(pause.as_millis() as u64);
        }
    }

    /// Stores a transition, logging a lost race instead of failing.
    pub(crate) fn commit(&self, op: &PendingOp, from: Stage, detail: &str) {
        self.commit_all(&[(op.clone(), from, detail.to_owned())]);
    }

    /// Stores many transitions (operation, the stage it leaves, detail)
    /// together, logging a lost race (the operation was moved meanwhile)
    /// instead of failing.
    pub(crate) fn commit_all(&self, moves: &[(PendingOp, Stage, String)]) {
        let answers = match self.queue.transition_all(moves) {
            Ok(answers) => answers,
            Err(error) => {
                tracing::error!(%error, count = moves.len(), "could not store transitions");
                return;
            }
        };
        for ((op, _, detail), answer) in moves.iter().zip(answers) {
            match answer {
                Ok(()) => {
                    tracing::debug!(id = %op.id, nonce = op.nonce, stage = ?op.stage, reason = ?op.reason, detail, "message moved")
                }
                Err(QueueError::Conflict { .. }) => {
                    tracing::debug!(id = %op.id, "message was moved meanwhile (operator retry?)")
                }
                Err(error) => {
                    tracing::error!(id = %op.id, %error, "could not store a message's transition")
                }
            }
        }
    }

    /// Operator retry: a message waiting in prepare, parked or dropped is due
    /// at once with a fresh retry count. Returns whether it was moved.
    pub fn retry_now(&self, id: alloy::primitives::B256) -> Result<bool, QueueError> {
        let Some(mut op) = self.queue.get(id)? else { return Ok(false) };
        let from = op.stage;
        if !matches!(from, Stage::Prepare | Stage::Parked | Stage::Dropped) {
            return Ok(false);
        }
        op.stage = Stage::Prepare;
        op.retries = 0;
        op.next_attempt_ms = 0;
        op.reason = Some(Reason::Manual);
        match self.queue.transition(&op, from, "operator retry") {
            Ok(()) => Ok(true),
            Err(QueueError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
