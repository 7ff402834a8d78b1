//! The test network: two rollup-core nodes with the core contracts, five
//! validators signing each origin, and a relayer, all in this process and
//! talking JSON-RPC over loopback.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use alloy::{
    eips::eip2718::Encodable2718,
    network::{Ethereum, EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{B256, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, TransactionRequest},
    sol_types::{SolCall, SolEvent},
};
use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use metalayer_agent::{
    config::{ChainSettings, ConfigLoader},
    storage::{AgentMetadata, CheckpointStorage, LocalStorage, ReorgEvent, StorageError},
    telemetry::{LogSettings, init_tracing},
};
use metalayer_contracts::{
    CoreConfig, CoreDeployment, DefaultIsm, RemoteGasConfig,
    bindings::{InterchainGasPaymaster, Mailbox},
    deploy_core,
};
use metalayer_protocol::{
    LocalSigner, Message, address_to_bytes32,
    signed::{Signed, SignedAnnouncement, SignedCheckpoint},
};
use metalayer_relayer::{
    Context, Relayer,
    op::{Stage, now_ms},
    settings::RelayerSettings,
};
use metalayer_rollup::{
    genesis::Genesis,
    node::{MiningMode, NodeConfig},
    rpc::RpcLimits,
    service::RunningNode,
};
use metalayer_validator::{Validator, settings::ValidatorSettings};
use prometheus::Registry;
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// The domains (and chain ids) of the two rollups.
pub(crate) const DOMAINS: [u32; 2] = [1001, 1002];
/// Validators per origin, and how many must sign.
pub(crate) const VALIDATORS: u8 = 5;
pub(crate) const THRESHOLD: u8 = 3;
/// A bound that only keeps a broken test from hanging.
pub(crate) const PATIENCE: Duration = Duration::from_secs(180);

pub(crate) use metalayer_tests::{dev, validator_address, validator_key};

/// One rollup with the core stack.
pub(crate) struct Chain {
    pub(crate) name: &'static str,
    pub(crate) domain: u32,
    /// `None` once stopped ([`Net::shutdown`]).
    node: Option<RunningNode>,
    /// The node's JSON-RPC URL.
    pub(crate) url: String,
    pub(crate) core: CoreDeployment,
    pub(crate) provider: DynProvider,
}

/// Dev account index of the relayer's signer.
pub(crate) const RELAYER_KEY: u32 = 2;
impl Chain {
    /// The node's chain events (blocks as they are mined), while it runs.
    #[allow(dead_code, reason = "used by the relay bench")]
    pub(crate) fn events(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<metalayer_rollup::node::ChainEvent>> {
        self.node.as_ref().map(|n| n.node.subscribe())
    }

    async fn start(
        name: &'static str,
        domain: u32,
        other: u32,
        dir: &Path,
        options: &NetOptions,
    ) -> Self {
        let config = NodeConfig {
            data_dir: dir.join(name),
            // Multicall3 preinstalled, as on most chains: the relayer reads
            // `delivered` and sends deliveries without batches through it.
            genesis: {
                let mut genesis = Genesis {
                    chain_id: u64::from(domain),
                    gas_limit: options.block_gas_limit,
                    base_fee: options.base_fee,
                    ..Genesis::default()
                };
                genesis.preinstall_multicall3();
                genesis
            },
            mining: MiningMode::Interval(Duration::from_millis(options.block_ms)),
            pool_capacity: 100_000,
        };
        let node = metalayer_tests::start_node(config, RpcLimits::default()).await;
        let url = node.http_url();
        let provider = metalayer_tests::dev_provider(&node);
        let core = deploy_core(
            provider.clone(),
            &CoreConfig {
                local_domain: domain,
                owner: dev(0).address(),
                beneficiary: dev(0).address(),
                validators: (0..VALIDATORS).map(validator_address).collect(),
                threshold: THRESHOLD,
                default_ism: options.ism,
                remote_gas: vec![RemoteGasConfig {
                    domain: other,
                    token_exchange_rate: 10_000_000_000,
                    gas_price: 1,
                    gas_overhead: 0,
                }],
            },
        )
        .await
        .expect("core deploys");
        Self { name, domain, node: Some(node), url, core, provider }
    }

    /// The running node (for tests that watch it stop).
    pub(crate) fn node(&self) -> Option<std::sync::Weak<metalayer_rollup::node::Node>> {
        self.node.as_ref().map(|n| Arc::downgrade(&n.node))
    }

    /// Chain settings as the agents' TOML has them.
    pub(crate) fn settings_toml(&self, reorg_period: u64) -> String {
        let a = &self.core;
        format!(
            r#"
[chains.{name}]
domain = {domain}
chain_id = {domain}
rpc_urls = ["{url}"]
reorg_period = {reorg_period}
addresses = {{ mailbox = "{mailbox}", merkle_tree_hook = "{hook}", interchain_gas_paymaster = "{igp}", validator_announce = "{va}" }}
index = {{ from = {from}, chunk = 500 }}
"#,
            name = self.name,
            domain = self.domain,
            url = self.url,
            mailbox = a.mailbox,
            hook = a.merkle_tree_hook,
            igp = a.interchain_gas_paymaster,
            va = a.validator_announce,
            from = a.deployed_block,
        )
    }

    /// Dispatches `body` to `to`'s TestRecipient; returns the message.
    pub(crate) async fn dispatch(&self, to: &Self, body: &[u8]) -> Message {
        let (mailbox, recipient) = (self.core.mailbox, to.core.test_recipient);
        metalayer_tests::dispatch(&self.provider, mailbox, to.domain, recipient, body).await
    }

    /// Pays the origin IGP for `gas` of delivery of `message`.
    pub(crate) async fn pay_for_gas(&self, message: &Message, gas: u64) {
        let igp = InterchainGasPaymaster::new(self.core.interchain_gas_paymaster, &self.provider);
        let quote =
            igp.quoteGasPayment(message.destination, U256::from(gas)).call().await.expect("quote");
        let receipt = igp
            .payForGas(message.id(), message.destination, U256::from(gas), dev(0).address())
            .value(quote)
            .send()
            .await
            .expect("payment sent")
            .get_receipt()
            .await
            .expect("payment mined");
        assert!(receipt.status(), "payment reverted");
    }

    /// Whether `id` is delivered here.
    pub(crate) async fn delivered(&self, id: B256) -> bool {
        Mailbox::new(self.core.mailbox, &self.provider)
            .delivered(id)
            .call()
            .await
            .expect("delivered")
    }

    /// How many `ProcessId` events name `id`.
    pub(crate) async fn process_events(&self, id: B256) -> usize {
        let filter = Filter::new()
            .address(self.core.mailbox)
            .event_signature(Mailbox::ProcessId::SIGNATURE_HASH)
            .topic1(id)
            .from_block(0);
        self.provider.get_logs(&filter).await.expect("logs").len()
    }
}

/// Wraps a validator's storage so that every checkpoint it writes carries a
/// signature by another key: a validator serving bad signatures.
#[derive(Debug)]
pub(crate) struct Tampering {
    pub(crate) inner: LocalStorage,
    pub(crate) wrong: LocalSigner,
}

#[async_trait]
impl CheckpointStorage for Tampering {
    async fn write_checkpoint(&self, c: &SignedCheckpoint) -> Result<(), StorageError> {
        let forged = Signed::sign(c.value, &self.wrong).expect("sign");
        self.inner.write_checkpoint(&forged).await
    }
    async fn read_checkpoint(&self, i: u32) -> Result<Option<SignedCheckpoint>, StorageError> {
        self.inner.read_checkpoint(i).await
    }
    async fn latest_index(&self) -> Result<Option<u32>, StorageError> {
        self.inner.latest_index().await
    }
    async fn raise_latest_index(&self, i: u32) -> Result<bool, StorageError> {
        self.inner.raise_latest_index(i).await
    }
    async fn write_announcement(&self, a: &SignedAnnouncement) -> Result<(), StorageError> {
        self.inner.write_announcement(a).await
    }
    async fn read_announcement(&self) -> Result<Option<SignedAnnouncement>, StorageError> {
        self.inner.read_announcement().await
    }
    async fn write_metadata(&self, m: &AgentMetadata) -> Result<(), StorageError> {
        self.inner.write_metadata(m).await
    }
    async fn write_reorg_flag(&self, e: &ReorgEvent) -> Result<(), StorageError> {
        self.inner.write_reorg_flag(e).await
    }
    async fn read_reorg_flag(&self) -> Result<Option<ReorgEvent>, StorageError> {
        self.inner.read_reorg_flag().await
    }
    async fn clear_reorg_flag(&self) -> Result<(), StorageError> {
        self.inner.clear_reorg_flag().await
    }
    async fn write_reorg_rpc_responses(&self, r: &serde_json::Value) -> Result<(), StorageError> {
        self.inner.write_reorg_rpc_responses(r).await
    }
    fn announcement_location(&self) -> String {
        self.inner.announcement_location()
    }
}

/// One validator of one origin, which the test starts and stops.
pub(crate) struct ValidatorSlot {
    origin: ChainSettings,
    settings: ValidatorSettings,
    key: u8,
    storage: Arc<dyn CheckpointStorage>,
    task: Option<JoinHandle<()>>,
    /// The validator's own process, when started with [`Self::start_process`].
    child: Option<std::process::Child>,
}

impl ValidatorSlot {
    async fn build(&self) -> Validator {
        // A stopped validator's database may still be closing: retry briefly.
        let mut last = None;
        for _ in 0..100 {
            let signer = LocalSigner::from_bytes(&validator_key(self.key)).expect("key");
            match Validator::new(
                self.origin.clone(),
                &self.settings,
                signer,
                Some(dev(1)),
                self.storage.clone(),
                &Registry::new(),
            )
            .await
            {
                Ok(v) => return v,
                Err(e) => last = Some(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("validator does not start: {last:?}");
    }

    /// Announces, then signs in the background.
    pub(crate) async fn start(&mut self) {
        if self.running() {
            return;
        }
        let validator = self.build().await;
        validator.announce().await.expect("announce");
        self.task = Some(tokio::spawn(async move {
            if let Err(e) = validator.run().await {
                panic!("validator stopped: {e}");
            }
        }));
    }

    /// Announces from this process, then signs in a process of its own:
    /// `exe` run with `METALAYER_BENCH_VALIDATOR` naming the slot's
    /// configuration file (the relay bench, which then runs only this
    /// validator), as an operator runs each validator. sled serializes every
    /// database of one process behind one lock, which ten in-process
    /// validators, two nodes and a relayer would otherwise share.
    #[allow(dead_code, reason = "used by the relay bench")]
    pub(crate) async fn start_process(&mut self, exe: &Path) {
        if self.running() {
            return;
        }
        let validator = self.build().await;
        validator.announce().await.expect("announce");
        drop(validator);
        let config = self.settings.db.parent().expect("state directory").join("validator.toml");
        // The database just closed may still be held for a moment: the child
        // retries opening it itself.
        let child = std::process::Command::new(exe)
            .env(VALIDATOR_PROCESS_ENV, &config)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("validator process starts");
        self.child = Some(child);
    }

    /// The CPU seconds its process has used so far (0 for a task: Linux).
    #[allow(dead_code, reason = "used by the relay bench")]
    pub(crate) fn process_cpu_seconds(&self) -> f64 {
        self.child.as_ref().map_or(0.0, |c| proc_cpu_seconds(&format!("/proc/{}/stat", c.id())))
    }

    /// Whether the validator is signing (a task or a process).
    pub(crate) fn running(&self) -> bool {
        self.task.is_some() || self.child.is_some()
    }

    /// Stops signing (the task and its database are dropped; a process is
    /// killed and reaped).
    pub(crate) async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        self.kill_process();
    }

    /// Kills and reaps the validator's process, if it has one.
    fn kill_process(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) use metalayer_tests::proc_cpu_seconds;

/// The variable naming a validator configuration file: set, the relay
/// bench runs that one validator ([`ValidatorSlot::start_process`]).
pub(crate) const VALIDATOR_PROCESS_ENV: &str = "METALAYER_BENCH_VALIDATOR";

impl Drop for ValidatorSlot {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.kill_process();
    }
}

/// Two chains, five validators per origin, and the relayer's settings.
///
/// End it with [`Net::shutdown`]: a node's sled store must be closed before
/// its directory goes. (sled's last flush on a deleted directory can block
/// forever holding sled's process-wide concurrency lock, and then every sled
/// store of the process, the next network's nodes included, stops writing.)
pub(crate) struct Net {
    /// `None` once removed by [`Net::shutdown`].
    dir: Option<TempDir>,
    pub(crate) chains: [Chain; 2],
    /// `validators[origin][n]`.
    pub(crate) validators: [Vec<ValidatorSlot>; 2],
}

/// What to vary between tests.
#[derive(Clone)]
pub(crate) struct NetOptions {
    pub(crate) ism: DefaultIsm,
    /// Validators (by index) whose storage serves forged signatures.
    pub(crate) tampering: Vec<u8>,
    /// Block time of both chains.
    pub(crate) block_ms: u64,
    /// Block gas limit of both chains.
    pub(crate) block_gas_limit: u64,
    /// Genesis base fee of both chains (wei).
    pub(crate) base_fee: u64,
}

impl Default for NetOptions {
    fn default() -> Self {
        Self {
            ism: DefaultIsm::MessageId,
            tampering: vec![],
            block_ms: 100,
            block_gas_limit: 30_000_000,
            base_fee: Genesis::default().base_fee,
        }
    }
}

impl Net {
    /// Starts both chains and announces every validator; validators are not
    /// signing yet.
    pub(crate) async fn new(options: NetOptions) -> Self {
        static LOGS: std::sync::Once = std::sync::Once::new();
        LOGS.call_once(|| {
            if let Ok(level) = std::env::var("RELAYER_TEST_LOG") {
                let settings = LogSettings { level, ..LogSettings::default() };
                let _ = init_tracing(&settings);
            }
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let a = Chain::start("alpha", DOMAINS[0], DOMAINS[1], dir.path(), &options).await;
        let b = Chain::start("beta", DOMAINS[1], DOMAINS[0], dir.path(), &options).await;
        let mut validators = [Vec::new(), Vec::new()];
        for (i, chain) in [&a, &b].into_iter().enumerate() {
            for n in 0..VALIDATORS {
                let state = dir.path().join(format!("validator-{}-{n}", chain.name));
                let toml = format!(
                    r#"
origin = "{name}"
db = "{db}"
interval_ms = 50
announce_retry_ms = 50
metrics_listen = "127.0.0.1:0"
validator_key = {{ type = "hex", key = "{key}" }}
checkpoint_storage = {{ type = "local", path = "{storage}" }}
{chain}
"#,
                    name = chain.name,
                    db = state.join("db").display(),
                    key = validator_key(n),
                    storage = state.join("checkpoints").display(),
                    chain = chain.settings_toml(1),
                );
                std::fs::create_dir_all(&state).expect("state dir");
                let path = state.join("validator.toml");
                std::fs::write(&path, toml).expect("config written");
                let mut settings: ValidatorSettings =
                    ConfigLoader::new().file(&path).load().expect("validator config loads");
                let origin = settings.origin_chain().expect("origin").clone();
                let local = LocalStorage::new(state.join("checkpoints")).expect("storage");
                let storage: Arc<dyn CheckpointStorage> = if options.tampering.contains(&n) {
                    let wrong = LocalSigner::from_bytes(&B256::repeat_byte(0x99)).expect("key");
                    Arc::new(Tampering { inner: local, wrong })
                } else {
                    Arc::new(local)
                };
                validators[i].push(ValidatorSlot {
                    origin,
                    settings,
                    key: n,
                    storage,
                    task: None,
                    child: None,
                });
            }
        }
        Self { dir: Some(dir), chains: [a, b], validators }
    }

    /// The network's directory (nodes, validators, relayer).
    pub(crate) fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new("/nonexistent"), |d| d.path())
    }

    /// Stops the validators and both nodes, waits until every sled store
    /// under the network's directory is closed (relayers must have been
    /// killed first), then removes the directory.
    pub(crate) async fn shutdown(mut self) {
        self.stop_validators(0..VALIDATORS).await;
        for chain in &mut self.chains {
            if let Some(node) = chain.node.take() {
                node.stop().await;
            }
        }
        let start = tokio::time::Instant::now();
        while let Some(open) = open_sled_store(self.path()) {
            assert!(start.elapsed() < PATIENCE, "sled store {} never closed", open.display());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(dir) = self.dir.take() {
            dir.close().expect("network directory removed");
        }
    }

    /// Starts validators `which` of both origins, each in a process of its
    /// own ([`ValidatorSlot::start_process`]).
    #[allow(dead_code, reason = "used by the relay bench")]
    pub(crate) async fn start_validator_processes(
        &mut self,
        which: impl IntoIterator<Item = u8> + Clone,
        exe: &Path,
    ) {
        for origin in &mut self.validators {
            for n in which.clone() {
                origin[usize::from(n)].start_process(exe).await;
            }
        }
    }

    /// CPU seconds used so far by the validators running as processes.
    #[allow(dead_code, reason = "used by the relay bench")]
    pub(crate) fn validator_processes_cpu_seconds(&self) -> f64 {
        self.validators.iter().flatten().map(ValidatorSlot::process_cpu_seconds).sum()
    }

    /// Starts validators `which` (by index) of both origins.
    pub(crate) async fn start_validators(&mut self, which: impl IntoIterator<Item = u8> + Clone) {
        for origin in &mut self.validators {
            for n in which.clone() {
                origin[usize::from(n)].start().await;
            }
        }
    }

    /// Stops validators `which` of both origins.
    pub(crate) async fn stop_validators(&mut self, which: impl IntoIterator<Item = u8> + Clone) {
        for origin in &mut self.validators {
            for n in which.clone() {
                origin[usize::from(n)].stop().await;
            }
        }
    }

    /// Waits until every running validator of origin `origin` has published
    /// a checkpoint at or above `index`.
    pub(crate) async fn wait_signed(&self, origin: usize, index: u32) {
        let start = tokio::time::Instant::now();
        for slot in self.validators[origin].iter().filter(|s| s.running()) {
            while slot.storage.latest_index().await.expect("storage").is_none_or(|i| i < index) {
                assert!(start.elapsed() < PATIENCE, "validators never signed index {index}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// The relayer's directory.
    pub(crate) fn relayer_dir(&self) -> PathBuf {
        self.path().join("relayer")
    }

    /// Relayer settings as TOML, with `extra` lines at the top.
    /// The relayer's signer: dev account [`RELAYER_KEY`].
    pub(crate) fn relayer_toml(&self, extra: &str) -> String {
        format!(
            r#"
{extra}
relay_chains = ["alpha", "beta"]
db = "{db}"
metrics_listen = "127.0.0.1:0"
allow_local_checkpoint_syncers = true
backoff_scale = 0.02
metadata_retry_ms = 100
interval_ms = 50
escalate_after_ms = 5000
signer = {{ type = "hex", key = "{key}" }}
{a}
{b}
"#,
            db = self.relayer_dir().display(),
            key = B256::from_slice(&dev(RELAYER_KEY).to_bytes()[..]),
            a = self.chains[0].settings_toml(1),
            b = self.chains[1].settings_toml(1),
        )
    }

    /// A relayer built in-process from [`Self::relayer_toml`], running in the
    /// background.
    pub(crate) async fn relayer(&self, extra: &str) -> RunningRelayer {
        self.relayer_from_toml(&self.relayer_toml(extra)).await
    }

    /// A relayer built in-process from `toml`, running in the background.
    pub(crate) async fn relayer_from_toml(&self, toml: &str) -> RunningRelayer {
        self.relayer_on(toml, &tokio::runtime::Handle::current()).await
    }

    /// A relayer built in-process from `toml`, its tasks running on
    /// `runtime` (a bench gives it a runtime of its own to measure its CPU).
    pub(crate) async fn relayer_on(
        &self,
        toml: &str,
        runtime: &tokio::runtime::Handle,
    ) -> RunningRelayer {
        let path = self.path().join("relayer.toml");
        std::fs::write(&path, toml).expect("config written");
        let settings: RelayerSettings =
            ConfigLoader::new().file(&path).load().expect("relayer config loads");
        // A relayer stopped a moment ago may still hold its databases.
        let mut last = None;
        for _ in 0..100 {
            // The agent registry, as the binary uses: it adds the `metalayer_` prefix.
            let registry = metalayer_agent::telemetry::Metrics::new("relayer")
                .expect("metrics")
                .registry()
                .clone();
            match Relayer::new(settings.clone(), dev(2), &registry).await {
                Ok(relayer) => {
                    let ctx = relayer.context();
                    let task = runtime.spawn(relayer.run());
                    return RunningRelayer { ctx, task, registry, api: None };
                }
                Err(e) => last = Some(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("relayer does not start: {last:?}");
    }
}

impl Drop for Net {
    /// Without [`Net::shutdown`] (a failed test): stops the miners and
    /// leaves the directory on disk rather than remove it under open stores.
    fn drop(&mut self) {
        for slot in self.validators.iter_mut().flatten() {
            if let Some(task) = slot.task.take() {
                task.abort();
            }
        }
        for chain in &self.chains {
            if let Some(node) = &chain.node {
                node.node.stop();
            }
        }
        if let Some(dir) = self.dir.take() {
            let kept = dir.keep();
            eprintln!("test network not shut down; its directory stays: {}", kept.display());
        }
    }
}

/// A sled database under `dir` that some handle still holds open (sled
/// keeps an exclusive lock on its `db` file while open).
fn open_sled_store(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(open) = open_sled_store(&path) {
                return Some(open);
            }
        } else if path.file_name().is_some_and(|n| n == "db")
            && path.with_file_name("conf").exists()
        {
            let Ok(file) = std::fs::File::open(&path) else { continue };
            if matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)) {
                return Some(path);
            }
        }
    }
    None
}

/// A relayer running in this process.
pub(crate) struct RunningRelayer {
    pub(crate) ctx: Arc<Context>,
    pub(crate) task: JoinHandle<()>,
    pub(crate) registry: Registry,
    /// The operator API's server, once [`Self::serve_api`] started it.
    api: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for RunningRelayer {
    fn drop(&mut self) {
        if let Some(api) = &self.api {
            api.abort();
        }
        self.task.abort();
    }
}

impl RunningRelayer {
    /// Stops every task and waits until they have dropped the databases.
    pub(crate) async fn kill(mut self) {
        // The API holds the relayer's context: it stops first.
        if let Some(api) = self.api.take() {
            api.abort();
            let _ = api.await;
        }
        self.task.abort();
        let _ = (&mut self.task).await;
        let ctx = Arc::downgrade(&self.ctx);
        drop(self);
        let start = tokio::time::Instant::now();
        while ctx.upgrade().is_some() {
            assert!(start.elapsed() < PATIENCE, "the relayer's tasks never ended");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The stage of message `id`.
    pub(crate) fn stage(&self, id: B256) -> Option<Stage> {
        self.ctx.queue.get(id).expect("queue readable").map(|op| op.stage)
    }

    /// Waits until message `id` reaches `stage`.
    pub(crate) async fn wait_for(&self, id: B256, stage: Stage) {
        let start = tokio::time::Instant::now();
        while self.stage(id) != Some(stage) {
            assert!(
                start.elapsed() < PATIENCE,
                "message {id} stuck in {:?}: {:?}",
                self.stage(id),
                self.ctx.queue.get(id)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until message `id` has been tried `retries` times; returns
    /// its operation then.
    pub(crate) async fn wait_retries(
        &self,
        id: B256,
        retries: u32,
    ) -> metalayer_relayer::op::PendingOp {
        let start = tokio::time::Instant::now();
        loop {
            if let Some(op) = self.ctx.queue.get(id).expect("queue readable")
                && op.retries >= retries
            {
                return op;
            }
            assert!(start.elapsed() < PATIENCE, "message {id} was never tried {retries} times");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the operator API of this relayer on a loopback port (stopped
    /// by [`Self::kill`]); returns its address.
    pub(crate) async fn serve_api(&mut self) -> std::net::SocketAddr {
        let (addr, server) = metalayer_relayer::api::serve(
            "127.0.0.1:0".parse().expect("addr"),
            self.ctx.clone(),
            metalayer_agent::telemetry::Metrics::new("relayer").expect("metrics"),
            metalayer_agent::telemetry::Health::default(),
        )
        .await
        .expect("api serves");
        self.api = Some(server);
        addr
    }

    /// A metric's value as the registry renders it, summed over labels
    /// whose rendering contains `labels`.
    pub(crate) fn metric(&self, name: &str, labels: &str) -> f64 {
        let families = self.registry.gather();
        let text =
            prometheus::TextEncoder::new().encode_to_string(&families).expect("metrics render");
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Sends `n` dispatches from `from` to `to` without waiting for receipts;
/// returns each message id with the time it was sent (unix ms).
pub(crate) async fn burst(from: &Chain, to: &Chain, n: usize, key: u32) -> Vec<(B256, u64)> {
    let load = sign_dispatches(from, to, n, key).await;
    send_dispatches(from, load, None).await
}

/// Dispatch transactions signed ahead of sending, with their message ids.
pub(crate) struct SignedDispatches {
    raws: Vec<Vec<u8>>,
    ids: Vec<B256>,
}

/// Signs `n` dispatches from `from` to `to` by dev account `key`, with
/// nonces following its pending count (nothing is sent).
pub(crate) async fn sign_dispatches(
    from: &Chain,
    to: &Chain,
    n: usize,
    key: u32,
) -> SignedDispatches {
    let signer = dev(key);
    let wallet = EthereumWallet::from(signer.clone());
    let p = &from.provider;
    let base = p.get_transaction_count(signer.address()).pending().await.expect("nonce");
    let first_nonce =
        Mailbox::new(from.core.mailbox, p).nonce().call().await.expect("mailbox nonce");
    let mut raws = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let body = (i as u64).to_be_bytes().to_vec();
        let data = Mailbox::dispatch_2Call {
            destination: to.domain,
            recipient: address_to_bytes32(to.core.test_recipient),
            body: body.clone().into(),
        }
        .abi_encode();
        // Signed before they are sent, so the price cannot follow the base
        // fee: a fee cap far above it (a minute of blocks two thirds full
        // raises it past 20 gwei) and a 20 gwei tip, which outbids the
        // relayer's deliveries as a busy chain's traffic would.
        let tx = TransactionRequest::default()
            .with_from(signer.address())
            .with_to(from.core.mailbox)
            .with_input(data)
            .with_nonce(base + i as u64)
            .with_gas_limit(200_000)
            .with_max_fee_per_gas(10_000_000_000_000)
            .with_max_priority_fee_per_gas(20_000_000_000)
            .with_chain_id(u64::from(from.domain));
        let envelope =
            NetworkTransactionBuilder::<Ethereum>::build(tx, &wallet).await.expect("signed");
        raws.push(envelope.encoded_2718());
        let message = Message {
            version: 3,
            nonce: first_nonce + i as u32,
            origin: from.domain,
            sender: address_to_bytes32(signer.address()),
            destination: to.domain,
            recipient: address_to_bytes32(to.core.test_recipient),
            body: body.into(),
        };
        ids.push(message.id());
    }
    SignedDispatches { raws, ids }
}

/// Sends `load` to `from` at `per_second` dispatches a second at most (in
/// 50 ms slices), or as fast as the node takes them with `None`, without
/// waiting for receipts; returns each message id with the time it was
/// sent (unix ms).
pub(crate) async fn send_dispatches(
    from: &Chain,
    load: SignedDispatches,
    per_second: Option<f64>,
) -> Vec<(B256, u64)> {
    let SignedDispatches { raws, ids } = load;
    let p = &from.provider;
    // JSON-RPC batches of up to 50 transactions, a few batches in flight at
    // once (the pool takes nonces out of order), as a load generator sends:
    // one HTTP request per transaction made the bench's own client and the
    // node's request handling, not the network, set the pace of intake.
    // Each message's time is when its batch was answered.
    let send = |raws: Vec<Vec<u8>>| {
        let chunks: Vec<Vec<Vec<u8>>> = raws.chunks(50).map(<[Vec<u8>]>::to_vec).collect();
        futures::stream::iter(chunks)
            .map(|chunk| async move {
                let mut batch = alloy::rpc::client::BatchRequest::new(p.client());
                let waiters: Vec<_> = chunk
                    .into_iter()
                    .map(|raw| {
                        batch
                            .add_call::<_, B256>("eth_sendRawTransaction", &(Bytes::from(raw),))
                            .expect("batched")
                    })
                    .collect();
                batch.send().await.expect("batch sent");
                let n = waiters.len();
                for waiter in waiters {
                    waiter.await.expect("sent");
                }
                vec![now_ms(); n]
            })
            .buffered(4)
            .collect::<Vec<Vec<u64>>>()
            .map(|v| v.into_iter().flatten().collect::<Vec<u64>>())
    };
    let sent_at = match per_second {
        None => send(raws).await,
        Some(rate) => {
            // One slice every 50 ms, whether or not earlier slices have been
            // answered (a slow answer must not lower the offered rate).
            let slice = Duration::from_millis(50);
            let per_slice = ((rate * slice.as_secs_f64()).round() as usize).max(1);
            let ticks = futures::stream::unfold(tokio::time::interval(slice), |mut ticks| async {
                ticks.tick().await;
                Some(((), ticks))
            });
            let parts: Vec<Vec<Vec<u8>>> =
                raws.chunks(per_slice).map(<[Vec<u8>]>::to_vec).collect();
            ticks
                .zip(futures::stream::iter(parts))
                .map(|((), part)| send(part))
                .buffered(64)
                .collect::<Vec<Vec<u64>>>()
                .await
                .into_iter()
                .flatten()
                .collect()
        }
    };
    ids.into_iter().zip(sent_at).collect()
}

/// Sends `n` transactions from dev account `key` to `chain`, each paying
/// `price` a gas and using half the block's gas: a contract creation whose
/// code reads memory at 4 GiB, out of gas at once, so it uses its whole
/// limit. Two fill a block, and a lower-paying transaction waits behind
/// them. Returns the sender.
pub(crate) async fn fill_blocks(
    chain: &Chain,
    key: u32,
    n: u64,
    price: u128,
) -> alloy::primitives::Address {
    let signer = dev(key);
    let wallet = EthereumWallet::from(signer.clone());
    let p = &chain.provider;
    let base = p.get_transaction_count(signer.address()).pending().await.expect("nonce");
    let half = p
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .expect("block")
        .expect("latest block")
        .header
        .gas_limit
        / 2;
    // PUSH4 0xffffffff MLOAD
    let code = vec![0x63, 0xff, 0xff, 0xff, 0xff, 0x51];
    for i in 0..n {
        let tx = TransactionRequest::default()
            .with_from(signer.address())
            .with_deploy_code(code.clone())
            .with_nonce(base + i)
            .with_gas_limit(half)
            .with_gas_price(price)
            .with_chain_id(u64::from(chain.domain));
        let raw = NetworkTransactionBuilder::<Ethereum>::build(tx, &wallet)
            .await
            .expect("signed")
            .encoded_2718();
        let _ = p.send_raw_transaction(&raw).await.expect("filler pooled");
    }
    signer.address()
}

/// The relayer's TOML with fee raises put off for ten minutes, and a
/// relayer started from it once `fillers` legacy transactions paying `price`
/// a gas keep beta's blocks full, returned (with the TOML and the fillers'
/// sender) when its delivery waits in beta's pool. Called with the fillers
/// outbidding the delivery's tip, for tests that act while a delivery is
/// pooled.
pub(crate) async fn relayer_with_a_pooled_delivery(
    net: &Net,
    fillers: u64,
    price: u128,
) -> (RunningRelayer, String, alloy::primitives::Address) {
    let b = &net.chains[1];
    let filler = fill_blocks(b, 7, fillers, price).await;
    let toml =
        net.relayer_toml("").replace("escalate_after_ms = 5000", "escalate_after_ms = 600000");
    let relayer = net.relayer_from_toml(&toml).await;
    let sender = dev(RELAYER_KEY).address();
    let start = tokio::time::Instant::now();
    loop {
        let pending = b.provider.get_transaction_count(sender).pending().await.expect("nonce");
        let mined = b.provider.get_transaction_count(sender).await.expect("nonce");
        if pending > mined {
            return (relayer, toml, filler);
        }
        assert!(start.elapsed() < PATIENCE, "the relayer never sent a delivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Beta's suggested gas price times 1.5: fillers paying it hold a delivery
/// (tip 1.1 times the suggested) in the pool, at a zero base fee, for as
/// long as they last (200 of them: about ten seconds).
pub(crate) async fn one_and_a_half_suggested(net: &Net) -> u128 {
    net.chains[1].provider.get_gas_price().await.expect("gas price") * 3 / 2
}

/// Waits until every message is delivered on `to`, then checks that each
/// was delivered exactly once.
pub(crate) async fn assert_delivered_once(to: &Chain, messages: &[Message]) {
    let start = tokio::time::Instant::now();
    for m in messages {
        while !to.delivered(m.id()).await {
            assert!(
                start.elapsed() < PATIENCE,
                "message nonce {} never delivered to {}",
                m.nonce,
                to.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for m in messages {
        assert_eq!(to.process_events(m.id()).await, 1, "message nonce {} delivered once", m.nonce);
    }
}
