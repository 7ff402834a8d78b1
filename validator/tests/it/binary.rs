//! The `metalayer-validator` binary: clear errors and exit codes for bad
//! input, and a kill -9 in the middle of a backlog that loses nothing.

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use metalayer_agent::storage::{CheckpointStorage, LocalStorage};
use metalayer_protocol::merkle::MerkleTree;
use metalayer_validator::protection::SigningProtection;

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_metalayer-validator");

fn run(config: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .expect("binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_clean_failure(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "a panic reached the operator: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_exit_code() {
    let net = net(vec![validator_address(5)]).await;
    let state = net.dir.path().join("v5");
    std::fs::create_dir_all(&state).unwrap();
    let config = state.join("validator.toml");
    let good = net.settings_toml(validator_key(5), 0, &state);

    let missing = state.join("nowhere.toml");
    assert_clean_failure(&run(&missing, &[]), 1, "nowhere.toml");

    std::fs::write(&config, format!("{good}\nsurprise = 1\n")).unwrap();
    assert_clean_failure(&run(&config, &[]), 1, "surprise");

    std::fs::write(&config, &good).unwrap();
    assert_clean_failure(&run(&config, &["--set", "origin=elsewhere"]), 1, "elsewhere");
    assert_clean_failure(&run(&config, &["--set", "chains.testnet.chain_id=5"]), 1, "chain id");

    let unreachable = good.replace(&net.node.http_url(), "http://127.0.0.1:9");
    std::fs::write(&config, unreachable).unwrap();
    assert_clean_failure(&run(&config, &[]), 1, "failed on every endpoint");

    let key_file = state.join("validator.key");
    std::fs::write(&key_file, format!("{}\n", validator_key(5))).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let with_file = good.replacen(
        &format!("type = \"hex\"\nkey = \"{}\"", validator_key(5)),
        &format!("type = \"file\"\npath = \"{}\"", key_file.display()),
        1,
    );
    assert_ne!(with_file, good);
    std::fs::write(&config, with_file).unwrap();
    assert_clean_failure(&run(&config, &[]), 1, "600");
}

/// Waits (bounded, generous: this is a liveness guard, not a speed check)
/// until `done` holds.
async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < Duration::from_secs(600), "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_backlog_loses_nothing_and_signs_nothing_twice_differently() {
    const BACKLOG: usize = 300;
    let net = net(vec![validator_address(6)]).await;
    let state = net.dir.path().join("v6");
    std::fs::create_dir_all(&state).unwrap();
    let config = state.join("validator.toml");
    std::fs::write(&config, net.settings_toml(validator_key(6), 0, &state)).unwrap();
    let mut tree = MerkleTree::new();
    let mut roots = Vec::new();
    for i in 0..BACKLOG {
        let message = net.dispatch(&(i as u32).to_be_bytes()).await;
        tree.insert(message.id()).unwrap();
        roots.push((tree.root(), message.id()));
    }
    let storage = LocalStorage::new(state.join("checkpoints")).unwrap();
    let spawn = || {
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("--set")
            .arg("sign_batch=16")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("validator starts")
    };

    let mut child = spawn();
    wait_for("the first checkpoint", async || {
        storage.latest_index().await.ok().flatten().is_some()
    })
    .await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let mut published_at_kill = 0;
    for i in 0..BACKLOG as u32 {
        published_at_kill += usize::from(storage.read_checkpoint(i).await.unwrap().is_some());
    }

    let mut child = spawn();
    wait_for("every checkpoint", async || {
        for i in 0..BACKLOG as u32 {
            if storage.read_checkpoint(i).await.ok().flatten().is_none() {
                return false;
            }
        }
        true
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();

    let protection = SigningProtection::open(&state.join("db").join("signing_protection")).unwrap();
    for (i, (root, id)) in roots.iter().enumerate() {
        let signed = storage.read_checkpoint(i as u32).await.unwrap().unwrap();
        assert_eq!(signed.recover().unwrap(), validator_address(6), "leaf {i}");
        assert_eq!(
            (signed.value.checkpoint.root, signed.value.message_id),
            (*root, *id),
            "leaf {i}"
        );
        let c = &signed.value.checkpoint;
        assert_eq!(
            protection.recorded(c.origin, c.merkle_tree_hook, c.index).unwrap(),
            Some((*root, *id))
        );
    }
    assert_eq!(storage.latest_index().await.unwrap(), Some(BACKLOG as u32 - 1));
    eprintln!(
        "{published_at_kill} of {BACKLOG} checkpoints were published when the validator was killed"
    );
    assert!(published_at_kill >= 1, "the kill came after the first checkpoint");
}
