//! The test network: a rollup-core node with the core contracts deployed, a
//! validator configured against it, and helpers to dispatch and deliver.

use std::{path::Path, sync::Arc};

use alloy::{
    primitives::Address,
    providers::{DynProvider, Provider},
};
use metalayer_agent::{
    config::ConfigLoader,
    indexer::Step,
    storage::{CheckpointStorage, LocalStorage},
};
use metalayer_contracts::{CoreDeployment, deploy_core};
use metalayer_protocol::{B256, LocalSigner, Message};
use metalayer_rollup::{
    genesis::Genesis,
    node::{MiningMode, NodeConfig},
    rpc::RpcLimits,
    service::RunningNode,
};
use metalayer_validator::{Validator, settings::ValidatorSettings};
use prometheus::Registry;
use tempfile::TempDir;

pub(crate) const DOMAIN: u32 = 31337;

pub(crate) use metalayer_tests::{dev, validator_address, validator_key};

pub(crate) struct Net {
    pub(crate) node: RunningNode,
    pub(crate) dir: TempDir,
    pub(crate) core: CoreDeployment,
    pub(crate) provider: DynProvider,
}

/// A node (instant mining) with the core stack; `validators` secure it, 1 of n.
pub(crate) async fn net(validators: Vec<Address>) -> Net {
    net_with_limits(validators, RpcLimits::default()).await
}

/// [`net`] with the node's RPC limits set.
pub(crate) async fn net_with_limits(validators: Vec<Address>, limits: RpcLimits) -> Net {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = NodeConfig {
        data_dir: dir.path().join("node"),
        genesis: Genesis::default(),
        mining: MiningMode::Instant,
        pool_capacity: 10_000,
    };
    let node = metalayer_tests::start_node(config, limits).await;
    let provider = metalayer_tests::dev_provider(&node);
    let chain_id = provider.get_chain_id().await.expect("chain id");
    assert_eq!(chain_id, u64::from(DOMAIN), "the tests assume domain = chain id");
    let core = deploy_core(provider.clone(), &metalayer_tests::core_config(DOMAIN, validators))
        .await
        .expect("core deploys");
    Net { node, dir, core, provider }
}

impl Net {
    /// Dispatches `body` to this chain's TestRecipient; returns the message.
    pub(crate) async fn dispatch(&self, body: &[u8]) -> Message {
        let c = &self.core;
        metalayer_tests::dispatch(&self.provider, c.mailbox, DOMAIN, c.test_recipient, body).await
    }

    /// Mines `n` empty blocks.
    pub(crate) async fn mine(&self, n: u64) {
        let _: serde_json::Value =
            self.provider.raw_request("anvil_mine".into(), (n,)).await.expect("anvil_mine");
    }

    /// Validator settings for this network as TOML, loaded like the binary does.
    pub(crate) fn settings_toml(&self, key: B256, reorg_period: u64, state: &Path) -> String {
        let a = &self.core;
        format!(
            r#"
origin = "testnet"
db = "{db}"
interval_ms = 50
announce_retry_ms = 50
metrics_listen = "127.0.0.1:0"

[validator_key]
type = "hex"
key = "{key}"

[chain_signer]
type = "hex"
key = "{chain_key}"

[checkpoint_storage]
type = "local"
path = "{storage}"

[chains.testnet]
domain = {DOMAIN}
chain_id = {DOMAIN}
rpc_urls = ["{url}"]
reorg_period = {reorg_period}
addresses = {{ mailbox = "{mailbox}", merkle_tree_hook = "{hook}", interchain_gas_paymaster = "{igp}", validator_announce = "{va}" }}
index = {{ from = {from}, chunk = 7 }}
"#,
            db = state.join("db").display(),
            storage = state.join("checkpoints").display(),
            chain_key = B256::from_slice(&dev(1).to_bytes()[..]),
            url = self.node.http_url(),
            mailbox = a.mailbox,
            hook = a.merkle_tree_hook,
            igp = a.interchain_gas_paymaster,
            va = a.validator_announce,
            from = a.deployed_block,
        )
    }

    /// A validator built in-process from [`Self::settings_toml`].
    pub(crate) async fn validator(
        &self,
        key: B256,
        reorg_period: u64,
        state: &Path,
    ) -> (Validator, Arc<LocalStorage>) {
        let storage = Arc::new(LocalStorage::new(state.join("checkpoints")).expect("storage"));
        let validator = self.validator_with(key, reorg_period, state, "", storage.clone()).await;
        (validator, storage)
    }

    /// A validator writing to `storage`, its settings prefixed by
    /// `top_level` (extra top-level TOML keys).
    pub(crate) async fn validator_with(
        &self,
        key: B256,
        reorg_period: u64,
        state: &Path,
        top_level: &str,
        storage: Arc<dyn CheckpointStorage>,
    ) -> Validator {
        let path = state.join("validator.toml");
        std::fs::create_dir_all(state).expect("state dir");
        let toml = format!("{top_level}\n{}", self.settings_toml(key, reorg_period, state));
        std::fs::write(&path, toml).expect("config written");
        let mut settings: ValidatorSettings =
            ConfigLoader::new().file(&path).load().expect("config loads");
        let origin = settings.origin_chain().expect("origin").clone();
        let signer = LocalSigner::from_bytes(&key).expect("key");
        let chain_signer = Some(dev(1));
        Validator::new(origin, &settings, signer, chain_signer, storage, &Registry::new())
            .await
            .expect("validator starts")
    }
}

/// Runs the validator's indexer until it has read every final block.
pub(crate) async fn index_all(validator: &Validator) {
    let indexer = validator.insertion_indexer();
    for _ in 0..1000 {
        if indexer.step().await.expect("indexer step") == Step::CaughtUp {
            return;
        }
    }
    panic!("the indexer never caught up");
}

/// Reads stored checkpoint `index`.
pub(crate) async fn stored(
    storage: &LocalStorage,
    index: u32,
) -> Option<metalayer_protocol::signed::SignedCheckpoint> {
    storage.read_checkpoint(index).await.expect("storage readable")
}
