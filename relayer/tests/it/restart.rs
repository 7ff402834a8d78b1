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

    use crate::common::{
        RELAYER_KEY, dev, one_and_a_half_suggested, relayer_with_a_pooled_delivery,
    };

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
    let price = one_and_a_half_suggested(&net).await;
    let (relayer, toml, _) = relayer_with_a_pooled_delivery(&net, 200, price).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_replaces_a_delivery_the_base_fee_left_behind_and_delivers_again() {
    use alloy::providers::Provider;
    use metalayer_relayer::op::Reason;

    use crate::common::{RELAYER_KEY, dev, relayer_with_a_pooled_delivery};

    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions::default()).await;
    net.start_validators(0..5).await;
    let message = {
        let [a, b] = &net.chains;
        a.dispatch(b, b"left behind").await
    };
    net.wait_signed(0, message.nonce).await;
    let b = &net.chains[1];
    // Empty blocks have brought the base fee near zero. Legacy fillers
    // paying 10 gwei keep beta's blocks full and its base fee rising by an
    // eighth a block for about 90 blocks, then hold it near 10 gwei while
    // they last: the first relayer's delivery (tip 1.1 gwei, fee cap about
    // the same, never raised) is outbid, then left below the base fee until
    // the fillers are gone and the base fee has fallen back.
    const FILLERS: u64 = 400;
    let (relayer, toml, filler) =
        relayer_with_a_pooled_delivery(&net, FILLERS, 10_000_000_000).await;
    let sender = dev(RELAYER_KEY).address();
    let start = tokio::time::Instant::now();
    loop {
        let base_fee = b
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .expect("block")
            .and_then(|block| block.header.base_fee_per_gas)
            .expect("base fee");
        if base_fee > 3_000_000_000 {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "no pooled delivery under a base fee above its cap");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    relayer.kill().await;
    assert!(!b.delivered(message.id()).await, "mined before the kill: the test proves nothing");
    // Restarted with raises every 100 ms, the relayer replaces the pooled
    // delivery with an empty transfer that outbids the fillers, then
    // delivers the message again while fillers remain.
    let toml = toml.replace("escalate_after_ms = 600000", "escalate_after_ms = 100");
    let relayer = net.relayer_from_toml(&toml).await;
    assert_delivered_once(b, std::slice::from_ref(&message)).await;
    let fillers_mined = b.provider.get_transaction_count(filler).await.expect("filler nonce");
    assert!(
        fillers_mined < FILLERS,
        "delivered only after every filler: the pooled delivery was waited for, not replaced"
    );
    relayer.wait_for(message.id(), Stage::Delivered).await;
    // The empty transfer took the first nonce; the delivery came after it.
    let op = relayer.ctx.queue.get(message.id()).expect("queue").expect("op");
    let delivery = op.tx_hash.expect("delivered by a transaction");
    let delivery = b.provider.get_transaction_by_hash(delivery).await.expect("rpc").expect("tx");
    assert_eq!(alloy::consensus::Transaction::nonce(&delivery), 1);
    let history = relayer.ctx.queue.history(message.id()).expect("history");
    assert!(history.iter().any(|h| h.reason == Some(Reason::Restarted)), "{history:?}");
    let sent = b.provider.get_transaction_count(sender).await.expect("nonce");
    assert_eq!(sent, 2, "one empty transfer and one delivery");
    relayer.kill().await;
    net.shutdown().await;
}
