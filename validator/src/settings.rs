//! The validator's configuration: one TOML file, `METALAYER_*` environment
//! variables over it, `--set key=value` flags over both.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use metalayer_agent::{
    config::{ChainSettings, ChainSettingsError, validate_chains},
    keys::KeySource,
    storage::StorageSettings,
    telemetry::LogSettings,
};
use serde::Deserialize;

/// Everything a validator needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorSettings {
    /// The chain (a key of `chains`) whose Mailbox this validator checkpoints.
    pub origin: String,
    /// Chains by name; only the origin is used.
    pub chains: BTreeMap<String, ChainSettings>,
    /// The checkpoint signing key.
    pub validator_key: KeySource,
    /// A funded origin key that pays for the announcement transaction; the
    /// validator key is never used to send transactions. Without it the
    /// operator announces by other means and the validator waits.
    #[serde(default)]
    pub chain_signer: Option<KeySource>,
    /// Where signed checkpoints are published.
    pub checkpoint_storage: StorageSettings,
    /// Directory of the validator's databases (indexed insertions and the
    /// double-sign protection record).
    #[serde(default = "default_db")]
    pub db: PathBuf,
    /// Pause between looks at the origin, in milliseconds.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// How long, in milliseconds, a tick trusts its last look at the tree
    /// while the indexed final block has not moved; then the tree is read
    /// again (for a reorg that replaced that block at the same height).
    #[serde(default = "default_recheck_ms")]
    pub recheck_ms: u64,
    /// Checkpoints signed and published per batch.
    #[serde(default = "default_batch")]
    pub sign_batch: usize,
    /// Newest leaves whose signing records and indexed insertions are
    /// kept; older ones are pruned once signed and published, and the
    /// validator refuses ever to sign below them again (see the
    /// `protection` module). At least 1.
    #[serde(default = "default_retained_leaves")]
    pub retained_leaves: u32,
    /// Address of the `/metrics` and `/health` server.
    #[serde(default = "default_metrics")]
    pub metrics_listen: SocketAddr,
    /// First pause between announcement attempts, in milliseconds (doubled
    /// up to 15 minutes).
    #[serde(default = "default_announce_retry_ms")]
    pub announce_retry_ms: u64,
    /// Logging.
    #[serde(default)]
    pub log: LogSettings,
}

fn default_db() -> PathBuf {
    PathBuf::from("validator_db")
}
fn default_interval_ms() -> u64 {
    1000
}
fn default_recheck_ms() -> u64 {
    1000
}
fn default_batch() -> usize {
    256
}
fn default_retained_leaves() -> u32 {
    8192
}
fn default_metrics() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}
fn default_announce_retry_ms() -> u64 {
    30_000
}

impl ValidatorSettings {
    /// Validates the chains and returns the origin's settings.
    pub fn origin_chain(&mut self) -> Result<&ChainSettings, ChainSettingsError> {
        validate_chains(&mut self.chains)?;
        if self.sign_batch == 0 {
            return Err(ChainSettingsError {
                chain: self.origin.clone(),
                problem: "sign_batch must be at least 1".into(),
            });
        }
        if self.retained_leaves == 0 {
            return Err(ChainSettingsError {
                chain: self.origin.clone(),
                problem: "retained_leaves must be at least 1".into(),
            });
        }
        self.chains.get(&self.origin).ok_or_else(|| ChainSettingsError {
            chain: self.origin.clone(),
            problem: format!("origin {:?} is not among the configured chains", self.origin),
        })
    }

    /// The pause between looks at the origin.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.max(10))
    }

    /// See [`Self::recheck_ms`].
    pub fn recheck(&self) -> Duration {
        Duration::from_millis(self.recheck_ms)
    }
}
