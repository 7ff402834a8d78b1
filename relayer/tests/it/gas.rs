//! Gas payment enforcement (minimum, on-chain fee quoting, first matching
//! rule), parking and operator retries, seen through the queue and the
//! operator API.

use std::time::Duration;

use metalayer_relayer::op::{Reason, Stage};

use crate::{
    GATE,
    common::{Net, NetOptions, assert_delivered_once},
};

/// The JSON answer to `request`.
async fn answer(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.expect("request sent").json().await.expect("a JSON answer")
}

/// The ids `GET /messages?{query}` lists.
async fn listed(http: &reqwest::Client, addr: std::net::SocketAddr, query: &str) -> Vec<String> {
    let listed = answer(http.get(format!("http://{addr}/messages?{query}"))).await;
    listed["messages"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaid_messages_under_minimum_wait_with_their_reason() {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions::default()).await;
    net.start_validators(0..5).await;
    let mut relayer = net
        .relayer(r#"gas_payment_enforcement = [ { type = "minimum", payment = "1000" } ]"#)
        .await;
    let addr = relayer.serve_api().await;
    let [a, b] = &net.chains;
    let paid = a.dispatch(b, b"paid").await;
    a.pay_for_gas(&paid, 100_000).await;
    let unpaid = a.dispatch(b, b"unpaid").await;
    assert_delivered_once(b, &[paid]).await;
    relayer.wait_retries(unpaid.id(), 2).await;
    assert!(!b.delivered(unpaid.id()).await, "an unpaid message was delivered");
    let op = relayer.ctx.queue.get(unpaid.id()).expect("queue").expect("op");
    assert_eq!((op.stage, op.reason), (Stage::Prepare, Some(Reason::GasPaymentNotFound)));

    let http = reqwest::Client::new();
    let ids = listed(&http, addr, "stage=prepare&reason=GasPaymentNotFound").await;
    assert_eq!(ids, [unpaid.id().to_string()]);
    let retried = answer(http.post(format!("http://{addr}/messages/{}/retry", unpaid.id()))).await;
    assert_eq!(retried["retried"], 1);
    let shown = answer(http.get(format!("http://{addr}/messages/{}", unpaid.id()))).await;
    let history = shown["history"].as_array().expect("history");
    assert!(history.iter().any(|h| h["detail"] == "operator retry"), "{history:?}");
    assert!(history.iter().any(|h| h["reason"] == "GasPaymentNotFound"), "{history:?}");
    let bad = http.get(format!("http://{addr}/messages/0x12")).send().await.expect("bad id");
    assert_eq!(bad.status(), 400);

    // Paying later lets it through.
    a.pay_for_gas(&unpaid, 100_000).await;
    let _ = http.post(format!("http://{addr}/messages/{}/retry", unpaid.id())).send().await;
    assert_delivered_once(b, &[unpaid]).await;
    relayer.kill().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_out_of_retries_is_parked_and_an_operator_retry_by_matching_list_delivers_it() {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions::default()).await;
    net.start_validators(0..5).await;
    let mut relayer = net
        .relayer(
            r#"max_retries = 3
gas_payment_enforcement = [ { type = "minimum", payment = "1000" } ]"#,
        )
        .await;
    let addr = relayer.serve_api().await;
    let [a, b] = &net.chains;
    let unpaid = a.dispatch(b, b"parked").await;
    relayer.wait_for(unpaid.id(), Stage::Parked).await;
    let op = relayer.ctx.queue.get(unpaid.id()).expect("queue").expect("op");
    assert_eq!((op.retries, op.reason), (3, Some(Reason::GasPaymentNotFound)));
    let failed = relayer.metric("metalayer_operations_processed_count", "phase=\"failed\"");
    assert_eq!(failed, 1.0);
    // Parked stays parked: no attempt is made on its own.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still = relayer.ctx.queue.get(unpaid.id()).expect("queue").expect("op");
    assert_eq!((still.stage, still.retries), (Stage::Parked, 3));

    let http = reqwest::Client::new();
    assert_eq!(listed(&http, addr, "stage=parked").await, [unpaid.id().to_string()]);

    // Paid, then retried by a matching list in Hyperlane's own field names.
    a.pay_for_gas(&unpaid, 100_000).await;
    let list = serde_json::json!([{ "messageId": unpaid.id(), "originDomain": a.domain }]);
    let retried = answer(http.post(format!("http://{addr}/retry")).json(&list)).await;
    assert_eq!(retried["retried"], 1);
    assert_delivered_once(b, &[unpaid]).await;
    relayer.kill().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_chain_fee_quoting_weighs_the_paid_gas_against_the_estimate_and_the_first_matching_rule_wins()
 {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions::default()).await;
    net.start_validators(0..5).await;
    // Bodies starting with "free" need no payment; everything else must
    // have paid for half the delivery's estimated gas.
    let relayer = net
        .relayer(&format!(
            r#"gas_payment_enforcement = [
  {{ type = "none", matching_list = [ {{ body_regex = "^{free}" }} ] }},
  {{ type = "on_chain_fee_quoting", gas_fraction = "1/2" }},
]"#,
            free = alloy::hex::encode(b"free"),
        ))
        .await;
    let [a, b] = &net.chains;
    let underpaid = a.dispatch(b, b"paid too little").await;
    a.pay_for_gas(&underpaid, 1_000).await;
    let paid = a.dispatch(b, b"paid enough").await;
    a.pay_for_gas(&paid, 300_000).await;
    let free = a.dispatch(b, b"free of charge").await;
    assert_delivered_once(b, &[paid, free]).await;
    let op = relayer.wait_retries(underpaid.id(), 2).await;
    assert_eq!(op.stage, Stage::Prepare);
    assert_eq!(op.reason, Some(Reason::GasPaymentRequirementNotMet), "{:?}", op.detail);
    assert!(!b.delivered(underpaid.id()).await, "a message paying for 1,000 gas was delivered");
    // Topping the payment up lets it through.
    a.pay_for_gas(&underpaid, 200_000).await;
    relayer.ctx.retry_now(underpaid.id()).expect("retry");
    assert_delivered_once(b, &[underpaid]).await;
    relayer.kill().await;
    net.shutdown().await;
}
