//! The relayer's metrics, in one place. Names are registered without the
//! `metalayer_` prefix, which the agent registry adds; with Hyperlane's
//! meanings. Base units: seconds, gas, wei.

use prometheus::{
    CounterVec, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Every relayer metric.
#[derive(Debug, Clone)]
pub struct RelayerMetrics {
    /// `metalayer_submitter_queue_length{remote,queue_name}`.
    pub queue_length: IntGaugeVec,
    /// `metalayer_messages_processed_count{origin,remote}`: delivered and confirmed.
    pub messages_processed: IntCounterVec,
    /// `metalayer_operations_processed_count{phase,chain}`: prepared, submitted,
    /// confirmed, failed, dropped.
    pub operations: IntCounterVec,
    /// `metalayer_metadata_build_duration_seconds{origin,remote,status}`.
    pub metadata_build: HistogramVec,
    /// `metalayer_gas_spent_total{chain}`: gas used by our delivery transactions.
    pub gas_spent: IntCounterVec,
    /// `metalayer_tokens_spent_wei_total{chain}`: gas used × effective gas price.
    pub tokens_spent: CounterVec,
    /// `metalayer_wallet_balance{chain,wallet}` in wei.
    pub wallet_balance: GaugeVec,
    /// `metalayer_last_known_message_nonce{phase,origin}`: `dispatched` (loaded)
    /// and `message_processed` (confirmed delivered).
    pub last_nonce: IntGaugeVec,
    /// `metalayer_invalid_checkpoint_signatures_total{origin,validator}`.
    pub invalid_signatures: IntCounterVec,
    /// `metalayer_transaction_escalations_total{chain}`: re-sends at a higher gas price.
    pub escalations: IntCounterVec,
    /// `metalayer_merkle_tree_leaves{origin}`: leaves in each origin prover.
    pub prover_leaves: IntGaugeVec,
}

impl RelayerMetrics {
    /// Registers every relayer metric in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            queue_length: IntGaugeVec::new(
                Opts::new("submitter_queue_length", "Messages per destination and queue"),
                &["remote", "queue_name"],
            )?,
            messages_processed: IntCounterVec::new(
                Opts::new("messages_processed_count", "Messages confirmed delivered, per route"),
                &["origin", "remote"],
            )?,
            operations: IntCounterVec::new(
                Opts::new("operations_processed_count", "Pipeline transitions by phase"),
                &["phase", "chain"],
            )?,
            metadata_build: HistogramVec::new(
                HistogramOpts::new("metadata_build_duration_seconds", "Time to build ISM metadata")
                    .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
                &["origin", "remote", "status"],
            )?,
            gas_spent: IntCounterVec::new(
                Opts::new("gas_spent_total", "Gas used by delivery transactions"),
                &["chain"],
            )?,
            tokens_spent: CounterVec::new(
                Opts::new("tokens_spent_wei_total", "Wei spent on delivery transactions"),
                &["chain"],
            )?,
            wallet_balance: GaugeVec::new(
                Opts::new("wallet_balance", "Balance of the relayer's signer, in wei"),
                &["chain", "wallet"],
            )?,
            last_nonce: IntGaugeVec::new(
                Opts::new("last_known_message_nonce", "Highest message nonce per phase and origin"),
                &["phase", "origin"],
            )?,
            invalid_signatures: IntCounterVec::new(
                Opts::new(
                    "invalid_checkpoint_signatures_total",
                    "Checkpoints served by a validator's storage that it did not sign or that name the wrong message",
                ),
                &["origin", "validator"],
            )?,
            escalations: IntCounterVec::new(
                Opts::new(
                    "transaction_escalations_total",
                    "Transactions re-sent at a higher gas price",
                ),
                &["chain"],
            )?,
            prover_leaves: IntGaugeVec::new(
                Opts::new("merkle_tree_leaves", "Leaves in each origin's local tree"),
                &["origin"],
            )?,
        };
        registry.register(Box::new(m.queue_length.clone()))?;
        registry.register(Box::new(m.messages_processed.clone()))?;
        registry.register(Box::new(m.operations.clone()))?;
        registry.register(Box::new(m.metadata_build.clone()))?;
        registry.register(Box::new(m.gas_spent.clone()))?;
        registry.register(Box::new(m.tokens_spent.clone()))?;
        registry.register(Box::new(m.wallet_balance.clone()))?;
        registry.register(Box::new(m.last_nonce.clone()))?;
        registry.register(Box::new(m.invalid_signatures.clone()))?;
        registry.register(Box::new(m.escalations.clone()))?;
        registry.register(Box::new(m.prover_leaves.clone()))?;
        Ok(m)
    }
}
