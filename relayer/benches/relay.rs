//! Relayer throughput, latency and memory, on two in-process rollup-core
//! nodes (250 ms blocks) with 3-of-5 validators per origin; prints figures.
//!
//! `cargo bench -p metalayer-relayer --bench relay`. Sizes from the
//! environment: `BENCH_MESSAGES` (default 10 000, split between the two
//! directions), `BENCH_PENDING` (default 100 000; 0 skips the memory run),
//! `BENCH_BATCH` (`on` or `off` runs only that throughput run; `drain`
//! only the drain run below),
//! `BENCH_RATE` (dispatches per second in all; unset sends them as fast as
//! the nodes take them), `BENCH_ISM` (`static` for the separate MerkleRoot
//! ISM, `message_id` for the embedded MessageId ISM; default the Mailbox's
//! embedded MerkleRoot ISM), `BENCH_LOG` (a log filter), `BENCH_BLOCKS`
//! (set: list each block mined during a throughput run, with how full it
//! was), `BENCH_TIMELINE` (set: when each origin block's messages went
//! through the relayer's stages) and `BENCH_RPC` (set: each node's
//! JSON-RPC calls by method).
//!
//! - Throughput: messages delivered per second, from the first dispatch
//!   sent to the last delivery mined, with batch delivery on and off.
//! - Drain (`BENCH_BATCH=drain`): the relayer started once all messages
//!   are dispatched and signed; delivered per second from its start.
//! - Latency: from sending a dispatch, and from its block being mined,
//!   to the relayer seeing the receipt of its delivery (its history
//!   records when).
//! - The relayer's own CPU time (its runtime's threads), per message, and
//!   the validators' and the rest's; how full the blocks mined meanwhile were.
//! - Memory: the `metalayer-relayer` binary's resident set once it holds
//!   `BENCH_PENDING` undeliverable messages (no validator signs) in its queue.

#[path = "../tests/it/common.rs"]
#[allow(dead_code, unreachable_pub)]
mod common;

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::primitives::B256;
use common::{Net, NetOptions, burst, send_dispatches, sign_dispatches};
use metalayer_contracts::DefaultIsm;
use metalayer_relayer::op::Stage;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The destination's default ISM: `BENCH_ISM=static` for the separate
/// StaticMerkleRootMultisigIsm, `message_id` for the Mailbox's embedded
/// MessageId ISM (no batches: deliveries share Multicall3 transactions),
/// else the Mailbox's embedded MerkleRoot ISM.
fn ism() -> DefaultIsm {
    match std::env::var("BENCH_ISM").as_deref() {
        Ok("static") => DefaultIsm::MerkleRoot,
        Ok("message_id") => DefaultIsm::Embedded,
        _ => DefaultIsm::EmbeddedMerkleRoot,
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// CPU seconds (user + system) used so far by this process's threads whose
/// name starts with `prefix` (Linux; 0 elsewhere).
fn thread_cpu_seconds(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let mut seconds = 0.0;
    for task in tasks.flatten() {
        let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else { continue };
        if name.starts_with(prefix) {
            seconds += common::proc_cpu_seconds(&task.path().join("stat").to_string_lossy());
        }
    }
    seconds
}

/// The name prefix of the relayer runtime's threads.
const RELAYER_THREADS: &str = "relayer-rt";

/// Messages delivered per second by a relayer started on a backlog: every
/// dispatch is mined (and signed by the validators) before it starts, so
/// the figure is the relayer's pace, not the pace at which the two nodes
/// take dispatches. Timed from its start to the last delivery mined.
async fn drain(n: usize, relayer_runtime: &tokio::runtime::Handle) {
    let mut net = Net::new(NetOptions { ism: ism(), block_ms: 250, ..NetOptions::default() }).await;
    start_validators(&mut net).await;
    let [a, b] = &net.chains;
    let started = Instant::now();
    let (to_b, to_a) = tokio::join!(burst(a, b, n / 2, 5), burst(b, a, n - n / 2, 6));
    let sent: Vec<B256> = to_b.into_iter().chain(to_a).map(|(id, _)| id).collect();
    eprintln!("  {:.1} s: {n} dispatches sent", started.elapsed().as_secs_f64());
    // Every leaf signed on both origins (a fresh network: leaves from 0).
    for (origin, count) in [(0, n / 2), (1, n - n / 2)] {
        if let Some(last) = (count as u32).checked_sub(1) {
            net.wait_signed(origin, last).await;
        }
    }
    let toml = net.relayer_toml("");
    let cpu_before = thread_cpu_seconds(RELAYER_THREADS);
    let relayer = net.relayer_on(&toml, relayer_runtime).await;
    let start_ms = metalayer_relayer::op::now_ms();
    let mined_at = wait_mined(&relayer, &sent, |_| {}).await;
    let relayer_cpu = thread_cpu_seconds(RELAYER_THREADS) - cpu_before;
    let done = mined_at.iter().filter(|m| m.is_some()).count();
    let last = mined_at.iter().flatten().max().copied().unwrap_or(start_ms);
    let secs = last.saturating_sub(start_ms) as f64 / 1000.0;
    println!(
        "drain (batch on): {done}/{} delivered in {secs:.1} s from the relayer's start = {:.0} msg/s; relayer CPU {:.2} ms per message",
        sent.len(),
        done as f64 / secs.max(0.001),
        relayer_cpu * 1000.0 / done.max(1) as f64,
    );
    relayer.kill().await;
    net.shutdown().await;
}

/// When the relayer's history shows each of `ids` mined (moved to confirm),
/// polled every second until all are or `BENCH_DEADLINE_S` passes;
/// `progress` hears every 10 s how many are.
async fn wait_mined(
    relayer: &common::RunningRelayer,
    ids: &[B256],
    progress: impl Fn(usize),
) -> Vec<Option<u64>> {
    let mut mined_at: Vec<Option<u64>> = vec![None; ids.len()];
    let deadline = Instant::now() + Duration::from_secs(env("BENCH_DEADLINE_S", 1800) as u64);
    let mut report = Instant::now();
    while mined_at.iter().any(Option::is_none) && Instant::now() < deadline {
        if report.elapsed() >= Duration::from_secs(10) {
            report = Instant::now();
            progress(mined_at.iter().filter(|m| m.is_some()).count());
        }
        // Only messages the relayer has seen mined (in confirm or
        // delivered, read from its queue index) have their history read.
        let mut seen = std::collections::HashSet::new();
        for destination in relayer.ctx.destinations.keys() {
            for stage in [Stage::Confirm, Stage::Delivered] {
                seen.extend(relayer.ctx.queue.ids(*destination, stage).unwrap_or_default());
            }
        }
        for (id, at) in ids.iter().zip(mined_at.iter_mut()).filter(|(_, at)| at.is_none()) {
            if seen.contains(id) {
                let history = relayer.ctx.queue.history(*id).unwrap_or_default();
                *at = history.iter().find(|h| h.stage == Stage::Confirm).map(|h| h.at_ms);
            }
        }
        // The times come from the histories, so how often they are read
        // changes no figure; reading every message's record is work the
        // measured parts share the cores with.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    mined_at
}

async fn throughput(n: usize, batch: bool, relayer_runtime: &tokio::runtime::Handle) {
    let mut net = Net::new(NetOptions { ism: ism(), block_ms: 250, ..NetOptions::default() }).await;
    start_validators(&mut net).await;
    let toml = net.relayer_toml(if batch { "" } else { "batch_delivery = false" });
    let relayer = net.relayer_on(&toml, relayer_runtime).await;
    let [a, b] = &net.chains;
    // The load is signed before the clock starts: signing it is the
    // dapps' work, not the network's, and done meanwhile it would take
    // this machine's cores from what is measured.
    let (load_b, load_a) =
        tokio::join!(sign_dispatches(a, b, n / 2, 5), sign_dispatches(b, a, n - n / 2, 6));
    let cpu_before = thread_cpu_seconds(RELAYER_THREADS);
    let validators_before = net.validator_processes_cpu_seconds();
    let process_before = common::proc_cpu_seconds("/proc/self/stat");
    // When each block of each chain was mined (the nodes' own events):
    // a dispatch's latency is also taken from when its block was mined.
    let seen: Vec<(u32, BlockTimes, tokio::task::JoinHandle<()>)> = net
        .chains
        .iter()
        .map(|c| {
            let map = Arc::new(Mutex::new(HashMap::new()));
            (c.domain, map.clone(), tokio::spawn(watch_blocks(c, map)))
        })
        .collect();
    // `BENCH_RATE`: total dispatches per second, split between the two
    // directions (unset: as fast as the nodes take them).
    let rate = std::env::var("BENCH_RATE").ok().and_then(|r| r.parse::<f64>().ok());
    let started = Instant::now();
    let sending = async {
        let half = rate.map(|r| r / 2.0);
        let (to_b, to_a) =
            tokio::join!(send_dispatches(a, load_b, half), send_dispatches(b, load_a, half));
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
    let ids: Vec<B256> = sent.iter().map(|(id, _)| *id).collect();
    let mined_at = wait_mined(&relayer, &ids, |mined| {
        eprintln!(
            "  {:.0} s: {mined} of {} mined; {}",
            started.elapsed().as_secs_f64(),
            ids.len(),
            queues(&net, &relayer)
        );
    })
    .await;
    let relayer_cpu = thread_cpu_seconds(RELAYER_THREADS) - cpu_before;
    let validators_cpu = net.validator_processes_cpu_seconds() - validators_before;
    let process_cpu = common::proc_cpu_seconds("/proc/self/stat") - process_before;
    let cpu_window = started.elapsed().as_secs_f64();
    let mined_origin: Vec<Option<u64>> = sent
        .iter()
        .map(|(id, _)| {
            let op = relayer.ctx.queue.get(*id).ok()??;
            let (block, _) = relayer.ctx.store.dispatch(op.origin, op.nonce).ok()??;
            let (_, map, _) = seen.iter().find(|(domain, _, _)| *domain == op.origin)?;
            map.lock().ok()?.get(&block).map(|(at, _)| *at)
        })
        .collect();
    for (_, _, task) in &seen {
        task.abort();
    }
    // How full the blocks mined while the messages were on their way
    // were: where they are full, block space and not the agents set the pace.
    let last_mined = mined_at.iter().flatten().max().copied().unwrap_or(0);
    let fullness: Vec<String> = seen
        .iter()
        .map(|(domain, map, _)| {
            let map = map.lock().map(|m| m.clone()).unwrap_or_default();
            if std::env::var("BENCH_BLOCKS").is_ok() {
                print_blocks(*domain, &map, first_sent, last_mined);
            }
            let used: Vec<f64> = map
                .values()
                .filter(|(at, _)| (first_sent..=last_mined).contains(at))
                .filter_map(|(_, seen)| seen.map(|s| s.used))
                .collect();
            let mean = used.iter().sum::<f64>() / used.len().max(1) as f64;
            let full = used.iter().filter(|u| **u >= 0.9).count();
            format!(
                "{domain}: {} blocks, {:.0} % of their gas used, {full} over 90 %",
                used.len(),
                mean * 100.0
            )
        })
        .collect();
    let mut from_mined: Vec<u64> = mined_origin
        .iter()
        .zip(&mined_at)
        .filter_map(|(origin, mined)| Some(mined.as_ref()?.saturating_sub(*origin.as_ref()?)))
        .collect();
    from_mined.sort_unstable();
    // Where the time went, from each message's history: block seen →
    // loaded into prepare → last prepared (metadata built) → mined.
    let mut segments: [Vec<u64>; 3] = Default::default();
    for ((id, _), origin) in sent.iter().zip(&mined_origin) {
        let Some(seen_at) = origin else { continue };
        let history = relayer.ctx.queue.history(*id).unwrap_or_default();
        let loaded = history.first().map(|h| h.at_ms);
        let prepared = history.iter().rev().find(|h| h.stage == Stage::Submit).map(|h| h.at_ms);
        let mined = history.iter().find(|h| h.stage == Stage::Confirm).map(|h| h.at_ms);
        if let (Some(loaded), Some(prepared), Some(mined)) = (loaded, prepared, mined) {
            segments[0].push(loaded.saturating_sub(*seen_at));
            segments[1].push(prepared.saturating_sub(loaded));
            segments[2].push(mined.saturating_sub(prepared));
        }
    }
    let [seen_loaded, loaded_prepared, prepared_mined] = segments.map(median);
    if std::env::var("BENCH_TIMELINE").is_ok() {
        let blocks: HashMap<u32, HashMap<u64, u64>> = seen
            .iter()
            .map(|(domain, map, _)| {
                let map = map.lock().map(|m| m.clone()).unwrap_or_default();
                (*domain, map.into_iter().map(|(n, (at, _))| (n, at)).collect())
            })
            .collect();
        print_timeline(&net, &relayer, &sent, &mined_origin, &blocks, first_sent).await;
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
    if rate.is_some() {
        print_steady_state(&sent, &mined_at);
    }
    println!(
        "           from the dispatch's block mined: p50 {} ms, p99 {} ms ({} messages)",
        from_mined.get(from_mined.len() / 2).copied().unwrap_or(0),
        if from_mined.is_empty() { 0 } else { percentile(&from_mined, 0.99) },
        from_mined.len(),
    );
    println!(
        "           p50 block seen → loaded {seen_loaded} ms, loaded → prepared {loaded_prepared} ms, prepared → mined {prepared_mined} ms"
    );
    println!(
        "           blocks from the first dispatch to the last delivery: {}",
        fullness.join("; ")
    );
    // The relayer's own share of the shared CPU: its runtime's threads
    // (sled's background threads and the nodes serving its requests are
    // not counted).
    println!(
        "           relayer CPU {relayer_cpu:.1} s = {:.2} ms per message, {:.0} msg/s per core",
        relayer_cpu * 1000.0 / done.max(1) as f64,
        done as f64 / relayer_cpu.max(0.001),
    );
    // Where the rest of the machine went: the validators' processes, and
    // this process less the relayer (nodes, sled's threads, load, bench).
    let per_message = |cpu: f64| cpu * 1000.0 / done.max(1) as f64;
    let validators = if validators_in_process() {
        "in this process, counted in the rest".to_owned()
    } else {
        format!("{:.2} ms", per_message(validators_cpu))
    };
    println!(
        "           CPU per message: relayer {:.2} ms, validators {validators}, nodes and the rest {:.2} ms; {:.2} cores busy",
        per_message(relayer_cpu),
        per_message(process_cpu - relayer_cpu),
        (validators_cpu + process_cpu) / cpu_window,
    );
    if std::env::var("BENCH_RPC").is_ok() {
        print_rpc_calls(&net);
    }
    relayer.kill().await;
    net.shutdown().await;
}

/// `BENCH_RPC`: each node's JSON-RPC calls by method over the network's
/// life (setup included), with the time spent answering them (waits for the
/// chain lock included).
fn print_rpc_calls(net: &Net) {
    for chain in &net.chains {
        let Some(node) = chain.node().and_then(|n| n.upgrade()) else { continue };
        let families = node.metrics.registry.gather();
        let mut calls: Vec<(String, u64, f64)> = families
            .iter()
            .filter(|f| f.name().ends_with("rpc_seconds"))
            .flat_map(|f| f.get_metric())
            .map(|m| {
                let method = m.get_label().iter().map(|l| l.value()).collect::<Vec<_>>().join(",");
                let h = m.get_histogram();
                (method, h.get_sample_count(), h.get_sample_sum())
            })
            .collect();
        calls.sort_by_key(|(_, count, _)| std::cmp::Reverse(*count));
        for (method, count, seconds) in calls {
            eprintln!("  {} {method}: {count} calls, {seconds:.2} s answering", chain.name);
        }
    }
}

/// For a paced run: deliveries mined per second while the load was
/// offered, from [`WARM_UP_MS`] after the first dispatch to the last one
/// sent (the pipeline full, its fill and drain left out), and the latency
/// of the first and last quarters of the messages sent: a pipeline that
/// keeps up holds its latency; one that falls behind grows it.
fn print_steady_state(sent: &[(B256, u64)], mined_at: &[Option<u64>]) {
    let first = sent.iter().map(|(_, t)| *t).min().unwrap_or(0);
    let last = sent.iter().map(|(_, t)| *t).max().unwrap_or(0);
    let from = first + WARM_UP_MS;
    if last <= from {
        return;
    }
    let delivered = mined_at.iter().flatten().filter(|at| (from..=last).contains(*at)).count();
    let offered = sent.iter().filter(|(_, t)| (from..=last).contains(t)).count();
    let secs = (last - from) as f64 / 1000.0;
    let mut by_send: Vec<(u64, Option<u64>)> = sent
        .iter()
        .zip(mined_at)
        .map(|((_, t), m)| (*t, m.map(|m| m.saturating_sub(*t))))
        .collect();
    by_send.sort_unstable_by_key(|(t, _)| *t);
    let quarter = (by_send.len() / 4).max(1);
    let p50 = |part: &[(u64, Option<u64>)]| median(part.iter().filter_map(|(_, l)| *l).collect());
    println!(
        "           steady state ({:.1} s from {} s after the first dispatch to the last): {:.0} deliveries/s mined, {:.0} dispatches/s sent; p50 latency {} ms in the first quarter sent, {} ms in the last",
        secs,
        WARM_UP_MS / 1000,
        delivered as f64 / secs,
        offered as f64 / secs,
        p50(&by_send[..quarter]),
        p50(&by_send[by_send.len().saturating_sub(quarter)..]),
    );
}

/// The middle value of `values` (the upper of the two middle ones), 0 for
/// none.
fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// Left out of a paced run's steady state: the pipeline filling.
const WARM_UP_MS: u64 = 2_000;

/// `BENCH_TIMELINE`: for each origin block's messages (by when the block
/// was mined), the median times (ms after the first dispatch) at which
/// they were loaded, first tried, last prepared, mined in a destination
/// block (`blocks`: each domain's block times) and seen mined by the
/// relayer, and their median prepare attempts.
async fn print_timeline(
    net: &Net,
    relayer: &common::RunningRelayer,
    sent: &[(B256, u64)],
    mined_origin: &[Option<u64>],
    blocks: &HashMap<u32, HashMap<u64, u64>>,
    first_sent: u64,
) {
    // Each message whose origin block was seen, read once.
    let ops: Vec<(u64, metalayer_relayer::op::PendingOp)> = sent
        .iter()
        .zip(mined_origin)
        .filter_map(|((id, _), origin)| Some(((*origin)?, relayer.ctx.queue.get(*id).ok()??)))
        .collect();
    // Each delivery transaction's block time, from its receipt.
    let mut included: HashMap<B256, u64> = HashMap::new();
    for (_, op) in &ops {
        let (Some(hash), Some(chain)) =
            (op.tx_hash, net.chains.iter().find(|c| c.domain == op.destination))
        else {
            continue;
        };
        if included.contains_key(&hash) {
            continue;
        }
        let receipt = alloy::providers::Provider::get_transaction_receipt(&chain.provider, hash);
        if let Ok(Some(r)) = receipt.await
            && let Some(at) = r.block_number.and_then(|n| blocks.get(&op.destination)?.get(&n))
        {
            included.insert(hash, *at);
        }
    }
    let mut by_block: std::collections::BTreeMap<(u64, u32), Vec<[u64; 6]>> = Default::default();
    for (block_at, op) in &ops {
        let history = relayer.ctx.queue.history(op.id).unwrap_or_default();
        let at = |stage: Stage, last: bool| {
            let mut found = history.iter().filter(|h| h.stage == stage);
            let entry = if last { found.next_back() } else { found.next() };
            entry.map_or(u64::MAX, |h| h.at_ms.saturating_sub(first_sent))
        };
        let loaded = history.first().map_or(u64::MAX, |h| h.at_ms.saturating_sub(first_sent));
        // The first move out of the loaded state: a retry back to prepare
        // or the move to submit.
        let tried = history.get(1).map_or(u64::MAX, |h| h.at_ms.saturating_sub(first_sent));
        let attempts = history.iter().filter(|h| h.stage == Stage::Prepare).count() as u64;
        let in_block = op
            .tx_hash
            .and_then(|h| included.get(&h))
            .map_or(u64::MAX, |at| at.saturating_sub(first_sent));
        by_block.entry((block_at.saturating_sub(first_sent), op.origin)).or_default().push([
            loaded,
            tried,
            at(Stage::Submit, true),
            in_block,
            at(Stage::Confirm, false),
            attempts,
        ]);
    }
    for ((block_at, origin), rows) in by_block {
        let n = rows.len();
        let [loaded, tried, prepared, in_block, mined, attempts] =
            [0, 1, 2, 3, 4, 5].map(|i| median(rows.iter().map(|r| r[i]).collect()));
        eprintln!(
            "  {origin} block at {block_at} ms, {n} messages: loaded {loaded}, first tried {tried}, prepared {prepared}, in a block {in_block}, seen mined {mined} ms; {attempts} prepare entries"
        );
    }
}

/// `BENCH_BLOCKS`: every block of `domain` mined from the first dispatch
/// sent to a second past the last delivery, with when (ms after the first
/// dispatch), how much of its gas limit it used, and how long the node
/// took to execute it and to build its state root and receipts.
fn print_blocks(
    domain: u32,
    blocks: &HashMap<u64, (u64, Option<MinedStats>)>,
    first_sent: u64,
    last_mined: u64,
) {
    let mut all: Vec<(&u64, &(u64, Option<MinedStats>))> = blocks
        .iter()
        .filter(|(_, (at, _))| (first_sent..=last_mined + 1000).contains(at))
        .collect();
    all.sort_by_key(|(n, _)| **n);
    for (n, (at, seen)) in all {
        let used = seen.map_or("? % of its gas (its event was missed)".to_owned(), |s| {
            format!(
                "{:.0} % of its gas, executed in {:.0} ms, root and receipts {:.0} ms",
                s.used * 100.0,
                s.execution_ms,
                s.root_ms
            )
        });
        eprintln!("  {domain} block {n} at {} ms: {used}", at - first_sent);
    }
}

/// A mined block's gas used as a share of its limit, and the node's times.
#[derive(Clone, Copy)]
struct MinedStats {
    used: f64,
    execution_ms: f64,
    root_ms: f64,
}

/// Each block number's time mined (unix ms) and figures (unknown for a
/// block whose event was missed), shared with its watcher.
type BlockTimes = Arc<Mutex<HashMap<u64, (u64, Option<MinedStats>)>>>;

/// Records in `seen` when each block of `chain` is mined (from the node's
/// own events: no polling), subscribed at once; the future runs until
/// aborted.
fn watch_blocks(chain: &common::Chain, seen: BlockTimes) -> impl Future<Output = ()> + use<> {
    let mut events = chain.events().expect("the node runs");
    async move {
        use metalayer_rollup::node::ChainEvent;
        use tokio::sync::broadcast::error::RecvError;
        let mut last: Option<u64> = None;
        loop {
            let (number, used) = match events.recv().await {
                Ok(ChainEvent::Block(mined)) => {
                    let header = &mined.block.header;
                    let stats = MinedStats {
                        used: header.gas_used as f64 / header.gas_limit.max(1) as f64,
                        execution_ms: mined.execution_secs * 1000.0,
                        root_ms: mined.state_root_secs * 1000.0,
                    };
                    (header.number, stats)
                }
                Ok(ChainEvent::Removed(_)) => continue,
                // Missed events: the next block's time stands for them.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let now = metalayer_relayer::op::now_ms();
            let first = last.map_or(number, |l| (l + 1).min(number));
            if let Ok(mut map) = seen.lock() {
                for n in first..=number {
                    // Blocks missed while lagging: their fullness unknown.
                    map.entry(n).or_insert((now, (n == number).then_some(used)));
                }
            }
            last = Some(last.map_or(number, |l| l.max(number)));
        }
    }
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

/// The process hosts the relayer, the validators and both nodes, each of
/// which runs on jemalloc when it is its own binary: the bench uses it too,
/// with jemalloc's default arenas (one per core and more) since here one
/// process does the work of twelve.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A validator's own process ([`common::ValidatorSlot::start_process`]):
/// what `metalayer-validator` runs, from the configuration file at `config`,
/// announced already (no chain signer), until killed.
fn validator_process(config: &str) -> ! {
    use metalayer_agent::config::ConfigLoader;
    use metalayer_validator::{Validator, settings::ValidatorSettings};
    // Ends with the bench, however the bench ends: a killed bench must
    // not leave validators polling nodes that are gone.
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        loop {
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .expect("validator runtime");
    let error = runtime.block_on(async {
        let mut settings: ValidatorSettings =
            ConfigLoader::new().file(config).load().expect("validator config loads");
        let origin = settings.origin_chain().expect("origin chain").clone();
        let storage = settings.checkpoint_storage.open().expect("checkpoint storage");
        // The announcing process may hold the database for a moment longer.
        let mut attempts = 0;
        let validator = loop {
            let (signer, _) = settings.validator_key.load().expect("validator key").into_parts();
            match Validator::new(
                origin.clone(),
                &settings,
                signer,
                None,
                storage.clone(),
                &prometheus::Registry::new(),
            )
            .await
            {
                Ok(v) => break v,
                Err(_) if attempts < 200 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("validator {config} does not start: {e}"),
            }
        };
        validator.run().await
    });
    panic!("validator {config} stopped: {error:?}");
}

/// Whether validators run in-process (`BENCH_VALIDATORS=in-process`)
/// rather than each in its own process (the default).
fn validators_in_process() -> bool {
    std::env::var("BENCH_VALIDATORS").is_ok_and(|v| v == "in-process")
}

/// Starts all five validators of each origin, as [`validators_in_process`]
/// says.
async fn start_validators(net: &mut Net) {
    if validators_in_process() {
        net.start_validators(0..5).await;
    } else {
        let exe = std::env::current_exe().expect("the bench's own path");
        net.start_validator_processes(0..5, &exe).await;
    }
}

fn main() {
    // Run by the bench itself as one of its validators.
    if let Ok(config) = std::env::var(common::VALIDATOR_PROCESS_ENV) {
        validator_process(&config);
    }
    // `BENCH_LOG=<filter>` (e.g. `metalayer_relayer=debug`) logs to stderr.
    if let Ok(level) = std::env::var("BENCH_LOG") {
        let settings = metalayer_agent::telemetry::LogSettings { level, ..Default::default() };
        metalayer_agent::telemetry::init_tracing(&settings).expect("log filter");
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    // The relayer's tasks get their own threads, whose CPU time is read
    // from /proc (blocking threads kept alive so none exits uncounted).
    let relayer_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(RELAYER_THREADS)
        .thread_keep_alive(Duration::from_secs(24 * 3600))
        .enable_all()
        .build()
        .expect("relayer runtime");
    let relayer_handle = relayer_runtime.handle().clone();
    runtime.block_on(async {
        let n = env("BENCH_MESSAGES", 10_000);
        let pending = env("BENCH_PENDING", 100_000);
        println!("relay bench: {n} messages, 250 ms blocks, 3 of 5 validators, ISM {:?}", ism());
        // `BENCH_BATCH=on` or `off` runs one of the two throughput runs.
        let modes = std::env::var("BENCH_BATCH").unwrap_or_default();
        if modes == "drain" {
            drain(n, &relayer_handle).await;
            return;
        }
        if modes != "off" {
            throughput(n, true, &relayer_handle).await;
        }
        if modes != "on" {
            throughput(n, false, &relayer_handle).await;
        }
        if pending > 0 {
            memory(pending).await;
        }
    });
}
