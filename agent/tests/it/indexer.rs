//! The insertion indexer against a rollup-core node: a block whose logs a
//! node left out is caught by the hook's own count at the final block, and
//! that count is read once per final block, not at every poll.

use std::time::{Duration, Instant};

use metalayer_agent::{
    chain::{ChainClient, RetryPolicy, RpcMetrics},
    config::ReorgPeriod,
    indexer::{EventKind, Indexer, IndexerConfig, IndexerMetrics, RECHECK, Step},
    store::AgentStore,
};
use metalayer_contracts::deploy_core;
use metalayer_rollup::{
    genesis::Genesis,
    node::{MiningMode, NodeConfig},
    rpc::RpcLimits,
};
use metalayer_tests::{core_config, dev, dev_provider, dispatch, start_node};
use prometheus::Registry;

const DOMAIN: u32 = 31337;

async fn caught_up(indexer: &Indexer) {
    for _ in 0..100 {
        if indexer.step().await.expect("indexer step") == Step::CaughtUp {
            return;
        }
    }
    panic!("the indexer never caught up");
}

#[tokio::test]
async fn skipped_logs_are_caught_by_the_count_read_once_per_final_block() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        data_dir: dir.path().join("node"),
        genesis: Genesis::default(),
        mining: MiningMode::Instant,
        pool_capacity: 100,
    };
    let node = start_node(config, RpcLimits::default()).await;
    let provider = dev_provider(&node);
    let core =
        deploy_core(provider.clone(), &core_config(DOMAIN, vec![dev(1).address()])).await.unwrap();
    let client = ChainClient::connect(
        "alpha",
        &[node.http_url()],
        RetryPolicy { backoff: Duration::from_millis(10), ..RetryPolicy::default() },
        RpcMetrics::unregistered(),
    )
    .await
    .unwrap();
    let store = AgentStore::open(&dir.path().join("store")).unwrap();
    let config = IndexerConfig {
        chain: "alpha".into(),
        domain: DOMAIN,
        kind: EventKind::Insertion,
        address: core.merkle_tree_hook,
        from: core.deployed_block,
        chunk: 100,
        reorg_period: ReorgPeriod::Blocks(0),
        poll_interval: Duration::from_millis(10),
    };
    let cursor = config.cursor_name();
    let indexer = Indexer::new(
        client.into(),
        store.clone(),
        config,
        IndexerMetrics::new(&Registry::new()).unwrap(),
    );
    let send =
        |body: &'static [u8]| dispatch(&provider, core.mailbox, DOMAIN, core.test_recipient, body);
    let eth_calls =
        || node.node.metrics.rpc_seconds.with_label_values(&["eth_call"]).get_sample_count();

    send(b"one").await;
    send(b"two").await;
    caught_up(&indexer).await;
    assert_eq!(store.contiguous_insertions(DOMAIN).unwrap(), 2);

    // More polls at the same final block read nothing from the chain (if
    // this machine stalled past the recheck time, a read is allowed).
    let (matched_at, calls) = (Instant::now(), eth_calls());
    for _ in 0..5 {
        assert_eq!(indexer.step().await.unwrap(), Step::CaughtUp);
    }
    if matched_at.elapsed() < RECHECK {
        assert_eq!(eth_calls(), calls, "the count was read again at the same block");
    }

    // A node that answered with no logs for the next block: the cursor
    // passed it and nothing was stored. The count at the new final block
    // is ahead, so the indexer re-reads from the last stored leaf's block.
    send(b"three").await;
    let head = node.node.chain().head_number().unwrap();
    store.set_cursor(&cursor, head + 1).unwrap();
    assert!(matches!(indexer.step().await.unwrap(), Step::Rewound(block) if block <= head));
    caught_up(&indexer).await;
    assert_eq!(store.contiguous_insertions(DOMAIN).unwrap(), 3);
}
