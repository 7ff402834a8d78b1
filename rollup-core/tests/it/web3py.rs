//! A client nobody here wrote: web3.py drives the node over HTTP.

use std::process::Command;

use crate::common::{TestResult, artifact, start};

#[tokio::test]
async fn web3py_client_talks_to_the_node() -> TestResult {
    let probe = Command::new("python3").args(["-c", "import web3"]).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIPPED web3py_client_talks_to_the_node: python3 with the `web3` package is not installed (pip install web3)"
        );
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let node = start(dir.path()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/web3_client.py");
    let bytecode = artifact("TestRecipient", "bytecode").to_string();
    let url = node.http_url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3").args([script, &url, &bytecode]).output()
    })
    .await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "web3.py script failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("web3.py OK"), "{stdout}");
    node.stop().await;
    Ok(())
}
