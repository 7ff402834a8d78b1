//! The state root as one contract's storage grows (the Mailbox's
//! `deliveries` map gains a slot per message): blocks of 250 new slots on a
//! storage of N, the node's root (cached buckets rehashed where the block
//! wrote) against hashing the whole storage with alloy-trie's `HashBuilder`
//! (what the node did before, and what a trie without cached nodes does).

use std::collections::BTreeMap;
use std::time::Instant;

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy_trie::{HashBuilder, Nibbles};
use metalayer_rollup::store::{AccountData, StateChanges};
use metalayer_rollup::trie::StateTrie;

const WRITES_PER_BLOCK: u64 = 250;
const BLOCKS: u64 = 20;

/// The storage root hashed whole.
fn whole(slots: &BTreeMap<B256, U256>) -> B256 {
    let mut hb = HashBuilder::default();
    for (k, v) in slots {
        hb.add_leaf(Nibbles::unpack(k), alloy_rlp::encode_fixed_size(v).as_ref());
    }
    hb.root()
}

/// Milliseconds per block: the node's root, then the whole-storage hash.
fn per_block(size: u64) -> (f64, f64) {
    let contract = Address::repeat_byte(0xcc);
    let account = AccountData { nonce: 1, balance: U256::ZERO, code_hash: B256::repeat_byte(1) };
    let mut trie = StateTrie::default();
    let mut plain = BTreeMap::new();
    let mut changes = StateChanges::default();
    changes.accounts.insert(contract, Some(account));
    let filled = (0..size).map(|i| (U256::from(i), U256::from(1)));
    changes.storage.insert(contract, (false, filled.collect()));
    for i in 0..size {
        plain.insert(keccak256(U256::from(i).to_be_bytes::<32>()), U256::from(1));
    }
    trie.apply(&changes);
    trie.root();
    let (mut ours, mut peer) = (0.0, 0.0);
    for block in 0..BLOCKS {
        let first = size + block * WRITES_PER_BLOCK;
        let writes: Vec<(U256, U256)> =
            (first..first + WRITES_PER_BLOCK).map(|i| (U256::from(i), U256::from(1))).collect();
        for (k, v) in &writes {
            plain.insert(keccak256(k.to_be_bytes::<32>()), *v);
        }
        let mut changes = StateChanges::default();
        changes.storage.insert(contract, (false, writes.into_iter().collect()));
        trie.apply(&changes);
        let started = Instant::now();
        trie.root();
        ours += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let root = whole(&plain);
        peer += started.elapsed().as_secs_f64();
        assert_eq!(trie.storage_root_of(contract), root, "the roots agree");
    }
    (1000.0 * ours / BLOCKS as f64, 1000.0 * peer / BLOCKS as f64)
}

pub(crate) fn run() {
    println!(
        "\nstate root per block, {WRITES_PER_BLOCK} new slots a block into one storage of N slots:"
    );
    println!("{:>10} {:>14} {:>18} {:>8}", "N", "node ms", "whole storage ms", "ratio");
    for size in [1_000u64, 10_000, 100_000] {
        let (ours, peer) = per_block(size);
        println!("{size:>10} {ours:>14.2} {peer:>18.2} {:>7.1}x", peer / ours.max(1e-9));
    }
}
