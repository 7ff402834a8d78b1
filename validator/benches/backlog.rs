//! The validator's backlog bench: `cargo bench -p metalayer-validator`.
//!
//! For each backlog size (default 10,000 and 100,000; set
//! `VALIDATOR_BENCH_BACKLOGS=1000,5000` for others) it starts a rollup-core
//! node in-process, deploys the core contracts, dispatches the backlog from
//! several dev accounts as raw transactions, then starts the
//! `metalayer-validator` binary against it with local checkpoint storage and
//! times it until every checkpoint is signed and published. It samples the
//! validator process's resident memory and prints, per size, the time,
//! checkpoints per second, the validator's CPU time per checkpoint (its
//! start-up and indexing included) and peak RSS, then the RSS ratio between the
//! largest and smallest backlog (goal: flat, at most 64 MiB).
//! `VALIDATOR_BENCH_TRACE=1` also prints the resident set every second.

use std::{
    net::{SocketAddr, TcpListener},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::Encodable2718,
    network::TxSignerSync,
    primitives::{B256, Bytes, TxKind, U256},
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use metalayer_contracts::{
    CoreDeployment,
    bindings::{Mailbox, MerkleTreeHook},
    deploy_core,
};
use metalayer_protocol::{LocalSigner, Signer, address_to_bytes32};
use metalayer_rollup::{
    genesis::Genesis,
    node::{MiningMode, NodeConfig},
    rpc::RpcLimits,
    service::RunningNode,
};
use metalayer_tests::{dev, dev_provider, proc_cpu_seconds, start_node};

const DOMAIN: u32 = 31337;
const SENDERS: u32 = 8;

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound address")
}

/// Peak and current resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse::<u64>().ok()
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

async fn fill_backlog(provider: &DynProvider, core: &CoreDeployment, n: usize) {
    let call = |i: usize| Mailbox::dispatch_2Call {
        destination: DOMAIN,
        recipient: address_to_bytes32(core.test_recipient),
        body: Bytes::from((i as u64).to_be_bytes().to_vec()),
    };
    let mut nonces = Vec::new();
    for s in 1..=SENDERS {
        nonces.push(provider.get_transaction_count(dev(s).address()).await.expect("nonce"));
    }
    let signers: Vec<PrivateKeySigner> = (1..=SENDERS).map(dev).collect();
    for chunk in (0..n).collect::<Vec<_>>().chunks(512) {
        let raws: Vec<Bytes> = chunk
            .iter()
            .map(|&i| {
                let s = i % SENDERS as usize;
                let mut tx = TxEip1559 {
                    chain_id: u64::from(DOMAIN),
                    nonce: nonces[s],
                    gas_limit: 300_000,
                    max_fee_per_gas: 1_000_000_000_000,
                    max_priority_fee_per_gas: 1_000_000_000,
                    to: TxKind::Call(core.mailbox),
                    value: U256::ZERO,
                    input: call(i).abi_encode().into(),
                    access_list: Default::default(),
                };
                nonces[s] += 1;
                let sig = signers[s].sign_transaction_sync(&mut tx).expect("signs");
                let envelope: TxEnvelope = tx.into_signed(sig).into();
                envelope.encoded_2718().into()
            })
            .collect();
        let sends = raws.iter().map(|raw| provider.send_raw_transaction(raw));
        for sent in futures::future::join_all(sends).await {
            drop(sent.expect("dispatch accepted"));
        }
    }
    let hook = MerkleTreeHook::new(core.merkle_tree_hook, provider);
    while (hook.count().call().await.expect("count") as usize) < n {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config(node: &RunningNode, core: &CoreDeployment, dir: &Path, metrics: SocketAddr) -> String {
    format!(
        r#"
origin = "bench"
db = "{db}"
interval_ms = 200
metrics_listen = "{metrics}"
[validator_key]
type = "hex"
key = "{key}"
[chain_signer]
type = "hex"
key = "{chain_key}"
[checkpoint_storage]
type = "local"
path = "{storage}"
[log]
level = "warn"
[chains.bench]
domain = {DOMAIN}
chain_id = {DOMAIN}
rpc_urls = ["{url}"]
reorg_period = 0
addresses = {{ mailbox = "{mailbox}", merkle_tree_hook = "{hook}", interchain_gas_paymaster = "{igp}", validator_announce = "{va}" }}
index = {{ from = {from}, chunk = 1999 }}
"#,
        db = dir.join("db").display(),
        storage = dir.join("checkpoints").display(),
        key = B256::repeat_byte(0x42),
        chain_key = B256::from_slice(&dev(0).to_bytes()[..]),
        url = node.http_url(),
        mailbox = core.mailbox,
        hook = core.merkle_tree_hook,
        igp = core.interchain_gas_paymaster,
        va = core.validator_announce,
        from = core.deployed_block,
    )
}

async fn signed_count(metrics: SocketAddr) -> Option<u64> {
    let body = reqwest_get(metrics).await?;
    body.lines()
        .find(|l| l.starts_with("metalayer_checkpoints_signed_total"))?
        .split_whitespace()
        .last()?
        .parse::<f64>()
        .ok()
        .map(|v| v as u64)
}

/// A plain HTTP GET of `/metrics`, without pulling in an HTTP client.
async fn reqwest_get(addr: SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n").await.ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).await.ok()?;
    Some(out)
}

struct Row {
    backlog: usize,
    fill_secs: f64,
    sign_secs: f64,
    /// The validator process's CPU time (user + system) until all were published.
    cpu_secs: f64,
    peak_rss_mib: f64,
}

async fn run(n: usize) -> Row {
    let dir = tempfile::tempdir().expect("temp dir");
    // Large blocks keep the base fee low while the backlog is dispatched.
    let genesis = Genesis { gas_limit: 100_000_000, ..Genesis::default() };
    let config_node = NodeConfig {
        data_dir: dir.path().join("node"),
        genesis,
        mining: MiningMode::Interval(Duration::from_millis(100)),
        pool_capacity: n + 1_000,
    };
    let node = start_node(config_node, RpcLimits::default()).await;
    let provider = dev_provider(&node);
    let validator = LocalSigner::from_bytes(&B256::repeat_byte(0x42)).expect("key").address();
    let core =
        deploy_core(provider.clone(), &metalayer_tests::core_config(DOMAIN, vec![validator]))
            .await
            .expect("core deploys");
    let fill = Instant::now();
    fill_backlog(&provider, &core, n).await;
    let fill_secs = fill.elapsed().as_secs_f64();

    let metrics = free_port();
    let config_path = dir.path().join("validator.toml");
    std::fs::write(&config_path, config(&node, &core, dir.path(), metrics)).expect("config");
    let start = Instant::now();
    // VALIDATOR_BENCH_WRAPPER runs the validator under a profiler, e.g.
    // "valgrind --tool=massif --massif-out-file=/tmp/massif.out".
    let wrapper = std::env::var("VALIDATOR_BENCH_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    words.push(env!("CARGO_BIN_EXE_metalayer-validator").to_owned());
    let mut child = Command::new(&words[0])
        .args(&words[1..])
        .arg("--config")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("validator starts");
    // VALIDATOR_BENCH_TRACE=1 prints the resident set as signing proceeds.
    let trace = std::env::var_os("VALIDATOR_BENCH_TRACE").is_some();
    let mut last_trace = Instant::now();
    let mut peak_kib = 0;
    loop {
        let rss = rss_kib(child.id());
        if let Some((hwm, _)) = rss {
            peak_kib = peak_kib.max(hwm);
        }
        let signed = signed_count(metrics).await;
        if trace && last_trace.elapsed() >= Duration::from_secs(1) {
            last_trace = Instant::now();
            let (hwm, now) = rss.unwrap_or_default();
            eprintln!(
                "  {:>6.1} s: {:>7} signed, RSS {:>6.1} MiB (peak {:>6.1})",
                start.elapsed().as_secs_f64(),
                signed.unwrap_or_default(),
                now as f64 / 1024.0,
                hwm as f64 / 1024.0
            );
        }
        if signed.is_some_and(|c| c as usize >= n) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the validator exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sign_secs = start.elapsed().as_secs_f64();
    if let Some((hwm, _)) = rss_kib(child.id()) {
        peak_kib = peak_kib.max(hwm);
    }
    let cpu_secs = proc_cpu_seconds(&format!("/proc/{}/stat", child.id()));
    // SIGINT stops the validator cleanly (a profiler wrapper then writes its report).
    let _ = Command::new("kill").arg("-INT").arg(child.id().to_string()).status();
    let _ = child.wait();
    node.stop().await;
    Row { backlog: n, fill_secs, sign_secs, cpu_secs, peak_rss_mib: peak_kib as f64 / 1024.0 }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("VALIDATOR_BENCH_BACKLOGS")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut rows = Vec::new();
    for n in sizes {
        let row = runtime.block_on(run(n));
        println!(
            "backlog {:>7}: filled in {:>7.1} s; signed and published in {:>7.1} s ({:>8.0} checkpoints/s, {:>5.1} µs of validator CPU each); peak RSS {:>6.1} MiB",
            row.backlog,
            row.fill_secs,
            row.sign_secs,
            row.backlog as f64 / row.sign_secs,
            row.cpu_secs * 1e6 / row.backlog as f64,
            row.peak_rss_mib
        );
        rows.push(row);
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && rows.len() > 1
    {
        {
            let ratio = last.peak_rss_mib / first.peak_rss_mib;
            let flat = ratio <= 1.5 && last.peak_rss_mib <= 64.0;
            println!(
                "peak RSS at {} vs {}: {ratio:.2}x; goal (flat, <= 64 MiB): {}",
                last.backlog,
                first.backlog,
                if flat { "met" } else { "NOT met" }
            );
        }
    }
}
