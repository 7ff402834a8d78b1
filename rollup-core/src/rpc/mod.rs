//! Ethereum JSON-RPC over HTTP and WebSocket on one port (jsonrpsee), with
//! request size and batch limits, and latency metrics per method.

mod convert;
mod dev;
mod error;
mod eth;
mod filters;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::primitives::keccak256;
use jsonrpsee::core::traits::IdProvider;
use jsonrpsee::server::{BatchRequestConfig, RpcModule, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::{ErrorObjectOwned, Params, SubscriptionId};
use serde::Serialize;

use crate::chain::Chain;
use crate::error::NodeError;
use crate::node::Node;

pub use error::{EXECUTION_REVERTED, INVALID_PARAMS, LIMIT_EXCEEDED, SERVER};

/// Result of an RPC handler.
pub(crate) type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// Limits on what one client can ask for.
#[derive(Clone, Copy, Debug)]
pub struct RpcLimits {
    /// Largest request body, in bytes.
    pub max_request_bytes: u32,
    /// Largest response body, in bytes.
    pub max_response_bytes: u32,
    /// Most calls in one batch.
    pub max_batch: u32,
    /// Widest block range of one `eth_getLogs`.
    pub max_log_range: u64,
    /// Most logs one `eth_getLogs` returns.
    pub max_logs: usize,
}

impl Default for RpcLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: 5 << 20,
            max_response_bytes: 50 << 20,
            max_batch: 500,
            max_log_range: 10_000,
            max_logs: 20_000,
        }
    }
}

/// What every handler sees.
#[derive(Debug)]
pub(crate) struct RpcCtx {
    pub(crate) node: Arc<Node>,
    pub(crate) limits: RpcLimits,
    pub(crate) filters: filters::Filters,
}

/// Subscription ids as geth makes them: 16 random-looking bytes in hex.
#[derive(Debug)]
struct HexIdProvider(AtomicU64, u64);

impl IdProvider for HexIdProvider {
    fn next_id(&self) -> SubscriptionId<'static> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        let h = keccak256([self.1.to_be_bytes(), n.to_be_bytes()].concat());
        SubscriptionId::Str(format!("0x{}", alloy::primitives::hex::encode(&h[..16])).into())
    }
}

/// Starts the JSON-RPC server on `addr`; returns its bound address and handle.
pub async fn serve(
    node: Arc<Node>,
    addr: SocketAddr,
    limits: RpcLimits,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    let config = ServerConfig::builder()
        .max_request_body_size(limits.max_request_bytes)
        .max_response_body_size(limits.max_response_bytes)
        .set_batch_request_config(BatchRequestConfig::Limit(limits.max_batch))
        .set_id_provider(HexIdProvider(AtomicU64::new(1), seed))
        .build();
    let server = Server::builder().set_config(config).build(addr).await?;
    let bound = server.local_addr()?;
    let ctx = RpcCtx { node, limits, filters: filters::Filters::default() };
    let module = module(ctx).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok((bound, server.start(module)))
}

fn module(ctx: RpcCtx) -> Result<RpcModule<RpcCtx>, jsonrpsee::core::RegisterMethodError> {
    let mut m = RpcModule::new(ctx);
    eth::register(&mut m)?;
    filters::register(&mut m)?;
    dev::register(&mut m)?;
    Ok(m)
}

/// Registers a synchronous handler, run on the blocking pool and timed.
pub(crate) fn blocking<T>(
    m: &mut RpcModule<RpcCtx>,
    name: &'static str,
    f: fn(&RpcCtx, &Params<'_>) -> RpcResult<T>,
) -> Result<(), jsonrpsee::core::RegisterMethodError>
where
    T: Serialize + Clone + Send + 'static,
{
    m.register_blocking_method(name, move |params, ctx, _| {
        let started = Instant::now();
        let out = f(&ctx, &params);
        ctx.node
            .metrics
            .rpc_seconds
            .with_label_values(&[name])
            .observe(started.elapsed().as_secs_f64());
        out
    })?;
    Ok(())
}

/// Registers a cheap synchronous handler (a few store reads), run in place and timed.
/// It may wait for the chain lock while a block is being written; work that can
/// run long (calls, log queries, mining) goes through [`blocking`] instead.
pub(crate) fn inline<T>(
    m: &mut RpcModule<RpcCtx>,
    name: &'static str,
    f: fn(&RpcCtx, &Params<'_>) -> RpcResult<T>,
) -> Result<(), jsonrpsee::core::RegisterMethodError>
where
    T: Serialize + Clone + Send + 'static,
{
    m.register_method(name, move |params, ctx, _| {
        let started = Instant::now();
        let out = f(ctx, &params);
        ctx.node
            .metrics
            .rpc_seconds
            .with_label_values(&[name])
            .observe(started.elapsed().as_secs_f64());
        out
    })?;
    Ok(())
}

/// Resolves a block tag or number to a block number; `None` if beyond the head.
pub(crate) fn resolve_tag(chain: &Chain, tag: BlockNumberOrTag) -> Result<Option<u64>, NodeError> {
    let head = chain.head_number()?;
    Ok(match tag {
        BlockNumberOrTag::Earliest => Some(0),
        BlockNumberOrTag::Number(n) => (n <= head).then_some(n),
        _ => Some(head),
    })
}

/// Resolves a block id (tag, number or hash) to a block number.
pub(crate) fn resolve_id(chain: &Chain, id: BlockId) -> Result<Option<u64>, NodeError> {
    match id {
        BlockId::Number(tag) => resolve_tag(chain, tag),
        BlockId::Hash(h) => Ok(chain.store.block_number(h.block_hash)?),
    }
}

/// State view selector for a block id: `None` for the head (latest state).
pub(crate) fn state_at(chain: &Chain, id: Option<BlockId>) -> RpcResult<Option<u64>> {
    let id = id.unwrap_or(BlockId::Number(BlockNumberOrTag::Latest));
    let head = chain.head_number()?;
    match resolve_id(chain, id)? {
        Some(n) if n == head => Ok(None),
        Some(n) => Ok(Some(n)),
        None => {
            Err(error::err(SERVER, format!("header not found: block {id} is not in the chain")))
        }
    }
}
