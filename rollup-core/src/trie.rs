//! State root computation with `alloy-trie` (the Merkle-Patricia trie crate
//! reth uses).
//!
//! The node keeps an in-memory copy of the state keyed by hashed address and
//! hashed slot (loaded from sled at start), and caches each account's storage
//! root: a block recomputes only the storage roots of the accounts it touched,
//! then feeds every account leaf, already in trie order, to a `HashBuilder`.
//!
//! A large storage is hashed by buckets (`BucketedStorage`): the subtrie
//! under each `d`-nibble prefix of the hashed slots is hashed alone and
//! cached, and a block rehashes only the buckets its writes fell in. The
//! Mailbox's `deliveries` map gains a slot per message delivered, so
//! rehashing a whole storage every block made each block slower than the
//! last (a quarter of the miner's time 40,000 messages into a relay run).

use std::collections::{BTreeMap, HashMap, HashSet};

use alloy::primitives::map::{AddressHashMap, HashMap as FastMap};
use alloy::primitives::{Address, B256, U256, keccak256};
use alloy_rlp::Encodable;
use alloy_trie::{EMPTY_ROOT_HASH, HashBuilder, Nibbles, TrieAccount};

use crate::error::StoreError;
use crate::store::AccountData;
use crate::store::{ChainStore, PriorState, StateChanges};

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
    /// Bucket hashes of the large storages, by hashed address.
    buckets: HashMap<B256, BucketedStorage>,
    /// Hashed slots written since the last root, by hashed address (absent:
    /// every bucket of that storage is to be hashed again).
    written: HashMap<B256, Vec<B256>>,
}

/// The cached subtrie hashes of one large storage: the storage trie's node
/// at each `depth`-nibble prefix, hashed from the slots under that prefix.
///
/// Valid because every such node exists in the whole trie as the child of
/// a branch at `depth − 1` nibbles, which [`BucketedStorage::root`] checks
/// (each parent prefix has at least two non-empty buckets; otherwise it
/// hashes the whole storage). A bucket's node is never inlined in its parent:
/// with 32-byte keys and `depth <= MAX_BUCKET_DEPTH` its RLP is over 32 bytes.
#[derive(Debug, Default, Clone)]
struct BucketedStorage {
    depth: usize,
    hashes: BTreeMap<u32, B256>,
}

/// Storages below `16^MIN_BUCKET_DEPTH` slots are hashed whole.
const MIN_BUCKET_DEPTH: usize = 2;
/// At most `16^3` buckets: the pass over every bucket's hash each block
/// stays small (4,096 entries; 16^4 made it the larger part of the root).
const MAX_BUCKET_DEPTH: usize = 3;

/// The bucket depth for a storage of `slots` slots (about one slot a bucket
/// and up), or `None` to hash it whole.
fn bucket_depth(slots: usize) -> Option<usize> {
    let depth = (usize::BITS - 1 - slots.max(1).leading_zeros()) as usize / 4;
    (depth >= MIN_BUCKET_DEPTH).then_some(depth.min(MAX_BUCKET_DEPTH))
}

/// The first `depth` nibbles of `key`.
fn prefix_of(key: &B256, depth: usize) -> u32 {
    let top = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    top >> (32 - 4 * depth)
}

impl BucketedStorage {
    /// Rehashes the buckets holding `written` (every bucket when `None` or
    /// when the depth changed) and returns the storage root.
    fn root(
        &mut self,
        slots: &BTreeMap<B256, U256>,
        depth: usize,
        written: Option<&[B256]>,
    ) -> B256 {
        let rehash: Vec<u32> = match written {
            Some(keys) if depth == self.depth => {
                let mut p: Vec<u32> = keys.iter().map(|k| prefix_of(k, depth)).collect();
                p.sort_unstable();
                p.dedup();
                p
            }
            _ => {
                self.depth = depth;
                self.hashes.clear();
                (0..1u32 << (4 * depth)).collect()
            }
        };
        for prefix in rehash {
            let low = bucket_bound(prefix, depth, false);
            let high = bucket_bound(prefix, depth, true);
            let mut hb = HashBuilder::default();
            let mut any = false;
            for (k, v) in slots.range(low..=high) {
                hb.add_leaf(
                    Nibbles::unpack(k).slice(depth..),
                    alloy_rlp::encode_fixed_size(v).as_ref(),
                );
                any = true;
            }
            if any {
                self.hashes.insert(prefix, hb.root());
            } else {
                self.hashes.remove(&prefix);
            }
        }
        // Each bucket must be a child of a branch one nibble up.
        let mut parents = self.hashes.keys().map(|p| p >> 4).peekable();
        let mut lone = false;
        while let Some(parent) = parents.next() {
            let mut children = 1;
            while parents.peek() == Some(&parent) {
                parents.next();
                children += 1;
            }
            lone |= children < 2;
        }
        if lone {
            return storage_root(slots);
        }
        let mut hb = HashBuilder::default();
        for (prefix, hash) in &self.hashes {
            let nibbles: Vec<u8> =
                (0..depth).map(|i| ((prefix >> (4 * (depth - 1 - i))) & 0xf) as u8).collect();
            hb.add_branch(Nibbles::from_nibbles(nibbles), *hash, false);
        }
        hb.root()
    }
}

/// The least (or greatest) 32-byte key with `depth`-nibble prefix `prefix`
/// (`depth` at most [`MAX_BUCKET_DEPTH`]).
fn bucket_bound(prefix: u32, depth: usize, high: bool) -> B256 {
    let shift = 32 - 4 * depth;
    let (mut key, rest) =
        if high { (B256::repeat_byte(0xff), u32::MAX >> (32 - shift)) } else { (B256::ZERO, 0) };
    key[..4].copy_from_slice(&((prefix << shift) | rest).to_be_bytes());
    key
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

    /// What `changes` overwrite in the state as it stands (before
    /// [`apply`](Self::apply)ing them): the history a commit records.
    pub fn prior(&self, changes: &StateChanges) -> PriorState {
        let accounts = changes
            .accounts
            .keys()
            .map(|address| (*address, self.plain_accounts.get(address).copied()))
            .collect();
        let mut storage = AddressHashMap::default();
        for (address, (wiped, slots)) in &changes.storage {
            let plain = self.plain_storage.get(address);
            let mut old: FastMap<U256, U256> = match plain {
                Some(plain) if *wiped => plain.clone(),
                _ => FastMap::default(),
            };
            for slot in slots.keys() {
                let value = plain.and_then(|p| p.get(slot)).copied().unwrap_or_default();
                old.insert(*slot, value);
            }
            storage.insert(*address, old);
        }
        PriorState { accounts, storage }
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
            let mut hashed = Vec::with_capacity(slots.len());
            for (slot, value) in slots {
                let hs = keccak256(slot.to_be_bytes::<32>());
                if value.is_zero() {
                    map.remove(&hs);
                } else {
                    map.insert(hs, *value);
                }
                hashed.push(hs);
            }
            // The writes since the last root, kept to rehash only their
            // buckets. None kept (every bucket hashed again) for a storage
            // first seen now, or wiped, or already marked so this block.
            let first_since_root = !self.dirty.contains(&h);
            if *wiped || (first_since_root && !self.roots.contains_key(&h)) {
                self.written.remove(&h);
                self.buckets.remove(&h);
            } else if first_since_root {
                self.written.insert(h, hashed);
            } else if let Some(list) = self.written.get_mut(&h) {
                list.extend(hashed);
            }
            self.dirty.insert(h);
        }
    }

    /// The state root, recomputing the storage roots of accounts touched since the last call.
    // `TrieAccount` gains a field under alloy-trie's `account-ext` feature: keep the update.
    #[allow(clippy::needless_update)]
    pub fn root(&mut self) -> B256 {
        for h in self.dirty.drain() {
            let written = self.written.remove(&h);
            let root = match self.storage.get(&h) {
                Some(slots) if !slots.is_empty() => match bucket_depth(slots.len()) {
                    Some(depth) => {
                        self.buckets.entry(h).or_default().root(slots, depth, written.as_deref())
                    }
                    None => {
                        self.buckets.remove(&h);
                        storage_root(slots)
                    }
                },
                _ => {
                    self.storage.remove(&h);
                    self.buckets.remove(&h);
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

    /// A deterministic stream of 64-bit values.
    struct Stream(u64);
    impl Stream {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn key(&mut self) -> B256 {
            keccak256(self.next().to_be_bytes())
        }
    }

    #[test]
    fn bucket_depth_grows_with_the_storage() {
        assert_eq!(bucket_depth(0), None);
        assert_eq!(bucket_depth(255), None);
        assert_eq!(bucket_depth(256), Some(2));
        assert_eq!(bucket_depth(4095), Some(2));
        assert_eq!(bucket_depth(4096), Some(3));
        assert_eq!(bucket_depth(1 << 20), Some(3));
        assert_eq!(bucket_bound(0xab, 2, false)[..2], [0xab, 0x00]);
        assert_eq!(bucket_bound(0xab, 2, true)[..2], [0xab, 0xff]);
        assert_eq!(bucket_bound(0xabc, 3, true)[..2], [0xab, 0xcf]);
        assert_eq!(prefix_of(&bucket_bound(0xabc, 3, true), 3), 0xabc);
    }

    #[test]
    fn bucketed_roots_equal_whole_roots_as_storage_changes() {
        let mut rng = Stream(0x2545_f491_4f6c_dd1d);
        for size in [256usize, 300, 4096, 6000] {
            let mut slots: BTreeMap<B256, U256> =
                (0..size).map(|_| (rng.key(), U256::from(rng.next()))).collect();
            let depth = bucket_depth(slots.len()).expect("large enough");
            let mut cache = BucketedStorage::default();
            assert_eq!(cache.root(&slots, depth, None), storage_root(&slots), "{size} whole");
            for round in 0..4 {
                // New slots, changed values and removed slots.
                let mut written = Vec::new();
                for _ in 0..50 {
                    let k = rng.key();
                    slots.insert(k, U256::from(rng.next()));
                    written.push(k);
                }
                let existing: Vec<B256> = slots.keys().step_by(97).copied().collect();
                for (i, k) in existing.into_iter().enumerate() {
                    if i % 2 == 0 {
                        slots.remove(&k);
                    } else {
                        slots.insert(k, U256::from(round));
                    }
                    written.push(k);
                }
                let depth = bucket_depth(slots.len()).expect("large enough");
                assert_eq!(
                    cache.root(&slots, depth, Some(&written)),
                    storage_root(&slots),
                    "{size} slots, round {round}"
                );
            }
        }
    }

    #[test]
    fn a_bucket_without_a_sibling_falls_back_to_the_whole_root() {
        let mut rng = Stream(7);
        let mut slots: BTreeMap<B256, U256> =
            (0..300).map(|_| (rng.key(), U256::from(1))).collect();
        // One key alone under prefix 0x5, in bucket 0x5a: its parent 0x5
        // has one child bucket, and the trie's node for it is a leaf at
        // 0x5 (no node at 0x5a), so its bucket hash cannot be used.
        let under: Vec<B256> = slots.keys().filter(|k| k[0] >> 4 == 0x5).copied().collect();
        for k in &under {
            slots.remove(k);
        }
        let mut alone = under[0];
        alone[0] = 0x5a;
        slots.insert(alone, U256::from(2));
        let mut cache = BucketedStorage::default();
        assert_eq!(cache.root(&slots, 2, None), storage_root(&slots));
    }

    #[test]
    fn the_state_root_through_blocks_equals_a_fresh_computation() {
        let contract = address!("0x00000000000000000000000000000000000000cc");
        let acc = AccountData { nonce: 1, balance: U256::ZERO, code_hash: B256::repeat_byte(9) };
        let mut rng = Stream(99);
        let mut trie = StateTrie::default();
        for block in 0..6u64 {
            let mut changes = StateChanges::default();
            changes.accounts.insert(contract, Some(acc));
            // Block 4 wipes the storage first.
            let slots = (0..400).map(|_| (U256::from(rng.next() % 5000), U256::from(block + 1)));
            changes.storage.insert(contract, (block == 4, slots.collect()));
            if block == 2 {
                // Two changes to one account before a root is taken: the
                // second rewrites the first's slots and adds others.
                trie.apply(&changes);
                let first: Vec<U256> = changes.storage[&contract].1.keys().copied().collect();
                let again = first
                    .iter()
                    .map(|k| (*k, U256::from(77)))
                    .chain((0..10).map(|i| (U256::from(9_000 + i), U256::from(1))));
                changes.storage.insert(contract, (false, again.collect()));
            }
            trie.apply(&changes);
            let got = trie.root();
            // The same state, computed from nothing.
            let mut fresh = StateTrie::default();
            let mut all = StateChanges::default();
            all.accounts.insert(contract, Some(acc));
            let plain = trie.plain_storage.get(&contract).cloned().unwrap_or_default();
            all.storage.insert(contract, (false, plain.into_iter().collect()));
            fresh.apply(&all);
            assert_eq!(got, fresh.root(), "block {block}");
            // And the storage root hashed whole, without buckets.
            let whole = storage_root(&trie.storage[&keccak256(contract)]);
            assert_eq!(trie.storage_root_of(contract), whole, "block {block}");
        }
        assert!(trie.buckets.contains_key(&keccak256(contract)), "the storage was bucketed");
    }

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
