//! The validator's metrics, with Hyperlane's meanings. Names are given
//! without the `metalayer_` prefix, which the agent registry adds.

use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts, Registry};

/// Gauges and counters the validator keeps.
#[derive(Debug, Clone)]
pub struct ValidatorMetrics {
    /// `metalayer_latest_checkpoint{phase}`: `validator_observed` is the
    /// origin's latest index at the reorg-lagged height, `validator_processed`
    /// the highest index signed and published.
    pub latest_checkpoint: IntGaugeVec,
    /// `metalayer_announced`: 1 once the storage location is on chain.
    pub announced: IntGauge,
    /// `metalayer_backfill_complete`: 1 once every leaf up to the first
    /// observed index is published.
    pub backfill_complete: IntGauge,
    /// `metalayer_merkle_root_mismatch`: 1 after a root mismatch (reorg).
    pub root_mismatch: IntGauge,
    /// `metalayer_signing_refused_total`: signing requests refused by the
    /// double-sign protection.
    pub signing_refused: IntCounter,
    /// `metalayer_checkpoints_signed_total`.
    pub signed: IntCounter,
}

impl ValidatorMetrics {
    /// Registers the metrics in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let latest_checkpoint = IntGaugeVec::new(
            Opts::new("latest_checkpoint", "Latest checkpoint index by phase"),
            &["phase"],
        )?;
        let announced =
            IntGauge::new("announced", "1 once the storage location is announced on chain")?;
        let backfill_complete = IntGauge::new(
            "backfill_complete",
            "1 once the initial backlog is signed and published",
        )?;
        let root_mismatch =
            IntGauge::new("merkle_root_mismatch", "1 after a root mismatch with the chain")?;
        let signing_refused = IntCounter::new(
            "signing_refused_total",
            "Signing requests refused because they conflict with an earlier signature",
        )?;
        let signed =
            IntCounter::new("checkpoints_signed_total", "Checkpoints signed and published")?;
        registry.register(Box::new(latest_checkpoint.clone()))?;
        registry.register(Box::new(announced.clone()))?;
        registry.register(Box::new(backfill_complete.clone()))?;
        registry.register(Box::new(root_mismatch.clone()))?;
        registry.register(Box::new(signing_refused.clone()))?;
        registry.register(Box::new(signed.clone()))?;
        Ok(Self {
            latest_checkpoint,
            announced,
            backfill_complete,
            root_mismatch,
            signing_refused,
            signed,
        })
    }
}
