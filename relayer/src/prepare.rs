//! The prepare stage: is the message still to deliver, is it paid for, what
//! metadata does its ISM want, and would the delivery succeed.

use std::time::Instant;

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, Bytes},
    providers::Provider,
    rpc::types::TransactionRequest,
    sol_types::SolCall,
};
use futures::StreamExt;
use metalayer_agent::chain::ChainError;
use metalayer_contracts::bindings::{Mailbox, StaticMerkleRootMultisigIsm};
use metalayer_protocol::{Message, bytes32_to_address};

use crate::{
    gas_policy::{GasPolicy, evaluate, rule_for},
    metadata::{IsmContext, MERKLE_ROOT_MULTISIG, PassCache},
    op::{PendingOp, Reason, Stage, now_ms},
    relayer::{Context, Destination},
};

/// Gas added to the estimate of a single delivery, as Hyperlane's relayer does.
pub const GAS_BUFFER: u64 = 75_000;
/// Messages prepared at once per destination.
const PREPARE_CONCURRENCY: usize = 16;
/// Messages taken from the prepare queue per pass.
const PREPARE_BATCH: usize = 256;

/// What a failed attempt was.
struct Failure {
    reason: Reason,
    detail: String,
}

fn fail(reason: Reason, detail: impl std::fmt::Display) -> Failure {
    Failure { reason, detail: detail.to_string() }
}

impl Context {
    /// Prepares due messages of `domain` forever.
    pub(crate) async fn prepare_loop(&self, domain: u32) {
        let Some(dest) = self.destinations.get(&domain).cloned() else { return };
        loop {
            let worked = match self.prepare_pass(&dest).await {
                Ok(n) => n > 0,
                Err(error) => {
                    tracing::warn!(destination = %dest.chain.name, %error, "prepare pass failed");
                    false
                }
            };
            if !worked {
                tokio::time::sleep(self.interval).await;
            }
        }
    }

    /// One pass: every due message, a bounded number at once.
    async fn prepare_pass(&self, dest: &Destination) -> Result<usize, String> {
        let backlog = self.queue.len_up_to(
            dest.chain.domain,
            crate::op::Stage::Submit,
            crate::deliver::MAX_ROUND,
        );
        // The submit stage reads at most a block's worth per round; more
        // prepared than a few rounds would only grow stale.
        if backlog >= crate::deliver::MAX_ROUND {
            return Ok(0);
        }
        let due = self
            .queue
            .due(dest.chain.domain, Stage::Prepare, now_ms(), PREPARE_BATCH)
            .map_err(|e| e.to_string())?;
        if due.is_empty() {
            return Ok(0);
        }
        let started = Instant::now();
        let tip = dest.client.block_number().await.map_err(|e| e.to_string())?;
        let n = due.len();
        // Results are committed together at the end of the pass, so the
        // submit stage sees a pass's messages at once and can batch them.
        let cache = PassCache::with_ism(self.ism_cache(dest.chain.domain));
        let cache = &cache;
        // Whether each is delivered, read for the whole pass in JSON-RPC
        // batches (`call_batch` already reads again alone any call a batch
        // left unanswered).
        let checks: Vec<_> = due.iter().map(|op| Mailbox::deliveredCall { id: op.id }).collect();
        let known = dest.client.call_batch(dest.chain.addresses.mailbox, &checks, tip).await;
        let check_ms = started.elapsed().as_millis() as u64;
        let results: Vec<(PendingOp, String)> = futures::stream::iter(due.into_iter().zip(known))
            .map(|(op, delivered)| self.prepare_one(dest, op, delivered, tip, cache))
            .buffer_unordered(PREPARE_CONCURRENCY)
            .collect()
            .await;
        let moves: Vec<_> =
            results.into_iter().map(|(op, detail)| (op, Stage::Prepare, detail)).collect();
        self.commit_all(&moves);
        let ms = started.elapsed().as_millis() as u64;
        tracing::debug!(destination = %dest.chain.name, messages = n, check_ms, ms, "prepare pass done");
        Ok(n)
    }

    async fn prepare_one(
        &self,
        dest: &Destination,
        mut op: PendingOp,
        delivered: Result<bool, ChainError>,
        tip: u64,
        cache: &PassCache,
    ) -> (PendingOp, String) {
        let Some(message) = op.decoded() else {
            self.retry(
                &mut op,
                Reason::ErrorBuildingMetadata,
                "stored message does not decode".into(),
            );
            return (op, "stored message does not decode".into());
        };
        let chain = dest.chain.name.clone();
        match self.try_prepare(dest, &mut op, &message, delivered, tip, cache).await {
            Ok(Prepared::Delivered) => {
                op.stage = Stage::Confirm;
                op.submitted_block = Some(op.submitted_block.unwrap_or(tip));
                op.next_attempt_ms = now_ms();
                (op, "already delivered; confirming".into())
            }
            Ok(Prepared::Ready) => {
                op.stage = Stage::Submit;
                op.next_attempt_ms = 0;
                op.reason = None;
                op.detail = None;
                self.metrics.operations.with_label_values(&["prepared", &chain]).inc();
                (op, "prepared: metadata built and simulated".into())
            }
            Err(Failure { reason: Reason::RecipientNotContract, detail }) => {
                op.stage = Stage::Dropped;
                op.reason = Some(Reason::RecipientNotContract);
                op.detail = Some(detail.clone());
                op.next_attempt_ms = 0;
                self.metrics.operations.with_label_values(&["dropped", &chain]).inc();
                (op, detail)
            }
            Err(Failure { reason, detail }) => {
                tracing::debug!(id = %op.id, nonce = op.nonce, ?reason, %detail, "not ready");
                self.retry(&mut op, reason, detail.clone());
                (op, detail)
            }
        }
    }

    async fn try_prepare(
        &self,
        dest: &Destination,
        op: &mut PendingOp,
        message: &Message,
        delivered: Result<bool, ChainError>,
        tip: u64,
        cache: &PassCache,
    ) -> Result<Prepared, Failure> {
        let mailbox = dest.chain.addresses.mailbox;
        if delivered.map_err(|e| fail(Reason::ErrorCheckingDeliveryStatus, e))? {
            return Ok(Prepared::Delivered);
        }
        let recipient = bytes32_to_address(message.recipient).ok_or_else(|| {
            fail(
                Reason::RecipientNotContract,
                format!("recipient {} is not an address", message.recipient),
            )
        })?;
        let has_code = match cache.ism.recipient_has_code.get(&recipient) {
            Some(known) => known,
            None => {
                let code = dest
                    .client
                    .code(recipient)
                    .await
                    .map_err(|e| fail(Reason::ErrorCheckingIfRecipientIsContract, e))?;
                if !code.is_empty() {
                    cache.ism.recipient_has_code.put(recipient, true);
                }
                !code.is_empty()
            }
        };
        if !has_code {
            return Err(fail(
                Reason::RecipientNotContract,
                format!("recipient {recipient} has no code"),
            ));
        }
        let payment = self
            .store
            .gas_payment(message.origin, op.id, message.destination)
            .map_err(|e| fail(Reason::ErrorCheckingGasRequirement, e))?;
        let policy = rule_for(&self.gas_rules, op.id, message).map(|r| &r.policy);
        evaluate(policy, payment, op.gas_used, 0).map_err(|r| fail(r.reason, r.detail))?;
        let origin = self.origins.get(&message.origin).ok_or_else(|| {
            fail(Reason::ErrorBuildingMetadata, format!("origin {} is not relayed", message.origin))
        })?;
        let leaf_index = match op.leaf_index {
            Some(i) => i,
            None => self
                .store
                .leaf_index(message.origin, op.id)
                .map_err(|e| fail(Reason::ErrorBuildingMetadata, e))?
                .ok_or_else(|| {
                    fail(
                        Reason::CouldNotFetchMetadata,
                        "the message's tree insertion is not indexed yet",
                    )
                })?,
        };
        op.leaf_index = Some(leaf_index);
        let ism = match cache.ism.recipient_ism.get(&recipient) {
            Some(ism) => ism,
            None => {
                let ism = dest
                    .client
                    .call(mailbox, &Mailbox::recipientIsmCall { recipient }, tip)
                    .await
                    .map_err(|e| fail(Reason::ErrorFetchingIsmAddress, e))?;
                cache.ism.recipient_ism.put(recipient, ism);
                ism
            }
        };
        let ctx = IsmContext {
            destination: &dest.client,
            block: tip,
            origin,
            leaf_index,
            metrics: &self.metrics,
            cache,
        };
        let started = Instant::now();
        let built = ctx.build(ism, message, 0).await;
        let labels = [
            origin.chain.name.as_str(),
            dest.chain.name.as_str(),
            if built.is_ok() { "ok" } else { "failed" },
        ];
        self.metrics
            .metadata_build
            .with_label_values(&labels)
            .observe(started.elapsed().as_secs_f64());
        let metadata = built.map_err(|e| fail(e.reason(), e))?;
        op.batchable = self.batch_delivery && self.takes_batches(&ctx, dest, ism).await;
        // A message delivered with others (a batch, or a Multicall3
        // transaction where the ISM takes no batch) under a policy that
        // does not weigh the estimate is simulated with them: the submit
        // stage estimates each group whole (one execution for many messages,
        // where one each here would cost as much as the deliveries), a group
        // that fails is split in halves until the failing message is alone,
        // and a message sent alone is estimated then, which records why it
        // fails.
        let shared =
            op.batchable || (self.batch_delivery && dest.client.multicall().await.is_some());
        let needs_estimate = !shared || matches!(policy, Some(GasPolicy::OnChainFeeQuoting { .. }));
        let gas_limit = if needs_estimate {
            let process = Mailbox::processCall {
                metadata: metadata.clone().into(),
                message: message.encode().into(),
            };
            let estimate = self
                .estimate(dest, mailbox, process.abi_encode().into())
                .await
                .map_err(|e| fail(Reason::ErrorEstimatingGas, e))?;
            let limit = evaluate(policy, payment, op.gas_used, estimate)
                .map_err(|r| fail(r.reason, r.detail))?;
            if limit > self.transaction_gas_limit {
                return Err(fail(
                    Reason::ExceedsMaxGasLimit,
                    format!(
                        "needs {limit} gas, transactions are capped at {}",
                        self.transaction_gas_limit
                    ),
                ));
            }
            Some(limit.saturating_add(GAS_BUFFER).min(self.transaction_gas_limit))
        } else {
            None
        };
        op.metadata = Some(metadata.into());
        op.gas_limit = gas_limit;
        op.ism = Some(ism);
        Ok(Prepared::Ready)
    }

    /// `eth_estimateGas` of a call from our signer.
    pub(crate) async fn estimate(
        &self,
        dest: &Destination,
        to: Address,
        data: Bytes,
    ) -> Result<u64, String> {
        let tx = TransactionRequest::default()
            .with_from(dest.sender.address())
            .with_to(to)
            .with_input(data);
        dest.client
            .read("eth_estimateGas", |p| {
                let tx = tx.clone();
                async move { p.estimate_gas(tx).await }
            })
            .await
            .map_err(|e| e.to_string())
    }

    /// Whether `ism` is a MerkleRoot multisig ISM whose code dispatches
    /// `verifyBatch` (a `PUSH4` of its selector), cached per ISM.
    async fn takes_batches(&self, ctx: &IsmContext<'_>, dest: &Destination, ism: Address) -> bool {
        let key = (dest.chain.domain, ism);
        if let Some(known) = self.batch_isms.lock().ok().and_then(|m| m.get(&key).copied()) {
            return known;
        }
        let answer = match ctx.module_type(ism).await {
            Ok(MERKLE_ROOT_MULTISIG) => match dest.client.code(ism).await {
                Ok(code) => {
                    let selector = StaticMerkleRootMultisigIsm::verifyBatchCall::SELECTOR;
                    code.windows(5).any(|w| w[0] == 0x63 && w[1..] == selector)
                }
                Err(_) => return false,
            },
            Ok(_) => false,
            Err(_) => return false,
        };
        if let Ok(mut m) = self.batch_isms.lock() {
            m.insert(key, answer);
        }
        answer
    }
}

enum Prepared {
    Delivered,
    Ready,
}
