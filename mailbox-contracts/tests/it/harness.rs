//! A revm chain that runs the contracts' real bytecode: deploy, transact, read.

use alloy::primitives::{Address, Bytes, Log, U256};
use alloy::sol_types::{SolCall, SolError};
use revm::context::result::ExecutionResult;
use revm::context::{Context, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{MainnetContext, MainnetEvm};
use revm::primitives::TxKind;
use revm::state::AccountInfo;
use revm::{ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};

/// The outcome of one committed transaction.
#[derive(Debug, Clone)]
pub(crate) struct Receipt {
    /// Whether it succeeded.
    pub(crate) success: bool,
    /// Whole-transaction gas, the 21k base included.
    pub(crate) gas_used: u64,
    /// Logs (empty when it reverted).
    pub(crate) logs: Vec<Log>,
    /// Return or revert data.
    pub(crate) output: Bytes,
    /// Address created by a CREATE transaction.
    pub(crate) created: Option<Address>,
}

impl Receipt {
    /// Panics with the decoded revert reason unless the transaction succeeded.
    #[track_caller]
    pub(crate) fn ok(self) -> Self {
        assert!(self.success, "transaction reverted: {}", describe_revert(&self.output));
        self
    }

    /// True if it reverted with the custom error `E`.
    pub(crate) fn reverted_with<E: SolError>(&self) -> bool {
        !self.success && self.output.len() >= 4 && self.output[..4] == E::SELECTOR
    }

    /// The `Error(string)` message it reverted with, if any.
    pub(crate) fn revert_string(&self) -> Option<String> {
        if self.success { None } else { revert_string(&self.output) }
    }
}

/// `Error(string)` decoded from revert data.
pub(crate) fn revert_string(output: &[u8]) -> Option<String> {
    alloy::sol_types::Revert::abi_decode(output).ok().map(|r| r.reason)
}

/// Revert data for humans: the string if there is one, else hex.
pub(crate) fn describe_revert(output: &[u8]) -> String {
    revert_string(output).unwrap_or_else(|| format!("0x{}", alloy::hex::encode(output)))
}

/// Each crate that includes this file names the inspector its chain runs
/// under, as `ChainInspector` at its root: a no-op one for the tests and the
/// gas bench, the gas profiler for `examples/gas_profile`.
type Evm = MainnetEvm<MainnetContext<CacheDB<EmptyDB>>, crate::ChainInspector>;

/// One chain: a revm instance with an in-memory state that persists across transactions.
pub(crate) struct Chain {
    evm: Evm,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain {
    /// An empty chain at block 1 with a zero base fee and nonce checks off.
    pub(crate) fn new() -> Self {
        let evm = Context::mainnet()
            .with_db(CacheDB::new(EmptyDB::default()))
            .modify_block_chained(|b| {
                b.number = U256::from(1);
                b.basefee = 0;
                b.gas_limit = 100_000_000;
            })
            .modify_cfg_chained(|c| c.disable_nonce_check = true)
            .build_mainnet_with_inspector(crate::ChainInspector::default());
        Self { evm }
    }

    /// Gives `who` a balance of `wei`.
    pub(crate) fn fund(&mut self, who: Address, wei: U256) {
        let info = AccountInfo { balance: wei, ..Default::default() };
        self.evm.ctx.journaled_state.database.insert_account_info(who, info);
    }

    /// Moves to the next block.
    pub(crate) fn next_block(&mut self) {
        self.evm.ctx.block.number += U256::from(1);
    }

    /// Current block number.
    pub(crate) fn block_number(&self) -> u64 {
        self.evm.ctx.block.number.to::<u64>()
    }

    fn tx(from: Address, kind: TxKind, data: Bytes, value: U256) -> TxEnv {
        TxEnv::builder().caller(from).kind(kind).data(data).value(value).gas_price(0).build_fill()
    }

    fn receipt(result: ExecutionResult) -> Receipt {
        let gas_used = result.tx_gas_used();
        let created = result.created_address();
        match result {
            ExecutionResult::Success { logs, output, .. } => {
                Receipt { success: true, gas_used, logs, output: output.into_data(), created }
            }
            ExecutionResult::Revert { output, .. } => {
                Receipt { success: false, gas_used, logs: vec![], output, created }
            }
            ExecutionResult::Halt { reason, .. } => Receipt {
                success: false,
                gas_used,
                logs: vec![],
                output: Bytes::from(format!("halt: {reason:?}").into_bytes()),
                created,
            },
        }
    }

    /// Runs and commits a transaction.
    pub(crate) fn send(&mut self, from: Address, to: Address, data: Bytes, value: U256) -> Receipt {
        let result = self
            .evm
            .transact_commit(Self::tx(from, TxKind::Call(to), data, value))
            .expect("the transaction is valid");
        Self::receipt(result)
    }

    /// Runs and commits a transaction under a fresh inspector and returns
    /// the inspector with the receipt (the gas profiler's entry point).
    #[allow(dead_code)]
    pub(crate) fn inspect(
        &mut self,
        from: Address,
        to: Address,
        data: Bytes,
    ) -> (Receipt, crate::ChainInspector) {
        use revm::InspectCommitEvm;
        self.evm.inspector = crate::ChainInspector::default();
        let result = self
            .evm
            .inspect_tx_commit(Self::tx(from, TxKind::Call(to), data, U256::ZERO))
            .expect("the transaction is valid");
        (Self::receipt(result), std::mem::take(&mut self.evm.inspector))
    }

    /// Runs and commits a typed call.
    pub(crate) fn send_call<C: SolCall>(
        &mut self,
        from: Address,
        to: Address,
        call: &C,
    ) -> Receipt {
        self.send(from, to, call.abi_encode().into(), U256::ZERO)
    }

    /// Deploys `code` (creation code with constructor arguments) and returns its address.
    #[track_caller]
    pub(crate) fn deploy(&mut self, from: Address, code: Bytes) -> Address {
        let result = self
            .evm
            .transact_commit(Self::tx(from, TxKind::Create, code, U256::ZERO))
            .expect("the transaction is valid");
        let receipt = Self::receipt(result).ok();
        receipt.created.expect("a CREATE transaction creates an address")
    }

    /// Sends a CREATE transaction of `code` and returns its receipt, reverted or not.
    pub(crate) fn try_deploy(&mut self, from: Address, code: Bytes) -> Receipt {
        let result = self
            .evm
            .transact_commit(Self::tx(from, TxKind::Create, code, U256::ZERO))
            .expect("the transaction is valid");
        Self::receipt(result)
    }

    /// Runs a call without committing it and returns the raw receipt.
    pub(crate) fn simulate(&mut self, from: Address, to: Address, data: Bytes) -> Receipt {
        let out = self
            .evm
            .transact(Self::tx(from, TxKind::Call(to), data, U256::ZERO))
            .expect("the transaction is valid");
        Self::receipt(out.result)
    }

    /// Reads a view function.
    #[track_caller]
    pub(crate) fn view<C: SolCall>(&mut self, to: Address, call: &C) -> C::Return {
        let receipt = self.simulate(Address::ZERO, to, call.abi_encode().into()).ok();
        C::abi_decode_returns(&receipt.output).expect("the view returns its declared type")
    }

    /// Balance of `who`.
    pub(crate) fn balance(&mut self, who: Address) -> U256 {
        self.evm
            .ctx
            .journaled_state
            .database
            .load_account(who)
            .map(|a| a.info.balance)
            .unwrap_or_default()
    }
}
