//! Throughput bench: the same signed workload (N ERC-20-style transfers, then
//! N `Mailbox.dispatch` calls, from 8 senders, as raw transactions over HTTP,
//! awaited to receipts) against this node, anvil and a hardhat 2.x node, all
//! on loopback with instant mining; then execution throughput in-process
//! against bare revm on the same transactions, with the state root's cost per
//! block, and the state root per block as one storage grows. Peers that are
//! not installed are skipped with a note.
//!
//! Run: `cargo bench -p metalayer-rollup --bench throughput` (N from
//! `BENCH_TXS`, default 1000; peers from `npm ci` in `benches/peers`;
//! `BENCH_ONLY=execution` for the in-process part alone).

mod execution;
mod peers;
mod rpc;
mod state_root;
mod workload;

use std::path::Path;

use peers::Peer;
use workload::Workload;

fn main() {
    let n: usize = std::env::var("BENCH_TXS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mailbox-contracts/out");
    let workload = match Workload::build(n, &artifacts) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("cannot build the workload: {e}");
            std::process::exit(1);
        }
    };
    let n = workload.transfers.iter().map(Vec::len).sum::<usize>();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "workload: {n} transfers + {n} Mailbox.dispatch, {} senders, raw txs over HTTP, instant mining",
        workload::SENDERS
    );
    println!("{:<18} {:>16} {:>16}", "node", "transfers tx/s", "dispatch tx/s");
    let mut rates = Vec::new();
    // BENCH_ONLY=execution skips the nodes and runs the in-process part alone.
    let peers_wanted = std::env::var("BENCH_ONLY").map_or(true, |v| v != "execution");
    for peer in [Peer::Metalayer, Peer::Anvil, Peer::Hardhat].into_iter().filter(|_| peers_wanted) {
        let result = runtime.block_on(async {
            let process = peers::spawn(peer)?;
            rpc::wait_up(&process.url).await?;
            rpc::run(&process.url, &workload).await
        });
        match result {
            Ok(r) => {
                println!("{:<18} {:>16.0} {:>16.0}", peer.name(), r.transfers, r.dispatches);
                rates.push((peer, r));
            }
            Err(e) => println!("{:<18} skipped: {e}", peer.name()),
        }
    }
    let ours = rates.iter().find(|(p, _)| *p == Peer::Metalayer).map(|(_, r)| *r);
    for (peer, goal) in [(Peer::Anvil, 1.0), (Peer::Hardhat, 5.0)] {
        if let (Some(o), Some((_, r))) = (ours, rates.iter().find(|(p, _)| *p == peer)) {
            println!(
                "ratio metalayer/{}: transfers {:.2}x, dispatch {:.2}x (goal >= {goal}x)",
                peer.name(),
                o.transfers / r.transfers,
                o.dispatches / r.dispatches
            );
        }
    }
    // Execution alone is fast: give it more transactions than the RPC phases.
    let exec_n = n.max(4000);
    println!(
        "\nexecution in-process, {exec_n} + {exec_n} signed transactions (blocks of up to 200 txs, best of 3):"
    );
    let exec_workload =
        if exec_n == n { Ok(workload) } else { Workload::build(exec_n, &artifacts) };
    match exec_workload.and_then(|w| execution::run(&w)) {
        Ok((t, d)) => {
            for (name, f) in [("transfers", t), ("dispatch", d)] {
                let rate = |secs: f64| f.txs as f64 / secs.max(1e-9);
                let bare = rate(f.bare_secs);
                println!("  {name}:");
                println!("    bare revm, in-memory db          {bare:>10.0} tx/s");
                println!(
                    "    node executor over sled state    {:>10.0} tx/s  ({:.0}% of bare revm, goal >= 50%)",
                    rate(f.node_exec_secs),
                    100.0 * rate(f.node_exec_secs) / bare
                );
                println!(
                    "    node blocks: exec+root+commit    {:>10.0} tx/s  ({:.0}% of bare revm)",
                    rate(f.node_block_secs),
                    100.0 * rate(f.node_block_secs) / bare
                );
                println!(
                    "    state root (alloy-trie) + receipts {:>8.2} ms/block over {} blocks, {} accounts",
                    1000.0 * f.state_root_secs / f.blocks.max(1) as f64,
                    f.blocks,
                    f.accounts
                );
            }
        }
        Err(e) => println!("  failed: {e}"),
    }
    state_root::run();
}
