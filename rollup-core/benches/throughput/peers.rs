//! Starting the nodes under test as child processes on loopback ports.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A node the bench measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// This crate's `metalayer-rollup` binary.
    Metalayer,
    /// anvil from the npm package `@foundry-rs/anvil`.
    Anvil,
    /// A hardhat 2.x node.
    Hardhat,
}

impl Peer {
    /// Display name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Metalayer => "metalayer-rollup",
            Self::Anvil => "anvil",
            Self::Hardhat => "hardhat",
        }
    }
}

/// A running node; killed when dropped.
pub(crate) struct NodeProcess {
    child: Child,
    /// Its HTTP URL.
    pub(crate) url: String,
    _data: Option<tempfile::TempDir>,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // The child leads its own process group: end the group, so a launcher
        // script's children (npm wrappers) go too, then reap the child.
        let _ =
            Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers")
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Starts `peer` with instant mining (a block per transaction batch), or says why it cannot.
pub(crate) fn spawn(peer: Peer) -> Result<NodeProcess, String> {
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let bin = |name: &str| -> Result<PathBuf, String> {
        let p = peers_dir().join("node_modules/.bin").join(name);
        if p.exists() {
            Ok(p)
        } else {
            Err(format!(
                "{} not installed (run `npm ci` in rollup-core/benches/peers)",
                p.display()
            ))
        }
    };
    let (mut cmd, data) = match peer {
        Peer::Metalayer => {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let mut c = Command::new(env!("CARGO_BIN_EXE_metalayer-rollup"));
            c.args([
                "--block-time",
                "0",
                "--chain-id",
                "31337",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ]);
            c.arg("--data-dir").arg(dir.path());
            c.env("RUST_LOG", "warn");
            (c, Some(dir))
        }
        Peer::Anvil => {
            // The npm package's launcher is a node script that spawns this binary.
            let native = peers_dir().join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
            let mut c = Command::new(if native.exists() { native } else { bin("anvil")? });
            c.args(["--port", &port.to_string(), "--chain-id", "31337", "--silent"]);
            (c, None)
        }
        Peer::Hardhat => {
            let mut c = Command::new(bin("hardhat")?);
            c.args(["node", "--port", &port.to_string()]).current_dir(peers_dir());
            (c, None)
        }
    };
    let child = cmd
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", peer.name()))?;
    Ok(NodeProcess { child, url, _data: data })
}
