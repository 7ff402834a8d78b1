//! Stored blocks, transactions and receipts to their JSON-RPC shapes.

use alloy::consensus::transaction::Recovered;
use alloy::consensus::{ReceiptEnvelope, Transaction as _, TxEnvelope};
use alloy::eips::eip4895::Withdrawals;
use alloy::primitives::{Address, B256, U256};
use alloy::rpc::types::{Block, BlockTransactions, Header, Log, Transaction, TransactionReceipt};
use alloy_rlp::Encodable;

use crate::store::StoredBlock;

/// A transaction as `eth_getTransactionByHash` shows it.
pub(super) fn rpc_tx(
    tx: &TxEnvelope,
    sender: Address,
    block: Option<(B256, &StoredBlock, usize)>,
) -> Transaction {
    let (block_hash, block_number, index, base_fee, ts) = match block {
        Some((h, b, i)) => (
            Some(h),
            Some(b.header.number),
            Some(i as u64),
            b.header.base_fee_per_gas,
            Some(b.header.timestamp),
        ),
        None => (None, None, None, None, None),
    };
    Transaction {
        inner: Recovered::new_unchecked(tx.clone(), sender),
        block_hash,
        block_number,
        transaction_index: index,
        effective_gas_price: block.map(|_| tx.effective_gas_price(base_fee)),
        block_timestamp: ts,
    }
}

/// A block with transaction hashes or full transactions.
pub(super) fn rpc_block(hash: B256, block: &StoredBlock, full: bool) -> Block {
    let transactions = if full {
        BlockTransactions::Full(
            block
                .txs
                .iter()
                .zip(&block.senders)
                .enumerate()
                .map(|(i, (tx, s))| rpc_tx(tx, *s, Some((hash, block, i))))
                .collect(),
        )
    } else {
        BlockTransactions::Hashes(block.txs.iter().map(|t| *t.tx_hash()).collect())
    };
    let size = block.header.length() + block.txs.iter().map(Encodable::length).sum::<usize>() + 3;
    Block {
        header: Header {
            hash,
            inner: block.header.clone(),
            total_difficulty: Some(U256::ZERO),
            size: Some(U256::from(size)),
        },
        uncles: vec![],
        transactions,
        withdrawals: Some(Withdrawals::default()),
    }
}

/// The logs of a block's receipts with their positions filled in.
pub(super) fn block_logs(
    hash: B256,
    block: &StoredBlock,
    receipts: &[ReceiptEnvelope],
    removed: bool,
) -> Vec<Log> {
    let mut out = Vec::new();
    let mut log_index = 0u64;
    for (i, r) in receipts.iter().enumerate() {
        for log in r.logs() {
            out.push(Log {
                inner: log.clone(),
                block_hash: Some(hash),
                block_number: Some(block.header.number),
                block_timestamp: Some(block.header.timestamp),
                transaction_hash: block.txs.get(i).map(|t| *t.tx_hash()),
                transaction_index: Some(i as u64),
                log_index: Some(log_index),
                removed,
            });
            log_index += 1;
        }
    }
    out
}

/// The receipt of transaction `index` of a block.
pub(super) fn rpc_receipt(
    hash: B256,
    block: &StoredBlock,
    receipts: &[ReceiptEnvelope],
    index: usize,
) -> Option<TransactionReceipt> {
    let tx = block.txs.get(index)?;
    let sender = *block.senders.get(index)?;
    let receipt = receipts.get(index)?;
    let first_log: usize = receipts[..index].iter().map(|r| r.logs().len()).sum();
    let logs = block_logs(hash, block, std::slice::from_ref(receipt), false);
    let prev_cumulative = if index == 0 { 0 } else { receipts[index - 1].cumulative_gas_used() };
    let logs: Vec<Log> = logs
        .into_iter()
        .enumerate()
        .map(|(j, mut l)| {
            l.transaction_index = Some(index as u64);
            l.transaction_hash = Some(*tx.tx_hash());
            l.log_index = Some((first_log + j) as u64);
            l
        })
        .collect();
    let inner = map_receipt_logs(receipt, logs);
    Some(TransactionReceipt {
        inner,
        transaction_hash: *tx.tx_hash(),
        transaction_index: Some(index as u64),
        block_hash: Some(hash),
        block_number: Some(block.header.number),
        gas_used: receipt.cumulative_gas_used() - prev_cumulative,
        effective_gas_price: tx.effective_gas_price(block.header.base_fee_per_gas),
        blob_gas_used: None,
        blob_gas_price: None,
        from: sender,
        to: tx.to(),
        contract_address: tx.is_create().then(|| sender.create(tx.nonce())),
    })
}

fn map_receipt_logs(receipt: &ReceiptEnvelope, logs: Vec<Log>) -> ReceiptEnvelope<Log> {
    let mut logs = logs.into_iter();
    let mut map = |r: &alloy::consensus::ReceiptWithBloom<alloy::consensus::Receipt>| {
        let inner = alloy::consensus::Receipt {
            status: r.receipt.status,
            cumulative_gas_used: r.receipt.cumulative_gas_used,
            logs: r.receipt.logs.iter().filter_map(|_| logs.next()).collect(),
        };
        alloy::consensus::ReceiptWithBloom::new(inner, r.logs_bloom)
    };
    match receipt {
        ReceiptEnvelope::Legacy(r) => ReceiptEnvelope::Legacy(map(r)),
        ReceiptEnvelope::Eip2930(r) => ReceiptEnvelope::Eip2930(map(r)),
        ReceiptEnvelope::Eip1559(r) => ReceiptEnvelope::Eip1559(map(r)),
        ReceiptEnvelope::Eip4844(r) => ReceiptEnvelope::Eip4844(map(r)),
        ReceiptEnvelope::Eip7702(r) => ReceiptEnvelope::Eip7702(map(r)),
    }
}
