//! Settings of the `metalayer-rollup` binary: a TOML file, overridden by
//! environment variables and flags (see `main.rs`), resolved here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::NodeError;
use crate::node::MiningMode;

/// The config file's contents; every key is optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    /// Chain id.
    pub chain_id: Option<u64>,
    /// Block time: "1s", "50ms", or "0"/"instant" for a block per transaction batch.
    pub block_time: Option<String>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// JSON-RPC listen address.
    pub listen: Option<SocketAddr>,
    /// Metrics listen address.
    pub metrics: Option<SocketAddr>,
    /// Genesis file (JSON or TOML).
    pub genesis: Option<PathBuf>,
    /// Block gas limit.
    pub gas_limit: Option<u64>,
    /// Genesis base fee in wei.
    pub base_fee: Option<u64>,
    /// Dev account mnemonic.
    pub mnemonic: Option<String>,
    /// Number of dev accounts.
    pub accounts: Option<u32>,
    /// Preinstall Multicall3 in a new chain's genesis.
    pub multicall3: Option<bool>,
}

impl FileConfig {
    /// Reads a TOML config file.
    pub fn read(path: &std::path::Path) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| NodeError::Config(format!("config file {}: {e}", path.display())))?;
        toml::from_str(&text)
            .map_err(|e| NodeError::Config(format!("config file {}: {e}", path.display())))
    }
}

/// Parses a block time: "0" or "instant", `"<n>ms"`, `"<n>s"` or a plain number of seconds.
pub fn parse_block_time(text: &str) -> Result<MiningMode, NodeError> {
    let t = text.trim();
    let bad = || {
        NodeError::Config(format!("block time \"{text}\": expected e.g. 1s, 50ms, 0 or instant"))
    };
    if t == "instant" {
        return Ok(MiningMode::Instant);
    }
    let dur = if let Some(ms) = t.strip_suffix("ms") {
        Duration::from_millis(ms.trim().parse().map_err(|_| bad())?)
    } else {
        let secs = t.strip_suffix('s').unwrap_or(t).trim();
        let secs: f64 = secs.parse().map_err(|_| bad())?;
        if !secs.is_finite() || secs < 0.0 {
            return Err(bad());
        }
        Duration::from_secs_f64(secs)
    };
    if dur.is_zero() {
        return Ok(MiningMode::Instant);
    }
    if dur < Duration::from_millis(50) {
        return Err(NodeError::Config(format!("block time \"{text}\" is below the 50ms minimum")));
    }
    Ok(MiningMode::Interval(dur))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_times() {
        assert_eq!(parse_block_time("0").ok(), Some(MiningMode::Instant));
        assert_eq!(parse_block_time("1s").ok(), Some(MiningMode::Interval(Duration::from_secs(1))));
        assert_eq!(
            parse_block_time("50ms").ok(),
            Some(MiningMode::Interval(Duration::from_millis(50)))
        );
        assert_eq!(parse_block_time("2").ok(), Some(MiningMode::Interval(Duration::from_secs(2))));
        assert!(parse_block_time("10ms").is_err());
        assert!(parse_block_time("soon").is_err());
    }

    #[test]
    fn file_config_rejects_unknown_keys() {
        assert!(toml::from_str::<FileConfig>("chain-id = 5\nblock-time = \"1s\"").is_ok());
        assert!(toml::from_str::<FileConfig>("chainid = 5").is_err());
    }
}
