//! Relayer throughput, latency and memory, on two in-process rollup-core
//! nodes (250 ms blocks) with 3-of-5 validators per origin; prints figures.
//!
//! `cargo bench -p metalayer-relayer --bench relay`. Sizes from the
//! environment: `BENCH_MESSAGES` (default 10 000, split between the two
//! directions), `BENCH_PENDING` (default 100 000; 0 skips the memory run)
//! and `BENCH_BATCH` (`on` or `off` runs only that throughput run).
//!
//! - Throughput: messages delivered per second, from the first dispatch
//!   sent to the last delivery mined, with batch delivery on and off.
//! - Latency: from sending a dispatch to the block that delivered it
//!   (the relayer's history records when the delivery was mined).
//! - Memory: the `metalayer-relayer` binary's resident set once it holds
//!   `BENCH_PENDING` undeliverable messages (no validator signs) in its queue.

#[path = "../tests/it/common.rs"]
#[allow(dead_code, unreachable_pub)]
mod common;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use alloy::primitives::B256;
use common::{Net, NetOptions, burst};
use metalayer_contracts::DefaultIsm;
use metalayer_relayer::op::Stage;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn throughput(n: usize, batch: bool) {
    let mut net = Net::new(NetOptions {
        ism: DefaultIsm::MerkleRoot,
        block_ms: 250,
        ..NetOptions::default()
    })
    .await;
    net.start_validators(0..5).await;
    let relayer = net.relayer(if batch { "" } else { "batch_delivery = false" }).await;
    let [a, b] = &net.chains;
    let started = Instant::now();
    let sending = async {
        let (to_b, to_a) = tokio::join!(burst(a, b, n / 2, 5), burst(b, a, n - n / 2, 6));
        eprintln!("  {:.1} s: {n} dispatches sent", started.elapsed().as_secs_f64());
        to_b.into_iter().chain(to_a).collect::<Vec<(B256, u64)>>()
    };
    // Queue lengths while the dispatches are being sent.
    let watching = async {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            eprintln!("  {:.0} s: {}", started.elapsed().as_secs_f64(), queues(&net, &relayer));
        }
    };
    let sent = tokio::select! {
        sent = sending => sent,
        () = watching => unreachable!("the watcher never ends"),
    };
    let first_sent = sent.iter().map(|(_, t)| *t).min().unwrap_or(0);
    let mut mined_at = vec![None; sent.len()];
    let deadline = Instant::now() + Duration::from_secs(env("BENCH_DEADLINE_S", 1800) as u64);
    let mut report = Instant::now();
    while mined_at.iter().any(Option::is_none) && Instant::now() < deadline {
        if report.elapsed() >= Duration::from_secs(10) {
            report = Instant::now();
            eprintln!(
                "  {:.0} s: {} of {} mined; {}",
                started.elapsed().as_secs_f64(),
                mined_at.iter().filter(|m| m.is_some()).count(),
                sent.len(),
                queues(&net, &relayer)
            );
        }
        for ((id, _), at) in sent.iter().zip(mined_at.iter_mut()).filter(|(_, at)| at.is_none()) {
            let Ok(Some(op)) = relayer.ctx.queue.get(*id) else { continue };
            if matches!(op.stage, Stage::Confirm | Stage::Delivered) {
                let history = relayer.ctx.queue.history(*id).unwrap_or_default();
                *at = history.iter().find(|h| h.stage == Stage::Confirm).map(|h| h.at_ms);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let done = mined_at.iter().filter(|m| m.is_some()).count();
    let last = mined_at.iter().flatten().max().copied().unwrap_or(first_sent);
    let mut latencies: Vec<u64> = sent
        .iter()
        .zip(&mined_at)
        .filter_map(|((_, sent), mined)| Some(mined.as_ref()?.saturating_sub(*sent)))
        .collect();
    latencies.sort_unstable();
    let secs = (last.saturating_sub(first_sent)) as f64 / 1000.0;
    println!(
        "batch {:>3}: {done}/{} delivered in {secs:.1} s = {:.0} msg/s; latency p50 {} ms, p99 {} ms (setup+run {:.0} s)",
        if batch { "on" } else { "off" },
        sent.len(),
        done as f64 / secs.max(0.001),
        latencies.get(latencies.len() / 2).copied().unwrap_or(0),
        if latencies.is_empty() { 0 } else { percentile(&latencies, 0.99) },
        started.elapsed().as_secs_f64(),
    );
    relayer.kill().await;
    net.shutdown().await;
}

/// Each destination's queue lengths, for progress lines.
fn queues(net: &Net, relayer: &common::RunningRelayer) -> String {
    let lines: Vec<String> = net
        .chains
        .iter()
        .map(|c| {
            let len = |s| relayer.ctx.queue.len(c.domain, s);
            format!(
                "{}: prepare {} submit {} confirm {} delivered {}",
                c.name,
                len(Stage::Prepare),
                len(Stage::Submit),
                len(Stage::Confirm),
                len(Stage::Delivered)
            )
        })
        .collect();
    lines.join("; ")
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn memory(pending: usize) {
    let net = Net::new(NetOptions { block_ms: 250, ..NetOptions::default() }).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let config = net.path().join("relayer-rss.toml");
    let toml = net.relayer_toml("").replace(
        "metrics_listen = \"127.0.0.1:0\"",
        &format!("metrics_listen = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&config, toml).expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_metalayer-relayer"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("relayer binary");
    let [a, b] = &net.chains;
    let (_, _) = tokio::join!(burst(a, b, pending / 2, 5), burst(b, a, pending - pending / 2, 6));
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut queued = 0.0;
    while Instant::now() < deadline {
        let text = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.ok();
        let text = match text {
            Some(r) => r.text().await.unwrap_or_default(),
            None => String::new(),
        };
        queued = text
            .lines()
            .filter(|l| {
                l.starts_with("metalayer_submitter_queue_length") && l.contains("prepare_queue")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        if queued as usize >= pending {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Let a few passes over the full queue run before measuring.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss = rss_kib(child.id()).unwrap_or(0);
    println!("memory: {queued:.0} pending messages, relayer RSS {:.1} MiB", rss as f64 / 1024.0);
    let _ = child.kill();
    let _ = child.wait();
    net.shutdown().await;
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let n = env("BENCH_MESSAGES", 10_000);
        let pending = env("BENCH_PENDING", 100_000);
        println!("relay bench: {n} messages, 250 ms blocks, 3 of 5 validators, MerkleRoot ISM");
        // `BENCH_BATCH=on` or `off` runs one of the two throughput runs.
        let modes = std::env::var("BENCH_BATCH").unwrap_or_default();
        if modes != "off" {
            throughput(n, true).await;
        }
        if modes != "on" {
            throughput(n, false).await;
        }
        if pending > 0 {
            memory(pending).await;
        }
    });
}
