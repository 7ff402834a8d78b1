//! Polling filters (`eth_newFilter` and friends) and `eth_subscribe`
//! (`newHeads`, `logs`, with removed logs on reorgs).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy::primitives::{B256, U256};
use alloy::rpc::types::{Filter, Log};
use jsonrpsee::server::{PendingSubscriptionSink, RpcModule, SubscriptionMessage};
use jsonrpsee::types::Params;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::convert::{block_logs, rpc_block};
use super::error::{err, invalid_params};
use super::eth::logs;
use super::{RpcCtx, RpcResult, blocking};
use crate::node::ChainEvent;

/// Filters unpolled this long are dropped, as geth does.
const FILTER_TTL: Duration = Duration::from_secs(300);
/// Most filters kept at once.
const MAX_FILTERS: usize = 10_000;

#[derive(Debug, Clone)]
enum FilterKind {
    Blocks,
    Logs(Box<Filter>),
}

#[derive(Debug)]
struct FilterState {
    kind: FilterKind,
    last_block: u64,
    polled: Instant,
}

/// Installed polling filters.
#[derive(Debug, Default)]
pub(crate) struct Filters {
    next: Mutex<u64>,
    map: Mutex<HashMap<U256, FilterState>>,
}

#[derive(Serialize, Clone)]
#[serde(untagged)]
enum Changes {
    Hashes(Vec<B256>),
    Logs(Vec<Log>),
}

impl Filters {
    fn install(&self, kind: FilterKind, head: u64) -> RpcResult<U256> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, f| f.polled.elapsed() < FILTER_TTL);
        if map.len() >= MAX_FILTERS {
            return Err(err(
                super::LIMIT_EXCEEDED,
                "too many filters installed: uninstall some first",
            ));
        }
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        *next += 1;
        let id = U256::from(*next);
        map.insert(id, FilterState { kind, last_block: head, polled: Instant::now() });
        Ok(id)
    }
}

pub(super) fn register(
    m: &mut RpcModule<RpcCtx>,
) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    blocking(m, "eth_newFilter", |c, p| {
        let filter: Filter = p.sequence().next()?;
        let head = c.node.chain().head_number()?;
        let start = filter.get_from_block().map_or(head, |f| f.saturating_sub(1).min(head));
        c.filters.install(FilterKind::Logs(Box::new(filter)), start)
    })?;
    blocking(m, "eth_newBlockFilter", |c, _| {
        let head = c.node.chain().head_number()?;
        c.filters.install(FilterKind::Blocks, head)
    })?;
    blocking(m, "eth_uninstallFilter", |c, p| {
        let id: U256 = p.sequence().next()?;
        Ok(c.filters.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&id).is_some())
    })?;
    blocking(m, "eth_getFilterChanges", filter_changes)?;
    blocking(m, "eth_getFilterLogs", |c, p| {
        let id: U256 = p.sequence().next()?;
        let kind = c
            .filters
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .map(|f| f.kind.clone());
        match kind {
            Some(FilterKind::Logs(f)) => logs(c, &f, None),
            Some(FilterKind::Blocks) => {
                Err(invalid_params(format!("filter {id:#x} is a block filter, not a log filter")))
            }
            None => Err(err(super::SERVER, "filter not found")),
        }
    })?;
    m.register_subscription("eth_subscribe", "eth_subscription", "eth_unsubscribe", subscribe)?;
    Ok(())
}

fn filter_changes(c: &RpcCtx, p: &Params<'_>) -> RpcResult<Changes> {
    let id: U256 = p.sequence().next()?;
    let head = c.node.chain().head_number()?;
    let (kind, last) = {
        let mut map = c.filters.map.lock().unwrap_or_else(|e| e.into_inner());
        let f = map.get_mut(&id).ok_or_else(|| err(super::SERVER, "filter not found"))?;
        let last = f.last_block.min(head);
        f.last_block = head;
        f.polled = Instant::now();
        (f.kind.clone(), last)
    };
    match kind {
        FilterKind::Blocks => {
            let chain = c.node.chain();
            let mut hashes = Vec::new();
            for n in last + 1..=head {
                if let Some(h) = chain.store.block_hash(n)? {
                    hashes.push(h);
                }
            }
            Ok(Changes::Hashes(hashes))
        }
        FilterKind::Logs(f) => Ok(Changes::Logs(logs(c, &f, Some(last))?)),
    }
}

async fn subscribe(
    params: Params<'static>,
    pending: PendingSubscriptionSink,
    ctx: std::sync::Arc<RpcCtx>,
    _: jsonrpsee::Extensions,
) -> jsonrpsee::core::SubscriptionResult {
    let mut seq = params.sequence();
    let kind: String = match seq.next() {
        Ok(k) => k,
        Err(e) => {
            pending.reject(e).await;
            return Ok(());
        }
    };
    let filter: Option<Filter> = match kind.as_str() {
        "newHeads" => None,
        "logs" => match seq.optional_next::<Filter>() {
            Ok(f) => Some(f.unwrap_or_default()),
            Err(e) => {
                pending.reject(e).await;
                return Ok(());
            }
        },
        other => {
            pending
                .reject(invalid_params(format!(
                    "unsupported subscription \"{other}\": use newHeads or logs"
                )))
                .await;
            return Ok(());
        }
    };
    let mut events = ctx.node.subscribe();
    let sink = pending.accept().await?;
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = sink.closed() => return Ok(()),
        };
        let event = match event {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(skipped = n, "subscriber lagged behind the chain");
                continue;
            }
            Err(RecvError::Closed) => return Ok(()),
        };
        let mut out: Vec<Box<serde_json::value::RawValue>> = Vec::new();
        match (&event, &filter) {
            (ChainEvent::Block(b), None) => out
                .push(serde_json::value::to_raw_value(&rpc_block(b.hash, &b.block, false).header)?),
            (ChainEvent::Block(b), Some(f)) => {
                for log in block_logs(b.hash, &b.block, &b.receipts, false) {
                    if f.matches_address(log.address()) && f.matches_topics(log.topics()) {
                        out.push(serde_json::value::to_raw_value(&log)?);
                    }
                }
            }
            (ChainEvent::Removed(blocks), Some(f)) => {
                for (hash, block, receipts) in blocks.iter().rev() {
                    for log in block_logs(*hash, block, receipts, true) {
                        if f.matches_address(log.address()) && f.matches_topics(log.topics()) {
                            out.push(serde_json::value::to_raw_value(&log)?);
                        }
                    }
                }
            }
            (ChainEvent::Removed(_), None) => {}
        }
        for raw in out {
            if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                return Ok(());
            }
        }
    }
}
