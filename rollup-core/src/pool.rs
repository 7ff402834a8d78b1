//! The transaction pool: pending transactions per sender, ordered by nonce;
//! blocks take each sender's next executable nonce, highest tip first.

use std::collections::{BTreeMap, BinaryHeap, HashMap};

use alloy::consensus::{Transaction, TxEnvelope};
use alloy::primitives::{Address, B256};

use crate::error::TxError;

/// A transaction waiting in the pool.
#[derive(Clone, Debug)]
pub struct PooledTx {
    /// The signed transaction.
    pub tx: TxEnvelope,
    /// Its recovered sender.
    pub sender: Address,
}

/// Pending transactions, per sender and nonce.
#[derive(Debug)]
pub struct TxPool {
    by_sender: HashMap<Address, BTreeMap<u64, PooledTx>>,
    by_hash: HashMap<B256, (Address, u64)>,
    capacity: usize,
}

/// Price bump (percent) a replacement must pay over the transaction it replaces.
const REPLACEMENT_BUMP: u128 = 10;

impl TxPool {
    /// An empty pool holding at most `capacity` transactions.
    pub fn new(capacity: usize) -> Self {
        Self { by_sender: HashMap::new(), by_hash: HashMap::new(), capacity }
    }

    /// Number of pooled transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Pooled transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<&PooledTx> {
        let (sender, nonce) = self.by_hash.get(hash)?;
        self.by_sender.get(sender)?.get(nonce)
    }

    /// Whether `hash` is pooled.
    pub fn contains(&self, hash: &B256) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Adds a validated transaction, replacing a pooled one with the same
    /// sender and nonce only if it pays at least 10% more.
    pub fn insert(&mut self, tx: TxEnvelope, sender: Address) -> Result<B256, TxError> {
        let hash = *tx.tx_hash();
        if self.by_hash.contains_key(&hash) {
            return Err(TxError::AlreadyKnown);
        }
        let nonce = tx.nonce();
        let queue = self.by_sender.entry(sender).or_default();
        if let Some(old) = queue.get(&nonce) {
            let bumped = |old: u128, new: u128| new >= old + old * REPLACEMENT_BUMP / 100;
            let old_tip = old.tx.max_priority_fee_per_gas().unwrap_or(old.tx.max_fee_per_gas());
            let new_tip = tx.max_priority_fee_per_gas().unwrap_or(tx.max_fee_per_gas());
            if !bumped(old.tx.max_fee_per_gas(), tx.max_fee_per_gas()) || !bumped(old_tip, new_tip)
            {
                return Err(TxError::ReplacementUnderpriced);
            }
            self.by_hash.remove(old.tx.tx_hash());
        } else if self.by_hash.len() >= self.capacity {
            return Err(TxError::PoolFull);
        }
        queue.insert(nonce, PooledTx { tx, sender });
        self.by_hash.insert(hash, (sender, nonce));
        Ok(hash)
    }

    /// Removes a transaction by hash.
    pub fn remove(&mut self, hash: &B256) -> Option<PooledTx> {
        let (sender, nonce) = self.by_hash.remove(hash)?;
        let queue = self.by_sender.get_mut(&sender)?;
        let tx = queue.remove(&nonce);
        if queue.is_empty() {
            self.by_sender.remove(&sender);
        }
        tx
    }

    /// Drops every transaction of `sender` with a nonce below `next_nonce`.
    pub fn prune(&mut self, sender: Address, next_nonce: u64) {
        let Some(queue) = self.by_sender.get_mut(&sender) else { return };
        let keep = queue.split_off(&next_nonce);
        for tx in queue.values() {
            self.by_hash.remove(tx.tx.tx_hash());
        }
        *queue = keep;
        if queue.is_empty() {
            self.by_sender.remove(&sender);
        }
    }

    /// Next nonce of `sender` counting pooled transactions that follow `state_nonce` without a gap.
    pub fn pending_nonce(&self, sender: Address, state_nonce: u64) -> u64 {
        let mut next = state_nonce;
        if let Some(queue) = self.by_sender.get(&sender) {
            while queue.contains_key(&next) {
                next += 1;
            }
        }
        next
    }

    /// Executable transactions in block order: per sender, consecutive nonces
    /// from the state nonce; across senders, highest effective tip first.
    pub fn best(
        &self,
        state_nonce: impl Fn(Address) -> u64,
        base_fee: u64,
    ) -> Vec<(TxEnvelope, Address)> {
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        struct Head(u128, std::cmp::Reverse<u64>, Address, u64);
        let tip = |tx: &TxEnvelope| tx.effective_tip_per_gas(base_fee).unwrap_or(0);
        let mut heap = BinaryHeap::new();
        for (i, (sender, queue)) in self.by_sender.iter().enumerate() {
            let nonce = state_nonce(*sender);
            if let Some(p) = queue.get(&nonce)
                && p.tx.max_fee_per_gas() >= u128::from(base_fee)
            {
                heap.push(Head(tip(&p.tx), std::cmp::Reverse(i as u64), *sender, nonce));
            }
        }
        let mut out = Vec::new();
        while let Some(Head(_, order, sender, nonce)) = heap.pop() {
            let Some(queue) = self.by_sender.get(&sender) else { continue };
            let Some(p) = queue.get(&nonce) else { continue };
            out.push((p.tx.clone(), sender));
            if let Some(next) = queue.get(&(nonce + 1))
                && next.tx.max_fee_per_gas() >= u128::from(base_fee)
            {
                heap.push(Head(tip(&next.tx), order, sender, nonce + 1));
            }
        }
        out
    }

    /// Every pooled transaction (for `txpool`-style inspection and reorgs).
    pub fn all(&self) -> impl Iterator<Item = &PooledTx> {
        self.by_sender.values().flat_map(|q| q.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::consensus::{SignableTransaction, TxEip1559};
    use alloy::network::TxSignerSync;
    use alloy::primitives::TxKind;
    use alloy::signers::local::PrivateKeySigner;

    fn tx(signer: &PrivateKeySigner, nonce: u64, fee: u128, tip: u128) -> TxEnvelope {
        let mut t = TxEip1559 {
            chain_id: 1,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: fee,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(Address::ZERO),
            ..Default::default()
        };
        let sig = signer.sign_transaction_sync(&mut t).expect("signs");
        t.into_signed(sig).into()
    }

    #[test]
    fn best_orders_by_nonce_per_sender_and_tip_across_senders() {
        let (a, b) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let mut pool = TxPool::new(100);
        pool.insert(tx(&a, 1, 100, 50), a.address()).expect("pooled");
        pool.insert(tx(&a, 0, 100, 1), a.address()).expect("pooled");
        pool.insert(tx(&b, 0, 100, 10), b.address()).expect("pooled");
        pool.insert(tx(&b, 5, 100, 90), b.address()).expect("pooled: a gap waits");
        let best = pool.best(|_| 0, 0);
        let order: Vec<(Address, u64)> = best.iter().map(|(t, s)| (*s, t.nonce())).collect();
        // b's nonce 0 pays the best tip of the executable heads; a's nonce 1 only follows a's nonce 0.
        assert_eq!(order, vec![(b.address(), 0), (a.address(), 0), (a.address(), 1)]);
        assert_eq!(pool.pending_nonce(a.address(), 0), 2);
        assert_eq!(pool.pending_nonce(b.address(), 0), 1);
        assert!(pool.best(|_| 0, 101).is_empty(), "fee caps below the base fee wait");
    }

    #[test]
    fn replacement_needs_ten_percent_on_fee_and_tip() {
        let a = PrivateKeySigner::random();
        let mut pool = TxPool::new(100);
        let first = pool.insert(tx(&a, 0, 100, 10), a.address()).expect("pooled");
        assert_eq!(pool.insert(tx(&a, 0, 100, 10), a.address()), Err(TxError::AlreadyKnown));
        assert_eq!(
            pool.insert(tx(&a, 0, 109, 11), a.address()),
            Err(TxError::ReplacementUnderpriced)
        );
        assert_eq!(
            pool.insert(tx(&a, 0, 110, 10), a.address()),
            Err(TxError::ReplacementUnderpriced)
        );
        let second = pool.insert(tx(&a, 0, 110, 11), a.address()).expect("10% bump replaces");
        assert!(!pool.contains(&first));
        assert!(pool.contains(&second));
        assert_eq!(pool.len(), 1);
        pool.prune(a.address(), 1);
        assert!(pool.is_empty());
    }

    #[test]
    fn capacity_is_enforced() {
        let a = PrivateKeySigner::random();
        let mut pool = TxPool::new(1);
        pool.insert(tx(&a, 0, 100, 1), a.address()).expect("pooled");
        assert_eq!(pool.insert(tx(&a, 1, 100, 1), a.address()), Err(TxError::PoolFull));
    }
}
