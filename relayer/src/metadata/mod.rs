//! ISM metadata, built by walking the recipient's ISM tree: `moduleType()`
//! of each node picks the builder, and routing and aggregation nodes recurse.

mod multisig;

use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    pin::Pin,
    sync::{Arc, Mutex},
};

use alloy::{
    primitives::{Address, Bytes},
    sol_types::SolCall,
};
use metalayer_agent::chain::{ChainClient, ChainError};
use metalayer_contracts::bindings::{AggregationIsm, DomainRoutingIsm, StaticMessageIdMultisigIsm};
use metalayer_protocol::{Message, metadata::AggregationMetadata, signed::SignedCheckpoint};

use crate::{metrics::RelayerMetrics, op::Reason, origin::Origin};

pub use multisig::checkpoint_quorum;

/// Module type ROUTING.
pub const ROUTING: u8 = 1;
/// Module type AGGREGATION.
pub const AGGREGATION: u8 = 2;
/// Module type MERKLE_ROOT_MULTISIG (the contracts crate's constant).
pub const MERKLE_ROOT_MULTISIG: u8 = metalayer_contracts::MERKLE_ROOT_MODULE_TYPE;
/// Module type MESSAGE_ID_MULTISIG (the contracts crate's constant).
pub const MESSAGE_ID_MULTISIG: u8 = metalayer_contracts::MESSAGE_ID_MODULE_TYPE;
/// Module type NULL.
pub const NULL: u8 = 6;
/// How deep an ISM tree may nest.
pub const MAX_DEPTH: u32 = 13;

/// Why metadata could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Not enough validators have signed yet (or the tree is not indexed yet).
    #[error("not yet available: {0}")]
    NotYet(String),
    /// An ISM could not be read.
    #[error("reading ISM {ism}: {source}")]
    Chain {
        /// The ISM.
        ism: Address,
        /// The error.
        #[source]
        source: ChainError,
    },
    /// An ISM type without a builder.
    #[error(
        "ISM {ism} has module type {module_type}, which this relayer cannot build metadata for"
    )]
    Unsupported {
        /// The ISM.
        ism: Address,
        /// Its type.
        module_type: u8,
    },
    /// Anything else.
    #[error("{0}")]
    Build(String),
}

impl MetadataError {
    /// The retry reason this error maps to.
    pub fn reason(&self) -> Reason {
        match self {
            Self::NotYet(_) => Reason::CouldNotFetchMetadata,
            Self::Chain { .. } => Reason::ErrorFetchingIsmAddress,
            Self::Unsupported { .. } => Reason::ErrorGettingMetadataBuilder,
            Self::Build(_) => Reason::ErrorBuildingMetadata,
        }
    }
}

/// How long a destination's [`IsmCache`] answers before it is read afresh.
/// A change of ISM made meanwhile costs at most a failed simulation and a
/// retry: `process` checks the ISM on chain whatever the relayer believed.
pub const ISM_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// What a destination's contracts answered about ISMs, shared by the prepare
/// passes of [`ISM_CACHE_TTL`], as Hyperlane caches ISM reads: the ISM of
/// each recipient, that a recipient has code (only ever "yes": a recipient
/// deployed later is seen at once), and module types and validator sets per
/// ISM. Without it every pass began with a chain of reads, one after
/// another, before its first message could be built.
#[derive(Debug, Default)]
pub struct IsmCache {
    pub(crate) recipient_ism: Memo<Address, Address>,
    /// Recipients seen with code.
    pub(crate) recipient_has_code: Memo<Address, bool>,
    module_type: Memo<Address, u8>,
    validators: Memo<Address, (Vec<Address>, usize)>,
}

/// Each destination's [`IsmCache`], replaced once [`ISM_CACHE_TTL`] old.
#[derive(Debug, Default)]
pub struct IsmCaches(Mutex<HashMap<u32, (std::time::Instant, Arc<IsmCache>)>>);

impl IsmCaches {
    /// `domain`'s answers as of `now`: the cache begun within the last
    /// [`ISM_CACHE_TTL`], or a new empty one.
    pub fn get(&self, domain: u32, now: std::time::Instant) -> Arc<IsmCache> {
        let Ok(mut caches) = self.0.lock() else {
            return Arc::default();
        };
        let entry = caches.entry(domain).or_insert_with(|| (now, Arc::default()));
        if now.saturating_duration_since(entry.0) >= ISM_CACHE_TTL {
            *entry = (now, Arc::default());
        }
        entry.1.clone()
    }
}

/// Answers shared by the messages of one prepare pass: the destination's
/// [`IsmCache`], and per origin the validators' latest indexes and the
/// checked checkpoints at an index (read afresh every pass, as validators
/// sign on). A pass lasts a few blocks at most.
#[derive(Debug, Default)]
pub struct PassCache {
    pub(crate) ism: Arc<IsmCache>,
    latest: Memo<(u32, Address), Vec<u32>>,
    checkpoints: Memo<(u32, Address, u32), Vec<(Address, SignedCheckpoint)>>,
}

impl PassCache {
    /// A pass's cache over the destination's ISM answers.
    pub fn with_ism(ism: Arc<IsmCache>) -> Self {
        Self { ism, ..Self::default() }
    }
}

/// A map filled as answers arrive; two callers racing may both compute.
#[derive(Debug)]
pub(crate) struct Memo<K, V>(Mutex<HashMap<K, V>>);

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.0.lock().ok()?.get(key).cloned()
    }

    pub(crate) fn put(&self, key: K, value: V) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(key, value);
        }
    }
}

/// What a build reads from.
#[derive(Debug, Clone, Copy)]
pub struct IsmContext<'a> {
    /// The destination chain.
    pub destination: &'a ChainClient,
    /// The destination block ISMs are read at.
    pub block: u64,
    /// The message's origin.
    pub origin: &'a Origin,
    /// The message's leaf index in the origin tree.
    pub leaf_index: u32,
    /// Where bad signatures are counted.
    pub metrics: &'a RelayerMetrics,
    /// Answers shared across the pass.
    pub cache: &'a PassCache,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl IsmContext<'_> {
    /// `moduleType()` of `ism`.
    pub async fn module_type(&self, ism: Address) -> Result<u8, MetadataError> {
        if let Some(known) = self.cache.ism.module_type.get(&ism) {
            return Ok(known);
        }
        let call = StaticMessageIdMultisigIsm::moduleTypeCall {};
        let answer = self
            .destination
            .call(ism, &call, self.block)
            .await
            .map_err(|source| MetadataError::Chain { ism, source })?;
        self.cache.ism.module_type.put(ism, answer);
        Ok(answer)
    }

    /// Metadata for `message` under the ISM tree rooted at `ism`.
    pub fn build<'b>(
        &'b self,
        ism: Address,
        message: &'b Message,
        depth: u32,
    ) -> BoxFuture<'b, Result<Vec<u8>, MetadataError>> {
        Box::pin(async move {
            if depth > MAX_DEPTH {
                return Err(MetadataError::Build(format!(
                    "ISM tree deeper than {MAX_DEPTH} levels at {ism}"
                )));
            }
            match self.module_type(ism).await? {
                MESSAGE_ID_MULTISIG => multisig::message_id(self, ism, message).await,
                MERKLE_ROOT_MULTISIG => multisig::merkle_root(self, ism, message).await,
                NULL => Ok(Vec::new()),
                ROUTING => {
                    let call = DomainRoutingIsm::routeCall { message: message.encode().into() };
                    let next = self
                        .destination
                        .call(ism, &call, self.block)
                        .await
                        .map_err(|source| MetadataError::Chain { ism, source })?;
                    self.build(next, message, depth + 1).await
                }
                AGGREGATION => self.aggregation(ism, message, depth).await,
                module_type => Err(MetadataError::Unsupported { ism, module_type }),
            }
        })
    }

    /// Exactly `threshold` sub-metadatas: every module's is built at once,
    /// each that builds is dry-run with its module's `verify`, and the first
    /// `threshold` that pass, in module order, are used (a paused or
    /// otherwise failing module is passed over for the next one).
    async fn aggregation(
        &self,
        ism: Address,
        message: &Message,
        depth: u32,
    ) -> Result<Vec<u8>, MetadataError> {
        let call = AggregationIsm::modulesAndThresholdCall::new((message.encode().into(),));
        let answer = self
            .destination
            .call(ism, &call, self.block)
            .await
            .map_err(|source| MetadataError::Chain { ism, source })?;
        let (modules, threshold) = (answer._0, usize::from(answer._1));
        let built = futures::future::join_all(
            modules.iter().map(|module| self.build(*module, message, depth + 1)),
        )
        .await;
        let encoded: Bytes = message.encode().into();
        let verified =
            futures::future::join_all(modules.iter().zip(&built).map(|(module, built)| {
                let encoded = encoded.clone();
                async move {
                    let metadata = built.as_ref().ok()?;
                    let call = StaticMessageIdMultisigIsm::verifyCall {
                        metadata: metadata.clone().into(),
                        message: encoded,
                    };
                    Some(self.destination.call(*module, &call, self.block).await)
                }
            }))
            .await;
        let mut chosen = vec![None; modules.len()];
        let mut taken = 0;
        let mut errors = Vec::new();
        for (((slot, module), result), check) in
            chosen.iter_mut().zip(&modules).zip(built).zip(verified)
        {
            match (result, check) {
                (Ok(metadata), Some(Ok(true))) if taken < threshold => {
                    *slot = Some(metadata);
                    taken += 1;
                }
                (Ok(_), Some(Ok(true))) => {}
                (Ok(_), Some(Ok(false))) => errors.push(MetadataError::Build(format!(
                    "module {module}: verify returned false on its metadata"
                ))),
                (Ok(_), Some(Err(error))) => errors.push(MetadataError::Build(format!(
                    "module {module}: verify refused its metadata: {error}"
                ))),
                (Ok(_), None) => {}
                (Err(error), _) => errors.push(error),
            }
        }
        if taken < threshold {
            let detail = format!(
                "aggregation ISM {ism}: {taken} of {threshold} modules have metadata: {}",
                errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            );
            return Err(if errors.iter().any(|e| matches!(e, MetadataError::NotYet(_))) {
                MetadataError::NotYet(detail)
            } else {
                MetadataError::Build(detail)
            });
        }
        AggregationMetadata { modules: chosen }
            .encode()
            .map_err(|e| MetadataError::Build(format!("aggregation ISM {ism}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_keeps_its_ism_answers_for_the_ttl_then_reads_afresh() {
        let caches = IsmCaches::default();
        let start = std::time::Instant::now();
        let first = caches.get(1, start);
        first.recipient_ism.put(Address::repeat_byte(1), Address::repeat_byte(2));
        let later = caches.get(1, start + ISM_CACHE_TTL / 2);
        assert!(Arc::ptr_eq(&first, &later), "within the TTL: the same answers");
        assert_eq!(
            later.recipient_ism.get(&Address::repeat_byte(1)),
            Some(Address::repeat_byte(2))
        );
        assert!(
            caches.get(2, start).recipient_ism.get(&Address::repeat_byte(1)).is_none(),
            "another destination"
        );
        let expired = caches.get(1, start + ISM_CACHE_TTL);
        assert!(!Arc::ptr_eq(&first, &expired), "at the TTL: read afresh");
        assert_eq!(expired.recipient_ism.get(&Address::repeat_byte(1)), None);
    }
}
