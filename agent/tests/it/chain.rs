//! `ChainClient` against a rollup-core node on loopback with the core
//! contracts deployed.

use alloy::primitives::Address;
use alloy::sol_types::SolCall;
use metalayer_agent::chain::{
    BATCH_REFUSALS, ChainClient, ChainError, MAX_BATCH_CALLS, MAX_MULTICALL_CALLS, RetryPolicy,
    RpcMetrics,
};
use metalayer_contracts::{
    CoreConfig, DefaultIsm,
    bindings::{Multicall3, StaticMerkleRootMultisigIsmFactory as Factory},
    deploy_core,
};
use metalayer_rollup::{
    genesis::Genesis,
    node::{MiningMode, NodeConfig},
    rpc::RpcLimits,
    service::RunningNode,
};
use metalayer_tests::{dev, dev_provider, start_node};

/// Calls to the MerkleRoot ISM factory's `getAddress`, each with its own
/// answer; every seventh asks for a threshold above the set and reverts.
fn factory_calls(n: usize) -> Vec<Factory::getAddressCall> {
    (0..n)
        .map(|i| Factory::getAddressCall {
            validators: vec![Address::with_last_byte(i as u8 + 1), Address::repeat_byte(0xee)],
            threshold: if i % 7 == 0 { 3 } else { 2 },
        })
        .collect()
}

/// A node with the core contracts (its RPC under `limits`) and a client.
async fn deployed(
    dir: &std::path::Path,
    limits: RpcLimits,
    metrics: RpcMetrics,
) -> (RunningNode, Address, ChainClient) {
    deployed_on(dir, Genesis::default(), limits, metrics).await
}

/// [`deployed`] on a chain that starts from `genesis`.
async fn deployed_on(
    dir: &std::path::Path,
    genesis: Genesis,
    limits: RpcLimits,
    metrics: RpcMetrics,
) -> (RunningNode, Address, ChainClient) {
    let config = NodeConfig {
        data_dir: dir.join("node"),
        genesis,
        mining: MiningMode::Instant,
        pool_capacity: 100,
    };
    let node = start_node(config, limits).await;
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
        RetryPolicy { backoff: std::time::Duration::from_millis(10), ..RetryPolicy::default() },
        metrics,
    )
    .await
    .unwrap();
    (node, core.merkle_root_ism_factory, client)
}

/// Checks `answers` to [`factory_calls`] against the same calls made alone.
async fn check_answers(
    client: &ChainClient,
    factory: Address,
    calls: &[Factory::getAddressCall],
    answers: Vec<Result<Address, ChainError>>,
    block: u64,
) {
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
}

#[tokio::test]
async fn a_batch_of_reads_answers_each_call_in_order_and_fails_calls_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (node, factory, client) =
        deployed(dir.path(), RpcLimits::default(), RpcMetrics::unregistered()).await;
    let block = client.block_number().await.unwrap();
    // More calls than one JSON-RPC batch holds.
    let calls = factory_calls(MAX_BATCH_CALLS + 30);
    let answers = client.call_batch(factory, &calls, block).await;
    check_answers(&client, factory, &calls, answers, block).await;
    assert!(client.call_batch(factory, &[] as &[Factory::getAddressCall], block).await.is_empty());
    node.stop().await;
}

/// Requests `registry` counted for `method`.
fn requests_for(registry: &prometheus::Registry, method: &str) -> u64 {
    registry
        .gather()
        .iter()
        .filter(|family| family.name() == "rpc_requests_total")
        .flat_map(|family| family.get_metric())
        .filter(|m| m.get_label().iter().any(|l| l.value() == method))
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

#[tokio::test]
async fn on_a_chain_with_multicall3_reads_go_as_one_aggregate3_per_hundred_calls() {
    let dir = tempfile::tempdir().unwrap();
    let mut genesis = Genesis::default();
    genesis.preinstall_multicall3();
    let registry = prometheus::Registry::new();
    let (node, factory, client) =
        deployed_on(dir.path(), genesis, RpcLimits::default(), RpcMetrics::new(&registry).unwrap())
            .await;
    let block = client.block_number().await.unwrap();
    let calls = factory_calls(MAX_MULTICALL_CALLS + 30);
    let answers = client.call_batch(factory, &calls, block).await;
    // Two aggregate3 reads and no eth_call of the calls themselves.
    let aggregate3 = Multicall3::aggregate3Call::SIGNATURE;
    assert_eq!(requests_for(&registry, aggregate3), 2);
    assert_eq!(requests_for(&registry, Factory::getAddressCall::SIGNATURE), 0);
    // The same answers as each call made alone; reverting calls fail alone.
    check_answers(&client, factory, &calls, answers, block).await;
    node.stop().await;
}

#[tokio::test]
async fn on_a_chain_without_multicall3_reads_go_as_json_rpc_batches() {
    let dir = tempfile::tempdir().unwrap();
    let registry = prometheus::Registry::new();
    let (node, factory, client) =
        deployed(dir.path(), RpcLimits::default(), RpcMetrics::new(&registry).unwrap()).await;
    let block = client.block_number().await.unwrap();
    let calls = factory_calls(MAX_BATCH_CALLS + 30);
    let answers = client.call_batch(factory, &calls, block).await;
    assert_eq!(requests_for(&registry, Multicall3::aggregate3Call::SIGNATURE), 0);
    // One request per batch of a hundred.
    assert_eq!(requests_for(&registry, Factory::getAddressCall::SIGNATURE), 2);
    check_answers(&client, factory, &calls, answers, block).await;
    node.stop().await;
}

#[tokio::test]
async fn a_node_that_refuses_large_batches_is_read_one_call_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    // The node takes at most 5 calls a batch, so every batch of ours fails.
    let limits = RpcLimits { max_batch: 5, ..RpcLimits::default() };
    let registry = prometheus::Registry::new();
    let (node, factory, client) =
        deployed(dir.path(), limits, RpcMetrics::new(&registry).unwrap()).await;
    let block = client.block_number().await.unwrap();
    // Requests the client has made for `getAddress` so far.
    let requests = || requests_for(&registry, Factory::getAddressCall::SIGNATURE);
    // Each read still answers every call: the refused batch's calls are
    // read again one per request. After BATCH_REFUSALS refused batches the
    // client stops sending batches (one request fewer per read), with the
    // same answers.
    let mut sent = Vec::new();
    for _ in 0..BATCH_REFUSALS + 2 {
        let calls = factory_calls(12);
        let before = requests();
        let answers = client.call_batch(factory, &calls, block).await;
        sent.push(requests() - before);
        check_answers(&client, factory, &calls, answers, block).await;
    }
    let alone = sent[BATCH_REFUSALS];
    let expected: Vec<u64> = (0..BATCH_REFUSALS + 2)
        .map(|r| if r < BATCH_REFUSALS { alone + 1 } else { alone })
        .collect();
    assert_eq!(sent, expected, "requests per read");
    node.stop().await;
}
