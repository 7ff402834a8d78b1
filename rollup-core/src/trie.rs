//! State root computation with `alloy-trie` (the Merkle-Patricia trie crate
//! reth uses).
//!
//! The node keeps an in-memory copy of the state keyed by hashed address and
//! hashed slot (loaded from sled at start), and caches each account's storage
//! root: a block recomputes only the storage roots of the accounts it touched,
//! then feeds every account leaf, already in trie order, to a `HashBuilder`.

use std::collections::{BTreeMap, HashMap, HashSet};

use alloy::primitives::map::{AddressHashMap, HashMap as FastMap};
use alloy::primitives::{Address, B256, U256, keccak256};
use alloy_rlp::Encodable;
use alloy_trie::{EMPTY_ROOT_HASH, HashBuilder, Nibbles, TrieAccount};

use crate::error::StoreError;
use crate::store::AccountData;
use crate::store::{ChainStore, StateChanges};

/// In-memory copy of the latest state: ordered by hashed key for the trie
/// (with cached storage roots), and by plain key for the EVM's reads, so
/// executing a block never waits on disk.
#[derive(Debug, Default, Clone)]
pub struct StateTrie {
    plain_accounts: AddressHashMap<AccountData>,
    plain_storage: AddressHashMap<FastMap<U256, U256>>,
    accounts: BTreeMap<B256, AccountData>,
    storage: HashMap<B256, BTreeMap<B256, U256>>,
    roots: HashMap<B256, B256>,
    dirty: HashSet<B256>,
}

impl StateTrie {
    /// Loads the latest state from the store.
    pub fn load(store: &ChainStore) -> Result<Self, StoreError> {
        let mut trie = Self::default();
        for entry in store.all_accounts() {
            let (address, account) = entry?;
            trie.accounts.insert(keccak256(address), account);
            trie.plain_accounts.insert(address, account);
        }
        for entry in store.all_storage() {
            let (address, slot, value) = entry?;
            trie.plain_storage.entry(address).or_default().insert(slot, value);
            let h = keccak256(address);
            trie.storage.entry(h).or_default().insert(keccak256(slot.to_be_bytes::<32>()), value);
            trie.dirty.insert(h);
        }
        Ok(trie)
    }

    /// Applies a block's state changes.
    pub fn apply(&mut self, changes: &StateChanges) {
        for (address, account) in &changes.accounts {
            let h = keccak256(address);
            match account {
                Some(a) => {
                    self.accounts.insert(h, *a);
                    self.plain_accounts.insert(*address, *a);
                }
                None => {
                    self.accounts.remove(&h);
                    self.plain_accounts.remove(address);
                }
            }
        }
        for (address, (wiped, slots)) in &changes.storage {
            let h = keccak256(address);
            let plain = self.plain_storage.entry(*address).or_default();
            if *wiped {
                plain.clear();
            }
            for (slot, value) in slots {
                if value.is_zero() {
                    plain.remove(slot);
                } else {
                    plain.insert(*slot, *value);
                }
            }
            let map = self.storage.entry(h).or_default();
            if *wiped {
                map.clear();
            }
            for (slot, value) in slots {
                let hs = keccak256(slot.to_be_bytes::<32>());
                if value.is_zero() {
                    map.remove(&hs);
                } else {
                    map.insert(hs, *value);
                }
            }
            self.dirty.insert(h);
        }
    }

    /// The state root, recomputing the storage roots of accounts touched since the last call.
    // `TrieAccount` gains a field under alloy-trie's `account-ext` feature: keep the update.
    #[allow(clippy::needless_update)]
    pub fn root(&mut self) -> B256 {
        for h in self.dirty.drain() {
            let root = match self.storage.get(&h) {
                Some(slots) if !slots.is_empty() => storage_root(slots),
                _ => {
                    self.storage.remove(&h);
                    EMPTY_ROOT_HASH
                }
            };
            self.roots.insert(h, root);
        }
        let mut hb = HashBuilder::default();
        let mut buf = Vec::with_capacity(128);
        for (h, a) in &self.accounts {
            let leaf = TrieAccount {
                nonce: a.nonce,
                balance: a.balance,
                storage_root: self.roots.get(h).copied().unwrap_or(EMPTY_ROOT_HASH),
                code_hash: a.code_hash,
                ..Default::default()
            };
            buf.clear();
            leaf.encode(&mut buf);
            hb.add_leaf(Nibbles::unpack(h), &buf);
        }
        hb.root()
    }

    /// Latest account record.
    pub fn account(&self, address: &Address) -> Option<AccountData> {
        self.plain_accounts.get(address).copied()
    }

    /// Latest storage value (zero when unset).
    pub fn storage(&self, address: &Address, slot: &U256) -> U256 {
        self.plain_storage.get(address).and_then(|m| m.get(slot)).copied().unwrap_or_default()
    }

    /// Number of accounts in the state.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// Storage root of `address`'s storage as of the last `root` call.
    pub fn storage_root_of(&self, address: Address) -> B256 {
        self.roots.get(&keccak256(address)).copied().unwrap_or(EMPTY_ROOT_HASH)
    }
}

fn storage_root(slots: &BTreeMap<B256, U256>) -> B256 {
    let mut hb = HashBuilder::default();
    for (k, v) in slots {
        hb.add_leaf(Nibbles::unpack(k), alloy_rlp::encode_fixed_size(v).as_ref());
    }
    hb.root()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{KECCAK256_EMPTY, address};

    #[test]
    #[allow(clippy::needless_update)]
    fn matches_alloy_trie_reference_roots() {
        let a = address!("0x00000000000000000000000000000000000000aa");
        let b = address!("0x00000000000000000000000000000000000000bb");
        let mut changes = StateChanges::default();
        let acc = AccountData { nonce: 1, balance: U256::from(10), code_hash: KECCAK256_EMPTY };
        changes.accounts.insert(a, Some(acc));
        changes.accounts.insert(b, Some(acc));
        changes.storage.insert(b, (false, [(U256::from(1), U256::from(7))].into_iter().collect()));
        let mut trie = StateTrie::default();
        trie.apply(&changes);
        let got = trie.root();
        let b_root =
            alloy_trie::root::storage_root_unhashed([(B256::from(U256::from(1)), U256::from(7))]);
        let expected = alloy_trie::root::state_root_unhashed([
            (
                a,
                TrieAccount {
                    nonce: 1,
                    balance: U256::from(10),
                    storage_root: EMPTY_ROOT_HASH,
                    code_hash: KECCAK256_EMPTY,
                    ..Default::default()
                },
            ),
            (
                b,
                TrieAccount {
                    nonce: 1,
                    balance: U256::from(10),
                    storage_root: b_root,
                    code_hash: KECCAK256_EMPTY,
                    ..Default::default()
                },
            ),
        ]);
        assert_eq!(got, expected);
        assert_ne!(got, EMPTY_ROOT_HASH);
    }
}
