//! The chain settings every daemon shares: how to reach a chain and where
//! its Metalayer contracts are.

use std::{collections::BTreeMap, fmt};

use metalayer_protocol::Address;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// The default largest block range of one `eth_getLogs` request.
pub const DEFAULT_INDEX_CHUNK: u64 = 1999;

/// One chain: its identity, RPC endpoints, contracts and indexing policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSettings {
    /// The chain's name; filled from its key under `[chains]` when omitted.
    #[serde(default)]
    pub name: String,
    /// The Hyperlane domain id.
    pub domain: u32,
    /// The EIP-155 chain id.
    pub chain_id: u64,
    /// JSON-RPC endpoints (`http(s)://` or `ws(s)://`), in order of
    /// preference. A string is read as a comma-separated list.
    #[serde(deserialize_with = "one_or_more")]
    pub rpc_urls: Vec<String>,
    /// How several endpoints are used.
    #[serde(default)]
    pub rpc_mode: RpcMode,
    /// The Metalayer contracts on this chain.
    pub addresses: ChainAddresses,
    /// How far behind the tip data must be before agents act on it.
    #[serde(default)]
    pub reorg_period: ReorgPeriod,
    /// Log indexing.
    #[serde(default)]
    pub index: IndexSettings,
}

/// How a chain's RPC endpoints are used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RpcMode {
    /// The first endpoint that answers.
    #[default]
    Fallback,
    /// A majority of endpoints must agree (for safety-critical reads).
    Quorum,
}

/// The Metalayer contracts on one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainAddresses {
    /// The Mailbox.
    pub mailbox: Address,
    /// The MerkleTreeHook validators checkpoint.
    pub merkle_tree_hook: Address,
    /// The InterchainGasPaymaster.
    pub interchain_gas_paymaster: Address,
    /// The ValidatorAnnounce.
    pub validator_announce: Address,
}

/// Log indexing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSettings {
    /// The first block to index (the contracts' deployment block).
    #[serde(default)]
    pub from: u64,
    /// The largest block range of one log request.
    #[serde(default = "default_chunk")]
    pub chunk: u64,
}

impl Default for IndexSettings {
    fn default() -> Self {
        Self { from: 0, chunk: DEFAULT_INDEX_CHUNK }
    }
}

fn default_chunk() -> u64 {
    DEFAULT_INDEX_CHUNK
}

/// How far behind the tip agents read: a block count, or a block tag the
/// node resolves. In TOML: `reorg_period = 5` or `reorg_period = "finalized"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReorgPeriod {
    /// Read at `tip − n`.
    Blocks(u64),
    /// Read at the node's `finalized` block.
    Finalized,
    /// Read at the node's `safe` block.
    Safe,
}

impl Default for ReorgPeriod {
    /// One block, as Hyperlane's agents default to.
    fn default() -> Self {
        Self::Blocks(1)
    }
}

impl fmt::Display for ReorgPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blocks(n) => write!(f, "{n} blocks"),
            Self::Finalized => f.write_str("finalized"),
            Self::Safe => f.write_str("safe"),
        }
    }
}

impl Serialize for ReorgPeriod {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Blocks(n) => serializer.serialize_u64(*n),
            Self::Finalized => serializer.serialize_str("finalized"),
            Self::Safe => serializer.serialize_str("safe"),
        }
    }
}

impl<'de> Deserialize<'de> for ReorgPeriod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = ReorgPeriod;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a block count or \"finalized\" or \"safe\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ReorgPeriod, E> {
                Ok(ReorgPeriod::Blocks(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ReorgPeriod, E> {
                u64::try_from(n)
                    .map(ReorgPeriod::Blocks)
                    .map_err(|_| E::custom(format!("reorg period {n} is negative")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ReorgPeriod, E> {
                match s {
                    "finalized" => Ok(ReorgPeriod::Finalized),
                    "safe" => Ok(ReorgPeriod::Safe),
                    other => other.parse().map(ReorgPeriod::Blocks).map_err(|_| {
                        E::custom(format!(
                            "reorg period {other:?} is neither a block count nor \
                             \"finalized\" or \"safe\""
                        ))
                    }),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A list, or one string holding a comma-separated list.
fn one_or_more<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct Visitor;
    impl<'de> de::Visitor<'de> for Visitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of URLs or one string of comma-separated URLs")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<String>, E> {
            Ok(s.split(',').map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()).collect())
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut urls = Vec::new();
            while let Some(url) = seq.next_element::<String>()? {
                urls.push(url);
            }
            Ok(urls)
        }
    }
    deserializer.deserialize_any(Visitor)
}

/// Why chain settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain {chain}: {problem}")]
pub struct ChainSettingsError {
    /// The chain's name (or key).
    pub chain: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

impl ChainSettings {
    /// Checks what deserialisation cannot: names, ids, URLs, addresses and
    /// the index chunk.
    pub fn validate(&self) -> Result<(), ChainSettingsError> {
        let fail = |problem: String| ChainSettingsError { chain: self.name.clone(), problem };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b));
        if !name_ok {
            return Err(fail(
                "the name must be 1 to 64 lowercase letters, digits, '-' or '_'".into(),
            ));
        }
        if self.chain_id == 0 {
            return Err(fail("chain_id is 0; set the chain's EIP-155 chain id".into()));
        }
        if self.rpc_urls.is_empty() {
            return Err(fail("rpc_urls is empty; give at least one JSON-RPC URL".into()));
        }
        for url in &self.rpc_urls {
            check_rpc_url(url).map_err(|why| fail(format!("rpc url {url:?} {why}")))?;
        }
        let a = &self.addresses;
        for (name, address) in [
            ("mailbox", a.mailbox),
            ("merkle_tree_hook", a.merkle_tree_hook),
            ("interchain_gas_paymaster", a.interchain_gas_paymaster),
            ("validator_announce", a.validator_announce),
        ] {
            if address.is_zero() {
                return Err(fail(format!("addresses.{name} is the zero address")));
            }
        }
        if self.index.chunk == 0 {
            return Err(fail("index.chunk is 0; it must be at least 1 block".into()));
        }
        Ok(())
    }
}

fn check_rpc_url(url: &str) -> Result<(), &'static str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("has no scheme; expected http://, https://, ws:// or wss://");
    };
    if !matches!(scheme, "http" | "https" | "ws" | "wss") {
        return Err("has an unsupported scheme; expected http://, https://, ws:// or wss://");
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("has no host or holds whitespace");
    }
    Ok(())
}

/// Fills each chain's name from its key, then validates every chain and
/// checks that no two share a domain.
pub fn validate_chains(
    chains: &mut BTreeMap<String, ChainSettings>,
) -> Result<(), ChainSettingsError> {
    let mut domains: BTreeMap<u32, &str> = BTreeMap::new();
    for (key, chain) in chains.iter_mut() {
        if chain.name.is_empty() {
            chain.name.clone_from(key);
        } else if chain.name != *key {
            return Err(ChainSettingsError {
                chain: key.clone(),
                problem: format!("name {:?} differs from its key {key:?}; drop one", chain.name),
            });
        }
        chain.validate()?;
    }
    for (key, chain) in chains.iter() {
        if let Some(other) = domains.insert(chain.domain, key) {
            return Err(ChainSettingsError {
                chain: key.clone(),
                problem: format!("domain {} is also chain {other}'s", chain.domain),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: &str = r#"
        domain = 1001
        chain_id = 31337
        rpc_urls = ["http://127.0.0.1:8545", "ws://127.0.0.1:8546"]
        [addresses]
        mailbox = "0x00000000000000000000000000000000000000a1"
        merkle_tree_hook = "0x00000000000000000000000000000000000000a2"
        interchain_gas_paymaster = "0x00000000000000000000000000000000000000a3"
        validator_announce = "0x00000000000000000000000000000000000000a4"
    "#;

    fn chain(extra: &str) -> Result<ChainSettings, toml::de::Error> {
        toml::from_str(&format!("{extra}\n{CHAIN}"))
    }

    #[test]
    fn defaults_apply_and_a_chain_validates() {
        let mut chains = BTreeMap::from([("alpha".to_owned(), chain("").unwrap())]);
        validate_chains(&mut chains).unwrap();
        let alpha = &chains["alpha"];
        assert_eq!(alpha.name, "alpha");
        assert_eq!(alpha.rpc_mode, RpcMode::Fallback);
        assert_eq!(alpha.reorg_period, ReorgPeriod::Blocks(1));
        assert_eq!(alpha.index, IndexSettings { from: 0, chunk: 1999 });
        assert_eq!(alpha.addresses.mailbox, Address::with_last_byte(0xa1));
    }

    #[test]
    fn reorg_periods_are_counts_or_tags() {
        assert_eq!(chain("reorg_period = 12").unwrap().reorg_period, ReorgPeriod::Blocks(12));
        assert_eq!(
            chain("reorg_period = \"finalized\"").unwrap().reorg_period,
            ReorgPeriod::Finalized
        );
        assert_eq!(chain("reorg_period = \"safe\"").unwrap().reorg_period, ReorgPeriod::Safe);
        assert_eq!(chain("reorg_period = \"3\"").unwrap().reorg_period, ReorgPeriod::Blocks(3));
        let err = chain("reorg_period = \"latest\"").unwrap_err().to_string();
        assert!(err.contains("latest"), "{err}");
        assert!(chain("reorg_period = -2").unwrap_err().to_string().contains("negative"));
        assert_eq!(serde_json::to_string(&ReorgPeriod::Finalized).unwrap(), "\"finalized\"");
    }

    #[test]
    fn rpc_modes_and_comma_lists_parse() {
        let c: ChainSettings = toml::from_str(&CHAIN.replace(
            "rpc_urls = [\"http://127.0.0.1:8545\", \"ws://127.0.0.1:8546\"]",
            "rpc_urls = \"http://a:1, http://b:2\"\nrpc_mode = \"quorum\"",
        ))
        .unwrap();
        assert_eq!(c.rpc_urls, ["http://a:1", "http://b:2"]);
        assert_eq!(c.rpc_mode, RpcMode::Quorum);
        assert!(chain("rpc_mode = \"majority\"").is_err());
        let err = toml::from_str::<ChainSettings>(&CHAIN.replace(
            "rpc_urls = [\"http://127.0.0.1:8545\", \"ws://127.0.0.1:8546\"]",
            "rpc_urls = 8545",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("comma-separated URLs"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = chain("reorg_periods = 3").unwrap_err().to_string();
        assert!(err.contains("reorg_periods"), "{err}");
    }

    #[test]
    fn validation_names_the_chain_and_the_problem() {
        let base = || {
            let mut c = chain("").unwrap();
            c.name = "alpha".into();
            c
        };
        let mut c = base();
        c.rpc_urls = vec![];
        assert!(c.validate().unwrap_err().to_string().contains("rpc_urls is empty"));
        for bad in ["localhost:8545", "ftp://x", "http://", "http://a b"] {
            let mut c = base();
            c.rpc_urls = vec![bad.into()];
            let err = c.validate().unwrap_err().to_string();
            assert!(err.starts_with("chain alpha: rpc url"), "{bad}: {err}");
        }
        let mut c = base();
        c.addresses.validator_announce = Address::ZERO;
        assert!(c.validate().unwrap_err().to_string().contains("addresses.validator_announce"));
        let mut c = base();
        c.chain_id = 0;
        assert!(c.validate().unwrap_err().to_string().contains("chain_id"));
        let mut c = base();
        c.index.chunk = 0;
        assert!(c.validate().unwrap_err().to_string().contains("index.chunk"));
        let mut c = base();
        c.name = "Alpha Chain".into();
        assert!(c.validate().unwrap_err().to_string().contains("lowercase"));
    }

    #[test]
    fn chains_must_have_distinct_domains_and_matching_names() {
        let mut chains = BTreeMap::from([
            ("alpha".to_owned(), chain("").unwrap()),
            ("beta".to_owned(), chain("").unwrap()),
        ]);
        let err = validate_chains(&mut chains).unwrap_err().to_string();
        assert!(err.contains("domain 1001"), "{err}");
        let mut chains = BTreeMap::from([("alpha".to_owned(), chain("name = \"beta\"").unwrap())]);
        assert!(validate_chains(&mut chains).unwrap_err().to_string().contains("differs"));
    }
}
