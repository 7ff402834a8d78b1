//! Every dispatched leaf is signed, the signatures recover to the validator,
//! and metadata built from them passes the on-chain ISM.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use metalayer_agent::storage::{CheckpointStorage, LocalStorage, ObjectBackend, StorageError};
use metalayer_contracts::bindings::{Mailbox, TestRecipient};
use metalayer_protocol::{
    merkle::MerkleTree, metadata::MessageIdMultisigMetadata, signed::StorageLayout,
};
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

/// Local storage that notes the order in which checkpoints are written.
#[derive(Debug)]
struct Recording {
    inner: LocalStorage,
    checkpoint_puts: Mutex<Vec<u32>>,
}

#[async_trait]
impl ObjectBackend for Recording {
    fn layout(&self) -> StorageLayout {
        self.inner.layout()
    }
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(name).await
    }
    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        if let Some(index) = name
            .strip_suffix("_with_id.json")
            .and_then(|n| n.rsplit('_').next())
            .and_then(|n| n.parse().ok())
        {
            self.checkpoint_puts.lock().unwrap().push(index);
        }
        self.inner.put(name, bytes).await
    }
    async fn delete(&self, name: &str) -> Result<(), StorageError> {
        self.inner.delete(name).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_signed_newest_window_first_and_every_leaf_once() {
    let net = net(vec![validator_address(4)]).await;
    let state = net.dir.path().join("v4");
    let storage = Arc::new(Recording {
        inner: LocalStorage::new(state.join("checkpoints")).unwrap(),
        checkpoint_puts: Mutex::default(),
    });
    let mut validator = net
        .validator_with(
            validator_key(4),
            0,
            &state,
            "sign_batch = 3\nretained_leaves = 4\nrecheck_ms = 0",
            storage.clone(),
        )
        .await;
    let mut messages = Vec::new();
    for i in 0..10u8 {
        messages.push(net.dispatch(&[i]).await);
    }
    index_all(&validator).await;
    assert_eq!(validator.tick().await.unwrap(), Tick::Published(9));

    // Windows of three from the first unsigned leaf: [0,3) [3,6) [6,9) [9,10),
    // signed newest window first.
    let puts = storage.checkpoint_puts.lock().unwrap().clone();
    let mut sorted = puts.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..10).collect::<Vec<u32>>(), "every leaf written once: {puts:?}");
    assert_eq!(puts[0], 9, "the newest checkpoint first: {puts:?}");
    let windows: Vec<u32> = puts.iter().map(|i| i / 3).collect();
    assert!(windows.windows(2).all(|w| w[0] >= w[1]), "newest window first: {puts:?}");
    assert_eq!(storage.latest_index().await.unwrap(), Some(9));
    let mut tree = MerkleTree::new();
    for (i, message) in messages.iter().enumerate() {
        tree.insert(message.id()).unwrap();
        let signed = storage.read_checkpoint(i as u32).await.unwrap().unwrap();
        assert_eq!(signed.value.checkpoint.root, tree.root(), "root after leaf {i}");
        assert_eq!(signed.value.message_id, message.id());
    }

    // Published windows older than the 4 retained leaves were pruned.
    let hook = metalayer_protocol::address_to_bytes32(net.core.merkle_tree_hook);
    assert_eq!(validator.protection().pruned(DOMAIN, hook).unwrap().ranges(), [(0, 6)]);

    // Nothing new: the tree is read again (`recheck_ms = 0`) and nothing is
    // written again.
    index_all(&validator).await;
    assert_eq!(validator.tick().await.unwrap(), Tick::Published(9));
    assert_eq!(storage.checkpoint_puts.lock().unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruned_history_resumes_from_the_frontier_after_a_restart() {
    let net = net(vec![validator_address(5)]).await;
    let state = net.dir.path().join("v5");
    let recording = || {
        Arc::new(Recording {
            inner: LocalStorage::new(state.join("checkpoints")).unwrap(),
            checkpoint_puts: Mutex::default(),
        })
    };
    let mut messages = Vec::new();
    for i in 0..10u8 {
        messages.push(net.dispatch(&[i]).await);
    }
    let hook = metalayer_protocol::address_to_bytes32(net.core.merkle_tree_hook);
    {
        let mut validator = net
            .validator_with(validator_key(5), 0, &state, "retained_leaves = 2", recording())
            .await;
        index_all(&validator).await;
        assert_eq!(validator.tick().await.unwrap(), Tick::Published(9));
        let protection = validator.protection();
        assert_eq!(protection.pruned(DOMAIN, hook).unwrap().ranges(), [(0, 8)]);
        assert_eq!(protection.recorded(DOMAIN, hook, 7).unwrap(), None, "pruned");
        assert!(protection.recorded(DOMAIN, hook, 8).unwrap().is_some(), "retained");
        assert_eq!(protection.frontier(DOMAIN, hook).unwrap().map(|t| t.count()), Some(10));
    }
    for i in 10..13u8 {
        messages.push(net.dispatch(&[i]).await);
    }
    let storage = recording();
    let mut validator = net
        .validator_with(validator_key(5), 0, &state, "retained_leaves = 2", storage.clone())
        .await;
    index_all(&validator).await;
    assert_eq!(validator.tick().await.unwrap(), Tick::Published(12));
    // Resumed from the frontier: only the new leaves were signed, with the
    // roots of the whole tree.
    assert_eq!(*storage.checkpoint_puts.lock().unwrap(), vec![12, 11, 10]);
    let mut tree = MerkleTree::new();
    for message in &messages {
        tree.insert(message.id()).unwrap();
    }
    let signed = storage.read_checkpoint(12).await.unwrap().unwrap();
    assert_eq!(signed.value.checkpoint.root, tree.root());
    assert_eq!(validator.protection().pruned(DOMAIN, hook).unwrap().ranges(), [(0, 11)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_is_read_where_the_indexer_has_read_and_an_unchanged_block_only_after_recheck_ms()
{
    let net = net(vec![validator_address(1)]).await;
    // An hour's recheck: an unchanged block is never read again here.
    let state = net.dir.path().join("v1");
    let storage = Arc::new(LocalStorage::new(state.join("checkpoints")).unwrap());
    let mut trusting =
        net.validator_with(validator_key(1), 0, &state, "recheck_ms = 3600000", storage).await;
    // No recheck time: the tree is read on every tick.
    let state = net.dir.path().join("v2");
    let storage = Arc::new(LocalStorage::new(state.join("checkpoints")).unwrap());
    let mut checking =
        net.validator_with(validator_key(2), 0, &state, "recheck_ms = 0", storage).await;
    let eth_calls =
        || net.node.node.metrics.rpc_seconds.with_label_values(&["eth_call"]).get_sample_count();
    net.dispatch(b"one").await;
    index_all(&trusting).await;
    index_all(&checking).await;
    assert_eq!(trusting.tick().await.unwrap(), Tick::Published(0));
    // An empty local tree reads the count and the latest checkpoint; one
    // with leaves reads the latest checkpoint alone.
    let before = eth_calls();
    assert_eq!(checking.tick().await.unwrap(), Tick::Published(0));
    assert_eq!(eth_calls() - before, 2);
    // The same indexed block: read again only without a recheck time.
    let before = eth_calls();
    assert_eq!(trusting.tick().await.unwrap(), Tick::Unchanged);
    assert_eq!(eth_calls() - before, 0);
    assert_eq!(checking.tick().await.unwrap(), Tick::Published(0));
    assert_eq!(eth_calls() - before, 1);
    // A new block is read once the indexer has read it, not before.
    net.dispatch(b"two").await;
    assert_eq!(trusting.tick().await.unwrap(), Tick::Unchanged);
    assert_eq!(checking.tick().await.unwrap(), Tick::Published(0));
    index_all(&trusting).await;
    index_all(&checking).await;
    assert_eq!(trusting.tick().await.unwrap(), Tick::Published(1));
    assert_eq!(checking.tick().await.unwrap(), Tick::Published(1));
}
