//! One suite for every checkpoint storage backend, run against a local
//! directory and against moto, plus each backend's own object names.

use std::{sync::Arc, time::Duration};

use metalayer_agent::{
    config::ReorgPeriod,
    storage::{
        AgentMetadata, CheckpointStorage, LocalStorage, LocationOptions, MAX_OBJECT_BYTES,
        ObjectBackend, ReorgEvent, S3Credentials, S3Location, S3Options, S3Storage, StorageError,
        parse_location,
    },
};
use metalayer_protocol::{
    B256, Checkpoint, CheckpointWithMessageId, LocalSigner, Signer,
    announcement::Announcement,
    signed::{Signed, SignedAnnouncement, SignedCheckpoint},
};

use crate::moto::Moto;

fn signer() -> LocalSigner {
    LocalSigner::from_bytes(&B256::repeat_byte(0x42)).unwrap()
}

fn checkpoint(index: u32, root: u8) -> SignedCheckpoint {
    let value = CheckpointWithMessageId {
        checkpoint: Checkpoint {
            merkle_tree_hook: B256::repeat_byte(0xab),
            origin: 1001,
            root: B256::repeat_byte(root),
            index,
        },
        message_id: B256::with_last_byte(index as u8),
    };
    Signed::sign(value, &signer()).unwrap()
}

fn announcement(location: String) -> SignedAnnouncement {
    let value = Announcement {
        validator: signer().address(),
        mailbox_address: B256::repeat_byte(0x11),
        mailbox_domain: 1001,
        storage_location: location,
    };
    Signed::sign(value, &signer()).unwrap()
}

/// Everything a backend must do, through the trait and its object layer.
async fn suite<B: ObjectBackend + 'static>(storage: Arc<B>, reader_options: &LocationOptions) {
    let layout = storage.layout();

    // Empty storage: absent objects are `None`, not errors.
    assert!(storage.read_checkpoint(0).await.unwrap().is_none());
    assert_eq!(storage.latest_index().await.unwrap(), None);
    assert!(storage.read_announcement().await.unwrap().is_none());
    assert_eq!(storage.read_reorg_flag().await.unwrap(), None);

    // Checkpoints round-trip, recover to the signer, and are stored
    // byte-identical to the protocol's JSON.
    for index in 0..4 {
        storage.write_checkpoint(&checkpoint(index, 0xc0)).await.unwrap();
    }
    for index in 0..4 {
        let read = storage.read_checkpoint(index).await.unwrap().unwrap();
        assert_eq!(read, checkpoint(index, 0xc0));
        assert_eq!(read.recover(), Ok(signer().address()));
    }
    let raw = storage.get(&layout.checkpoint_key(2)).await.unwrap().unwrap();
    assert_eq!(raw, checkpoint(2, 0xc0).to_json_pretty().unwrap().into_bytes());
    storage.write_checkpoint(&checkpoint(0, 0xc1)).await.unwrap();
    assert_eq!(storage.read_checkpoint(0).await.unwrap().unwrap(), checkpoint(0, 0xc1));

    // A group write stores each under its own index, replacing what was there.
    let group: Vec<_> = (20..24).map(|index| checkpoint(index, 0xc2)).collect();
    storage.write_checkpoint(&checkpoint(21, 0xc0)).await.unwrap();
    storage.write_checkpoints(&group).await.unwrap();
    for index in 20..24 {
        assert_eq!(storage.read_checkpoint(index).await.unwrap().unwrap(), checkpoint(index, 0xc2));
    }
    let raw = storage.get(&layout.checkpoint_key(22)).await.unwrap().unwrap();
    assert_eq!(raw, checkpoint(22, 0xc2).to_json_pretty().unwrap().into_bytes());
    storage.write_checkpoints(&[]).await.unwrap();

    // The latest index only ever rises.
    assert!(storage.raise_latest_index(2).await.unwrap());
    assert_eq!(storage.latest_index().await.unwrap(), Some(2));
    assert!(!storage.raise_latest_index(1).await.unwrap());
    assert!(!storage.raise_latest_index(2).await.unwrap());
    assert_eq!(storage.latest_index().await.unwrap(), Some(2));
    assert!(storage.raise_latest_index(3).await.unwrap());
    assert_eq!(storage.latest_index().await.unwrap(), Some(3));
    let raw = storage.get(layout.latest_index_key()).await.unwrap().unwrap();
    assert_eq!(raw, b"3");

    // The announcement names this storage's location.
    let signed = announcement(storage.announcement_location());
    storage.write_announcement(&signed).await.unwrap();
    let read = storage.read_announcement().await.unwrap().unwrap();
    assert_eq!(read, signed);
    assert_eq!(read.recover(), Ok(signer().address()));

    // Metadata and reorg diagnostics are plain JSON objects.
    let metadata = AgentMetadata { git_sha: "abc123".into(), version: "0.1.0".into() };
    storage.write_metadata(&metadata).await.unwrap();
    let raw = storage.get("metadata_latest.json").await.unwrap().unwrap();
    assert_eq!(serde_json::from_slice::<AgentMetadata>(&raw).unwrap(), metadata);
    let responses = serde_json::json!({"http://rpc-a": {"index": 3}});
    storage.write_reorg_rpc_responses(&responses).await.unwrap();
    let raw = storage.get("reorg_rpc_responses.json").await.unwrap().unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&raw).unwrap(), responses);

    // The reorg flag is raised, read, lowered; lowering twice is fine.
    let event = ReorgEvent {
        local_merkle_root: B256::repeat_byte(1),
        canonical_merkle_root: B256::repeat_byte(2),
        checkpoint_index: 3,
        unix_timestamp: 1_800_000_000,
        reorg_period: ReorgPeriod::Finalized,
    };
    storage.write_reorg_flag(&event).await.unwrap();
    assert_eq!(storage.read_reorg_flag().await.unwrap(), Some(event));
    storage.clear_reorg_flag().await.unwrap();
    assert_eq!(storage.read_reorg_flag().await.unwrap(), None);
    storage.clear_reorg_flag().await.unwrap();

    // A malformed flag is an error, never "no flag".
    storage.put("reorg_flag.json", b"{\"local_merkle_root\":".to_vec()).await.unwrap();
    let err = storage.read_reorg_flag().await.unwrap_err();
    assert!(err.to_string().contains("reorg_flag.json"), "{err}");
    storage.clear_reorg_flag().await.unwrap();

    // Malformed objects are errors naming the object and the location.
    let name = layout.checkpoint_key(7);
    storage.put(&name, b"{ not json".to_vec()).await.unwrap();
    let err = storage.read_checkpoint(7).await.unwrap_err();
    assert!(matches!(err, StorageError::Malformed { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&name) && text.contains(&storage.location()), "{text}");

    // A checkpoint stored under another index's name is refused.
    storage
        .put(&layout.checkpoint_key(8), checkpoint(1, 0xc0).to_json_pretty().unwrap().into())
        .await
        .unwrap();
    let err = storage.read_checkpoint(8).await.unwrap_err().to_string();
    assert!(err.contains("holds the checkpoint for index 1"), "{err}");

    // Objects over the cap are refused, whatever they hold.
    let big = vec![b' '; MAX_OBJECT_BYTES as usize + 10];
    storage.put(&layout.checkpoint_key(9), big).await.unwrap();
    let err = storage.read_checkpoint(9).await.unwrap_err();
    assert!(matches!(err, StorageError::TooLarge { .. }), "{err}");

    // A garbled latest index is an error naming its object.
    storage.put(layout.latest_index_key(), b"three".to_vec()).await.unwrap();
    let err = storage.latest_index().await.unwrap_err().to_string();
    assert!(err.contains(layout.latest_index_key()), "{err}");
    let err = storage.raise_latest_index(10).await.unwrap_err().to_string();
    assert!(err.contains(layout.latest_index_key()), "{err}");
    storage.put(layout.latest_index_key(), b"3".to_vec()).await.unwrap();

    // A relayer given only the announced string reads the same data.
    let reader = parse_location(&read.value.storage_location, reader_options).unwrap();
    assert_eq!(reader.announcement_location(), storage.announcement_location());
    assert_eq!(reader.read_checkpoint(3).await.unwrap(), Some(checkpoint(3, 0xc0)));
    assert_eq!(reader.latest_index().await.unwrap(), Some(3));
    assert_eq!(reader.read_announcement().await.unwrap(), Some(signed));
}

#[tokio::test]
async fn local_directory_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(LocalStorage::new(dir.path().join("validator")).unwrap());
    let options = LocationOptions { allow_local: true, ..LocationOptions::default() };
    suite(storage, &options).await;

    // SPEC §4.3 local names: `{i}_with_id.json` and a decimal `index.json`.
    let root = dir.path().join("validator");
    assert!(root.join("3_with_id.json").is_file());
    assert!(!root.join("checkpoint_3_with_id.json").exists());
    assert_eq!(std::fs::read_to_string(root.join("index.json")).unwrap(), "3");
    assert!(root.join("announcement.json").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn local_locations_are_refused_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(dir.path()).unwrap();
    let err = parse_location(&storage.announcement_location(), &LocationOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("file://") && err.contains("refused"), "{err}");
}

fn s3_options(moto: &Moto, credentials: S3Credentials) -> S3Options {
    S3Options {
        endpoint: Some(moto.endpoint.clone()),
        credentials,
        timeout: Duration::from_secs(10),
    }
}

fn writer_credentials() -> S3Credentials {
    S3Credentials::Static { access_key_id: "testing".into(), secret_access_key: "testing".into() }
}

#[tokio::test]
async fn s3_bucket_passes_the_suite_with_and_without_a_folder() {
    let moto = Moto::start();
    moto.create_public_bucket("checkpoints").await;
    let reader_options =
        LocationOptions { allow_local: false, s3: s3_options(&moto, S3Credentials::Anonymous) };

    let plain =
        S3Location { bucket: "checkpoints".into(), region: "us-east-1".into(), folder: None };
    let storage =
        Arc::new(S3Storage::new(plain, &s3_options(&moto, writer_credentials())).unwrap());
    assert_eq!(storage.announcement_location(), "s3://checkpoints/us-east-1");
    suite(storage.clone(), &reader_options).await;
    // SPEC §4.3 object-store names.
    assert!(storage.get("checkpoint_3_with_id.json").await.unwrap().is_some());
    assert!(storage.get("3_with_id.json").await.unwrap().is_none());
    assert_eq!(storage.get("checkpoint_latest_index.json").await.unwrap().unwrap(), b"3");

    let nested = S3Location {
        bucket: "checkpoints".into(),
        region: "us-east-1".into(),
        folder: Some("validators/alpha".into()),
    };
    let storage =
        Arc::new(S3Storage::new(nested, &s3_options(&moto, writer_credentials())).unwrap());
    assert_eq!(storage.announcement_location(), "s3://checkpoints/us-east-1/validators/alpha");
    // The folder's objects start empty although the bucket root has some.
    suite(storage, &reader_options).await;
    let root = S3Storage::new(
        S3Location { bucket: "checkpoints".into(), region: "us-east-1".into(), folder: None },
        &s3_options(&moto, S3Credentials::Anonymous),
    )
    .unwrap();
    let prefixed = root.get("validators/alpha/checkpoint_3_with_id.json").await.unwrap();
    assert_eq!(prefixed, Some(checkpoint(3, 0xc0).to_json_pretty().unwrap().into_bytes()));

    // Objects are served as JSON to anyone, as a browser or curl sees them.
    let page = crate::http::request(&moto.addr, "GET", "/checkpoints/checkpoint_3_with_id.json")
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.head.to_ascii_lowercase().contains("content-type: application/json"),
        "{}",
        page.head
    );
    assert_eq!(page.body, checkpoint(3, 0xc0).to_json_pretty().unwrap());

    // Readers are anonymous: the public-read bucket refuses their writes.
    let err = root.write_checkpoint(&checkpoint(3, 0xee)).await.unwrap_err();
    assert!(matches!(err, StorageError::ObjectStore { .. }), "{err}");
    assert_eq!(root.read_checkpoint(3).await.unwrap(), Some(checkpoint(3, 0xc0)));
}

#[tokio::test]
async fn s3_writes_to_a_missing_bucket_fail_with_the_object_named() {
    let moto = Moto::start();
    let storage = S3Storage::new(
        S3Location { bucket: "never-created".into(), region: "us-east-1".into(), folder: None },
        &s3_options(&moto, writer_credentials()),
    )
    .unwrap();
    let err = storage.write_checkpoint(&checkpoint(0, 1)).await.unwrap_err();
    assert!(matches!(err, StorageError::ObjectStore { .. }), "{err}");
    assert!(err.to_string().contains("checkpoint_0_with_id.json"), "{err}");
}

#[tokio::test]
async fn unresponsive_s3_servers_time_out_with_the_object_named() {
    // A server that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let options = S3Options {
        endpoint: Some(endpoint),
        credentials: S3Credentials::Anonymous,
        timeout: Duration::from_millis(300),
    };
    let storage = S3Storage::new(
        S3Location { bucket: "bkt".into(), region: "us-east-1".into(), folder: None },
        &options,
    )
    .unwrap();
    let err = storage.latest_index().await.unwrap_err();
    assert!(
        matches!(err, StorageError::Timeout { .. } | StorageError::ObjectStore { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("checkpoint_latest_index.json"), "{err}");
    hold.abort();
}

#[tokio::test]
async fn unreachable_s3_servers_are_errors() {
    // Bind then drop, so nothing listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let options = S3Options {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        credentials: S3Credentials::Anonymous,
        timeout: Duration::from_secs(5),
    };
    let storage = S3Storage::new(
        S3Location { bucket: "bkt".into(), region: "us-east-1".into(), folder: None },
        &options,
    )
    .unwrap();
    let err = storage.write_checkpoint(&checkpoint(0, 1)).await.unwrap_err();
    assert!(err.to_string().contains("checkpoint_0_with_id.json"), "{err}");
}

/// Names the directory the crash-test writer writes to.
const CRASH_WRITER_DIR: &str = "AGENT_IT_CRASH_WRITER_DIR";
/// Objects the crash-test writer rewrites each round.
const CRASH_OBJECTS: u32 = 16;

fn crash_payload(round: u32, index: u32) -> Vec<u8> {
    format!("{{\"round\":{round},\"index\":{index},\"pad\":\"{}\"}}", "x".repeat(40_000))
        .into_bytes()
}

/// The child process of `local_writes_survive_kill_9`: rewrites objects in
/// a loop until killed. Does nothing when run directly.
#[tokio::test]
#[ignore = "run by local_writes_survive_kill_9 in a child process"]
async fn crash_writer_child() {
    let Ok(dir) = std::env::var(CRASH_WRITER_DIR) else { return };
    let storage = LocalStorage::new(dir).unwrap();
    let start = storage.latest_index().await.unwrap().map_or(0, |i| i + 1);
    for round in start.. {
        for index in 0..CRASH_OBJECTS {
            storage.put(&format!("blob_{index}.json"), crash_payload(round, index)).await.unwrap();
        }
        storage.raise_latest_index(round).await.unwrap();
    }
}

#[tokio::test]
async fn local_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(dir.path()).unwrap();
    for cycle in 0..5u32 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "storage::crash_writer_child", "--ignored", "--test-threads=1"])
            .env(CRASH_WRITER_DIR, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Let it finish a few rounds, then kill it mid-stream (SIGKILL).
        let target = storage.latest_index().await.unwrap().map_or(0, |i| i + 1) + 3;
        while storage.latest_index().await.unwrap().is_none_or(|i| i < target) {
            assert!(child.try_wait().unwrap().is_none(), "the writer exited on its own");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();

        // Every object is some round's complete payload, never a prefix.
        let latest = storage.latest_index().await.unwrap().unwrap();
        for index in 0..CRASH_OBJECTS {
            let bytes = storage.get(&format!("blob_{index}.json")).await.unwrap().unwrap();
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("cycle {cycle}: blob_{index}.json is torn: {e}"));
            let round = value["round"].as_u64().unwrap() as u32;
            assert!(round >= latest && round <= latest + 1, "cycle {cycle}: round {round}");
            assert_eq!(bytes, crash_payload(round, index), "cycle {cycle}, blob {index}");
        }
    }
}
