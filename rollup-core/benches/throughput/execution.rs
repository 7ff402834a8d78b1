//! Execution throughput in-process on the same signed transactions: bare
//! revm over an in-memory database, against the node's executor over sled
//! state, and the node's whole block building (execution, state root, sled
//! commit and flush).

use std::time::{Duration, Instant};

use alloy::primitives::{Address, Bytes};
use metalayer_rollup::chain::Chain;
use metalayer_rollup::executor::{BlockParams, cfg_env, tx_env};
use metalayer_rollup::genesis::Genesis;
use revm::context::Context;
use revm::database::{CacheDB, EmptyDB};
use revm::state::AccountInfo;
use revm::{ExecuteCommitEvm, MainBuilder, MainContext};

use crate::workload::{CHAIN_ID, SignedTx, Workload};

/// Transactions per block when the node builds blocks in-process.
const BLOCK_TXS: usize = 200;

/// Figures of one workload phase.
#[derive(Clone, Copy)]
pub(crate) struct ExecFigures {
    /// Transactions in the phase.
    pub(crate) txs: usize,
    /// Bare revm, in-memory database.
    pub(crate) bare_secs: f64,
    /// The node's executor over sled state (execution only).
    pub(crate) node_exec_secs: f64,
    /// The node's block building: execution, state root, commit.
    pub(crate) node_block_secs: f64,
    /// Time spent on state roots.
    pub(crate) state_root_secs: f64,
    /// Blocks built.
    pub(crate) blocks: usize,
    /// Accounts in the state at the end.
    pub(crate) accounts: usize,
}

/// Interleaves per-sender groups round-robin, keeping each sender's nonce order.
fn interleave(groups: &[Vec<SignedTx>]) -> Vec<SignedTx> {
    let longest = groups.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest).flat_map(|i| groups.iter().filter_map(move |g| g.get(i).cloned())).collect()
}

fn block(number: u64) -> BlockParams {
    BlockParams {
        number,
        timestamp: 1_700_000_000 + number,
        gas_limit: 30_000_000,
        base_fee: 1_000_000_000,
        beneficiary: Address::ZERO,
        prevrandao: Default::default(),
    }
}

fn bare_revm(w: &Workload) -> Result<(Duration, Duration), String> {
    let mut db = CacheDB::new(EmptyDB::default());
    let genesis = Genesis::default();
    for s in genesis.dev_signers().map_err(|e| e.to_string())? {
        db.insert_account_info(
            s.address(),
            AccountInfo { balance: genesis.dev_balance, ..Default::default() },
        );
    }
    let mut evm = Context::mainnet()
        .with_db(db)
        .with_cfg(cfg_env(CHAIN_ID))
        .with_block(block(1).env())
        .build_mainnet();
    let mut run = |txs: &[SignedTx]| -> Result<Duration, String> {
        let started = Instant::now();
        for (tx, sender) in txs {
            let r =
                evm.transact_commit(tx_env(tx, *sender)).map_err(|e| format!("bare revm: {e}"))?;
            if !r.is_success() {
                return Err(format!("bare revm: {} failed: {r:?}", tx.tx_hash()));
            }
        }
        Ok(started.elapsed())
    };
    run(&w.setup)?;
    Ok((run(&interleave(&w.transfers))?, run(&interleave(&w.dispatches))?))
}

fn node_blocks(
    chain: &mut Chain,
    txs: &[SignedTx],
    figures: &mut ExecFigures,
) -> Result<(), String> {
    let started = Instant::now();
    for chunk in txs.chunks(BLOCK_TXS) {
        let mined = chain.mine(0, Bytes::new(), None, chunk.to_vec()).map_err(|e| e.to_string())?;
        if mined.block.txs.len() != chunk.len() {
            return Err(format!(
                "node: block {} took {} of {} txs",
                mined.block.header.number,
                mined.block.txs.len(),
                chunk.len()
            ));
        }
        figures.node_exec_secs += mined.execution_secs;
        figures.state_root_secs += mined.state_root_secs;
        figures.blocks += 1;
    }
    figures.node_block_secs += started.elapsed().as_secs_f64();
    Ok(())
}

/// Repetitions of the in-process runs; each figure is the best one, as the
/// machine is shared and noisy.
const RUNS: usize = 3;

fn best(a: &mut ExecFigures, b: ExecFigures) {
    a.bare_secs = a.bare_secs.min(b.bare_secs);
    a.node_exec_secs = a.node_exec_secs.min(b.node_exec_secs);
    a.node_block_secs = a.node_block_secs.min(b.node_block_secs);
    a.state_root_secs = a.state_root_secs.min(b.state_root_secs);
    a.blocks = b.blocks;
    a.accounts = b.accounts;
}

fn run_once(w: &Workload) -> Result<(ExecFigures, ExecFigures), String> {
    let (bare_t, bare_d) = bare_revm(w)?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut chain = Chain::open(dir.path(), Genesis::default()).map_err(|e| e.to_string())?;
    chain.mine(0, Bytes::new(), None, w.setup.clone()).map_err(|e| e.to_string())?;
    let empty = |txs: usize, bare: Duration| ExecFigures {
        txs,
        bare_secs: bare.as_secs_f64(),
        node_exec_secs: 0.0,
        node_block_secs: 0.0,
        state_root_secs: 0.0,
        blocks: 0,
        accounts: 0,
    };
    let transfers = interleave(&w.transfers);
    let dispatches = interleave(&w.dispatches);
    let mut ft = empty(transfers.len(), bare_t);
    let mut fd = empty(dispatches.len(), bare_d);
    node_blocks(&mut chain, &transfers, &mut ft)?;
    ft.accounts = chain.account_count();
    node_blocks(&mut chain, &dispatches, &mut fd)?;
    fd.accounts = chain.account_count();
    Ok((ft, fd))
}

/// Runs both phases `RUNS` times; returns the best (transfers, dispatches) figures.
pub(crate) fn run(w: &Workload) -> Result<(ExecFigures, ExecFigures), String> {
    let (mut t, mut d) = run_once(w)?;
    for _ in 1..RUNS {
        let (t2, d2) = run_once(w)?;
        best(&mut t, t2);
        best(&mut d, d2);
    }
    Ok((t, d))
}
