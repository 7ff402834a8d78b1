//! Messages the relayer must leave alone: filtered by the operator's lists
//! (never queued), or addressed to an account without code (dropped, with
//! its reason, as Hyperlane's relayer drops them).

use std::time::Duration;

use metalayer_relayer::op::{Reason, Stage};

use crate::{
    GATE,
    common::{DOMAINS, Net, NetOptions, PATIENCE, assert_delivered_once, dev},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_messages_are_never_queued_and_one_to_an_account_without_code_is_dropped() {
    let _gate = GATE.acquire().await.expect("gate");
    let mut net = Net::new(NetOptions::default()).await;
    net.start_validators(0..5).await;
    // Whitelisted: messages to beta or to 9999. Blacklisted: bodies starting
    // with "block". Address blacklist: "forbidden" anywhere in the body.
    let relayer = net
        .relayer(&format!(
            r#"whitelist = [ {{ destination_domain = [{beta}, 9999] }} ]
blacklist = [ {{ body_regex = "^626c6f636b" }} ]
address_blacklist = ["0x{forbidden}"]"#,
            beta = DOMAINS[1],
            forbidden = alloy::hex::encode(b"forbidden"),
        ))
        .await;
    let [a, b] = &net.chains;
    let not_whitelisted = b.dispatch(a, b"to alpha").await;
    let blacklisted = a.dispatch(b, b"blocked").await;
    let address_blacklisted = a.dispatch(b, b"a forbidden body").await;
    let not_served = metalayer_tests::dispatch(
        &a.provider,
        a.core.mailbox,
        9999,
        b.core.test_recipient,
        b"nowhere",
    )
    .await;
    let no_code = metalayer_tests::dispatch(
        &a.provider,
        a.core.mailbox,
        DOMAINS[1],
        dev(9).address(),
        b"to an account",
    )
    .await;
    let kept = a.dispatch(b, b"kept").await;
    assert_delivered_once(b, std::slice::from_ref(&kept)).await;

    // Every message has been looked at once the loaders are past it.
    let start = tokio::time::Instant::now();
    while relayer.ctx.queue.loader_cursor(DOMAINS[1]).expect("cursor") <= not_whitelisted.nonce {
        assert!(start.elapsed() < PATIENCE, "beta's dispatches were never loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(relayer.ctx.queue.loader_cursor(DOMAINS[0]).expect("cursor") > kept.nonce);
    for (what, m) in [
        ("not whitelisted", &not_whitelisted),
        ("blacklisted", &blacklisted),
        ("address blacklisted", &address_blacklisted),
        ("to a destination not served", &not_served),
    ] {
        assert_eq!(
            relayer.ctx.queue.get(m.id()).expect("queue").map(|op| op.stage),
            None,
            "{what}"
        );
    }
    assert!(!a.delivered(not_whitelisted.id()).await);
    assert!(!b.delivered(blacklisted.id()).await);
    assert!(!b.delivered(address_blacklisted.id()).await);

    relayer.wait_for(no_code.id(), Stage::Dropped).await;
    let op = relayer.ctx.queue.get(no_code.id()).expect("queue").expect("op");
    assert_eq!(op.reason, Some(Reason::RecipientNotContract));
    assert!(!b.delivered(no_code.id()).await);
    relayer.kill().await;
    net.shutdown().await;
}
