//! A moto S3 server on a free loopback port, stopped when dropped.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
};

/// A running `python3 -m moto.server`.
pub(crate) struct Moto {
    child: Child,
    /// `http://127.0.0.1:{port}`.
    pub(crate) endpoint: String,
    /// `127.0.0.1:{port}`.
    pub(crate) addr: String,
}

impl Moto {
    /// Starts moto on port 0 and reads the port it bound from its log.
    pub(crate) fn start() -> Self {
        let mut child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 must be installed to run the S3 tests");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (port_tx, port_rx) = mpsc::channel();
        // Moto logs every request to stderr: keep draining it so it never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = line.split("Running on http://127.0.0.1:").nth(1) {
                    if let Some(tx) = port_tx.take() {
                        let _ = tx.send(Ok(port.trim().to_owned()));
                    }
                } else if port_tx.is_some() {
                    seen.push(line);
                }
            }
            if let Some(tx) = port_tx {
                let _ = tx.send(Err(seen.join("\n")));
            }
        });
        let port = match port_rx.recv() {
            Ok(Ok(port)) => port,
            other => {
                let log = match other {
                    Ok(Err(log)) => log,
                    _ => String::new(),
                };
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "moto did not start (is `moto[server]` installed? scripts/test installs \
                     it from scripts/test-requirements.txt); its output:\n{log}"
                );
            }
        };
        let addr = format!("127.0.0.1:{port}");
        Self { child, endpoint: format!("http://{addr}"), addr }
    }

    /// Creates `bucket` (moto starts empty) with the policy validators give
    /// theirs: anyone may read objects, only the owner may write.
    pub(crate) async fn create_public_bucket(&self, bucket: &str) {
        let response = crate::http::request(&self.addr, "PUT", &format!("/{bucket}"))
            .await
            .expect("moto answers on loopback");
        assert_eq!(response.status, 200, "creating bucket {bucket}: {}", response.body);
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
        );
        let response = crate::http::request_with_body(
            &self.addr,
            "PUT",
            &format!("/{bucket}?policy"),
            "application/json",
            &policy,
        )
        .await
        .expect("moto answers on loopback");
        assert!(response.status < 300, "setting {bucket}'s policy: {}", response.body);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
