//! Validators offline, and a validator serving forged signatures.

use std::time::Duration;

use metalayer_relayer::op::{Reason, Stage};

use crate::{
    GATE,
    common::{Net, NetOptions, PATIENCE, assert_delivered_once, validator_address},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_five_offline_still_delivers() {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions::default()).await;
    net.start_validators([0, 2, 4]).await;
    let relayer = net.relayer("").await;
    let [a, b] = &net.chains;
    let m = a.dispatch(b, b"two offline").await;
    let back = b.dispatch(a, b"and back").await;
    assert_delivered_once(b, &[m]).await;
    assert_delivered_once(a, &[back]).await;
    relayer.kill().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_offline_waits_then_delivers() {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions::default()).await;
    net.start_validators(0..5).await;
    let relayer = net.relayer("").await;
    let first = {
        let [a, b] = &net.chains;
        a.dispatch(b, b"all online").await
    };
    assert_delivered_once(&net.chains[1], &[first]).await;
    net.stop_validators([0, 1, 2, 4]).await;
    let m = {
        let [a, b] = &net.chains;
        a.dispatch(b, b"four offline").await
    };
    let op = relayer.wait_retries(m.id(), 2).await;
    assert_eq!(op.stage, Stage::Prepare);
    assert_eq!(op.reason, Some(Reason::CouldNotFetchMetadata), "{:?}", op.detail);
    assert!(!net.chains[1].delivered(m.id()).await, "delivered with one signature of three");
    // The waiting message shows in beta's prepare queue (the gauges are
    // refreshed every second), and the queue empties once it is delivered.
    let prepare_queue = || {
        relayer.metric(
            "metalayer_submitter_queue_length",
            r#"queue_name="prepare_queue",remote="beta""#,
        )
    };
    let start = tokio::time::Instant::now();
    while prepare_queue() != 1.0 {
        assert!(start.elapsed() < PATIENCE, "prepare queue length {}", prepare_queue());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    net.start_validators([0, 1, 2, 4]).await;
    assert_delivered_once(&net.chains[1], &[m]).await;
    let start = tokio::time::Instant::now();
    while prepare_queue() != 0.0 {
        assert!(start.elapsed() < PATIENCE, "prepare queue length {}", prepare_queue());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relayer.kill().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_signatures_are_ignored_and_counted() {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions { tampering: vec![1], ..NetOptions::default() }).await;
    net.start_validators(0..5).await;
    let [a, b] = &net.chains;
    let messages = vec![a.dispatch(b, b"one").await, a.dispatch(b, b"two").await];
    // Every validator, the forger too, has published before the relayer
    // looks: three honest signatures alone would let it deliver before the
    // forged one exists, and nothing would be counted.
    net.wait_signed(0, 1).await;
    let relayer = net.relayer("").await;
    assert_delivered_once(b, &messages).await;
    let bad = format!(r#"validator="{}""#, validator_address(1));
    assert!(
        relayer.metric("metalayer_invalid_checkpoint_signatures_total", &bad) >= 1.0,
        "the forging validator was not counted"
    );
    for n in [0, 2, 3, 4] {
        let honest = format!(r#"validator="{}""#, validator_address(n));
        assert_eq!(relayer.metric("metalayer_invalid_checkpoint_signatures_total", &honest), 0.0);
    }
    relayer.kill().await;
    net.shutdown().await;
}
