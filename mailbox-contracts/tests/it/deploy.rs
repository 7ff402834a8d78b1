//! `deploy_core` through a real alloy provider against anvil (npm `@foundry-rs/anvil`,
//! installed by `npm ci` in this crate's folder).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use metalayer_contracts::bindings::{
    InterchainGasPaymaster, Mailbox, StaticMessageIdMultisigIsm, ValidatorAnnounce,
};
use metalayer_contracts::{
    CoreConfig, CoreDeployment, DefaultIsm, DeployError, RemoteGasConfig, deploy_core,
};
use metalayer_protocol::merkle::MerkleTree;
use metalayer_protocol::{Message, address_to_bytes32};

use crate::fixture::Validators;

/// anvil's first development key.
const ANVIL_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// A running anvil, stopped on drop.
struct Anvil {
    child: Child,
    url: String,
}

impl Anvil {
    fn start() -> Self {
        let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules/.bin/anvil");
        let mut child = Command::new(&bin)
            .args(["--port", "0", "--chain-id", "31337"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{} ({e}): run `npm ci` in mailbox-contracts", bin.display())
            });
        let stdout = child.stdout.take().expect("piped stdout");
        // anvil prints "Listening on 127.0.0.1:<port>" once it accepts requests.
        let url = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("Listening on ").map(|a| format!("http://{a}")))
            .expect("anvil reports its address");
        Self { child, url }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn deploy_core_puts_a_working_stack_on_anvil() {
    let anvil = Anvil::start();
    let signer: PrivateKeySigner = ANVIL_KEY.parse().expect("key");
    let deployer = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(anvil.url.parse().expect("url"));
    let validators = Validators::new(3, 2, 60);
    let owner = Address::repeat_byte(0x0e);
    let config = CoreConfig {
        local_domain: 31337,
        owner,
        beneficiary: Address::repeat_byte(0xbe),
        validators: validators.addresses(),
        threshold: 2,
        default_ism: DefaultIsm::MessageId,
        remote_gas: vec![RemoteGasConfig {
            domain: 2000,
            token_exchange_rate: 10u128.pow(10),
            gas_price: 1_000_000_000,
            gas_overhead: 20_000,
        }],
    };
    let deployment = deploy_core(provider.clone(), &config).await.expect("deploys");

    // The addresses survive a JSON round trip.
    let json = serde_json::to_string(&deployment).expect("serialise");
    let back: CoreDeployment = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, deployment);
    assert_eq!(deployment.merkle_tree_hook, deployment.mailbox);
    assert_eq!(deployment.default_ism, deployment.message_id_ism);

    let mailbox = Mailbox::new(deployment.mailbox, provider.clone());
    assert_eq!(mailbox.localDomain().call().await.expect("localDomain"), 31337);
    assert_eq!(mailbox.defaultIsm().call().await.expect("defaultIsm"), deployment.message_id_ism);
    assert_eq!(mailbox.owner().call().await.expect("owner"), owner);
    let ism = StaticMessageIdMultisigIsm::new(deployment.message_id_ism, provider.clone());
    let set = ism.validatorsAndThreshold(Bytes::new()).call().await.expect("validators");
    assert_eq!((set.validators, set.threshold), (validators.addresses(), 2));
    let igp = InterchainGasPaymaster::new(deployment.interchain_gas_paymaster, provider.clone());
    let quote = igp.quoteGasPayment(2000, U256::from(100_000)).call().await.expect("quote");
    assert_eq!(quote, U256::from(100_000u64 * 1_000_000_000));
    assert_eq!(igp.owner().call().await.expect("igp owner"), owner);
    let announce = ValidatorAnnounce::new(deployment.validator_announce, provider.clone());
    assert_eq!(announce.mailbox().call().await.expect("mailbox"), deployment.mailbox);

    // A dispatch lands in the embedded tree, whose root matches the protocol tree.
    let recipient = address_to_bytes32(deployment.test_recipient);
    let body = Bytes::from_static(b"over the wire");
    let receipt = mailbox
        .dispatch_2(2000, recipient, body.clone())
        .send()
        .await
        .expect("send dispatch")
        .get_receipt()
        .await
        .expect("receipt");
    assert!(receipt.status());
    let message = Message {
        version: 3,
        nonce: 0,
        origin: 31337,
        sender: address_to_bytes32(deployer),
        destination: 2000,
        recipient,
        body,
    };
    let mut tree = MerkleTree::new();
    tree.insert(message.id()).expect("not full");
    let root: B256 = mailbox.root().call().await.expect("root");
    assert_eq!(root, tree.root());
    let latest = mailbox.latestDispatchedId().call().await.expect("latest id");
    assert_eq!(latest, message.id());
    assert!(provider.get_block_number().await.expect("block") >= deployment.deployed_block);
}

#[tokio::test(flavor = "current_thread")]
async fn deploy_core_can_make_the_embedded_ism_the_default() {
    let anvil = Anvil::start();
    let signer: PrivateKeySigner = ANVIL_KEY.parse().expect("key");
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(anvil.url.parse().expect("url"));
    let validators = Validators::new(5, 3, 61);
    let config = CoreConfig {
        local_domain: 31337,
        owner: Address::repeat_byte(0x0e),
        beneficiary: Address::repeat_byte(0xbe),
        validators: validators.addresses(),
        threshold: 3,
        default_ism: DefaultIsm::Embedded,
        remote_gas: vec![],
    };
    // Embedded as MessageId (type 5) or as MerkleRoot (type 4).
    for (default_ism, module_type) in
        [(DefaultIsm::Embedded, 5), (DefaultIsm::EmbeddedMerkleRoot, 4)]
    {
        let config = CoreConfig { default_ism, ..config.clone() };
        let deployment = deploy_core(provider.clone(), &config).await.expect("deploys");
        assert_eq!(deployment.default_ism, deployment.mailbox);
        let mailbox = Mailbox::new(deployment.mailbox, provider.clone());
        assert_eq!(mailbox.defaultIsm().call().await.expect("defaultIsm"), deployment.mailbox);
        assert_eq!(mailbox.moduleType().call().await.expect("moduleType"), module_type);
        let set = mailbox.validatorsAndThreshold(Bytes::new()).call().await.expect("validators");
        assert_eq!((set.validators, set.threshold), (validators.addresses(), 3));
    }
    // The serde name of the new choice.
    let name = serde_json::to_string(&DefaultIsm::EmbeddedMerkleRoot).expect("serialise");
    assert_eq!(name, "\"embedded_merkle_root\"");

    // Too many validators for the embedded ISM, or a malformed set, is a config error.
    let many = Validators::new(26, 3, 62);
    let too_many = CoreConfig { validators: many.addresses(), ..config.clone() };
    assert!(matches!(deploy_core(provider.clone(), &too_many).await, Err(DeployError::Config(_))));
    let too_many = CoreConfig { default_ism: DefaultIsm::EmbeddedMerkleRoot, ..too_many };
    assert!(matches!(deploy_core(provider.clone(), &too_many).await, Err(DeployError::Config(_))));
    let mut twice = validators.addresses();
    twice[1] = twice[0];
    let duplicated = CoreConfig { validators: twice, ..config };
    assert!(matches!(deploy_core(provider, &duplicated).await, Err(DeployError::Config(_))));
}
