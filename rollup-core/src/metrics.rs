//! Prometheus metrics of the node, described in one place. Base units, no
//! rates: Prometheus derives gas/s and tx/s from the counters.

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntGauge, Opts, Registry};

/// The node's metrics and the registry that exports them.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Registry rendered at `/metrics`.
    pub registry: Registry,
    /// Blocks produced.
    pub blocks: IntCounter,
    /// Transactions included in blocks.
    pub txs: IntCounter,
    /// Gas used by produced blocks.
    pub gas: IntCounter,
    /// Head block number.
    pub head: IntGauge,
    /// Transactions in the pool.
    pub pool_size: IntGauge,
    /// Seconds spent computing a block's state root.
    pub state_root_seconds: Histogram,
    /// Seconds spent executing a block's transactions.
    pub execution_seconds: Histogram,
    /// JSON-RPC latency by method, in seconds.
    pub rpc_seconds: HistogramVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("metalayer_rollup".into()), None)?;
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::with_opts(Opts::new(name, help))?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::with_opts(Opts::new(name, help))?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let buckets = vec![0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0];
        let histogram = |name: &str, help: &str| -> Result<Histogram, prometheus::Error> {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.clone()))?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let rpc_seconds = HistogramVec::new(
            HistogramOpts::new("rpc_seconds", "JSON-RPC call latency by method")
                .buckets(buckets.clone()),
            &["method"],
        )?;
        registry.register(Box::new(rpc_seconds.clone()))?;
        Ok(Self {
            blocks: counter("blocks_total", "Blocks produced")?,
            txs: counter("transactions_total", "Transactions included in blocks")?,
            gas: counter("gas_used_total", "Gas used by produced blocks")?,
            head: gauge("head_block", "Head block number")?,
            pool_size: gauge("pool_transactions", "Transactions waiting in the pool")?,
            state_root_seconds: histogram(
                "state_root_seconds",
                "Time to compute a block's state root",
            )?,
            execution_seconds: histogram(
                "block_execution_seconds",
                "Time to execute a block's transactions",
            )?,
            rpc_seconds,
            registry,
        })
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        if let Err(e) = encoder.encode_utf8(&self.registry.gather(), &mut out) {
            out = format!("# metrics encoding failed: {e}\n");
        }
        out
    }
}
