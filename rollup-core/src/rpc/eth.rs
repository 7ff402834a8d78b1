//! `eth_*`, `net_*` and `web3_*` methods.

use alloy::consensus::{SignableTransaction, Transaction as _, TxEnvelope};
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, B256, Bytes, TxKind, U64, U256};
use alloy::rpc::types::state::StateOverride;
use alloy::rpc::types::{FeeHistory, Filter, FilterBlockOption, Log, TransactionRequest};
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::Params;

use super::convert::{block_logs, rpc_block, rpc_receipt, rpc_tx};
use super::error::{LIMIT_EXCEEDED, SERVER, err, invalid_params, reverted};
use super::{RpcCtx, RpcResult, blocking, inline, resolve_tag, state_at};
use crate::chain::Chain;
use crate::executor::{CallOutcome, CallRequest, TX_GAS_CAP, call};
use crate::store::AccountData;

/// Tip the node suggests, in wei.
const SUGGESTED_TIP: u128 = 1_000_000_000;

pub(super) fn register(
    m: &mut RpcModule<RpcCtx>,
) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    inline(m, "eth_chainId", |c, _| Ok(U64::from(c.node.chain_id())))?;
    inline(m, "net_version", |c, _| Ok(c.node.chain_id().to_string()))?;
    inline(m, "net_listening", |_, _| Ok(true))?;
    inline(m, "web3_clientVersion", |_, _| {
        Ok(format!("metalayer-rollup/{}", env!("CARGO_PKG_VERSION")))
    })?;
    inline(m, "eth_syncing", |_, _| Ok(false))?;
    inline(m, "eth_accounts", |c, _| Ok(c.node.accounts().to_vec()))?;
    inline(m, "eth_blockNumber", |c, _| Ok(U64::from(c.node.head_number())))?;
    inline(m, "eth_getBlockByNumber", get_block_by_number)?;
    inline(m, "eth_getBlockByHash", get_block_by_hash)?;
    inline(m, "eth_getBlockTransactionCountByNumber", |c, p| {
        let tag: BlockNumberOrTag = p.sequence().next()?;
        let chain = c.node.chain();
        let Some(n) = resolve_tag(&chain, tag)? else { return Ok(None) };
        Ok(chain.record(n)?.map(|r| U64::from(r.block.txs.len())))
    })?;
    inline(m, "eth_getBlockTransactionCountByHash", |c, p| {
        let hash: B256 = p.sequence().next()?;
        let chain = c.node.chain();
        let Some(n) = chain.store.block_number(hash)? else { return Ok(None) };
        Ok(chain.record(n)?.map(|r| U64::from(r.block.txs.len())))
    })?;
    inline(m, "eth_getTransactionByBlockNumberAndIndex", |c, p| {
        let mut seq = p.sequence();
        let tag: BlockNumberOrTag = seq.next()?;
        let index: U64 = seq.next()?;
        let chain = c.node.chain();
        let Some(n) = resolve_tag(&chain, tag)? else { return Ok(None) };
        tx_at(&chain, n, index.to())
    })?;
    inline(m, "eth_getTransactionByBlockHashAndIndex", |c, p| {
        let mut seq = p.sequence();
        let hash: B256 = seq.next()?;
        let index: U64 = seq.next()?;
        let chain = c.node.chain();
        let Some(n) = chain.store.block_number(hash)? else { return Ok(None) };
        tx_at(&chain, n, index.to())
    })?;
    inline(m, "eth_getUncleCountByBlockNumber", |_, _| Ok(U64::ZERO))?;
    inline(m, "eth_getUncleCountByBlockHash", |_, _| Ok(U64::ZERO))?;
    inline(m, "eth_coinbase", |_, _| Ok(Address::ZERO))?;
    inline(m, "eth_mining", |_, _| Ok(true))?;
    inline(m, "eth_hashrate", |_, _| Ok(U64::ZERO))?;
    inline(m, "net_peerCount", |_, _| Ok(U64::ZERO))?;
    inline(m, "eth_getBalance", |c, p| {
        Ok(account_field(c, p)?.map(|a| a.balance).unwrap_or_default())
    })?;
    inline(m, "eth_getTransactionCount", get_transaction_count)?;
    inline(m, "eth_getCode", get_code)?;
    inline(m, "eth_getStorageAt", get_storage_at)?;
    inline(m, "eth_gasPrice", |c, _| {
        Ok(U256::from(u128::from(next_base_fee(&c.node.chain())?) + SUGGESTED_TIP))
    })?;
    inline(m, "eth_maxPriorityFeePerGas", |_, _| Ok(U256::from(SUGGESTED_TIP)))?;
    blocking(m, "eth_feeHistory", fee_history)?;
    blocking(m, "eth_call", eth_call)?;
    blocking(m, "eth_estimateGas", estimate_gas)?;
    inline(m, "eth_getTransactionByHash", get_transaction)?;
    inline(m, "eth_getTransactionReceipt", get_receipt)?;
    blocking(m, "eth_getBlockReceipts", |c, p| {
        let tag: BlockNumberOrTag = p.sequence().next()?;
        let chain = c.node.chain();
        let Some(n) = resolve_tag(&chain, tag)? else { return Ok(None) };
        let Some(r) = chain.record(n)? else { return Ok(None) };
        Ok(Some(
            (0..r.block.txs.len())
                .filter_map(|i| rpc_receipt(r.hash, &r.block, &r.receipts, i))
                .collect::<Vec<_>>(),
        ))
    })?;
    blocking(m, "eth_getLogs", |c, p| {
        let filter: Filter = p.sequence().next()?;
        logs(c, &filter, None)
    })?;
    m.register_async_method("eth_sendRawTransaction", |p, c, _| async move {
        let raw: Bytes = p.sequence().next::<Bytes>()?;
        let started = std::time::Instant::now();
        let out: RpcResult<B256> = c.node.submit_raw(&raw).await.map_err(Into::into);
        c.node
            .metrics
            .rpc_seconds
            .with_label_values(&["eth_sendRawTransaction"])
            .observe(started.elapsed().as_secs_f64());
        out
    })?;
    m.register_async_method("eth_sendTransaction", |p, c, _| async move {
        let request: TransactionRequest = p.sequence().next()?;
        let (tx, sender) = sign_request(&c, request)?;
        c.node.submit(tx, sender).await.map_err(Into::<jsonrpsee::types::ErrorObjectOwned>::into)
    })?;
    Ok(())
}

fn next_base_fee(chain: &Chain) -> RpcResult<u64> {
    let head = chain.head_number()?;
    let record =
        chain.record(head)?.ok_or_else(|| err(SERVER, format!("head block {head} missing")))?;
    Ok(chain.next_base_fee_of(&record.block.header))
}

fn get_block_by_number(c: &RpcCtx, p: &Params<'_>) -> RpcResult<Option<alloy::rpc::types::Block>> {
    let mut seq = p.sequence();
    let tag: BlockNumberOrTag = seq.next()?;
    let full: Option<bool> = seq.optional_next()?;
    let chain = c.node.chain();
    let Some(n) = resolve_tag(&chain, tag)? else { return Ok(None) };
    Ok(chain.record(n)?.map(|r| rpc_block(r.hash, &r.block, full.unwrap_or(false))))
}

fn get_block_by_hash(c: &RpcCtx, p: &Params<'_>) -> RpcResult<Option<alloy::rpc::types::Block>> {
    let mut seq = p.sequence();
    let hash: B256 = seq.next()?;
    let full: Option<bool> = seq.optional_next()?;
    let chain = c.node.chain();
    let Some(n) = chain.store.block_number(hash)? else { return Ok(None) };
    Ok(chain.record(n)?.map(|r| rpc_block(r.hash, &r.block, full.unwrap_or(false))))
}

fn account_field(c: &RpcCtx, p: &Params<'_>) -> RpcResult<Option<AccountData>> {
    let mut seq = p.sequence();
    let address: Address = seq.next()?;
    let block: Option<BlockId> = seq.optional_next()?;
    let chain = c.node.chain();
    let at = state_at(&chain, block)?;
    Ok(chain.state(at).account(address)?)
}

fn get_transaction_count(c: &RpcCtx, p: &Params<'_>) -> RpcResult<U64> {
    let mut seq = p.sequence();
    let address: Address = seq.next()?;
    let block: Option<BlockId> = seq.optional_next()?;
    if matches!(block, Some(BlockId::Number(BlockNumberOrTag::Pending))) {
        return Ok(U64::from(c.node.pending_nonce(address)?));
    }
    let chain = c.node.chain();
    let at = state_at(&chain, block)?;
    Ok(U64::from(chain.state(at).account(address)?.map(|a| a.nonce).unwrap_or_default()))
}

fn get_code(c: &RpcCtx, p: &Params<'_>) -> RpcResult<Bytes> {
    let mut seq = p.sequence();
    let address: Address = seq.next()?;
    let block: Option<BlockId> = seq.optional_next()?;
    let chain = c.node.chain();
    let at = state_at(&chain, block)?;
    let db = chain.state(at);
    match db.account(address)? {
        Some(a) => Ok(db.code(a.code_hash)?),
        None => Ok(Bytes::new()),
    }
}

fn get_storage_at(c: &RpcCtx, p: &Params<'_>) -> RpcResult<B256> {
    let mut seq = p.sequence();
    let address: Address = seq.next()?;
    let slot: U256 = seq.next()?;
    let block: Option<BlockId> = seq.optional_next()?;
    let chain = c.node.chain();
    let at = state_at(&chain, block)?;
    Ok(B256::from(chain.state(at).slot(address, slot)?))
}

fn fee_history(c: &RpcCtx, p: &Params<'_>) -> RpcResult<FeeHistory> {
    let mut seq = p.sequence();
    let count: U64 = seq.next()?;
    let newest: BlockNumberOrTag = seq.next()?;
    let percentiles: Option<Vec<f64>> = seq.optional_next()?;
    if percentiles
        .as_ref()
        .is_some_and(|p| p.iter().any(|x| !(0.0..=100.0).contains(x)) || !p.is_sorted())
    {
        return Err(invalid_params(
            "reward percentiles must be ascending values between 0 and 100",
        ));
    }
    let chain = c.node.chain();
    let newest = resolve_tag(&chain, newest)?.unwrap_or(chain.head_number()?);
    let count = count.to::<u64>().clamp(1, 1024).min(newest + 1);
    let oldest = newest + 1 - count;
    let mut history = FeeHistory { oldest_block: oldest, ..Default::default() };
    let mut reward = Vec::new();
    for n in oldest..=newest {
        let Some(r) = chain.record(n)? else { break };
        let block = &r.block;
        let h = &block.header;
        let base = h.base_fee_per_gas.unwrap_or_default();
        history.base_fee_per_gas.push(u128::from(base));
        history.gas_used_ratio.push(h.gas_used as f64 / h.gas_limit.max(1) as f64);
        if let Some(ps) = &percentiles {
            let mut tips: Vec<u128> =
                block.txs.iter().map(|t| t.effective_tip_per_gas(base).unwrap_or(0)).collect();
            tips.sort_unstable();
            reward.push(
                ps.iter()
                    .map(|p| {
                        if tips.is_empty() {
                            return 0;
                        }
                        let i = ((p / 100.0) * (tips.len() - 1) as f64).round() as usize;
                        tips[i.min(tips.len() - 1)]
                    })
                    .collect(),
            );
        }
        if n == newest {
            history.base_fee_per_gas.push(u128::from(chain.next_base_fee_of(h)));
        }
    }
    if percentiles.is_some() {
        history.reward = Some(reward);
    }
    Ok(history)
}

fn call_request(chain: &Chain, req: &TransactionRequest) -> CallRequest {
    let cap = chain.genesis.gas_limit.min(TX_GAS_CAP);
    CallRequest {
        from: req.from.unwrap_or_default(),
        to: match req.to {
            Some(TxKind::Call(a)) => Some(a),
            _ => None,
        },
        gas: req.gas.unwrap_or(cap).min(cap),
        gas_price: req.gas_price.or(req.max_fee_per_gas).unwrap_or(0),
        value: req.value.unwrap_or_default(),
        input: req.input.input().cloned().unwrap_or_default(),
        access_list: req.access_list.clone().unwrap_or_default(),
    }
}

fn run_call(
    chain: &Chain,
    at: Option<u64>,
    req: &CallRequest,
    overrides: Option<&StateOverride>,
) -> RpcResult<CallOutcome> {
    let mut db = chain.state(at);
    if let Some(o) = overrides {
        for (address, ov) in o.iter() {
            let mut acc = db.account(*address)?.unwrap_or(AccountData {
                code_hash: alloy::primitives::KECCAK256_EMPTY,
                ..Default::default()
            });
            if let Some(b) = ov.balance {
                acc.balance = b;
            }
            if let Some(n) = ov.nonce {
                acc.nonce = n;
            }
            db.set_account(*address, acc);
            if let Some(code) = &ov.code {
                db.set_code(*address, code.clone())?;
            }
            if let Some(state) = &ov.state {
                db.set_storage(
                    *address,
                    state.iter().map(|(k, v)| (U256::from_be_bytes(k.0), U256::from_be_bytes(v.0))),
                    true,
                );
            }
            if let Some(diff) = &ov.state_diff {
                db.set_storage(
                    *address,
                    diff.iter().map(|(k, v)| (U256::from_be_bytes(k.0), U256::from_be_bytes(v.0))),
                    false,
                );
            }
        }
    }
    let block = match at {
        None => chain.next_block_params(now())?,
        Some(n) => {
            let (hash, header) = chain
                .header(n)?
                .ok_or_else(|| err(SERVER, format!("header not found: block {n}")))?;
            crate::executor::BlockParams {
                number: n,
                timestamp: header.timestamp,
                gas_limit: header.gas_limit,
                base_fee: header.base_fee_per_gas.unwrap_or_default(),
                beneficiary: header.beneficiary,
                prevrandao: hash,
            }
        }
    };
    Ok(call(&mut db, chain.genesis.chain_id, &block, req)?)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn eth_call(c: &RpcCtx, p: &Params<'_>) -> RpcResult<Bytes> {
    let mut seq = p.sequence();
    let req: TransactionRequest = seq.next()?;
    let block: Option<BlockId> = seq.optional_next()?;
    let overrides: Option<StateOverride> = seq.optional_next()?;
    let chain = c.node.chain();
    let at = state_at(&chain, block)?;
    match run_call(&chain, at, &call_request(&chain, &req), overrides.as_ref())? {
        CallOutcome::Success { output, .. } => Ok(output),
        CallOutcome::Revert { output, .. } => Err(reverted(&output)),
        CallOutcome::Halt { reason, .. } => Err(err(SERVER, format!("execution halted: {reason}"))),
    }
}

/// `eth_estimateGas` answers with a limit that worked in a run, at most
/// `1 / ESTIMATE_ERROR_DENOMINATOR` (2 %) above the least limit that works
/// (geth stops at 1.5 %). 2 % lets one run settle a large call: its 63/64
/// margin over the gas it spends is within the bound.
const ESTIMATE_ERROR_DENOMINATOR: u128 = 50;

/// A limit above `spent` that covers what calls forwarding 63/64 of their
/// gas keep back, and a value transfer's stipend.
fn forwarding_margin(spent: u64) -> u64 {
    (spent.saturating_mul(64) / 63).saturating_add(2_300)
}

fn estimate_gas(c: &RpcCtx, p: &Params<'_>) -> RpcResult<U64> {
    let mut seq = p.sequence();
    let req: TransactionRequest = seq.next()?;
    let block: Option<BlockId> = seq.optional_next()?;
    let overrides: Option<StateOverride> = seq.optional_next()?;
    let chain = c.node.chain();
    let at = state_at(&chain, block)?;
    let mut call = call_request(&chain, &req);
    let cap = call.gas;
    // Refunds are paid back only at the end: no limit below the gas spent
    // before them can work.
    let spent = match run_call(&chain, at, &call, overrides.as_ref())? {
        CallOutcome::Success { gas_spent, .. } => gas_spent,
        CallOutcome::Revert { output, .. } => return Err(reverted(&output)),
        CallOutcome::Halt { reason, .. } => {
            return Err(err(SERVER, format!("gas required exceeds allowance ({cap}): {reason}")));
        }
    };
    let mut ok = |gas: u64| -> RpcResult<bool> {
        call.gas = gas;
        Ok(matches!(run_call(&chain, at, &call, overrides.as_ref())?, CallOutcome::Success { .. }))
    };
    let within =
        |lo: u64, hi: u64| (hi - lo) as u128 * ESTIMATE_ERROR_DENOMINATOR <= u128::from(hi);
    let guess = forwarding_margin(spent).min(cap);
    let (mut lo, mut hi) = (spent, cap);
    if within(spent, guess) {
        // A large call (a relayer's batch delivery): if the margin works,
        // the answer is known within the bound from this one run, where
        // trying the exact gas spent first (it fails for any call that
        // forwards gas) and bisecting took three. (The cap worked in the
        // first run.)
        if guess == cap || ok(guess)? {
            return Ok(U64::from(guess));
        }
        lo = guess;
    } else {
        // Most small calls (refunds included) succeed with exactly the gas
        // they spent: one more run.
        if ok(spent)? {
            return Ok(U64::from(spent));
        }
        // Otherwise (a call that forwards 63/64 of its gas) the answer
        // lies above it; the margin is tried before bisecting.
        if ok(guess)? {
            hi = guess;
        }
    }
    // The limit returned always worked, and a limit unspent costs nothing:
    // bisecting to the last unit took some 16 more runs of a large call.
    while hi - lo > 1 && !within(lo, hi) {
        let mid = lo + (hi - lo) / 2;
        if ok(mid)? { hi = mid } else { lo = mid }
    }
    Ok(U64::from(hi))
}

fn get_transaction(
    c: &RpcCtx,
    p: &Params<'_>,
) -> RpcResult<Option<alloy::rpc::types::Transaction>> {
    let hash: B256 = p.sequence().next()?;
    let chain = c.node.chain();
    if let Some((n, i)) = chain.store.tx_location(hash)? {
        let Some(r) = chain.record(n)? else { return Ok(None) };
        let (Some(tx), Some(sender)) = (r.block.txs.get(i), r.block.senders.get(i)) else {
            return Ok(None);
        };
        return Ok(Some(rpc_tx(tx, *sender, Some((r.hash, &r.block, i)))));
    }
    Ok(c.node.pool().get(&hash).map(|p| rpc_tx(&p.tx, p.sender, None)))
}

fn tx_at(
    chain: &Chain,
    number: u64,
    index: usize,
) -> RpcResult<Option<alloy::rpc::types::Transaction>> {
    let Some(r) = chain.record(number)? else { return Ok(None) };
    let (Some(tx), Some(sender)) = (r.block.txs.get(index), r.block.senders.get(index)) else {
        return Ok(None);
    };
    Ok(Some(rpc_tx(tx, *sender, Some((r.hash, &r.block, index)))))
}

fn get_receipt(
    c: &RpcCtx,
    p: &Params<'_>,
) -> RpcResult<Option<alloy::rpc::types::TransactionReceipt>> {
    let hash: B256 = p.sequence().next()?;
    let chain = c.node.chain();
    let Some((n, i)) = chain.store.tx_location(hash)? else { return Ok(None) };
    let Some(r) = chain.record(n)? else { return Ok(None) };
    Ok(rpc_receipt(r.hash, &r.block, &r.receipts, i))
}

/// Logs matching `filter`, optionally only from blocks after `after`.
pub(super) fn logs(c: &RpcCtx, filter: &Filter, after: Option<u64>) -> RpcResult<Vec<Log>> {
    let chain = c.node.chain();
    let head = chain.head_number()?;
    let (from, to) = match filter.block_option {
        FilterBlockOption::AtBlockHash(h) => match chain.store.block_number(h)? {
            Some(n) => (n, n),
            None => return Err(err(SERVER, format!("unknown block hash {h}"))),
        },
        FilterBlockOption::Range { from_block, to_block } => {
            let resolve = |t: Option<BlockNumberOrTag>| -> RpcResult<u64> {
                Ok(resolve_tag(&chain, t.unwrap_or(BlockNumberOrTag::Latest))?.unwrap_or(head))
            };
            let (from, to) = (resolve(from_block)?, resolve(to_block)?);
            // The cap applies to the range asked for, even where it runs past the head.
            if let Some(BlockNumberOrTag::Number(asked)) = to_block
                && asked.saturating_sub(from) >= c.limits.max_log_range
            {
                return Err(range_error(c.limits.max_log_range, from, asked));
            }
            (from, to)
        }
    };
    let from = after.map_or(from, |a| from.max(a + 1));
    if from > to {
        return Ok(vec![]);
    }
    if to - from >= c.limits.max_log_range {
        return Err(range_error(c.limits.max_log_range, from, to));
    }
    let addresses: Vec<Address> = filter.address.iter().copied().collect();
    let topics: Vec<Vec<B256>> =
        filter.topics.iter().map(|t| t.iter().copied().collect()).collect();
    let blocks: Vec<u64> = match chain.store.candidate_log_blocks(&addresses, &topics, from, to)? {
        Some(set) => set.into_iter().collect(),
        None => (from..=to).collect(),
    };
    // A block's bloom rules out most blocks that lack an address or a
    // topic (topics past the first are not indexed) before its receipts
    // are read.
    let address_bloom = filter.address_bloom_filter();
    let topic_blooms = filter.topics_bloom_filter();
    let mut out = Vec::new();
    for n in blocks {
        let Some(bloom) = chain.header(n)?.map(|(_, header)| header.logs_bloom) else { continue };
        if !address_bloom.matches(bloom) || !topic_blooms.iter().all(|t| t.matches(bloom)) {
            continue;
        }
        let Some(r) = chain.record(n)? else { continue };
        for log in block_logs(r.hash, &r.block, &r.receipts, false) {
            if filter.matches_address(log.address()) && filter.matches_topics(log.topics()) {
                out.push(log);
            }
        }
        if out.len() > c.limits.max_logs {
            return Err(err(
                LIMIT_EXCEEDED,
                format!(
                    "query returned more than {} logs: narrow the block range",
                    c.limits.max_logs
                ),
            ));
        }
    }
    Ok(out)
}

fn range_error(cap: u64, from: u64, to: u64) -> jsonrpsee::types::ErrorObjectOwned {
    err(
        LIMIT_EXCEEDED,
        format!(
            "query exceeds max block range {cap}: blocks {from} to {to} span {}",
            to - from + 1
        ),
    )
}

fn sign_request(c: &RpcCtx, mut req: TransactionRequest) -> RpcResult<(TxEnvelope, Address)> {
    let from = req.from.ok_or_else(|| invalid_params("eth_sendTransaction: missing \"from\""))?;
    let signer = c.node.signer(&from).ok_or_else(|| {
        err(SERVER, format!("unknown account {from}: not a dev account of this node"))
    })?;
    req.nonce = Some(match req.nonce {
        Some(n) => n,
        None => c.node.pending_nonce(from)?,
    });
    req.chain_id = Some(c.node.chain_id());
    if req.to.is_none() {
        req.to = Some(TxKind::Create);
    }
    {
        let chain = c.node.chain();
        if req.gas.is_none() {
            let mut call = call_request(&chain, &req);
            call.gas = chain.genesis.gas_limit.min(TX_GAS_CAP);
            let spent = match run_call(&chain, None, &call, None)? {
                CallOutcome::Success { gas_spent, .. } => gas_spent,
                CallOutcome::Revert { output, .. } => return Err(reverted(&output)),
                CallOutcome::Halt { reason, .. } => {
                    return Err(err(SERVER, format!("execution halted: {reason}")));
                }
            };
            req.gas = Some((spent * 64 / 63 + 2_300).min(call.gas));
        }
        if req.gas_price.is_none() {
            let base = u128::from(next_base_fee(&chain)?);
            let tip = req.max_priority_fee_per_gas.unwrap_or(SUGGESTED_TIP);
            req.max_priority_fee_per_gas = Some(tip);
            req.max_fee_per_gas = Some(req.max_fee_per_gas.unwrap_or(2 * base + tip));
        }
    }
    let mut typed = req.build_typed_tx().map_err(|_| {
        invalid_params("eth_sendTransaction: request does not make a complete transaction")
    })?;
    let sig = signer
        .sign_transaction_sync(&mut typed)
        .map_err(|e| err(SERVER, format!("signing failed: {e}")))?;
    let tx: TxEnvelope = typed.into_signed(sig).into();
    Ok((tx, from))
}
