//! Transaction execution with revm: converting signed transactions into revm
//! environments, executing a block's worth of them over a [`StateDb`], and
//! building their receipts.

use alloy::consensus::{
    Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, Transaction, TxEnvelope,
};
use alloy::eips::Typed2718;
use alloy::primitives::{Address, B256, Bytes, Log, TxKind, U256, logs_bloom};
use revm::context::result::{EVMError, ExecutionResult};
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::context_interface::either::Either;
use revm::primitives::hardfork::SpecId;
use revm::{ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};

use crate::error::NodeError;
use crate::state::StateDb;

/// Per-transaction gas cap of the current rules (EIP-7825).
pub const TX_GAS_CAP: u64 = 1 << 24;

/// The EVM rules the node runs: revm's default, the current mainnet fork.
pub const SPEC: SpecId = SpecId::OSAKA;

/// The revm configuration for `chain_id`.
pub fn cfg_env(chain_id: u64) -> CfgEnv {
    let mut cfg = CfgEnv::new_with_spec(SPEC);
    cfg.chain_id = chain_id;
    cfg
}

/// Block environment for executing on top of a parent.
#[derive(Clone, Copy, Debug)]
pub struct BlockParams {
    /// Block number.
    pub number: u64,
    /// Unix timestamp in seconds.
    pub timestamp: u64,
    /// Block gas limit.
    pub gas_limit: u64,
    /// Base fee per gas.
    pub base_fee: u64,
    /// Fee recipient.
    pub beneficiary: Address,
    /// `prevrandao` value.
    pub prevrandao: B256,
}

impl BlockParams {
    /// The revm block environment.
    pub fn env(&self) -> BlockEnv {
        BlockEnv {
            number: U256::from(self.number),
            timestamp: U256::from(self.timestamp),
            gas_limit: self.gas_limit,
            basefee: self.base_fee,
            beneficiary: self.beneficiary,
            prevrandao: Some(self.prevrandao),
            ..Default::default()
        }
    }
}

/// The revm transaction environment of a signed transaction.
pub fn tx_env(tx: &TxEnvelope, sender: Address) -> TxEnv {
    TxEnv {
        tx_type: tx.ty(),
        caller: sender,
        gas_limit: tx.gas_limit(),
        gas_price: tx.max_fee_per_gas(),
        kind: tx.kind(),
        value: tx.value(),
        data: tx.input().clone(),
        nonce: tx.nonce(),
        chain_id: tx.chain_id(),
        access_list: tx.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: tx.max_priority_fee_per_gas(),
        blob_hashes: tx.blob_versioned_hashes().map(<[B256]>::to_vec).unwrap_or_default(),
        max_fee_per_blob_gas: tx.max_fee_per_blob_gas().unwrap_or_default(),
        authorization_list: tx
            .authorization_list()
            .map(|l| l.iter().cloned().map(Either::Left).collect())
            .unwrap_or_default(),
    }
}

/// A transaction executed into a block.
#[derive(Clone, Debug)]
pub struct ExecutedTx {
    /// The transaction.
    pub tx: TxEnvelope,
    /// Its sender.
    pub sender: Address,
    /// Its receipt, without the bloom: hashing the logs into the bloom is
    /// receipt building, done after execution ([`Self::receipt_envelope`]).
    pub receipt: Receipt<Log>,
    /// Gas it used.
    pub gas_used: u64,
}

impl ExecutedTx {
    /// The typed receipt with its logs bloom.
    pub fn receipt_envelope(&self) -> ReceiptEnvelope {
        let bloom = logs_bloom(self.receipt.logs.iter());
        ReceiptEnvelope::from_typed(
            self.tx.tx_type(),
            ReceiptWithBloom::new(self.receipt.clone(), bloom),
        )
    }
}

/// Outcome of executing candidate transactions for one block.
#[derive(Debug, Default)]
pub struct BlockExecution {
    /// Included transactions in order.
    pub included: Vec<ExecutedTx>,
    /// Hashes of transactions that could not be included, with the reason.
    pub rejected: Vec<(B256, String)>,
    /// Candidates left out because the block was full.
    pub deferred: Vec<B256>,
    /// Gas used by the block.
    pub gas_used: u64,
}

/// Executes `candidates` in order on top of `db`, filling the block up to its gas limit.
pub fn execute_block(
    db: &mut StateDb<'_>,
    chain_id: u64,
    block: &BlockParams,
    candidates: impl IntoIterator<Item = (TxEnvelope, Address)>,
) -> Result<BlockExecution, NodeError> {
    let mut evm = Context::mainnet()
        .with_db(db)
        .with_block(block.env())
        .with_cfg(cfg_env(chain_id))
        .build_mainnet();
    let mut out = BlockExecution::default();
    // Senders with a transaction left out of this block: their later nonces
    // wait for the next block too (executed now, they would fail as "nonce
    // too high" and be dropped from the pool, leaving a gap).
    let mut held = alloy::primitives::map::AddressSet::default();
    for (tx, sender) in candidates {
        let hash = *tx.tx_hash();
        if held.contains(&sender) || tx.gas_limit() > block.gas_limit.saturating_sub(out.gas_used) {
            held.insert(sender);
            out.deferred.push(hash);
            continue;
        }
        let result = match evm.transact_commit(tx_env(&tx, sender)) {
            Ok(r) => r,
            Err(EVMError::Transaction(e)) => {
                held.insert(sender);
                out.rejected.push((hash, e.to_string()));
                continue;
            }
            Err(EVMError::Database(e)) => return Err(NodeError::Store(e)),
            Err(e) => return Err(NodeError::Evm(e.to_string())),
        };
        let gas_used = result.tx_gas_used();
        out.gas_used += gas_used;
        let success = result.is_success();
        let receipt = Receipt {
            status: Eip658Value::Eip658(success),
            cumulative_gas_used: out.gas_used,
            logs: result.into_logs(),
        };
        out.included.push(ExecutedTx { tx, sender, receipt, gas_used });
    }
    Ok(out)
}

/// A call (not a transaction): what `eth_call` and `eth_estimateGas` run.
#[derive(Clone, Debug, Default)]
pub struct CallRequest {
    /// Caller (zero address if absent).
    pub from: Address,
    /// Callee; `None` creates a contract.
    pub to: Option<Address>,
    /// Gas limit.
    pub gas: u64,
    /// Gas price (0 for free calls).
    pub gas_price: u128,
    /// Value sent.
    pub value: U256,
    /// Call data.
    pub input: Bytes,
    /// Access list.
    pub access_list: alloy::eips::eip2930::AccessList,
}

/// Outcome of a call.
#[derive(Clone, Debug)]
pub enum CallOutcome {
    /// Returned normally.
    Success {
        /// Return data.
        output: Bytes,
        /// Gas used (what a receipt shows: after the refund).
        gas_used: u64,
        /// Gas spent before the refund: the least gas limit that can work,
        /// since refunds are paid back only at the end.
        gas_spent: u64,
    },
    /// REVERT with data.
    Revert {
        /// Revert data.
        output: Bytes,
        /// Gas used.
        gas_used: u64,
    },
    /// Exceptional halt.
    Halt {
        /// Why execution halted.
        reason: String,
        /// Gas used.
        gas_used: u64,
    },
}

/// Executes a call without committing anything.
pub fn call(
    db: &mut StateDb<'_>,
    chain_id: u64,
    block: &BlockParams,
    req: &CallRequest,
) -> Result<CallOutcome, NodeError> {
    let mut cfg = cfg_env(chain_id);
    cfg.disable_nonce_check = true;
    cfg.disable_base_fee = true;
    cfg.disable_block_gas_limit = true;
    cfg.disable_eip3607 = true;
    let mut evm =
        Context::mainnet().with_db(db).with_block(block.env()).with_cfg(cfg).build_mainnet();
    let tx = TxEnv {
        tx_type: if req.access_list.is_empty() { 0 } else { 1 },
        caller: req.from,
        gas_limit: req.gas,
        gas_price: req.gas_price,
        kind: req.to.map_or(TxKind::Create, TxKind::Call),
        value: req.value,
        data: req.input.clone(),
        nonce: 0,
        chain_id: Some(chain_id),
        access_list: req.access_list.clone(),
        ..Default::default()
    };
    let result = match evm.transact(tx) {
        Ok(r) => r.result,
        Err(EVMError::Transaction(e)) => return Err(NodeError::Invalid(e.to_string())),
        Err(EVMError::Database(e)) => return Err(NodeError::Store(e)),
        Err(e) => return Err(NodeError::Evm(e.to_string())),
    };
    let gas_used = result.tx_gas_used();
    let gas_spent = result.gas().total_gas_spent().max(gas_used);
    Ok(match result {
        ExecutionResult::Success { output, .. } => {
            CallOutcome::Success { output: output.into_data(), gas_used, gas_spent }
        }
        ExecutionResult::Revert { output, .. } => CallOutcome::Revert { output, gas_used },
        ExecutionResult::Halt { reason, .. } => {
            CallOutcome::Halt { reason: format!("{reason:?}"), gas_used }
        }
    })
}
