//! The revm `Database` over the chain store: the latest state or the state at
//! the end of a past block, with an in-memory overlay that collects the writes
//! of the block being built (or of an `eth_call` with state overrides).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy::primitives::map::B256HashMap;
use alloy::primitives::{Address, B256, Bytes, KECCAK256_EMPTY, U256};
use revm::bytecode::Bytecode;
use revm::database_interface::DBErrorMarker;
use revm::primitives::AddressMap;
use revm::state::{Account, AccountInfo};
use revm::{Database, DatabaseCommit};

use crate::error::StoreError;
use crate::store::{AccountData, ChainStore, PriorState, StateChanges};
use crate::trie::StateTrie;

impl DBErrorMarker for StoreError {}

/// Analysed bytecode shared by every execution, keyed by code hash.
#[derive(Clone, Debug, Default)]
pub struct CodeCache(Arc<Mutex<HashMap<B256, Bytecode>>>);

impl CodeCache {
    fn get(&self, hash: &B256) -> Option<Bytecode> {
        self.0.lock().ok().and_then(|m| m.get(hash).cloned())
    }

    fn put(&self, hash: B256, code: Bytecode) {
        if let Ok(mut m) = self.0.lock() {
            if m.len() > 4096 {
                m.clear();
            }
            m.insert(hash, code);
        }
    }
}

/// A revm database reading the store at one block, plus an overlay of writes.
#[derive(Debug)]
pub struct StateDb<'a> {
    store: &'a ChainStore,
    /// In-memory latest state; reads of the latest state go here, not to disk.
    latest: Option<&'a StateTrie>,
    /// With `latest`: what each block after the one read overwrote, oldest
    /// first (empty for the latest state).
    newer: Vec<&'a PriorState>,
    /// Without `latest`: `None` reads the latest state from the store,
    /// `Some(n)` the state at the end of block n.
    at: Option<u64>,
    codes: CodeCache,
    /// Code this view already used: no lock on the shared cache after the first use.
    local_codes: B256HashMap<Bytecode>,
    /// Writes not yet in the store.
    pub overlay: StateChanges,
}

impl<'a> StateDb<'a> {
    /// A database over the latest state (`at = None`) or the end of block `at`.
    pub fn new(store: &'a ChainStore, at: Option<u64>, codes: CodeCache) -> Self {
        Self {
            store,
            latest: None,
            newer: Vec::new(),
            at,
            codes,
            local_codes: Default::default(),
            overlay: StateChanges::default(),
        }
    }

    /// A database over the latest state served from the in-memory copy.
    pub fn latest(store: &'a ChainStore, latest: &'a StateTrie, codes: CodeCache) -> Self {
        Self::recent(store, latest, Vec::new(), codes)
    }

    /// A database over the state at the end of a recent block, served from
    /// memory: the latest state, and `newer`, what each block after it
    /// overwrote, oldest first.
    pub fn recent(
        store: &'a ChainStore,
        latest: &'a StateTrie,
        newer: Vec<&'a PriorState>,
        codes: CodeCache,
    ) -> Self {
        Self {
            store,
            latest: Some(latest),
            newer,
            at: None,
            codes,
            local_codes: Default::default(),
            overlay: StateChanges::default(),
        }
    }

    /// Account record as this view sees it.
    pub fn account(&self, address: Address) -> Result<Option<AccountData>, StoreError> {
        if let Some(acc) = self.overlay.accounts.get(&address) {
            return Ok(*acc);
        }
        if let Some(latest) = self.latest {
            // The first later block that changed it holds its value here.
            let old = self.newer.iter().find_map(|prior| prior.accounts.get(&address));
            return Ok(old.copied().unwrap_or_else(|| latest.account(&address)));
        }
        match self.at {
            None => self.store.account(address),
            Some(n) => self.store.account_at(address, n),
        }
    }

    /// Storage slot as this view sees it.
    pub fn slot(&self, address: Address, slot: U256) -> Result<U256, StoreError> {
        if let Some((wiped, slots)) = self.overlay.storage.get(&address) {
            if let Some(v) = slots.get(&slot) {
                return Ok(*v);
            }
            if *wiped {
                return Ok(U256::ZERO);
            }
        }
        if let Some(latest) = self.latest {
            // The first later block that wrote it holds its value here (a
            // slot a wipe cleared is listed with the wipe's block).
            let old = self.newer.iter().find_map(|prior| prior.storage.get(&address)?.get(&slot));
            return Ok(old.copied().unwrap_or_else(|| latest.storage(&address, &slot)));
        }
        match self.at {
            None => self.store.storage(address, slot),
            Some(n) => self.store.storage_at(address, slot, n),
        }
    }

    /// Raw code by hash.
    pub fn code(&self, hash: B256) -> Result<Bytes, StoreError> {
        if hash == KECCAK256_EMPTY {
            return Ok(Bytes::new());
        }
        if let Some(c) = self.overlay.codes.get(&hash) {
            return Ok(c.clone());
        }
        Ok(self.store.code(hash)?.unwrap_or_default())
    }

    /// Overwrites an account in the overlay (dev methods, state overrides, genesis).
    pub fn set_account(&mut self, address: Address, account: AccountData) {
        self.overlay.accounts.insert(address, Some(account));
    }

    /// Sets code in the overlay and points the account at it.
    pub fn set_code(&mut self, address: Address, code: Bytes) -> Result<(), StoreError> {
        let mut acc = self
            .account(address)?
            .unwrap_or(AccountData { code_hash: KECCAK256_EMPTY, ..Default::default() });
        acc.code_hash =
            if code.is_empty() { KECCAK256_EMPTY } else { alloy::primitives::keccak256(&code) };
        if !code.is_empty() {
            self.overlay.codes.insert(acc.code_hash, code);
        }
        self.set_account(address, acc);
        Ok(())
    }

    /// Writes a storage slot in the overlay; `wipe` clears the account's storage first.
    pub fn set_storage(
        &mut self,
        address: Address,
        slots: impl IntoIterator<Item = (U256, U256)>,
        wipe: bool,
    ) {
        let entry = self.overlay.storage.entry(address).or_default();
        if wipe {
            *entry = (true, Default::default());
        }
        entry.1.extend(slots);
    }

    /// Folds one transaction's state diff from revm into the overlay.
    fn apply(&mut self, address: Address, account: &Account) {
        if !account.is_touched() {
            return;
        }
        if account.is_selfdestructed() {
            self.overlay.accounts.insert(address, None);
            self.overlay.storage.insert(address, (true, Default::default()));
            return;
        }
        if account.is_created() {
            self.overlay.storage.insert(address, (true, Default::default()));
        }
        let info = &account.info;
        if let Some(code) = &info.code
            && info.code_hash != KECCAK256_EMPTY
            && !self.overlay.codes.contains_key(&info.code_hash)
        {
            self.overlay.codes.insert(info.code_hash, code.original_bytes());
        }
        let empty = info.nonce == 0 && info.balance.is_zero() && info.code_hash == KECCAK256_EMPTY;
        let record = (!empty).then_some(AccountData {
            nonce: info.nonce,
            balance: info.balance,
            code_hash: info.code_hash,
        });
        self.overlay.accounts.insert(address, record);
        let mut changed =
            account.changed_storage_slots().map(|(k, v)| (*k, v.present_value)).peekable();
        if changed.peek().is_some() {
            self.overlay.storage.entry(address).or_default().1.extend(changed);
        }
    }
}

impl Database for StateDb<'_> {
    type Error = StoreError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, StoreError> {
        let Some(a) = self.account(address)? else { return Ok(None) };
        // Code already analysed is handed over at once; `None` makes revm ask
        // `code_by_hash` (the default would be empty code).
        let code = if a.code_hash == KECCAK256_EMPTY {
            Some(Bytecode::default())
        } else {
            self.local_codes.get(&a.code_hash).cloned()
        };
        Ok(Some(AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            code,
            ..Default::default()
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, StoreError> {
        if code_hash == KECCAK256_EMPTY {
            return Ok(Bytecode::default());
        }
        if let Some(code) = self.local_codes.get(&code_hash) {
            return Ok(code.clone());
        }
        let code = match self.codes.get(&code_hash) {
            Some(code) => code,
            None => {
                let raw = self.code(code_hash)?;
                let code = Bytecode::new_raw_checked(raw.clone())
                    .unwrap_or_else(|_| Bytecode::new_legacy(raw));
                self.codes.put(code_hash, code.clone());
                code
            }
        };
        self.local_codes.insert(code_hash, code.clone());
        Ok(code)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, StoreError> {
        self.slot(address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, StoreError> {
        Ok(self.store.block_hash(number)?.unwrap_or_default())
    }
}

impl DatabaseCommit for StateDb<'_> {
    fn commit(&mut self, changes: AddressMap<Account>) {
        for (address, account) in changes {
            self.apply(address, &account);
        }
    }
}
