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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayer_killed_while_its_delivery_is_pooled_waits_for_it_instead_of_paying_twice() {
    use alloy::providers::Provider;
    use metalayer_relayer::op::Reason;

    use crate::common::{RELAYER_KEY, dev, relayer_with_a_pooled_delivery};

    let _gate = GATE.acquire().await.expect("gate");
    // A zero base fee keeps the fillers' and the relayer's prices in order.
    let mut net = Net::new(NetOptions { base_fee: 0, ..NetOptions::default() }).await;
    net.start_validators(0..5).await;
    let message = {
        let [a, b] = &net.chains;
        a.dispatch(b, b"pooled").await
    };
    net.wait_signed(0, message.nonce).await;
    let b = &net.chains[1];
    // Better-paying fillers hold the delivery in beta's pool for about ten
    // seconds, and it is never re-sent at a higher price.
    let (relayer, toml) = relayer_with_a_pooled_delivery(&net).await;
    relayer.kill().await;
    assert!(!b.delivered(message.id()).await, "mined before the kill: the test proves nothing");
    // Restarted, the relayer finds the message in submit; `delivered` is
    // still false while its delivery waits in the pool.
    let relayer = net.relayer_from_toml(&toml).await;
    assert_delivered_once(b, std::slice::from_ref(&message)).await;
    relayer.wait_for(message.id(), Stage::Delivered).await;
    let sender = dev(RELAYER_KEY).address();
    let sent = b.provider.get_transaction_count(sender).await.expect("nonce");
    assert_eq!(sent, 1, "the relayer sent a second delivery transaction");
    let history = relayer.ctx.queue.history(message.id()).expect("history");
    assert!(history.iter().any(|h| h.reason == Some(Reason::Restarted)), "{history:?}");
    relayer.kill().await;
    net.shutdown().await;
}
