//! Reorgs: one deeper than the reorg period stops the validator with the
//! flag raised; one shallower than it was never signed in the first place.

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::Encodable2718,
    network::TxSignerSync,
    primitives::{Bytes, TxKind, U256},
    providers::Provider,
    sol_types::SolCall,
};
use metalayer_agent::storage::CheckpointStorage;
use metalayer_contracts::bindings::Mailbox;
use metalayer_protocol::{Message, address_to_bytes32};
use metalayer_validator::{Tick, ValidatorError};

use crate::common::*;

/// A signed raw dispatch from dev account 2, for `anvil_reorg`.
async fn raw_dispatch(net: &Net, body: &[u8]) -> Bytes {
    let signer = dev(2);
    let nonce = net.provider.get_transaction_count(signer.address()).await.unwrap();
    let call = Mailbox::dispatch_2Call {
        destination: DOMAIN,
        recipient: address_to_bytes32(net.core.test_recipient),
        body: body.to_vec().into(),
    };
    let mut tx = TxEip1559 {
        chain_id: u64::from(DOMAIN),
        nonce,
        gas_limit: 500_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(net.core.mailbox),
        value: U256::ZERO,
        input: call.abi_encode().into(),
        access_list: Default::default(),
    };
    let sig = signer.sign_transaction_sync(&mut tx).unwrap();
    let envelope: TxEnvelope = tx.into_signed(sig).into();
    envelope.encoded_2718().into()
}

async fn reorg(net: &Net, depth: u64, raw: Bytes) {
    let _: serde_json::Value = net
        .provider
        .raw_request("anvil_reorg".into(), (depth, vec![(raw, 0u64)]))
        .await
        .expect("anvil_reorg");
}

fn message_like(net: &Net, nonce: u32, body: &[u8]) -> Message {
    Message {
        version: 3,
        nonce,
        origin: DOMAIN,
        sender: address_to_bytes32(dev(2).address()),
        destination: DOMAIN,
        recipient: address_to_bytes32(net.core.test_recipient),
        body: body.to_vec().into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_deeper_than_the_period_raises_the_flag_and_stops_signing() {
    let net = net(vec![validator_address(3)]).await;
    let state = net.dir.path().join("v3");
    let (mut validator, storage) = net.validator(validator_key(3), 2, &state).await;
    net.dispatch(b"kept").await;
    net.dispatch(b"replaced").await;
    net.mine(2).await;
    index_all(&validator).await;
    assert_eq!(validator.tick().await.unwrap(), Tick::Published(1));

    // Replace the last 3 blocks (the second dispatch is final already) by a
    // branch with another message at leaf 1, then let it become final.
    let raw = raw_dispatch(&net, b"other history").await;
    reorg(&net, 3, raw).await;
    net.mine(3).await;
    index_all(&validator).await;
    let error = validator.tick().await.unwrap_err();
    assert!(
        matches!(error, ValidatorError::RootMismatch(ref e) if e.checkpoint_index == 1),
        "{error}"
    );
    assert!(error.is_fatal());
    let flag = storage.read_reorg_flag().await.unwrap().expect("flag raised");
    assert_eq!(flag.checkpoint_index, 1);
    assert_ne!(flag.local_merkle_root, flag.canonical_merkle_root);
    assert_eq!(
        storage.latest_index().await.unwrap(),
        Some(1),
        "nothing after the mismatch was published"
    );

    // A restarted validator refuses to start while the flag is raised, and
    // says what to do.
    drop(validator);
    let (restarted, _) = net.validator(validator_key(3), 2, &state).await;
    let refusal = restarted.preflight().await.unwrap_err();
    assert!(matches!(refusal, ValidatorError::ReorgFlagRaised { .. }));
    assert!(refusal.to_string().contains("delete reorg_flag.json"), "{refusal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_within_the_period_was_never_signed() {
    let net = net(vec![validator_address(4)]).await;
    let state = net.dir.path().join("v4");
    let (mut validator, storage) = net.validator(validator_key(4), 3, &state).await;
    net.dispatch(b"final").await;
    net.mine(3).await;
    index_all(&validator).await;
    assert_eq!(validator.tick().await.unwrap(), Tick::Published(0));

    // Leaf 1 is dispatched but not yet final: nothing is signed for it.
    net.dispatch(b"orphaned").await;
    index_all(&validator).await;
    assert_eq!(validator.tick().await.unwrap(), Tick::Published(0));
    assert!(stored(&storage, 1).await.is_none());

    // A one-block reorg replaces it; once final, the new leaf 1 is signed.
    let nonce = 1;
    let raw = raw_dispatch(&net, b"canonical").await;
    reorg(&net, 1, raw).await;
    net.mine(3).await;
    index_all(&validator).await;
    assert_eq!(validator.tick().await.unwrap(), Tick::Published(1));
    let signed = stored(&storage, 1).await.unwrap();
    assert_eq!(signed.value.message_id, message_like(&net, nonce, b"canonical").id());
    let c = &signed.value.checkpoint;
    let recorded = validator.protection().recorded(c.origin, c.merkle_tree_hook, 1).unwrap();
    assert_eq!(
        recorded.map(|r| r.1),
        Some(signed.value.message_id),
        "only the canonical leaf was ever recorded"
    );
}
