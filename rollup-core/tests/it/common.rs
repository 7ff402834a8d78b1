//! Helpers: starting nodes, providers for the dev accounts, signing raw
//! transactions and loading the committed contract artifacts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use alloy::consensus::{SignableTransaction, TxEnvelope, TypedTransaction};
use alloy::eips::Encodable2718;
use alloy::network::{EthereumWallet, TransactionBuilder, TxSignerSync};
use alloy::primitives::{Address, Bytes};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner};
use metalayer_rollup::genesis::{DEV_MNEMONIC, Genesis};
use metalayer_rollup::node::{MiningMode, NodeConfig};
use metalayer_rollup::rpc::RpcLimits;
use metalayer_rollup::service::RunningNode;

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

alloy::sol! {
    #[sol(rpc)]
    #[derive(Debug)]
    contract TestRecipient {
        error NotOwner(address caller);
        event ReceivedMessage(uint32 indexed origin, bytes32 indexed sender, uint256 value, bytes body);
        function handle(uint32 origin, bytes32 sender, bytes calldata body) external payable;
        function handledCount() external view returns (uint256);
        function lastBody() external view returns (bytes memory);
        function owner() external view returns (address);
        function setInterchainSecurityModule(address ism) external;
    }
}

/// Starts a node with instant mining on `dir`.
pub(crate) async fn start(dir: &Path) -> RunningNode {
    start_with(dir, MiningMode::Instant).await
}

/// Starts a node on `dir` with the given mining mode and the default genesis.
pub(crate) async fn start_with(dir: &Path, mining: MiningMode) -> RunningNode {
    let config = NodeConfig {
        data_dir: dir.to_path_buf(),
        genesis: Genesis::default(),
        mining,
        pool_capacity: 10_000,
    };
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("static loopback address");
    RunningNode::start(config, listen, RpcLimits::default()).await.expect("node starts")
}

/// Dev account `i` of the default mnemonic.
pub(crate) fn dev_signer(i: u32) -> PrivateKeySigner {
    MnemonicBuilder::from_phrase(DEV_MNEMONIC)
        .index(i)
        .and_then(|b| b.build())
        .expect("dev mnemonic derives")
}

/// An HTTP provider that signs with dev account `i`.
pub(crate) fn provider(node: &RunningNode, i: u32) -> DynProvider {
    let url = node.http_url().parse().expect("node URL parses");
    ProviderBuilder::new().wallet(EthereumWallet::from(dev_signer(i))).connect_http(url).erased()
}

/// Signs a typed transaction and returns its network encoding.
pub(crate) fn sign(signer: &PrivateKeySigner, mut tx: TypedTransaction) -> Bytes {
    let sig = signer.sign_transaction_sync(&mut tx).expect("local signing works");
    let env: TxEnvelope = tx.into_signed(sig).into();
    env.encoded_2718().into()
}

fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mailbox-contracts/out")
}

/// A field ("bytecode" or "deployedBytecode") of a committed contract artifact.
pub(crate) fn artifact(name: &str, field: &str) -> Bytes {
    let path = artifacts_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("artifact {}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("artifact is JSON");
    let hex = json[field].as_str().unwrap_or_else(|| panic!("artifact {name} has no {field}"));
    hex.parse().expect("artifact bytecode is hex")
}

/// Deploys `TestRecipient` owned by the provider's account; returns its address.
pub(crate) async fn deploy_test_recipient(p: &DynProvider, owner: Address) -> Address {
    let mut code = artifact("TestRecipient", "bytecode").to_vec();
    code.extend_from_slice(&alloy::sol_types::SolValue::abi_encode(&owner));
    let tx = TransactionRequest::default().into_create().input(Bytes::from(code).into());
    let receipt = p
        .send_transaction(tx)
        .await
        .expect("deploy accepted")
        .get_receipt()
        .await
        .expect("deploy mined");
    assert!(receipt.status(), "TestRecipient deployment reverted");
    receipt.contract_address.expect("create receipt has an address")
}

/// Polls for a receipt (bounded by attempts, not by a clock limit).
pub(crate) async fn wait_receipt(
    p: &impl Provider,
    hash: alloy::primitives::B256,
) -> Result<alloy::rpc::types::TransactionReceipt, Box<dyn std::error::Error + Send + Sync>> {
    for _ in 0..10_000 {
        if let Some(r) = p.get_transaction_receipt(hash).await? {
            return Ok(r);
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    Err(format!("transaction {hash} was not mined").into())
}
