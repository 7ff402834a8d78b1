//! Every dispatched leaf is signed, the signatures recover to the validator,
//! and metadata built from them passes the on-chain ISM.

use metalayer_agent::storage::CheckpointStorage;
use metalayer_contracts::bindings::{Mailbox, TestRecipient};
use metalayer_protocol::{merkle::MerkleTree, metadata::MessageIdMultisigMetadata};
use metalayer_validator::Tick;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_leaf_is_signed_and_the_ism_accepts_the_signatures() {
    let net = net(vec![validator_address(1)]).await;
    let state = net.dir.path().join("v1");
    let (mut validator, storage) = net.validator(validator_key(1), 0, &state).await;
    validator.preflight().await.unwrap();
    assert_eq!(validator.tick().await.unwrap(), Tick::EmptyTree);
    validator.announce().await.unwrap();

    let mut messages = Vec::new();
    for i in 0..5u8 {
        messages.push(net.dispatch(&[i; 32]).await);
    }
    index_all(&validator).await;
    assert_eq!(validator.tick().await.unwrap(), Tick::Published(4));
    assert_eq!(storage.latest_index().await.unwrap(), Some(4));

    let mut tree = MerkleTree::new();
    for (i, message) in messages.iter().enumerate() {
        tree.insert(message.id()).unwrap();
        let signed = stored(&storage, i as u32).await.expect("checkpoint stored");
        assert_eq!(signed.recover().unwrap(), validator_address(1));
        assert_eq!(signed.value.message_id, message.id());
        assert_eq!(signed.value.checkpoint.root, tree.root(), "root after leaf {i}");
        assert_eq!(signed.value.checkpoint.index, i as u32);
    }

    // Deliver each message on this chain with metadata from the stored checkpoints.
    let mailbox = Mailbox::new(net.core.mailbox, &net.provider);
    for (i, message) in messages.iter().enumerate() {
        let signed = stored(&storage, i as u32).await.unwrap();
        let metadata = MessageIdMultisigMetadata {
            merkle_tree_hook: signed.value.checkpoint.merkle_tree_hook,
            root: signed.value.checkpoint.root,
            index: signed.value.checkpoint.index,
            signatures: vec![signed.signature],
        };
        let receipt = mailbox
            .process(metadata.encode().into(), message.encode().into())
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(receipt.status(), "process of message {i} reverted");
        assert!(mailbox.delivered(message.id()).call().await.unwrap());
    }
    let recipient = TestRecipient::new(net.core.test_recipient, &net.provider);
    assert_eq!(recipient.handledCount().call().await.unwrap(), alloy::primitives::U256::from(5));

    // A tampered signature is refused by the ISM: the test would catch a
    // validator signing the wrong digest.
    let another = net.dispatch(b"late").await;
    index_all(&validator).await;
    assert_eq!(validator.tick().await.unwrap(), Tick::Published(5));
    let signed = stored(&storage, 5).await.unwrap();
    let mut metadata = MessageIdMultisigMetadata {
        merkle_tree_hook: signed.value.checkpoint.merkle_tree_hook,
        root: signed.value.checkpoint.root,
        index: signed.value.checkpoint.index + 1,
        signatures: vec![signed.signature],
    };
    let refused = mailbox.process(metadata.encode().into(), another.encode().into()).call().await;
    assert!(refused.is_err(), "a checkpoint with a changed index must not verify");
    metadata.index -= 1;
    assert!(
        mailbox.process(metadata.encode().into(), another.encode().into()).call().await.is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_validator_resumes_without_signing_anything_differently() {
    let net = net(vec![validator_address(2)]).await;
    let state = net.dir.path().join("v2");
    for i in 0..3u8 {
        net.dispatch(&[i]).await;
    }
    {
        let (mut validator, _) = net.validator(validator_key(2), 0, &state).await;
        index_all(&validator).await;
        assert_eq!(validator.tick().await.unwrap(), Tick::Published(2));
    }
    for i in 3..6u8 {
        net.dispatch(&[i]).await;
    }
    let (mut validator, storage) = net.validator(validator_key(2), 0, &state).await;
    index_all(&validator).await;
    assert_eq!(validator.tick().await.unwrap(), Tick::Published(5));
    for i in 0..6 {
        let signed = stored(&storage, i).await.unwrap();
        let c = &signed.value.checkpoint;
        let recorded = validator.protection().recorded(c.origin, c.merkle_tree_hook, i).unwrap();
        assert_eq!(recorded, Some((c.root, signed.value.message_id)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indexer_narrows_its_range_when_the_node_caps_logs_per_response() {
    let limits = metalayer_rollup::rpc::RpcLimits { max_logs: 3, ..Default::default() };
    let net = net_with_limits(vec![validator_address(7)], limits).await;
    let state = net.dir.path().join("v7");
    for i in 0..12u8 {
        net.dispatch(&[i]).await;
    }
    let (mut validator, storage) = net.validator(validator_key(7), 0, &state).await;
    let indexer = validator.insertion_indexer();
    let mut refused = 0;
    for _ in 0..200 {
        match indexer.step().await {
            Ok(metalayer_agent::indexer::Step::CaughtUp) => break,
            Ok(_) => {}
            Err(error) => {
                assert!(error.to_string().contains("more than 3 logs"), "{error}");
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "the node's cap was never hit: the test does not test the narrowing");
    assert_eq!(validator.tick().await.unwrap(), Tick::Published(11));
    assert!(stored(&storage, 11).await.is_some());
}
