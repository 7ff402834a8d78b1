//! Support shared by the crates' integration tests and benches: the dev
//! keys, validator keys, a rollup-core node on loopback with a funded
//! provider, the core stack most tests deploy, a dispatch that returns the
//! message the Mailbox emitted, and a process's CPU time for benches.
//!
//! Everything here is for tests: failures panic with what went wrong.

use std::net::SocketAddr;

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::{MnemonicBuilder, PrivateKeySigner},
    sol_types::SolEvent,
};
use metalayer_contracts::{CoreConfig, bindings::Mailbox};
use metalayer_protocol::{LocalSigner, Message, Signer, address_to_bytes32};
use metalayer_rollup::{
    genesis::DEV_MNEMONIC, node::NodeConfig, rpc::RpcLimits, service::RunningNode,
};

/// Dev account `i` of the nodes' mnemonic (funded at genesis).
pub fn dev(i: u32) -> PrivateKeySigner {
    MnemonicBuilder::from_phrase(DEV_MNEMONIC).index(i).and_then(|b| b.build()).expect("dev key")
}

/// Validator key `n` (holds no funds).
pub fn validator_key(n: u8) -> B256 {
    B256::repeat_byte(0x40 + n)
}

/// The address of [`validator_key`] `n`.
pub fn validator_address(n: u8) -> Address {
    LocalSigner::from_bytes(&validator_key(n)).expect("key").address()
}

/// The core stack of `local_domain` secured by `validators` at threshold
/// 1 with the default ISM, owned by dev account 0 (also the IGP's
/// beneficiary), with no remote gas configured.
pub fn core_config(local_domain: u32, validators: Vec<Address>) -> CoreConfig {
    CoreConfig {
        local_domain,
        owner: dev(0).address(),
        beneficiary: dev(0).address(),
        validators,
        threshold: 1,
        default_ism: Default::default(),
        remote_gas: vec![],
    }
}

/// Starts a node serving JSON-RPC on a free loopback port.
pub async fn start_node(config: NodeConfig, limits: RpcLimits) -> RunningNode {
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("loopback");
    RunningNode::start(config, listen, limits).await.expect("node starts")
}

/// An HTTP provider to `node` that signs with dev account 0.
pub fn dev_provider(node: &RunningNode) -> DynProvider {
    let url = node.http_url().parse().expect("node URL parses");
    ProviderBuilder::new().wallet(EthereumWallet::from(dev(0))).connect_http(url).erased()
}

/// Dispatches `body` through `mailbox` to `recipient` on `destination`,
/// waits for the receipt and returns the message from its `Dispatch` log.
pub async fn dispatch(
    provider: &DynProvider,
    mailbox: Address,
    destination: u32,
    recipient: Address,
    body: &[u8],
) -> Message {
    let mailbox = Mailbox::new(mailbox, provider);
    let receipt = mailbox
        .dispatch_2(destination, address_to_bytes32(recipient), body.to_vec().into())
        .send()
        .await
        .expect("dispatch sent")
        .get_receipt()
        .await
        .expect("dispatch mined");
    assert!(receipt.status(), "dispatch reverted");
    let log = receipt
        .inner
        .logs()
        .iter()
        .find(|l| l.topic0() == Some(&Mailbox::Dispatch::SIGNATURE_HASH))
        .expect("Dispatch log");
    let event = Mailbox::Dispatch::decode_log(&log.inner).expect("Dispatch decodes");
    Message::decode(&event.data.message).expect("message decodes")
}

/// User plus system CPU seconds in a `/proc/.../stat` file (0 if unreadable).
pub fn proc_cpu_seconds(stat_path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(stat_path) else { return 0.0 };
    let Some(close) = stat.rfind(')') else { return 0.0 };
    // After the name: state is field 3, utime and stime fields 14 and 15.
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // The kernel's USER_HZ, 100 on every Linux target.
    (field(14) + field(15)) as f64 / 100.0
}
