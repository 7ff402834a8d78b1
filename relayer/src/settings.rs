//! The relayer's configuration: one TOML file, `METALAYER_*` environment
//! variables over it, `--set key=value` flags over both.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use metalayer_agent::{
    config::{ChainSettings, ChainSettingsError, validate_chains},
    keys::KeySource,
    telemetry::LogSettings,
};
use serde::Deserialize;

use crate::{
    gas_policy::{GasPolicy, GasPolicyRule, parse_fraction},
    matching::MatchingList,
};

/// Everything a relayer needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayerSettings {
    /// Chains (keys of `chains`) relayed between: each is an origin and a
    /// destination.
    pub relay_chains: Vec<String>,
    /// Chains by name.
    pub chains: BTreeMap<String, ChainSettings>,
    /// The key that signs delivery transactions on every destination.
    pub signer: KeySource,
    /// Directory of the relayer's databases (indexed events and queues).
    #[serde(default = "default_db")]
    pub db: PathBuf,
    /// Address of `/metrics`, `/health` and the operator API.
    #[serde(default = "default_metrics")]
    pub metrics_listen: SocketAddr,
    /// Messages relayed when they match (all when empty).
    #[serde(default)]
    pub whitelist: MatchingList,
    /// Messages never relayed.
    #[serde(default)]
    pub blacklist: MatchingList,
    /// Byte strings (`0x` hex) that, found in a sender, recipient or body,
    /// keep a message from being relayed.
    #[serde(default)]
    pub address_blacklist: Vec<String>,
    /// Gas payment policies, first match wins (default: `none` for all).
    #[serde(default = "default_gas_policy")]
    pub gas_payment_enforcement: Vec<GasPolicyRule>,
    /// Failed attempts after which a message is parked.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Multiplies Hyperlane's retry schedule (1.0; smaller on devnets).
    #[serde(default = "default_scale")]
    pub backoff_scale: f64,
    /// Pause, in milliseconds, after each of the first three attempts that
    /// found too few signatures (Hyperlane: 2 s), before the schedule applies.
    #[serde(default = "default_metadata_retry_ms")]
    pub metadata_retry_ms: u64,
    /// Read `file://` checkpoint storage that validators announce.
    #[serde(default)]
    pub allow_local_checkpoint_syncers: bool,
    /// Deliver several messages in one `processBatch` when the ISM takes it.
    #[serde(default = "yes")]
    pub batch_delivery: bool,
    /// The most messages in one transaction.
    #[serde(default = "default_batch")]
    pub max_batch_size: usize,
    /// The most gas one delivery transaction may use (default: 2^24, the
    /// Osaka transaction cap).
    #[serde(default = "default_tx_gas_limit")]
    pub transaction_gas_limit: u64,
    /// Pause between passes over the queues, in milliseconds.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// A transaction not mined after this many milliseconds is re-sent with
    /// its fees a quarter higher (six times at most; then only to follow the
    /// chain's).
    #[serde(default = "default_escalate_ms")]
    pub escalate_after_ms: u64,
    /// Logging.
    #[serde(default)]
    pub log: LogSettings,
}

fn default_db() -> PathBuf {
    PathBuf::from("relayer_db")
}
fn default_metrics() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}
fn default_gas_policy() -> Vec<GasPolicyRule> {
    vec![GasPolicyRule { policy: GasPolicy::None, matching_list: MatchingList::default() }]
}
fn default_max_retries() -> u32 {
    66
}
fn default_scale() -> f64 {
    1.0
}
fn default_metadata_retry_ms() -> u64 {
    2000
}
fn yes() -> bool {
    true
}
fn default_batch() -> usize {
    64
}
fn default_tx_gas_limit() -> u64 {
    1 << 24
}
fn default_interval_ms() -> u64 {
    200
}
fn default_escalate_ms() -> u64 {
    20_000
}

impl RelayerSettings {
    /// Validates the settings; returns the relayed chains in order.
    pub fn relayed(&mut self) -> Result<Vec<ChainSettings>, ChainSettingsError> {
        validate_chains(&mut self.chains)?;
        let problem =
            |chain: &str, problem: String| ChainSettingsError { chain: chain.to_owned(), problem };
        if self.relay_chains.is_empty() {
            return Err(problem("relay_chains", "name at least one chain".into()));
        }
        if self.max_batch_size == 0 {
            return Err(problem("max_batch_size", "must be at least 1".into()));
        }
        if !(self.backoff_scale.is_finite() && self.backoff_scale >= 0.0) {
            return Err(problem("backoff_scale", "must be a finite number ≥ 0".into()));
        }
        for rule in &self.gas_payment_enforcement {
            if let GasPolicy::OnChainFeeQuoting { gas_fraction } = &rule.policy {
                parse_fraction(gas_fraction).map_err(|p| problem("gas_payment_enforcement", p))?;
            }
        }
        self.address_blacklist_bytes().map_err(|p| problem("address_blacklist", p))?;
        self.relay_chains
            .iter()
            .map(|name| {
                self.chains.get(name).cloned().ok_or_else(|| {
                    problem(
                        name,
                        format!("relay chain {name:?} is not among the configured chains"),
                    )
                })
            })
            .collect()
    }

    /// `address_blacklist` as bytes.
    pub fn address_blacklist_bytes(&self) -> Result<Vec<Vec<u8>>, String> {
        self.address_blacklist
            .iter()
            .map(|s| {
                alloy::hex::decode(s.strip_prefix("0x").unwrap_or(s))
                    .map_err(|e| format!("{s:?} is not hex: {e}"))
            })
            .collect()
    }

    /// The pause between passes over the queues.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.max(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalayer_agent::config::ConfigLoader;

    const BASE: &str = r#"
relay_chains = ["a"]
signer = { type = "hex", key = "0x0101010101010101010101010101010101010101010101010101010101010101" }
[chains.a]
domain = 1
chain_id = 1
rpc_urls = ["http://127.0.0.1:1"]
addresses = { mailbox = "0x0000000000000000000000000000000000000001", merkle_tree_hook = "0x0000000000000000000000000000000000000001", interchain_gas_paymaster = "0x0000000000000000000000000000000000000002", validator_announce = "0x0000000000000000000000000000000000000003" }
"#;

    fn load(extra: &str) -> Result<RelayerSettings, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("relayer.toml");
        std::fs::write(&path, format!("{extra}\n{BASE}")).map_err(|e| e.to_string())?;
        ConfigLoader::new().file(&path).load().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_policies_load() {
        let mut s = load("").unwrap();
        assert_eq!(s.relayed().unwrap().len(), 1);
        assert_eq!(s.max_retries, 66);
        assert_eq!(s.gas_payment_enforcement[0].policy, GasPolicy::None);
        let s = load(
            r#"gas_payment_enforcement = [ { type = "minimum", payment = "1000", matching_list = [ { origin_domain = 1 } ] }, { type = "on_chain_fee_quoting", gas_fraction = "1/3" } ]"#,
        )
        .unwrap();
        assert_eq!(
            s.gas_payment_enforcement[0].policy,
            GasPolicy::Minimum { payment: alloy::primitives::U256::from(1000) }
        );
    }

    #[test]
    fn bad_settings_name_the_problem() {
        let mut s = load(r#"gas_payment_enforcement = [ { type = "on_chain_fee_quoting", gas_fraction = "x" } ]"#).unwrap();
        assert!(s.relayed().unwrap_err().to_string().contains("gas fraction"));
        let mut s = load(r#"address_blacklist = ["0xzz"]"#).unwrap();
        assert!(s.relayed().unwrap_err().to_string().contains("not hex"));
        assert!(load("unknown_key = 1").unwrap_err().contains("unknown_key"));
        let error = load(r#"gas_payment_enforcement = [ { type = "minimum", payment = "1", matching_lst = [] } ]"#)
            .unwrap_err();
        assert!(error.contains("matching_lst"), "{error}");
    }
}
