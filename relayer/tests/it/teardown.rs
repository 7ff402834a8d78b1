//! Networks one after another in one process, as the relay bench runs them
//! (batch delivery on, then off).
//!
//! Regression (issue #6, "batch off stalls at ≥ 1000 messages"): the bench
//! removed the first network's directory while its nodes were still mining
//! into it. sled's last flush on the deleted directory then blocked forever
//! holding sled's process-wide concurrency lock, so the next network's
//! miner blocked inside a block commit while holding its chain lock, every
//! RPC handler waiting on that lock blocked a runtime worker, and the second
//! run (always the batch-off one) never delivered anything.

use std::time::Duration;

use alloy::providers::Provider;
use metalayer_relayer::op::Stage;

use crate::{
    GATE,
    common::{Net, NetOptions, PATIENCE, burst},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_after_a_shut_down_one_still_delivers_everything() {
    let _gate = GATE.acquire().await.expect("gate");
    for round in 0..2 {
        let mut net = Net::new(NetOptions::default()).await;
        net.start_validators(0..5).await;
        let relayer = net.relayer(if round == 0 { "" } else { "batch_delivery = false" }).await;
        let [a, b] = &net.chains;
        let (to_b, to_a) = tokio::join!(burst(a, b, 150, 5), burst(b, a, 150, 6));
        let start = tokio::time::Instant::now();
        for (id, _) in to_b.iter().chain(&to_a) {
            while !matches!(relayer.stage(*id), Some(Stage::Confirm | Stage::Delivered)) {
                assert!(start.elapsed() < PATIENCE, "round {round}: message {id} not delivered");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // Leave unmined work behind, as a bench run's last blocks do.
        let _ = burst(a, b, 50, 7).await;
        relayer.kill().await;
        let nodes: Vec<_> = net.chains.iter().filter_map(|c| c.node()).collect();
        let provider = net.chains[0].provider.clone();
        let dir = net.path().to_owned();
        net.shutdown().await;
        assert!(!dir.exists(), "round {round}: the network's directory is left behind");
        for node in nodes {
            assert!(node.upgrade().is_none(), "round {round}: a node outlived its network");
        }
        assert!(
            provider.get_block_number().await.is_err(),
            "round {round}: a node still serves after its network was shut down"
        );
    }
}
