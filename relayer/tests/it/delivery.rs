//! Messages both ways, delivered exactly once, under each ISM type.

use std::collections::{HashMap, HashSet};

use alloy::primitives::B256;

use metalayer_contracts::{DefaultIsm, bindings::Mailbox};
use metalayer_relayer::op::{Reason, Stage};

use crate::{
    GATE,
    common::{Chain, Net, NetOptions, RELAYER_KEY, RunningRelayer, assert_delivered_once, dev},
};

/// Sets `recipient`'s ISM (its owner is dev account 0).
async fn set_ism<P: alloy::providers::Provider>(
    recipient: &metalayer_contracts::bindings::TestRecipient::TestRecipientInstance<P>,
    ism: alloy::primitives::Address,
) {
    let pending = recipient.setInterchainSecurityModule(ism).send().await.expect("set ISM");
    assert!(pending.get_receipt().await.expect("mined").status(), "setting the ISM reverted");
}

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
    assert!(relayer.metric("metalayer_tokens_spent_wei_total", "beta") > 0.0);
    let built = relayer.metric(
        "metalayer_metadata_build_duration_seconds_count",
        r#"origin="alpha",remote="beta",status="ok""#,
    );
    assert!(built >= 3.0, "{built} metadata builds for alpha to beta");
    // Read after each submit round: what the signer holds, below the
    // dev accounts' starting balance once gas is paid.
    let balance = relayer.metric("metalayer_wallet_balance", r#"chain="beta""#);
    let start: f64 = metalayer_rollup::genesis::Genesis::default()
        .dev_balance
        .to_string()
        .parse()
        .expect("balance");
    assert!(balance > 0.0 && balance < start, "wallet balance {balance}");
    relayer.kill().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_id_ism_both_ways_exactly_once() {
    both_ways(DefaultIsm::MessageId, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merkle_root_ism_both_ways_exactly_once() {
    both_ways(DefaultIsm::MerkleRoot, "batch_delivery = false").await;
}

/// Eight messages each way found signed when the relayer starts: on each
/// destination delivered in fewer transactions than messages, each sent to
/// `expected_to` (the Mailbox or Multicall3) and recorded with that
/// processor.
async fn several_per_transaction(ism: DefaultIsm, via_multicall: bool) {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions { ism, ..NetOptions::default() }).await;
    let (to_b, to_a) = {
        let [a, b] = &net.chains;
        let (mut to_b, mut to_a) = (Vec::new(), Vec::new());
        for i in 0..8u8 {
            to_b.push(a.dispatch(b, &[i; 32]).await);
            to_a.push(b.dispatch(a, &[i + 100; 32]).await);
        }
        (to_b, to_a)
    };
    // A backlog the relayer finds signed when it starts: prepared in one pass.
    net.start_validators(0..5).await;
    net.wait_signed(0, 7).await;
    net.wait_signed(1, 7).await;
    let relayer = net.relayer("").await;
    let [a, b] = &net.chains;
    shared_transactions(&relayer, b, &to_b, via_multicall).await;
    shared_transactions(&relayer, a, &to_a, via_multicall).await;
    relayer.kill().await;
    net.shutdown().await;
}

/// Checks `messages` were delivered once on `to`, several to a transaction
/// at least once, each shared transaction sent to the Mailbox (our batch
/// delivery) or Multicall3 as `via_multicall` says, and the processor each
/// recorded.
async fn shared_transactions(
    relayer: &RunningRelayer,
    to: &Chain,
    messages: &[metalayer_protocol::Message],
    via_multicall: bool,
) {
    use alloy::providers::Provider;
    use metalayer_contracts::MULTICALL3_ADDRESS;
    assert_delivered_once(to, messages).await;
    let expected_to = if via_multicall { MULTICALL3_ADDRESS } else { to.core.mailbox };
    let mailbox = Mailbox::new(to.core.mailbox, &to.provider);
    let relayer_address = dev(RELAYER_KEY).address();
    // Messages by the transaction that delivered them. A message whose tree
    // insertion the relayer had not indexed by its first pass is prepared a
    // pass later and may go alone, straight to the Mailbox; every shared
    // transaction must go to `expected_to`.
    let mut txs: HashMap<B256, Vec<B256>> = HashMap::new();
    for m in messages {
        relayer.wait_for(m.id(), Stage::Delivered).await;
        let op = relayer.ctx.queue.get(m.id()).expect("queue").expect("op");
        txs.entry(op.tx_hash.expect("delivered by a transaction")).or_default().push(m.id());
    }
    for (hash, ids) in &txs {
        let tx = to.provider.get_transaction_by_hash(*hash).await.expect("rpc").expect("tx");
        let called = alloy::consensus::Transaction::to(&tx).expect("a call");
        if ids.len() > 1 {
            assert_eq!(called, expected_to, "transaction {hash} carried {} messages", ids.len());
        } else {
            assert_eq!(called, to.core.mailbox, "a message sent alone goes to the Mailbox");
        }
        // The Mailbox records who called `process`: Multicall3 for what it
        // carried, the relayer's signer for a direct call.
        let want = if called == MULTICALL3_ADDRESS { MULTICALL3_ADDRESS } else { relayer_address };
        for id in ids {
            let processor = mailbox.processor(*id).call().await.expect("processor");
            assert_eq!(processor, want, "processor of {id}");
        }
    }
    assert!(
        txs.len() < messages.len() && txs.values().any(|ids| ids.len() > 1),
        "{} transactions for {} messages to {}: no batch",
        txs.len(),
        messages.len(),
        to.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_delivery_carries_several_messages_per_transaction() {
    several_per_transaction(DefaultIsm::MerkleRoot, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_id_deliveries_share_multicall3_transactions() {
    several_per_transaction(DefaultIsm::MessageId, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_delivery_leaves_its_multicall3_group_and_the_rest_are_delivered() {
    a_failing_delivery_among_others(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_batch_delivery_a_failing_delivery_is_never_sent() {
    a_failing_delivery_among_others(false).await;
}

/// Six good messages and, among them, one whose recipient's ISM is paused
/// (its `process` reverts), relayed with `batch_delivery` on or off. On,
/// the good ones share Multicall3 transactions; off, each is sent alone.
/// Either way the failing one is dry-run alone, which records why it fails,
/// and is never sent.
async fn a_failing_delivery_among_others(batch: bool) {
    use alloy::providers::Provider;
    use metalayer_contracts::{
        MULTICALL3_ADDRESS,
        bindings::{PausableIsm, TestRecipient},
    };

    let _gate = GATE.acquire().await.expect("gate");
    let mut net =
        Net::new(NetOptions { ism: DefaultIsm::MessageId, ..NetOptions::default() }).await;
    // A second recipient on beta behind a paused ISM: its message's
    // `process` reverts, and with it any Multicall3 group it is in.
    let blocked = {
        let p = &net.chains[1].provider;
        let paused = PausableIsm::deploy(p, dev(0).address()).await.expect("paused ISM");
        let receipt =
            paused.pause().send().await.expect("pause").get_receipt().await.expect("mined");
        assert!(receipt.status());
        let recipient = TestRecipient::deploy(p, dev(0).address()).await.expect("recipient");
        set_ism(&recipient, *paused.address()).await;
        *recipient.address()
    };
    let (good, bad) = {
        let [a, b] = &net.chains;
        let mut good = Vec::new();
        for i in 0..3u8 {
            good.push(a.dispatch(b, &[i; 32]).await);
        }
        let bad =
            metalayer_tests::dispatch(&a.provider, a.core.mailbox, b.domain, blocked, b"no").await;
        for i in 3..6u8 {
            good.push(a.dispatch(b, &[i; 32]).await);
        }
        (good, bad)
    };
    net.start_validators(0..5).await;
    net.wait_signed(0, 6).await;
    let relayer = net.relayer(if batch { "" } else { "batch_delivery = false" }).await;
    let b = &net.chains[1];
    assert_delivered_once(b, &good).await;
    let mut txs = HashSet::new();
    for m in &good {
        relayer.wait_for(m.id(), Stage::Delivered).await;
        let op = relayer.ctx.queue.get(m.id()).expect("queue").expect("op");
        txs.insert(op.tx_hash.expect("delivered by a transaction"));
    }
    // Every transaction the relayer sent delivered a good message.
    let sent = b.provider.get_transaction_count(dev(RELAYER_KEY).address()).await.expect("nonce");
    assert_eq!(sent, txs.len() as u64, "the relayer sent a transaction that delivered nothing");
    if batch {
        assert!(txs.len() < good.len(), "{} transactions for {} messages", txs.len(), good.len());
        // Groups that held it were split in halves: what ended up alone
        // went to the Mailbox, the rest through Multicall3.
        let mut through_multicall = 0;
        for tx in &txs {
            let tx = b.provider.get_transaction_by_hash(*tx).await.expect("rpc").expect("tx");
            let to = alloy::consensus::Transaction::to(&tx);
            assert!(to == Some(MULTICALL3_ADDRESS) || to == Some(b.core.mailbox), "{to:?}");
            through_multicall += usize::from(to == Some(MULTICALL3_ADDRESS));
        }
        assert!(through_multicall > 0, "no delivery went through Multicall3");
    } else {
        assert_eq!(txs.len(), good.len(), "batch delivery off, yet messages shared transactions");
        for tx in &txs {
            let tx = b.provider.get_transaction_by_hash(*tx).await.expect("rpc").expect("tx");
            assert_eq!(alloy::consensus::Transaction::to(&tx), Some(b.core.mailbox));
        }
    }
    // The failing message was estimated alone (split out of its group when
    // batching) and never sent.
    assert_never_delivered(&relayer, b, bad.id()).await;
    relayer.kill().await;
    net.shutdown().await;
}

/// Message `id` was estimated alone, which recorded why it fails, and was
/// never delivered.
async fn assert_never_delivered(relayer: &RunningRelayer, to: &Chain, id: B256) {
    let history = relayer.ctx.queue.history(id).expect("history");
    assert!(
        history
            .iter()
            .any(|h| h.reason == Some(Reason::ErrorEstimatingGas) && h.detail.contains("revert")),
        "{history:?}"
    );
    let mailbox = Mailbox::new(to.core.mailbox, &to.provider);
    assert!(!mailbox.delivered(id).call().await.expect("delivered"));
}

/// Gives `chain`'s recipient Routing(`origin` → Aggregation(2 of [paused
/// Null, Null, MerkleRoot, MessageId])). The paused module's metadata
/// (none) builds but its `verify` reverts: the relayer's dry-run must pass
/// over it, or every delivery would revert.
async fn route_over_aggregation(chain: &Chain, origin: u32) {
    use metalayer_contracts::bindings::{
        AggregationIsm, DomainRoutingIsm, PausableIsm, TestRecipient,
    };

    let p = &chain.provider;
    let paused = PausableIsm::deploy(p, dev(0).address()).await.expect("paused ISM");
    let receipt = paused.pause().send().await.expect("pause").get_receipt().await.expect("mined");
    assert!(receipt.status());
    let null = PausableIsm::deploy(p, dev(0).address()).await.expect("null ISM");
    let modules = vec![
        *paused.address(),
        *null.address(),
        chain.core.merkle_root_ism,
        chain.core.message_id_ism,
    ];
    let aggregation = AggregationIsm::deploy(p, modules, 2).await.expect("aggregation ISM");
    let routing =
        DomainRoutingIsm::deploy(p, dev(0).address(), vec![origin], vec![*aggregation.address()])
            .await
            .expect("routing ISM");
    set_ism(&TestRecipient::new(chain.core.test_recipient, p), *routing.address()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_over_aggregation_with_a_null_and_a_paused_module_both_ways() {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions::default()).await;
    net.start_validators(0..5).await;
    {
        let [a, b] = &net.chains;
        route_over_aggregation(b, a.domain).await;
        route_over_aggregation(a, b.domain).await;
    }
    let relayer = net.relayer("").await;
    let [a, b] = &net.chains;
    let to_b = vec![a.dispatch(b, b"routed").await, a.dispatch(b, b"aggregated").await];
    let to_a = vec![b.dispatch(a, b"routed back").await];
    assert_delivered_once(b, &to_b).await;
    assert_delivered_once(a, &to_a).await;
    for m in to_b.iter().chain(&to_a) {
        relayer.wait_for(m.id(), Stage::Delivered).await;
        let op = relayer.ctx.queue.get(m.id()).expect("queue").expect("op");
        assert!(!op.batchable, "a routing ISM does not take batches");
    }
    relayer.kill().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_split_to_fit_the_destination_block_gas_limit() {
    use alloy::{consensus::Transaction as _, providers::Provider};
    const BLOCK_GAS: u64 = 4_000_000;
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions {
        ism: DefaultIsm::MerkleRoot,
        block_gas_limit: BLOCK_GAS,
        ..NetOptions::default()
    })
    .await;
    // 200 messages in one batch would need about 6.5M gas: more than a block.
    let sent = {
        let [a, b] = &net.chains;
        crate::common::burst(a, b, 200, 5).await
    };
    net.start_validators(0..5).await;
    net.wait_signed(0, 199).await;
    let relayer = net.relayer("max_batch_size = 200").await;
    let b = &net.chains[1];
    let mut txs = HashSet::new();
    for (id, _) in &sent {
        relayer.wait_for(*id, Stage::Delivered).await;
        let op = relayer.ctx.queue.get(*id).expect("queue").expect("op");
        txs.insert(op.tx_hash.expect("delivered by a transaction"));
        // Rounds overlap (one is estimated and sent while the last waits
        // to be mined) but never share a message: no batch of ours reverts
        // on a message an earlier round delivered.
        let history = relayer.ctx.queue.history(*id).expect("history");
        assert!(
            history.iter().all(|h| h.reason != Some(metalayer_relayer::op::Reason::Reverted)),
            "{id}: {history:?}"
        );
    }
    for tx in &txs {
        let tx = b.provider.get_transaction_by_hash(*tx).await.expect("rpc").expect("tx");
        assert!(tx.gas_limit() <= BLOCK_GAS, "a transaction asks for {} gas", tx.gas_limit());
    }
    assert!(
        txs.len() >= 2 && txs.len() <= 20,
        "{} transactions for {} messages: not split into block-sized batches",
        txs.len(),
        sent.len()
    );
    relayer.kill().await;
    net.shutdown().await;
}
