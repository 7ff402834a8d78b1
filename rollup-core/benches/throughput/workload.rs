//! The workload, signed ahead of time so every node gets byte-identical
//! transactions: a setup phase (deploy an ERC-20-style token and the Mailbox,
//! fund the senders), then N token transfers and N `Mailbox.dispatch` calls
//! spread over several senders.

use std::path::Path;

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256, hex};
use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner};
use alloy::sol_types::{SolCall, SolType, sol_data};
use metalayer_rollup::genesis::DEV_MNEMONIC;

/// Chain id every node in the bench runs with.
pub(crate) const CHAIN_ID: u64 = 31337;
/// Number of concurrent senders (dev accounts 1..=SENDERS).
pub(crate) const SENDERS: u32 = 8;

alloy::sol! {
    function transfer(address to, uint256 amount);
    function initialize(address newOwner, address ism, address hook, address required);
    function dispatch(uint32 destination, bytes32 recipient, bytes calldata body) payable returns (bytes32);
}

/// A signed transaction and its sender.
pub(crate) type SignedTx = (TxEnvelope, Address);

/// The whole workload.
pub(crate) struct Workload {
    /// Deployments and funding, sent one by one before timing starts.
    pub(crate) setup: Vec<SignedTx>,
    /// Token transfers, grouped per sender in nonce order.
    pub(crate) transfers: Vec<Vec<SignedTx>>,
    /// Mailbox dispatches, grouped per sender in nonce order.
    pub(crate) dispatches: Vec<Vec<SignedTx>>,
}

/// Runtime of the token: `transfer(to, amount)` moves `amount` from the
/// caller's balance (slot = address) to `to`'s, reverting on insufficient
/// balance, and emits the ERC-20 `Transfer(from, to, value)` event.
fn token_initcode() -> Bytes {
    let transfer_topic = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
    let runtime = format!(
        "602435\
         3354\
         818110\
         604557\
         819003\
         3355\
         600435\
         8054\
         8201\
         8155\
         90600052\
         33\
         7f{transfer_topic}\
         60206000a3\
         00\
         5b600080fd"
    );
    // Constructor: balance[deployer] = 2^128, then return the runtime.
    let init = format!("600160801b3355604a8060126000396000f3{runtime}");
    hex::decode(init).expect("static hex").into()
}

fn signer(i: u32) -> PrivateKeySigner {
    MnemonicBuilder::from_phrase(DEV_MNEMONIC)
        .index(i)
        .and_then(|b| b.build())
        .expect("dev mnemonic derives")
}

fn sign(signer: &PrivateKeySigner, nonce: u64, to: TxKind, gas: u64, input: Vec<u8>) -> SignedTx {
    let mut tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 50_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to,
        input: input.into(),
        ..Default::default()
    };
    let sig = signer.sign_transaction_sync(&mut tx).expect("local signing works");
    (tx.into_signed(sig).into(), signer.address())
}

/// Reads the Mailbox creation code from the committed artifact.
fn mailbox_bytecode(artifacts: &Path) -> Result<Vec<u8>, String> {
    let path = artifacts.join("Mailbox.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let code =
        json["bytecode"].as_str().ok_or_else(|| format!("{}: no bytecode", path.display()))?;
    hex::decode(code).map_err(|e| format!("{}: {e}", path.display()))
}

impl Workload {
    /// Builds `n` transfers and `n` dispatches (rounded to a multiple of the sender count).
    pub(crate) fn build(n: usize, artifacts: &Path) -> Result<Self, String> {
        let deployer = signer(0);
        let token = deployer.address().create(0);
        let mailbox = deployer.address().create(1);
        let mut setup =
            vec![sign(&deployer, 0, TxKind::Create, 200_000, token_initcode().to_vec())];
        let mut mailbox_init = mailbox_bytecode(artifacts)?;
        // Constructor: domain, owner, and no embedded validator set.
        type MailboxArgs = (
            sol_data::Uint<32>,
            sol_data::Address,
            sol_data::Array<sol_data::Address>,
            sol_data::Uint<8>,
        );
        mailbox_init.extend(MailboxArgs::abi_encode_params(&(
            1u32,
            deployer.address(),
            Vec::<Address>::new(),
            0u8,
        )));
        setup.push(sign(&deployer, 1, TxKind::Create, 8_000_000, mailbox_init));
        let init = initializeCall {
            newOwner: deployer.address(),
            ism: token,
            hook: mailbox,
            required: Address::ZERO,
        };
        setup.push(sign(&deployer, 2, TxKind::Call(mailbox), 500_000, init.abi_encode()));
        let senders: Vec<PrivateKeySigner> = (1..=SENDERS).map(signer).collect();
        for (i, s) in senders.iter().enumerate() {
            let fund = transferCall { to: s.address(), amount: U256::from(1u64) << 100 };
            setup.push(sign(
                &deployer,
                3 + i as u64,
                TxKind::Call(token),
                100_000,
                fund.abi_encode(),
            ));
        }
        let per_sender = n.div_ceil(SENDERS as usize);
        let mut transfers = Vec::new();
        let mut dispatches = Vec::new();
        for (k, s) in senders.iter().enumerate() {
            let mut t = Vec::with_capacity(per_sender);
            let mut d = Vec::with_capacity(per_sender);
            for j in 0..per_sender {
                let to = Address::from_word(B256::from(U256::from(1_000_000 + k * per_sender + j)));
                let call = transferCall { to, amount: U256::from(1u64) };
                t.push(sign(s, j as u64, TxKind::Call(token), 100_000, call.abi_encode()));
            }
            for j in 0..per_sender {
                let call = dispatchCall {
                    destination: 2,
                    recipient: B256::from(U256::from(j)),
                    body: Bytes::from(format!("bench message {k}/{j}").into_bytes()),
                };
                d.push(sign(
                    s,
                    (per_sender + j) as u64,
                    TxKind::Call(mailbox),
                    400_000,
                    call.abi_encode(),
                ));
            }
            transfers.push(t);
            dispatches.push(d);
        }
        Ok(Self { setup, transfers, dispatches })
    }
}
