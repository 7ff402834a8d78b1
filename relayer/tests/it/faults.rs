//! Faults around the relayer: a flaky destination RPC, a delivery stuck
//! behind better-paying transactions (one priced out past every raise, one
//! following a rising base fee), a delivery that reverts when mined,
//! a delivery reorged out of the destination, and `kill -9` of the relayer
//! binary mid-burst.

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use alloy::{providers::Provider, rpc::types::Filter, sol_types::SolEvent};
use axum::{Router, body::Bytes, http::StatusCode, response::IntoResponse, routing::post};
use metalayer_contracts::bindings::Mailbox;
use metalayer_protocol::Message;
use metalayer_relayer::{
    op::{Reason, Stage},
    sender::MAX_ESCALATIONS,
};
use metalayer_tests::dev;
use tokio::net::TcpListener;

use crate::{
    GATE,
    common::{
        Net, NetOptions, PATIENCE, RELAYER_KEY, RunningRelayer, assert_delivered_once, fill_blocks,
    },
};

/// A JSON-RPC proxy to `upstream` that answers every other request with
/// HTTP 503. Returns its URL and the number of requests seen.
async fn flaky_proxy(upstream: String) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let client = reqwest::Client::new();
    let app = Router::new().route(
        "/",
        post(move |body: Bytes| {
            let (client, upstream, count) = (client.clone(), upstream.clone(), count.clone());
            async move {
                if count.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
                    return (StatusCode::SERVICE_UNAVAILABLE, "flaky").into_response();
                }
                let forwarded = client
                    .post(&upstream)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match forwarded {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let bytes = r.bytes().await.unwrap_or_default();
                        (
                            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                            [("content-type", "application/json")],
                            bytes,
                        )
                            .into_response()
                    }
                    Err(_) => StatusCode::BAD_GATEWAY.into_response(),
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_rpc_failing_every_other_request_still_delivers_everything() {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions::default()).await;
    net.start_validators(0..5).await;
    let direct = net.chains[1].url.clone();
    let (proxy, seen) = flaky_proxy(direct.clone()).await;
    let toml = net.relayer_toml("").replace(&format!("\"{direct}\""), &format!("\"{proxy}\""));
    let relayer = net.relayer_from_toml(&toml).await;
    let [a, b] = &net.chains;
    let mut to_b = Vec::new();
    for i in 0..4u8 {
        to_b.push(a.dispatch(b, &[i; 8]).await);
    }
    let back = b.dispatch(a, b"back").await;
    assert_delivered_once(b, &to_b).await;
    assert_delivered_once(a, &[back]).await;
    for m in &to_b {
        relayer.wait_for(m.id(), Stage::Delivered).await;
    }
    assert!(seen.load(Ordering::SeqCst) > 20, "the relayer did not go through the proxy");
    relayer.kill().await;
    net.shutdown().await;
}

/// A delivery raced against fillers, and where it stands once delivered.
struct Race {
    net: Net,
    message: Message,
    relayer: RunningRelayer,
    /// Fillers mined by the time the message was seen delivered.
    fillers_mined: u64,
    /// What each filler pays a gas.
    filler_price: u128,
}

/// Every validator signs a message from alpha to beta; then `fillers`
/// legacy transactions, each using half a block and paying `price` of
/// beta's suggested gas price, keep beta's blocks full, and a relayer that
/// raises its fees every `escalate_ms` starts. Returns once the message is
/// delivered, checked to be delivered once.
async fn race_fillers(
    options: NetOptions,
    body: &[u8],
    fillers: u64,
    price: impl FnOnce(u128) -> u128,
    escalate_ms: u64,
) -> Race {
    let mut net = Net::new(options).await;
    net.start_validators(0..5).await;
    let [a, b] = &net.chains;
    let message = a.dispatch(b, body).await;
    net.wait_signed(0, message.nonce).await;
    let filler_price = price(b.provider.get_gas_price().await.expect("gas price"));
    let filler = fill_blocks(b, 7, fillers, filler_price).await;
    let toml = net
        .relayer_toml("")
        .replace("escalate_after_ms = 5000", &format!("escalate_after_ms = {escalate_ms}"));
    let relayer = net.relayer_from_toml(&toml).await;
    assert_delivered_once(b, std::slice::from_ref(&message)).await;
    let fillers_mined = b.provider.get_transaction_count(filler).await.expect("filler nonce");
    Race { net, message, relayer, fillers_mined, filler_price }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_stuck_behind_better_paying_transactions_is_re_sent_at_a_higher_price() {
    let _gate = GATE.acquire().await.expect("gate");
    // A zero base fee stays within a few wei of zero however full the
    // blocks: the prices keep their order for the whole test. The relayer
    // offers 1.1 times the node's suggested tip and raises it by a quarter
    // each time: the fillers' 1.5 times outbid its first offer and its
    // first raise, not its second. Two fillers a 100 ms block: 400 would
    // keep the blocks full for 20 s.
    const FILLERS: u64 = 400;
    let Race { net, message, relayer, fillers_mined, filler_price } = race_fillers(
        NetOptions { base_fee: 0, ..NetOptions::default() },
        b"stuck",
        FILLERS,
        |suggested| suggested * 3 / 2,
        500,
    )
    .await;
    assert!(
        fillers_mined < FILLERS,
        "every filler was mined before the delivery: it was never raised past them"
    );
    let escalations = relayer.metric("metalayer_transaction_escalations_total", "chain=\"beta\"");
    assert!(escalations >= 2.0, "{escalations} escalations");
    let b = &net.chains[1];
    let filter = Filter::new()
        .address(b.core.mailbox)
        .event_signature(Mailbox::ProcessId::SIGNATURE_HASH)
        .topic1(message.id())
        .from_block(0);
    let logs = b.provider.get_logs(&filter).await.expect("logs");
    let hash = logs[0].transaction_hash.expect("delivery transaction");
    let receipt = b.provider.get_transaction_receipt(hash).await.expect("receipt").expect("mined");
    assert!(
        receipt.effective_gas_price > filler_price,
        "delivered at {} a gas, fillers pay {filler_price}",
        receipt.effective_gas_price
    );
    relayer.kill().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_priced_out_past_every_escalation_keeps_its_nonce_and_is_sent_once() {
    let _gate = GATE.acquire().await.expect("gate");
    // The relayer's last raise offers 1.1 * 1.25^6 = 4.2 times the
    // suggested tip, which stays put (base fee zero): fillers paying 5 times
    // keep it out of every block for about five seconds, seven times as
    // long as its raises take.
    const FILLERS: u64 = 100;
    let Race { net, message, relayer, fillers_mined, .. } = race_fillers(
        NetOptions { base_fee: 0, ..NetOptions::default() },
        b"priced out",
        FILLERS,
        |suggested| suggested * 5,
        100,
    )
    .await;
    assert_eq!(
        fillers_mined, FILLERS,
        "the delivery got in before the fillers it could not outbid"
    );
    // Nothing of the relayer's is left in the pool, and it sent one
    // transaction: a second, under a new nonce, would have waited behind the
    // first and reverted once mined.
    let b = &net.chains[1];
    let sender = dev(RELAYER_KEY).address();
    let start = tokio::time::Instant::now();
    loop {
        let pending = b.provider.get_transaction_count(sender).pending().await.expect("nonce");
        let mined = b.provider.get_transaction_count(sender).await.expect("nonce");
        if pending == mined {
            assert_eq!(mined, 1, "the relayer sent {mined} transactions for one message");
            break;
        }
        assert!(start.elapsed() < PATIENCE, "the relayer's transactions stay pooled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let escalations = relayer.metric("metalayer_transaction_escalations_total", "chain=\"beta\"");
    assert_eq!(escalations, f64::from(MAX_ESCALATIONS), "raised past its cap");
    let history = relayer.ctx.queue.history(message.id()).expect("history");
    assert!(history.iter().all(|h| h.reason != Some(Reason::ErrorSubmitting)), "{history:?}");
    relayer.kill().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_raises_a_delivery_follows_a_rising_base_fee() {
    let _gate = GATE.acquire().await.expect("gate");
    // Empty blocks have brought the base fee near zero by the time the
    // relayer sends: its first tip is 1.1 gwei and its sixth raise offers a
    // tip and fee cap of 4.2 gwei. Legacy fillers paying 10 gwei, each half
    // a block, then keep the blocks full and the base fee rising by an
    // eighth a block for about 90 blocks, past the delivery's cap: a
    // delivery kept at its sixth raise is left out until every filler is
    // mined and the base fee has fallen back. Following the base fee, it
    // outbids the fillers' shrinking tip (10 gwei less the base fee) once
    // the base fee nears 6 gwei, about 160 fillers in.
    const FILLERS: u64 = 300;
    let Race { net, relayer, fillers_mined, .. } = race_fillers(
        NetOptions::default(),
        b"follows the market",
        FILLERS,
        |_| 10_000_000_000,
        100,
    )
    .await;
    assert!(
        fillers_mined < FILLERS,
        "delivered only after every filler: the delivery did not follow the base fee"
    );
    let escalations = relayer.metric("metalayer_transaction_escalations_total", "chain=\"beta\"");
    assert!(escalations > f64::from(MAX_ESCALATIONS), "{escalations} raises");
    relayer.kill().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_reverts_when_mined_goes_back_to_prepare_with_its_reason() {
    use metalayer_contracts::bindings::{PausableIsm, TestRecipient};

    use crate::common::{one_and_a_half_suggested, relayer_with_a_pooled_delivery};

    let _gate = GATE.acquire().await.expect("gate");
    let net = Net::new(NetOptions { base_fee: 0, ..NetOptions::default() }).await;
    let [a, b] = &net.chains;
    // Beta's recipient trusts a pausable ISM alone (no signatures needed):
    // unpaused, the relayer's dry run passes; paused once the delivery is
    // sent, the delivery reverts when it is mined.
    let ism = PausableIsm::deploy(&b.provider, dev(0).address()).await.expect("pausable ISM");
    let recipient = TestRecipient::new(b.core.test_recipient, &b.provider);
    let set = recipient.setInterchainSecurityModule(*ism.address()).send().await.expect("set ISM");
    assert!(set.get_receipt().await.expect("mined").status());
    let message = a.dispatch(b, b"reverts").await;
    // Fillers hold the delivery in the pool (it is never raised past them)
    // long enough to pause the ISM ahead of it.
    let price = one_and_a_half_suggested(&net).await;
    let (relayer, ..) = relayer_with_a_pooled_delivery(&net, 200, price).await;
    let suggested = b.provider.get_gas_price().await.expect("gas price");
    let paused = ism.pause().gas_price(suggested * 2).send().await.expect("pause");
    assert!(paused.get_receipt().await.expect("mined").status());
    assert!(!b.delivered(message.id()).await, "delivered before the pause");

    let start = tokio::time::Instant::now();
    let reverted = loop {
        let history = relayer.ctx.queue.history(message.id()).expect("history");
        if let Some(entry) = history.iter().find(|h| h.reason == Some(Reason::Reverted)) {
            break entry.clone();
        }
        assert!(start.elapsed() < PATIENCE, "the reverted delivery was never noticed: {history:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(reverted.stage, Stage::Prepare, "{reverted:?}");
    let hash = reverted.tx_hash.expect("the reverted transaction is named");
    assert!(reverted.detail.contains(&hash.to_string()), "{reverted:?}");
    let receipt = b.provider.get_transaction_receipt(hash).await.expect("receipt").expect("mined");
    assert!(!receipt.status(), "the named transaction did not revert");

    let unpaused = ism.unpause().gas_price(suggested * 2).send().await.expect("unpause");
    assert!(unpaused.get_receipt().await.expect("mined").status());
    assert_delivered_once(b, std::slice::from_ref(&message)).await;
    relayer.kill().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_reorged_out_goes_back_to_prepare_and_is_delivered_again() {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions::default()).await;
    net.start_validators(0..5).await;
    // Beta's deliveries wait 30 blocks before they are confirmed.
    let beta = net.chains[1].settings_toml(1);
    let toml = net.relayer_toml("").replace(&beta, &net.chains[1].settings_toml(30));
    let relayer = net.relayer_from_toml(&toml).await;
    let [a, b] = &net.chains;
    let m = a.dispatch(b, b"reorged").await;
    relayer.wait_for(m.id(), Stage::Confirm).await;
    let op = relayer.ctx.queue.get(m.id()).expect("queue").expect("op");
    let block = op.submitted_block.expect("mined");
    let tip = alloy::providers::Provider::get_block_number(&b.provider).await.expect("tip");
    let _: serde_json::Value = alloy::providers::Provider::raw_request(
        &b.provider,
        "anvil_reorg".into(),
        // Blocks keep coming between reading the tip and the reorg: reach
        // a few further back than the delivery's block.
        (tip - block + 5,),
    )
    .await
    .expect("anvil_reorg");
    assert!(!b.delivered(m.id()).await, "the reorg kept the delivery");
    assert_delivered_once(b, std::slice::from_ref(&m)).await;
    relayer.wait_for(m.id(), Stage::Delivered).await;
    let history = relayer.ctx.queue.history(m.id()).expect("history");
    assert!(history.iter().any(|h| h.reason == Some(Reason::RevertedOrReorged)), "{history:?}");
    relayer.kill().await;
    net.shutdown().await;
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_binary(config: &std::path::Path) -> Killed {
    Killed(
        Command::new(env!("CARGO_BIN_EXE_metalayer-relayer"))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("relayer binary starts"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_binary_mid_burst_then_restart_delivers_each_message_once() {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions::default()).await;
    net.start_validators(0..5).await;
    let config = net.path().join("relayer-binary.toml");
    std::fs::write(&config, net.relayer_toml("")).expect("config");
    let mut relayer = spawn_binary(&config);
    let mut to_b = Vec::new();
    let mut to_a = Vec::new();
    {
        let [a, b] = &net.chains;
        for i in 0..12u8 {
            to_b.push(a.dispatch(b, &[i; 12]).await);
            to_a.push(b.dispatch(a, &[i; 13]).await);
        }
        // Kill as soon as something has been delivered, while the rest is in flight.
        let start = tokio::time::Instant::now();
        loop {
            let mut any = false;
            for m in &to_b {
                any |= b.delivered(m.id()).await;
            }
            if any {
                break;
            }
            assert!(start.elapsed() < PATIENCE, "the binary delivered nothing");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    relayer.0.kill().expect("kill -9");
    relayer.0.wait().expect("reaped");
    relayer = spawn_binary(&config);
    let [a, b] = &net.chains;
    assert_delivered_once(b, &to_b).await;
    assert_delivered_once(a, &to_a).await;
    drop(relayer);
    net.shutdown().await;
}
