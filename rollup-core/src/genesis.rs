//! Genesis: chain parameters, dev accounts derived from a mnemonic (as anvil
//! does) and optional predeployed contracts, read from a JSON or TOML file or
//! built from flags.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

/// The mnemonic anvil and hardhat use for their dev accounts.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// A prefunded or predeployed account.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// Balance in wei.
    #[serde(default)]
    pub balance: U256,
    /// Nonce.
    #[serde(default)]
    pub nonce: u64,
    /// Runtime code of a predeployed contract.
    #[serde(default)]
    pub code: Bytes,
    /// Storage of a predeployed contract.
    #[serde(default)]
    pub storage: HashMap<U256, U256>,
}

/// Chain parameters and the initial state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Genesis {
    /// EIP-155 chain id.
    #[serde(default = "default_chain_id")]
    pub chain_id: u64,
    /// Block gas limit.
    #[serde(default = "default_gas_limit")]
    pub gas_limit: u64,
    /// Base fee of the genesis block, in wei.
    #[serde(default = "default_base_fee")]
    pub base_fee: u64,
    /// Timestamp of the genesis block (seconds).
    #[serde(default)]
    pub timestamp: u64,
    /// Mnemonic the dev accounts derive from (BIP-44 path m/44'/60'/0'/0/i).
    #[serde(default = "default_mnemonic")]
    pub mnemonic: String,
    /// How many dev accounts to derive and fund.
    #[serde(default = "default_dev_accounts")]
    pub dev_accounts: u32,
    /// Balance of each dev account, in wei.
    #[serde(default = "default_dev_balance")]
    pub dev_balance: U256,
    /// Further accounts and predeployed contracts.
    #[serde(default)]
    pub alloc: BTreeMap<Address, GenesisAccount>,
}

fn default_chain_id() -> u64 {
    31337
}
fn default_gas_limit() -> u64 {
    30_000_000
}
fn default_base_fee() -> u64 {
    1_000_000_000
}
fn default_mnemonic() -> String {
    DEV_MNEMONIC.to_string()
}
fn default_dev_accounts() -> u32 {
    10
}
fn default_dev_balance() -> U256 {
    U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18u64))
}

impl Default for Genesis {
    fn default() -> Self {
        Self {
            chain_id: default_chain_id(),
            gas_limit: default_gas_limit(),
            base_fee: default_base_fee(),
            timestamp: 0,
            mnemonic: default_mnemonic(),
            dev_accounts: default_dev_accounts(),
            dev_balance: default_dev_balance(),
            alloc: BTreeMap::new(),
        }
    }
}

impl Genesis {
    /// Reads a genesis from a `.json` or `.toml` file.
    pub fn from_file(path: &Path) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| NodeError::Config(format!("genesis file {}: {e}", path.display())))?;
        let parsed = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| e.to_string())
        } else {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|e| NodeError::Config(format!("genesis file {}: {e}", path.display())))
    }

    /// The dev account signers, in order.
    pub fn dev_signers(&self) -> Result<Vec<PrivateKeySigner>, NodeError> {
        (0..self.dev_accounts)
            .map(|i| {
                MnemonicBuilder::from_phrase(self.mnemonic.as_str())
                    .index(i)
                    .and_then(|b| b.build())
                    .map_err(|e| NodeError::Config(format!("mnemonic, account {i}: {e}")))
            })
            .collect()
    }

    /// Adds Multicall3 at its usual address
    /// ([`metalayer_contracts::MULTICALL3_ADDRESS`]), as OP Stack chains
    /// preinstall it: agents batch their reads (and deliveries) through
    /// it. An account the genesis already puts there is left as it is.
    pub fn preinstall_multicall3(&mut self) {
        self.alloc.entry(metalayer_contracts::MULTICALL3_ADDRESS).or_insert_with(|| {
            GenesisAccount {
                code: metalayer_contracts::multicall3_runtime(),
                ..GenesisAccount::default()
            }
        });
    }

    /// Checks the parameters a node cannot run with.
    pub fn validate(&self) -> Result<(), NodeError> {
        if self.chain_id == 0 {
            return Err(NodeError::Config("chain id must not be 0".into()));
        }
        if self.gas_limit < 21_000 {
            return Err(NodeError::Config(format!(
                "block gas limit {} is below 21000",
                self.gas_limit
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalayer_contracts::{MULTICALL3_ADDRESS, multicall3_runtime};

    #[test]
    fn multicall3_is_preinstalled_unless_the_genesis_puts_something_there() {
        let mut genesis = Genesis::default();
        genesis.preinstall_multicall3();
        let code = &genesis.alloc[&MULTICALL3_ADDRESS].code;
        assert_eq!(code, &multicall3_runtime());
        assert!(!code.is_empty());
        let mut own = Genesis::default();
        let mine = GenesisAccount { code: Bytes::from_static(&[0x00]), ..Default::default() };
        own.alloc.insert(MULTICALL3_ADDRESS, mine.clone());
        own.preinstall_multicall3();
        assert_eq!(own.alloc[&MULTICALL3_ADDRESS], mine);
    }
}
