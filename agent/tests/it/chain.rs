//! `ChainClient` against a rollup-core node on loopback with the core
//! contracts deployed.

use alloy::primitives::Address;
use metalayer_agent::chain::{ChainClient, ChainError, MAX_BATCH_CALLS, RetryPolicy, RpcMetrics};
use metalayer_contracts::{
    CoreConfig, DefaultIsm, bindings::StaticMerkleRootMultisigIsmFactory as Factory, deploy_core,
};
use metalayer_rollup::{
    genesis::Genesis,
    node::{MiningMode, NodeConfig},
    rpc::RpcLimits,
};
use metalayer_tests::{dev, dev_provider, start_node};

#[tokio::test]
async fn a_batch_of_reads_answers_each_call_in_order_and_fails_calls_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        data_dir: dir.path().join("node"),
        genesis: Genesis::default(),
        mining: MiningMode::Instant,
        pool_capacity: 100,
    };
    let node = start_node(config, RpcLimits::default()).await;
    let provider = dev_provider(&node);
    let config = CoreConfig {
        local_domain: 1,
        owner: dev(0).address(),
        beneficiary: dev(0).address(),
        validators: vec![Address::repeat_byte(1)],
        threshold: 1,
        default_ism: DefaultIsm::MerkleRoot,
        remote_gas: vec![],
    };
    let core = deploy_core(provider, &config).await.unwrap();
    let client = ChainClient::connect(
        "alpha",
        &[node.http_url()],
        RetryPolicy::default(),
        RpcMetrics::unregistered(),
    )
    .await
    .unwrap();
    let block = client.block_number().await.unwrap();
    // More calls than one JSON-RPC batch holds, each with its own answer;
    // every seventh asks for a threshold above the set and reverts.
    let calls: Vec<_> = (0..MAX_BATCH_CALLS + 30)
        .map(|i| Factory::getAddressCall {
            validators: vec![Address::with_last_byte(i as u8 + 1), Address::repeat_byte(0xee)],
            threshold: if i % 7 == 0 { 3 } else { 2 },
        })
        .collect();
    let factory = core.merkle_root_ism_factory;
    let answers = client.call_batch(factory, &calls, block).await.unwrap();
    assert_eq!(answers.len(), calls.len());
    let mut distinct = std::collections::HashSet::new();
    for (i, (call, answer)) in calls.iter().zip(answers).enumerate() {
        if i % 7 == 0 {
            assert!(matches!(answer, Err(ChainError::Unavailable { .. })), "call {i}: {answer:?}");
            continue;
        }
        let alone = client.call(factory, call, block).await.unwrap();
        assert_eq!(answer.unwrap(), alone, "call {i}");
        assert!(distinct.insert(alone), "call {i} repeats an earlier answer");
    }
    assert!(
        client
            .call_batch(factory, &Vec::<Factory::getAddressCall>::new(), block)
            .await
            .unwrap()
            .is_empty()
    );
    node.stop().await;
}
