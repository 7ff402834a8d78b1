//! Killing the relayer mid-burst and starting it again.

use std::time::Duration;

use metalayer_relayer::op::Stage;

use crate::{
    GATE,
    common::{Net, NetOptions, PATIENCE, assert_delivered_once},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_relayer_resumes_and_delivers_each_message_once() {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions::default()).await;
    net.start_validators(0..5).await;
    let (to_b, to_a) = {
        let [a, b] = &net.chains;
        let mut to_b = Vec::new();
        let mut to_a = Vec::new();
        for i in 0..10u8 {
            to_b.push(a.dispatch(b, &[i; 16]).await);
            to_a.push(b.dispatch(a, &[i; 17]).await);
        }
        (to_b, to_a)
    };
    let relayer = net.relayer("").await;
    // Kill as soon as the first delivery is under way.
    let start = tokio::time::Instant::now();
    while !to_b.iter().chain(&to_a).any(|m| {
        matches!(relayer.stage(m.id()), Some(Stage::Submit | Stage::Confirm | Stage::Delivered))
    }) {
        assert!(start.elapsed() < PATIENCE, "nothing was ever prepared");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    relayer.kill().await;
    let relayer = net.relayer("").await;
    let [a, b] = &net.chains;
    assert_delivered_once(b, &to_b).await;
    assert_delivered_once(a, &to_a).await;
    for m in to_b.iter().chain(&to_a) {
        relayer.wait_for(m.id(), Stage::Delivered).await;
    }
    relayer.kill().await;
    net.shutdown().await;
}
