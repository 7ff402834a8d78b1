//! Messages both ways, delivered exactly once, under each ISM type.

use std::collections::HashSet;

use metalayer_contracts::DefaultIsm;
use metalayer_relayer::op::Stage;

use crate::{
    GATE,
    common::{Net, NetOptions, assert_delivered_once},
};

async fn both_ways(ism: DefaultIsm, extra: &str) {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions { ism, ..NetOptions::default() }).await;
    net.start_validators(0..5).await;
    let relayer = net.relayer(extra).await;
    let [a, b] = &net.chains;
    let mut to_b = Vec::new();
    let mut to_a = Vec::new();
    for i in 0..3u8 {
        to_b.push(a.dispatch(b, &[i; 40]).await);
        to_a.push(b.dispatch(a, &[i + 100; 7]).await);
    }
    assert_delivered_once(b, &to_b).await;
    assert_delivered_once(a, &to_a).await;
    for m in to_b.iter().chain(&to_a) {
        relayer.wait_for(m.id(), Stage::Delivered).await;
    }
    assert_eq!(
        relayer.metric("metalayer_messages_processed_count", r#"origin="alpha",remote="beta""#),
        3.0
    );
    assert_eq!(
        relayer.metric("metalayer_messages_processed_count", r#"origin="beta",remote="alpha""#),
        3.0
    );
    assert_eq!(
        relayer.metric(
            "metalayer_last_known_message_nonce",
            r#"origin="alpha",phase="message_processed""#
        ),
        2.0
    );
    assert!(relayer.metric("metalayer_gas_spent_total", "beta") > 0.0);
    relayer.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_id_ism_both_ways_exactly_once() {
    both_ways(DefaultIsm::MessageId, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merkle_root_ism_both_ways_exactly_once() {
    both_ways(DefaultIsm::MerkleRoot, "batch_delivery = false").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_delivery_carries_several_messages_per_transaction() {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net =
        Net::new(NetOptions { ism: DefaultIsm::MerkleRoot, ..NetOptions::default() }).await;
    let messages = {
        let [a, b] = &net.chains;
        let mut messages = Vec::new();
        for i in 0..8u8 {
            messages.push(a.dispatch(b, &[i; 32]).await);
        }
        messages
    };
    // A backlog the relayer finds signed when it starts: prepared in one pass.
    net.start_validators(0..5).await;
    net.wait_signed(0, 7).await;
    let relayer = net.relayer("").await;
    let b = &net.chains[1];
    assert_delivered_once(b, &messages).await;
    let mut txs = HashSet::new();
    for m in &messages {
        relayer.wait_for(m.id(), Stage::Delivered).await;
        let op = relayer.ctx.queue.get(m.id()).expect("queue").expect("op");
        txs.insert(op.tx_hash.expect("delivered by a transaction"));
    }
    assert!(
        txs.len() < messages.len(),
        "{} transactions for {} messages: no batch",
        txs.len(),
        messages.len()
    );
    relayer.kill().await;
}
