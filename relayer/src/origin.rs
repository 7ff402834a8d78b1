//! One origin: its indexers, its local Merkle tree, where its validators
//! publish, and the loader that turns indexed dispatches into operations.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use alloy::primitives::Address;
use metalayer_agent::{
    chain::ChainClient,
    config::ChainSettings,
    indexer::{EventKind, Indexer, IndexerConfig, IndexerMetrics},
    storage::{CheckpointStorage, LocationOptions, parse_location},
    store::AgentStore,
};
use metalayer_contracts::bindings::ValidatorAnnounce;
use metalayer_protocol::{Message, merkle::MerkleProver};

use crate::{
    matching::{MatchingList, address_blacklisted},
    metrics::RelayerMetrics,
    op::PendingOp,
    queue::QueueStore,
};

/// How long an announced storage location is trusted before it is read again.
const LOCATION_TTL: Duration = Duration::from_secs(60);
/// How long a validator without a readable location waits to be looked up again.
const MISSING_TTL: Duration = Duration::from_secs(5);
/// Messages loaded per queue transaction.
const LOAD_CHUNK: u32 = 1000;

/// What the relayer holds about one origin chain.
#[derive(Debug)]
pub struct Origin {
    /// The chain's settings.
    pub chain: ChainSettings,
    /// Its RPC client.
    pub client: Arc<ChainClient>,
    /// Every indexed leaf, to prove any of them against any signed index.
    pub prover: RwLock<MerkleProver>,
    /// Where its validators publish.
    pub sources: CheckpointSources,
}

impl Origin {
    /// An origin with an empty tree.
    pub fn new(chain: ChainSettings, client: Arc<ChainClient>, options: LocationOptions) -> Self {
        let sources = CheckpointSources {
            client: client.clone(),
            announce: chain.addresses.validator_announce,
            options,
            cache: Mutex::new(HashMap::new()),
        };
        Self { chain, client, prover: RwLock::new(MerkleProver::new()), sources }
    }

    /// The Dispatch, InsertedIntoTree and GasPayment indexers of this origin.
    pub fn indexers(
        &self,
        store: &AgentStore,
        metrics: &IndexerMetrics,
        poll: Duration,
    ) -> Vec<Indexer> {
        let a = &self.chain.addresses;
        [
            (EventKind::Dispatch, a.mailbox),
            (EventKind::Insertion, a.merkle_tree_hook),
            (EventKind::GasPayment, a.interchain_gas_paymaster),
        ]
        .into_iter()
        .map(|(kind, address)| {
            let config = IndexerConfig {
                chain: self.chain.name.clone(),
                domain: self.chain.domain,
                kind,
                address,
                from: self.chain.index.from,
                chunk: self.chain.index.chunk,
                reorg_period: self.chain.reorg_period,
                poll_interval: poll,
            };
            Indexer::new(self.client.clone(), store.clone(), config, metrics.clone())
        })
        .collect()
    }

    /// Feeds stored insertions into the prover, in leaf order, reading at
    /// most [`FEED_LEAVES`] at a time (a relayer starting on a long history
    /// holds 3 MiB of it at once besides the prover, not the whole of it);
    /// returns the number of leaves afterwards.
    pub fn feed_prover(&self, store: &AgentStore) -> Result<u64, String> {
        let domain = self.chain.domain;
        loop {
            let start = self.prover.read().map_err(|_| "prover lock poisoned")?.count();
            let Ok(first) = u32::try_from(start) else { return Ok(start) };
            let leaves =
                store.insertions_from(domain, first, FEED_LEAVES).map_err(|e| e.to_string())?;
            let read = leaves.len();
            let mut prover = self.prover.write().map_err(|_| "prover lock poisoned")?;
            if prover.count() != start {
                return Ok(prover.count());
            }
            for leaf in leaves {
                prover.insert(leaf.message_id).map_err(|e| e.to_string())?;
            }
            if read < FEED_LEAVES {
                return Ok(prover.count());
            }
        }
    }
}

/// Stored insertions [`Origin::feed_prover`] reads at once.
const FEED_LEAVES: usize = 65_536;

/// Which messages the relayer takes.
#[derive(Debug, Clone)]
pub struct MessageFilter {
    /// Relayed when matching (all when empty).
    pub whitelist: MatchingList,
    /// Never relayed when matching.
    pub blacklist: MatchingList,
    /// Byte strings that must not appear in sender, recipient or body.
    pub address_blacklist: Vec<Vec<u8>>,
    /// Destination domains served.
    pub destinations: BTreeSet<u32>,
}

impl MessageFilter {
    /// Whether `message` is to be relayed; if not, why.
    pub fn check(&self, message: &Message) -> Result<(), &'static str> {
        let id = message.id();
        if self.whitelist.matches(id, message) == Some(false) {
            return Err("not whitelisted");
        }
        if self.blacklist.matches(id, message) == Some(true) {
            return Err("blacklisted");
        }
        if address_blacklisted(&self.address_blacklist, message) {
            return Err("address blacklisted");
        }
        if !self.destinations.contains(&message.destination) {
            return Err("destination not served");
        }
        Ok(())
    }
}

/// Loads the dispatches indexed since the loader's cursor into the queues;
/// returns how many were added.
pub fn load_messages(
    origin: &ChainSettings,
    store: &AgentStore,
    queue: &QueueStore,
    filter: &MessageFilter,
    metrics: &RelayerMetrics,
) -> Result<usize, String> {
    let domain = origin.domain;
    let contiguous = store.contiguous_dispatches(domain).map_err(|e| e.to_string())?;
    let mut cursor = queue.loader_cursor(domain).map_err(|e| e.to_string())?;
    let mut added = 0;
    while u64::from(cursor) < contiguous {
        let end = (u64::from(cursor) + u64::from(LOAD_CHUNK)).min(contiguous) as u32;
        let mut ops = Vec::new();
        for nonce in cursor..end {
            let Some((_, message)) = store.dispatch(domain, nonce).map_err(|e| e.to_string())?
            else {
                return Err(format!(
                    "{}: nonce {nonce} is below the gap-free count but missing",
                    origin.name
                ));
            };
            match filter.check(&message) {
                Ok(()) => ops.push(PendingOp::new(&message)),
                Err(why) => {
                    tracing::debug!(origin = %origin.name, nonce, why, "message not relayed");
                }
            }
        }
        added += queue.load(domain, &ops, end).map_err(|e| e.to_string())?;
        metrics.last_nonce.with_label_values(&["dispatched", &origin.name]).set(i64::from(end) - 1);
        cursor = end;
    }
    Ok(added)
}

/// When a validator's location was read, and the storage it names.
type CachedLocation = (Instant, Option<Arc<dyn CheckpointStorage>>);

/// Where each validator of one origin publishes its checkpoints, read from
/// the origin's ValidatorAnnounce and kept for a minute.
pub struct CheckpointSources {
    client: Arc<ChainClient>,
    announce: Address,
    options: LocationOptions,
    cache: Mutex<HashMap<Address, CachedLocation>>,
}

impl std::fmt::Debug for CheckpointSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSources").field("announce", &self.announce).finish()
    }
}

impl CheckpointSources {
    /// The storage of each validator (in the order given), `None` for one
    /// that announced nothing readable.
    pub async fn storages(
        &self,
        validators: &[Address],
    ) -> Result<Vec<Option<Arc<dyn CheckpointStorage>>>, String> {
        let stale: Vec<Address> = {
            let cache = self.cache.lock().map_err(|_| "location cache poisoned")?;
            validators
                .iter()
                .filter(|v| {
                    cache.get(*v).is_none_or(|(at, storage)| {
                        let ttl = if storage.is_some() { LOCATION_TTL } else { MISSING_TTL };
                        at.elapsed() > ttl
                    })
                })
                .copied()
                .collect()
        };
        if !stale.is_empty() {
            let tip = self.client.block_number().await.map_err(|e| e.to_string())?;
            let call = ValidatorAnnounce::getAnnouncedStorageLocationsCall {
                validatorList: stale.clone(),
            };
            let locations =
                self.client.call(self.announce, &call, tip).await.map_err(|e| e.to_string())?;
            let mut cache = self.cache.lock().map_err(|_| "location cache poisoned")?;
            for (validator, announced) in stale.iter().zip(locations) {
                // The most recent location we can read wins.
                let storage = announced.iter().rev().find_map(|location| {
                    match parse_location(location, &self.options) {
                        Ok(storage) => Some(storage),
                        Err(error) => {
                            tracing::debug!(%validator, %location, %error, "announced location not usable");
                            None
                        }
                    }
                });
                if storage.is_none() {
                    tracing::warn!(%validator, "validator has no readable announced storage location");
                }
                cache.insert(*validator, (Instant::now(), storage));
            }
        }
        let cache = self.cache.lock().map_err(|_| "location cache poisoned")?;
        Ok(validators.iter().map(|v| cache.get(v).and_then(|(_, s)| s.clone())).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use alloy::primitives::{Address, B256};
    use metalayer_agent::{
        chain::{ChainClient, RetryPolicy, RpcMetrics},
        config::ChainSettings,
        store::{AgentStore, Insertion},
    };
    use metalayer_protocol::merkle::MerkleTree;

    use super::{FEED_LEAVES, Origin};

    #[tokio::test]
    async fn the_prover_is_fed_a_long_history_in_several_reads() {
        let zero = Address::ZERO;
        let chain: ChainSettings = serde_json::from_value(serde_json::json!({
            "name": "alpha", "domain": 1, "chain_id": 1, "rpc_urls": "http://127.0.0.1:9",
            "addresses": {
                "mailbox": zero, "merkle_tree_hook": zero,
                "interchain_gas_paymaster": zero, "validator_announce": zero,
            },
        }))
        .expect("chain settings");
        let client = ChainClient::connect(
            "alpha",
            &chain.rpc_urls,
            RetryPolicy::default(),
            RpcMetrics::unregistered(),
        )
        .await
        .expect("client");
        let origin = Origin::new(chain, Arc::new(client), Default::default());
        let dir = tempfile::tempdir().expect("dir");
        let store = AgentStore::open(dir.path()).expect("store");
        // Two reads and a part, then a gap: the leaf after it is not fed.
        let n = FEED_LEAVES as u32 * 2 + 5;
        let leaf = |index: u32| Insertion {
            index,
            message_id: B256::from(alloy::primitives::U256::from(index)),
            block: 1,
        };
        let leaves: Vec<_> = (0..n).map(leaf).collect();
        store.store_insertions(1, &leaves, ("i", 1)).expect("stored");
        store.store_insertions(1, &[leaf(n + 1)], ("i", 2)).expect("stored");
        assert_eq!(origin.feed_prover(&store).expect("fed"), u64::from(n));
        let mut tree = MerkleTree::default();
        for l in &leaves {
            tree.insert(l.message_id).expect("room");
        }
        assert_eq!(origin.prover.read().expect("prover").root(), tree.root());
        // Fed again: nothing new up to the gap.
        assert_eq!(origin.feed_prover(&store).expect("fed"), u64::from(n));
    }
}
