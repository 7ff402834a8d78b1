//! The submit and confirm stages: send prepared messages (in batches where
//! the ISM takes them), then check `delivered` once the destination's reorg
//! period has passed.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256},
    providers::Provider,
    sol_types::SolCall,
};
use metalayer_contracts::{
    bindings::{Mailbox, Multicall3},
    metadata::BatchMultisigMetadata,
};
use metalayer_protocol::metadata::MerkleRootMultisigMetadata;

use crate::{
    op::{PendingOp, Reason, Stage, now_ms},
    prepare::GAS_BUFFER,
    relayer::{Context, Destination},
    sender::{Call, Mined},
};

/// Submit rounds sent and not yet settled, at most, per destination.
const ROUNDS_IN_FLIGHT: usize = 2;

/// How a group of messages is delivered in one transaction.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// The Mailbox's `processBatch`, under one checkpoint.
    ProcessBatch,
    /// Multicall3 (at this address) calling `process` for each.
    Multicall(Address),
}

/// One submit round: the calls, and the messages each delivers.
struct Round {
    calls: Vec<Call>,
    groups: Vec<Vec<PendingOp>>,
}

/// What a submit round reads of the destination's latest block.
struct LatestBlock {
    /// What the round's transactions may use together.
    gas_limit: u64,
    /// Its base fee, if the chain has one (what the round's fees start from).
    base_fee: Option<u64>,
}

/// Ids of the messages in rounds sent and not yet settled.
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<HashSet<B256>>>);

impl InFlight {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<B256>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn snapshot(&self) -> HashSet<B256> {
        self.set().clone()
    }

    /// Marks `ids` in flight until the returned guard is dropped (also if
    /// the round's task panics). A round's outcomes must be committed to
    /// the queue before its guard drops.
    fn hold(&self, ids: impl Iterator<Item = B256>) -> Held {
        let ids: Vec<B256> = ids.collect();
        self.set().extend(ids.iter().copied());
        Held { set: self.clone(), ids }
    }
}

/// Messages of one round, in flight until dropped.
struct Held {
    set: InFlight,
    ids: Vec<B256>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut set = self.set.set();
        for id in &self.ids {
            set.remove(id);
        }
    }
}

/// Batch estimates a submit round has in flight at once.
const ESTIMATES_AT_ONCE: usize = 4;

/// Confirm-queue entries looked at per pass.
const CONFIRM_BATCH: usize = 1024;

impl Context {
    /// Sends prepared messages of `domain` forever.
    ///
    /// Rounds overlap: while one round's transactions wait to be mined, the
    /// next is read and estimated (and sent; the nonce lock keeps each
    /// round's nonces consecutive). At most [`ROUNDS_IN_FLIGHT`] rounds
    /// are sent and unsettled at once, and a round never takes a message
    /// an earlier one still holds.
    pub(crate) async fn submit_loop(self: Arc<Self>, domain: u32) {
        let Some(dest) = self.destinations.get(&domain).cloned() else { return };
        let in_flight = InFlight::default();
        let mut rounds = tokio::task::JoinSet::new();
        loop {
            while rounds.try_join_next().is_some() {}
            if rounds.len() >= ROUNDS_IN_FLIGHT {
                rounds.join_next().await;
                continue;
            }
            // Taken before the queue is read: a round that settles after
            // the read has its messages left out (they are read in their
            // old stage); one that settled before is read in its new stage.
            let busy = in_flight.snapshot();
            if self.queue.len_up_to(domain, Stage::Submit, busy.len() + 1) <= busy.len() {
                tokio::time::sleep(self.interval).await;
                continue;
            }
            let latest = match self.latest_block(&dest).await {
                Ok(latest) => latest,
                Err(error) => {
                    tracing::warn!(destination = %dest.chain.name, %error, "block gas limit unknown; not sending this round");
                    tokio::time::sleep(self.interval).await;
                    continue;
                }
            };
            let size = round_size(latest.gas_limit);
            let due = match self.queue.due(domain, Stage::Submit, now_ms(), size + busy.len()) {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!(%error, "reading the submit queue failed");
                    Vec::new()
                }
            };
            let due: Vec<PendingOp> =
                due.into_iter().filter(|op| !busy.contains(&op.id)).take(size).collect();
            if due.is_empty() {
                tokio::time::sleep(self.interval).await;
                continue;
            }
            let (started, read) = (std::time::Instant::now(), due.len());
            let round = self.build_round(&dest, due, latest.gas_limit).await;
            let estimate_ms = started.elapsed().as_millis() as u64;
            if round.calls.is_empty() {
                continue;
            }
            let held = in_flight.hold(round.groups.iter().flatten().map(|op| op.id));
            let sent: usize = round.groups.iter().map(Vec::len).sum();
            let (ctx, dest) = (self.clone(), dest.clone());
            rounds.spawn(async move {
                ctx.send_round(&dest, round, latest.base_fee).await;
                drop(held);
                let ms = started.elapsed().as_millis() as u64;
                tracing::debug!(destination = %dest.chain.name, read, sent, estimate_ms, ms, "submit round done");
                ctx.update_balance(&dest).await;
            });
        }
    }

    async fn update_balance(&self, dest: &Destination) {
        if let Ok(balance) = dest.client.balance(dest.sender.address()).await {
            let wei: f64 = balance.to_string().parse().unwrap_or(f64::MAX);
            self.metrics
                .wallet_balance
                .with_label_values(&[dest.chain.name.as_str(), &dest.sender.address().to_string()])
                .set(wei);
        }
    }

    /// The gas limit (what one submit round may use in total) and base fee
    /// of the destination's latest block.
    async fn latest_block(&self, dest: &Destination) -> Result<LatestBlock, String> {
        let block = dest
            .client
            .read("eth_getBlockByNumber", |p| async move {
                p.get_block_by_number(BlockNumberOrTag::Latest).await
            })
            .await
            .map_err(|e| e.to_string())?;
        let block =
            block.ok_or_else(|| format!("{}: the node has no latest block", dest.chain.name))?;
        match block.header.gas_limit {
            0 => Err(format!("{}: the latest block has a gas limit of 0", dest.chain.name)),
            gas_limit => Ok(LatestBlock { gas_limit, base_fee: block.header.base_fee_per_gas }),
        }
    }

    /// The calls for `ops`: batchable groups as `processBatch`, the rest
    /// one by one, as many as fit one block of the destination; the rest
    /// stay queued for the next round. Messages that cannot be sent are
    /// moved (with their reason) here.
    async fn build_round(&self, dest: &Destination, ops: Vec<PendingOp>, block_gas: u64) -> Round {
        // No transaction may need more than a block holds.
        let tx_cap = self.transaction_gas_limit.min(block_gas);
        let mut groups: BTreeMap<(u32, Address), Vec<PendingOp>> = BTreeMap::new();
        let mut singles = Vec::new();
        for op in ops {
            match (op.batchable, op.ism) {
                (true, Some(ism)) if op.leaf_index.is_some() => {
                    groups.entry((op.origin, ism)).or_default().push(op);
                }
                _ => singles.push(op),
            }
        }
        let mut calls: Vec<(Call, Vec<PendingOp>)> = Vec::new();
        // Calls are built (each estimated) only while the round has room:
        // what is left stays in the submit queue for the next round.
        let full = |calls: &[(Call, Vec<PendingOp>)]| {
            calls.iter().map(|(call, _)| call.gas_limit).sum::<u64>() >= block_gas
        };
        let mut chunks: Vec<(Via, Vec<PendingOp>)> = Vec::new();
        for (_, mut group) in groups {
            if group.len() < 2 {
                singles.extend(group);
                continue;
            }
            group.sort_by_key(|op| op.leaf_index);
            chunks
                .extend(group.chunks(self.max_batch_size).map(|c| (Via::ProcessBatch, c.to_vec())));
        }
        // Messages whose ISM takes no batch share Multicall3 transactions
        // where the destination has it (all or nothing, as a batch is).
        if self.batch_delivery
            && singles.len() > 1
            && let Some(multicall) = dest.client.multicall().await
        {
            let (with, without): (Vec<PendingOp>, Vec<PendingOp>) =
                std::mem::take(&mut singles).into_iter().partition(|op| op.metadata.is_some());
            singles = without;
            for chunk in with.chunks(self.max_batch_size) {
                chunks.push((Via::Multicall(multicall), chunk.to_vec()));
            }
        }
        // Batches are estimated a few at once (the node runs them side by
        // side), wave after wave until the block is full; what is left stays
        // queued for the next round.
        let mut chunks = chunks.into_iter().peekable();
        while chunks.peek().is_some() && !full(&calls) {
            let wave: Vec<(Via, Vec<PendingOp>)> =
                chunks.by_ref().take(ESTIMATES_AT_ONCE).collect();
            let built = futures::future::join_all(
                wave.iter().map(|(via, chunk)| self.batch_calls(dest, *via, chunk, tx_cap)),
            )
            .await;
            for (batched, alone) in built {
                calls.extend(batched);
                singles.extend(alone);
            }
        }
        for op in singles {
            if full(&calls) {
                break;
            }
            let Some(metadata) = op.metadata.clone() else {
                let mut op = op;
                self.retry(&mut op, Reason::ErrorSubmitting, "prepared without metadata".into());
                self.commit(&op, Stage::Submit, "prepared without metadata");
                continue;
            };
            let data = Mailbox::processCall { metadata, message: op.message.clone() }.abi_encode();
            // Batchable messages are only simulated in prepare; one sent
            // alone is estimated now.
            let gas_limit = match op.gas_limit {
                Some(gas_limit) => gas_limit,
                None => match self
                    .estimate(dest, dest.chain.addresses.mailbox, data.clone().into())
                    .await
                {
                    Ok(estimate) if estimate <= tx_cap => estimate.saturating_add(GAS_BUFFER),
                    Ok(estimate) => {
                        let mut op = op;
                        let detail =
                            format!("needs {estimate} gas, transactions are capped at {tx_cap}");
                        self.retry(&mut op, Reason::ExceedsMaxGasLimit, detail.clone());
                        self.commit(&op, Stage::Submit, &detail);
                        continue;
                    }
                    Err(error) => {
                        let mut op = op;
                        self.retry(&mut op, Reason::ErrorEstimatingGas, error.clone());
                        self.commit(&op, Stage::Submit, &error);
                        continue;
                    }
                },
            };
            calls.push((
                Call {
                    to: dest.chain.addresses.mailbox,
                    data: data.into(),
                    gas_limit: gas_limit.min(tx_cap),
                },
                vec![op],
            ));
        }
        let calls = fill_block(calls, block_gas, |(call, _)| call.gas_limit);
        let (calls, groups) = calls.into_iter().unzip();
        Round { calls, groups }
    }

    /// Sends a round's calls and records each outcome as soon as it is known.
    async fn send_round(&self, dest: &Destination, round: Round, base_fee: Option<u64>) {
        let mut groups: Vec<Option<Vec<PendingOp>>> = round.groups.into_iter().map(Some).collect();
        dest.sender
            .send_each(round.calls, base_fee, |i, result| {
                if let Some(ops) = groups.get_mut(i).and_then(Option::take) {
                    self.record_submission(dest, result, ops);
                }
            })
            .await;
    }

    /// Calls that deliver `ops` together `via` a `processBatch` (same
    /// origin and ISM, ascending leaves) or Multicall3, each within
    /// `tx_cap` gas: a batch whose estimate fails or needs more is split in
    /// halves; what cannot be batched is returned beside the calls, to be
    /// sent alone.
    async fn batch_calls(
        &self,
        dest: &Destination,
        via: Via,
        ops: &[PendingOp],
        tx_cap: u64,
    ) -> (Vec<(Call, Vec<PendingOp>)>, Vec<PendingOp>) {
        let (mut calls, mut singles) = (Vec::new(), Vec::new());
        let mut pending = vec![ops];
        while let Some(chunk) = pending.pop() {
            if chunk.len() < 2 {
                singles.extend(chunk.iter().cloned());
                continue;
            }
            let call = match via {
                Via::ProcessBatch => self.batch_call(dest, chunk, tx_cap).await,
                Via::Multicall(multicall) => {
                    self.multicall_call(dest, multicall, chunk, tx_cap).await
                }
            };
            match call {
                Ok(call) => calls.push((call, chunk.to_vec())),
                Err(error) => {
                    tracing::debug!(destination = %dest.chain.name, %error, size = chunk.len(), "batch not possible; splitting it");
                    let (first, second) = chunk.split_at(chunk.len() / 2);
                    pending.push(second);
                    pending.push(first);
                }
            }
        }
        (calls, singles)
    }

    fn record_submission(
        &self,
        dest: &Destination,
        result: Result<Mined, crate::sender::SendError>,
        ops: Vec<PendingOp>,
    ) {
        let chain = dest.chain.name.as_str();
        let n = ops.len() as u64;
        let mut moves = Vec::with_capacity(ops.len());
        match result {
            Ok(mined) => {
                self.metrics.gas_spent.with_label_values(&[chain]).inc_by(mined.gas_used);
                self.metrics
                    .tokens_spent
                    .with_label_values(&[chain])
                    .inc_by(mined.gas_used as f64 * mined.effective_gas_price as f64);
                for mut op in ops {
                    op.gas_used = op.gas_used.saturating_add(mined.gas_used / n.max(1));
                    op.tx_hash = Some(mined.tx_hash);
                    if mined.success {
                        op.stage = Stage::Confirm;
                        op.submitted_block = Some(mined.block);
                        op.next_attempt_ms = now_ms();
                        op.reason = None;
                        op.detail = None;
                        // Confirmation reads only `delivered`, and a message
                        // that goes back to prepare builds its metadata
                        // again: the record shrinks by the metadata.
                        op.metadata = None;
                        self.metrics.operations.with_label_values(&["submitted", chain]).inc();
                        let detail =
                            format!("mined in block {} ({} in the transaction)", mined.block, n);
                        moves.push((op, Stage::Submit, detail));
                    } else {
                        let detail = format!(
                            "transaction {} reverted in block {}",
                            mined.tx_hash, mined.block
                        );
                        self.retry(&mut op, Reason::Reverted, detail.clone());
                        moves.push((op, Stage::Submit, detail));
                    }
                }
            }
            Err(error) => {
                tracing::warn!(destination = %chain, %error, "delivery transaction failed");
                for mut op in ops {
                    self.retry(&mut op, Reason::ErrorSubmitting, error.to_string());
                    moves.push((op, Stage::Submit, error.to_string()));
                }
            }
        }
        self.commit_all(&moves);
    }

    /// One `processBatch` for `ops` (same origin and ISM, ascending leaves):
    /// the newest checkpoint among their MerkleRoot metadata covers them all.
    async fn batch_call(
        &self,
        dest: &Destination,
        ops: &[PendingOp],
        tx_cap: u64,
    ) -> Result<Call, String> {
        let origin = self.origins.get(&ops[0].origin).ok_or("origin not relayed")?;
        let mut newest: Option<MerkleRootMultisigMetadata> = None;
        let mut leaves = Vec::with_capacity(ops.len());
        for op in ops {
            let metadata = op.metadata.as_ref().ok_or("prepared without metadata")?;
            let decoded =
                MerkleRootMultisigMetadata::decode(metadata).map_err(|e| e.to_string())?;
            leaves.push(op.leaf_index.ok_or("prepared without leaf index")?);
            if newest.as_ref().is_none_or(|n| decoded.signed_index > n.signed_index) {
                newest = Some(decoded);
            }
        }
        let newest = newest.ok_or("empty batch")?;
        let proof = origin
            .prover
            .read()
            .map_err(|_| "prover lock poisoned")?
            .prove_batch(&leaves, u64::from(newest.signed_index) + 1)
            .map_err(|e| e.to_string())?;
        let metadata = BatchMultisigMetadata {
            merkle_tree_hook: newest.merkle_tree_hook,
            signed_index: newest.signed_index,
            signed_message_id: newest.signed_message_id,
            proof,
            signatures: newest.signatures,
        };
        let data = Mailbox::processBatchCall {
            metadata: metadata.encode().into(),
            messages: ops.iter().map(|op| op.message.clone()).collect(),
        }
        .abi_encode();
        self.group_call(dest, dest.chain.addresses.mailbox, data, ops.len(), tx_cap).await
    }

    /// A call delivering `n` messages at once: estimated, with a tenth and
    /// [`GAS_BUFFER`] added, refused if that exceeds `tx_cap`.
    async fn group_call(
        &self,
        dest: &Destination,
        to: Address,
        data: Vec<u8>,
        n: usize,
        tx_cap: u64,
    ) -> Result<Call, String> {
        let estimate = self.estimate(dest, to, data.clone().into()).await?;
        let gas_limit = estimate.saturating_mul(11) / 10 + GAS_BUFFER;
        if gas_limit > tx_cap {
            return Err(format!(
                "{n} deliveries need {gas_limit} gas, more than the {tx_cap} a transaction may use"
            ));
        }
        Ok(Call { to, data: data.into(), gas_limit })
    }

    /// One Multicall3 `aggregate3` of `ops`' `process` calls, none allowed
    /// to fail: it delivers all of them or reverts. The Mailbox records
    /// Multicall3 as their processor.
    async fn multicall_call(
        &self,
        dest: &Destination,
        multicall: Address,
        ops: &[PendingOp],
        tx_cap: u64,
    ) -> Result<Call, String> {
        let mailbox = dest.chain.addresses.mailbox;
        let calls = ops
            .iter()
            .map(|op| {
                let metadata = op.metadata.clone().ok_or("prepared without metadata")?;
                let process = Mailbox::processCall { metadata, message: op.message.clone() };
                Ok(Multicall3::Call3 {
                    target: mailbox,
                    allowFailure: false,
                    callData: process.abi_encode().into(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let data = Multicall3::aggregate3Call { calls }.abi_encode();
        self.group_call(dest, multicall, data, ops.len(), tx_cap).await
    }

    /// Confirms sent messages of `domain` forever.
    pub(crate) async fn confirm_loop(&self, domain: u32) {
        let Some(dest) = self.destinations.get(&domain).cloned() else { return };
        loop {
            if let Err(error) = self.confirm_pass(&dest).await {
                tracing::warn!(destination = %dest.chain.name, %error, "confirm pass failed");
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    async fn confirm_pass(&self, dest: &Destination) -> Result<(), String> {
        let due = self
            .queue
            .due(dest.chain.domain, Stage::Confirm, now_ms(), CONFIRM_BATCH)
            .map_err(|e| e.to_string())?;
        if due.is_empty() {
            return Ok(());
        }
        let final_block =
            dest.client.final_block(dest.chain.reorg_period).await.map_err(|e| e.to_string())?;
        let ready: Vec<PendingOp> =
            due.into_iter().filter(|op| op.submitted_block.unwrap_or(0) <= final_block).collect();
        let mailbox = dest.chain.addresses.mailbox;
        // In JSON-RPC batches: one request per hundred confirmations.
        let calls: Vec<_> = ready.iter().map(|op| Mailbox::deliveredCall { id: op.id }).collect();
        let checks = dest.client.call_batch(mailbox, &calls, final_block).await;
        let mut moves = Vec::with_capacity(ready.len());
        for (mut op, delivered) in ready.into_iter().zip(checks) {
            match delivered {
                Ok(true) => {
                    op.stage = Stage::Delivered;
                    op.next_attempt_ms = 0;
                    // Kept only while it may be needed again.
                    op.metadata = None;
                    let origin = self
                        .origins
                        .get(&op.origin)
                        .map_or_else(|| op.origin.to_string(), |o| o.chain.name.clone());
                    self.metrics
                        .messages_processed
                        .with_label_values(&[origin.as_str(), dest.chain.name.as_str()])
                        .inc();
                    self.metrics
                        .operations
                        .with_label_values(&["confirmed", &dest.chain.name])
                        .inc();
                    let gauge =
                        self.metrics.last_nonce.with_label_values(&["message_processed", &origin]);
                    if gauge.get() < i64::from(op.nonce) {
                        gauge.set(i64::from(op.nonce));
                    }
                    let detail = format!("delivered as of final block {final_block}");
                    moves.push((op, Stage::Confirm, detail));
                }
                Ok(false) => {
                    let detail = format!(
                        "not delivered at final block {final_block}: reverted or reorged out"
                    );
                    self.retry(&mut op, Reason::RevertedOrReorged, detail.clone());
                    moves.push((op, Stage::Confirm, detail));
                }
                Err(error) => {
                    tracing::debug!(id = %op.id, %error, "delivery check failed; will retry")
                }
            }
        }
        self.commit_all(&moves);
        Ok(())
    }
}

/// The least gas one delivery can cost: the base transaction cost plus a
/// fresh replay record (22.1k) is already above it.
const MIN_DELIVERY_GAS: u64 = 20_000;
/// The most messages one submit round reads.
pub(crate) const MAX_ROUND: usize = 4096;

/// How many due messages one submit round reads: as many as could fit in a
/// block of `block_gas` (what does not fit stays queued, unread by the round).
pub(crate) fn round_size(block_gas: u64) -> usize {
    usize::try_from(block_gas / MIN_DELIVERY_GAS).unwrap_or(MAX_ROUND).clamp(1, MAX_ROUND)
}

/// The calls of one submit round: in order, each that still fits in
/// `block_gas` with those taken before it (the first always goes: no call
/// needs more than a block, see the callers); the rest wait for a later round.
pub(crate) fn fill_block<T>(items: Vec<T>, block_gas: u64, gas: impl Fn(&T) -> u64) -> Vec<T> {
    let mut used = 0u64;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let need = gas(&item);
        if out.is_empty() || used.saturating_add(need) <= block_gas {
            used = used.saturating_add(need);
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{fill_block, round_size};

    #[test]
    fn a_round_reads_what_a_block_could_hold() {
        assert_eq!(round_size(30_000_000), 1_500);
        assert_eq!(round_size(10_000), 1, "a tiny block still gets one message");
        assert_eq!(round_size(u64::MAX), 4_096);
    }

    #[test]
    fn a_round_never_needs_more_gas_than_a_block() {
        let gas = |g: &u64| *g;
        // 256 single deliveries of 170k gas against a 30M block: 176 fit.
        let round = fill_block(vec![170_000u64; 256], 30_000_000, gas);
        assert_eq!(round.len(), 176);
        assert!(round.iter().sum::<u64>() <= 30_000_000);
        // A call that does not fit is skipped; smaller ones after it still go.
        assert_eq!(fill_block(vec![600, 500, 300, 100], 1_000, gas), vec![600, 300, 100]);
        // The first call always goes (callers cap each call at a block).
        assert_eq!(fill_block(vec![1_000, 1], 1_000, gas), vec![1_000]);
        assert!(fill_block(Vec::<u64>::new(), 1_000, gas).is_empty());
    }
}
