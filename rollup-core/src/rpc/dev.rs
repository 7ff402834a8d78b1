//! Dev methods for tests, under anvil's names: mining, state edits,
//! snapshots and reorgs.
//!
//! A state edit (`anvil_setBalance`, `anvil_setCode`, ...) is applied by
//! mining a block that starts with it, so every head's state root still
//! matches its state and a revert or reorg undoes the edit like any block.

use alloy::consensus::TxEnvelope;
use alloy::eips::Decodable2718;
use alloy::primitives::{Address, B256, Bytes, KECCAK256_EMPTY, U64, U256};
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::Params;

use super::error::invalid_params;
use super::{RpcCtx, RpcResult, blocking};
use crate::node::ReorgTx;
use crate::store::AccountData;

/// Most blocks one `anvil_mine` may produce.
const MAX_MINE: u64 = 10_000;

pub(super) fn register(
    m: &mut RpcModule<RpcCtx>,
) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    blocking(m, "anvil_mine", |c, p| {
        let count: Option<U64> = p.sequence().optional_next()?;
        let count = count.map_or(1, |c| c.to::<u64>());
        if count > MAX_MINE {
            return Err(invalid_params(format!(
                "anvil_mine: block count {count} exceeds {MAX_MINE}"
            )));
        }
        for _ in 0..count {
            c.node.mine_one(None, Bytes::new())?;
        }
        Ok(())
    })?;
    blocking(m, "evm_mine", |c, _| {
        c.node.mine_one(None, Bytes::new())?;
        Ok("0x0")
    })?;
    blocking(m, "anvil_setBalance", |c, p| {
        let mut seq = p.sequence();
        let address: Address = seq.next()?;
        let balance: U256 = seq.next()?;
        edit(c, address, |a| a.balance = balance, None, None)
    })?;
    blocking(m, "anvil_setNonce", |c, p| {
        let mut seq = p.sequence();
        let address: Address = seq.next()?;
        let nonce: U64 = seq.next()?;
        edit(c, address, |a| a.nonce = nonce.to(), None, None)
    })?;
    blocking(m, "anvil_setCode", |c, p| {
        let mut seq = p.sequence();
        let address: Address = seq.next()?;
        let code: Bytes = seq.next()?;
        edit(c, address, |_| {}, Some(code), None)
    })?;
    blocking(m, "anvil_setStorageAt", |c, p| {
        let mut seq = p.sequence();
        let address: Address = seq.next()?;
        let slot: U256 = seq.next()?;
        let value: B256 = seq.next()?;
        edit(c, address, |_| {}, None, Some((slot, U256::from_be_bytes(value.0))))?;
        Ok(true)
    })?;
    blocking(m, "evm_increaseTime", |c, p| {
        let seconds: U64 = p.sequence().next()?;
        Ok(U64::from(c.node.increase_time(seconds.to())))
    })?;
    blocking(m, "evm_setNextBlockTimestamp", |c, p| {
        let timestamp: U64 = p.sequence().next()?;
        c.node.set_next_block_timestamp(timestamp.to())?;
        Ok(())
    })?;
    blocking(m, "evm_snapshot", |c, _| Ok(U64::from(c.node.snapshot()?)))?;
    blocking(m, "evm_revert", |c, p| {
        let id: U64 = p.sequence().next()?;
        Ok(c.node.revert(id.to())?)
    })?;
    blocking(m, "anvil_reorg", reorg)?;
    for (alias, name) in [
        ("hardhat_mine", "anvil_mine"),
        ("hardhat_setBalance", "anvil_setBalance"),
        ("hardhat_setCode", "anvil_setCode"),
        ("hardhat_setNonce", "anvil_setNonce"),
        ("hardhat_setStorageAt", "anvil_setStorageAt"),
        ("anvil_increaseTime", "evm_increaseTime"),
        ("anvil_setNextBlockTimestamp", "evm_setNextBlockTimestamp"),
        ("anvil_snapshot", "evm_snapshot"),
        ("anvil_revert", "evm_revert"),
    ] {
        m.register_alias(alias, name)?;
    }
    Ok(())
}

fn edit(
    c: &RpcCtx,
    address: Address,
    f: impl FnOnce(&mut AccountData),
    code: Option<Bytes>,
    slot: Option<(U256, U256)>,
) -> RpcResult<()> {
    let overlay = {
        let chain = c.node.chain();
        let mut db = chain.state(None);
        let mut acc = db
            .account(address)?
            .unwrap_or(AccountData { code_hash: KECCAK256_EMPTY, ..Default::default() });
        f(&mut acc);
        db.set_account(address, acc);
        if let Some(code) = code {
            db.set_code(address, code)?;
        }
        if let Some(s) = slot {
            db.set_storage(address, [s], false);
        }
        db.overlay
    };
    c.node.mine_one(Some(overlay), Bytes::new())?;
    Ok(())
}

/// `anvil_reorg(depth, [[tx, blockOffset], ...])`: drops the last `depth`
/// blocks and mines `depth` new ones, placing each transaction (raw signed
/// hex, or a request from a dev account) in the block at its offset (0 =
/// first new block).
fn reorg(c: &RpcCtx, p: &Params<'_>) -> RpcResult<()> {
    let mut seq = p.sequence();
    let depth: u64 = seq.next::<U64>()?.to();
    let txs: Option<Vec<(serde_json::Value, u64)>> = seq.optional_next()?;
    let mut decoded = Vec::new();
    for (i, (tx, offset)) in txs.unwrap_or_default().into_iter().enumerate() {
        if offset >= depth {
            return Err(invalid_params(format!(
                "anvil_reorg: transaction {i} has block offset {offset}, beyond depth {depth}"
            )));
        }
        let bad = |e: String| invalid_params(format!("anvil_reorg: transaction {i}: {e}"));
        let tx = match tx {
            serde_json::Value::String(_) => {
                let raw: Bytes = serde_json::from_value(tx).map_err(|e| bad(e.to_string()))?;
                let tx = TxEnvelope::decode_2718_exact(&raw).map_err(|e| bad(e.to_string()))?;
                let sender = alloy::consensus::transaction::SignerRecoverable::recover_signer(&tx)
                    .map_err(|e| bad(format!("invalid signature: {e}")))?;
                ReorgTx::Signed(Box::new(tx), sender)
            }
            serde_json::Value::Object(_) => ReorgTx::Request(Box::new(
                serde_json::from_value(tx).map_err(|e| bad(e.to_string()))?,
            )),
            _ => {
                return Err(
                    bad("expected a raw transaction (hex) or a transaction request".into()),
                );
            }
        };
        decoded.push((tx, offset));
    }
    c.node.reorg(depth, &decoded)?;
    Ok(())
}
