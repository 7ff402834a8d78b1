//! The `metalayer-rollup` node binary: a devnet EVM rollup with sled state,
//! Ethereum JSON-RPC (HTTP + WebSocket on one port) and Prometheus metrics.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use eyre::WrapErr;
use metalayer_rollup::config::{FileConfig, parse_block_time};
use metalayer_rollup::genesis::Genesis;
use metalayer_rollup::node::{MiningMode, NodeConfig};
use metalayer_rollup::rpc::RpcLimits;
use metalayer_rollup::service::RunningNode;

/// Command-line flags; each overrides the config file and its environment variable.
#[derive(Debug, Parser)]
#[command(
    name = "metalayer-rollup",
    version,
    about = "A revm rollup node with sled state and Ethereum JSON-RPC"
)]
struct Cli {
    /// TOML config file (keys as the long flags: chain-id, block-time, ...).
    #[arg(long, env = "METALAYER_ROLLUP_CONFIG")]
    config: Option<PathBuf>,
    /// Chain id (for a new chain).
    #[arg(long, env = "METALAYER_ROLLUP_CHAIN_ID")]
    chain_id: Option<u64>,
    /// Block time: 1s, 250ms, or 0 / instant to mine as transactions arrive.
    #[arg(long, env = "METALAYER_ROLLUP_BLOCK_TIME")]
    block_time: Option<String>,
    /// Directory of the chain database.
    #[arg(long, env = "METALAYER_ROLLUP_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// JSON-RPC listen address (HTTP and WebSocket).
    #[arg(long, env = "METALAYER_ROLLUP_LISTEN")]
    listen: Option<SocketAddr>,
    /// Prometheus metrics listen address (serves /metrics).
    #[arg(long, env = "METALAYER_ROLLUP_METRICS")]
    metrics: Option<SocketAddr>,
    /// Genesis file (JSON or TOML); flags below override its fields.
    #[arg(long, env = "METALAYER_ROLLUP_GENESIS")]
    genesis: Option<PathBuf>,
    /// Block gas limit.
    #[arg(long)]
    gas_limit: Option<u64>,
    /// Base fee of the genesis block, in wei.
    #[arg(long)]
    base_fee: Option<u64>,
    /// Mnemonic of the dev accounts.
    #[arg(long, env = "METALAYER_ROLLUP_MNEMONIC")]
    mnemonic: Option<String>,
    /// Number of dev accounts.
    #[arg(long)]
    accounts: Option<u32>,
    /// Preinstall Multicall3 at 0xcA11bde05977b3631167028862bE2a173976CA11
    /// in a new chain's genesis, as OP Stack chains do (the relayer batches
    /// reads and deliveries through it).
    #[arg(long)]
    multicall3: bool,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

/// jemalloc, as reth's node uses: the EVM, the RPC server and sled allocate
/// and free many small buffers on many threads, where it is faster than the
/// system allocator (the relay bench's profile showed glibc's malloc and
/// free at about a sixth of all CPU).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_json);
    let file = match &cli.config {
        Some(p) => FileConfig::read(p)?,
        None => FileConfig::default(),
    };
    let mut genesis = match cli.genesis.as_ref().or(file.genesis.as_ref()) {
        Some(p) => Genesis::from_file(p)?,
        None => Genesis::default(),
    };
    if let Some(v) = cli.chain_id.or(file.chain_id) {
        genesis.chain_id = v;
    }
    if let Some(v) = cli.gas_limit.or(file.gas_limit) {
        genesis.gas_limit = v;
    }
    if let Some(v) = cli.base_fee.or(file.base_fee) {
        genesis.base_fee = v;
    }
    if let Some(v) = cli.mnemonic.clone().or(file.mnemonic.clone()) {
        genesis.mnemonic = v;
    }
    if let Some(v) = cli.accounts.or(file.accounts) {
        genesis.dev_accounts = v;
    }
    if cli.multicall3 || file.multicall3.unwrap_or(false) {
        genesis.preinstall_multicall3();
    }
    let mining =
        parse_block_time(cli.block_time.as_deref().or(file.block_time.as_deref()).unwrap_or("1s"))?;
    let data_dir = cli.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("rollup-data"));
    let listen =
        cli.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8545)));
    let metrics_addr = cli.metrics.or(file.metrics);
    let config = NodeConfig { data_dir: data_dir.clone(), genesis, mining, pool_capacity: 100_000 };
    let running = RunningNode::start(config, listen, RpcLimits::default())
        .await
        .wrap_err_with(|| format!("starting the node on {}", data_dir.display()))?;
    print_banner(&running, mining)?;
    if let Some(addr) = metrics_addr {
        let node = running.node.clone();
        let app = axum::Router::new()
            .route("/metrics", axum::routing::get(move || async move { node.metrics.render() }));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .wrap_err_with(|| format!("binding metrics on {addr}"))?;
        tracing::info!(%addr, "metrics on /metrics");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        });
    }
    shutdown_signal().await?;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

fn print_banner(running: &RunningNode, mining: MiningMode) -> eyre::Result<()> {
    let chain = running.node.chain();
    let g = &chain.genesis;
    println!("metalayer-rollup {}", env!("CARGO_PKG_VERSION"));
    println!("\nAvailable Accounts\n==================");
    let signers = g.dev_signers()?;
    let eth = alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(18u64));
    for (i, s) in signers.iter().enumerate() {
        let balance = chain.store.account(s.address())?.map(|a| a.balance).unwrap_or_default();
        println!("({i}) {} ({} ETH)", s.address(), balance / eth);
    }
    println!("\nPrivate Keys\n==================");
    for (i, s) in signers.iter().enumerate() {
        println!("({i}) 0x{}", alloy::primitives::hex::encode(s.to_bytes()));
    }
    println!(
        "\nWallet\n==================\nMnemonic:          {}\nDerivation path:   m/44'/60'/0'/0/",
        g.mnemonic
    );
    println!("\nChain ID\n==================\n{}", g.chain_id);
    println!("\nHead block: {}", chain.head_number()?);
    match mining {
        MiningMode::Instant => println!("Mining: instant"),
        MiningMode::Interval(d) => println!("Mining: every {d:?}"),
    }
    println!("\nListening on {} (HTTP and WebSocket)", running.rpc_addr);
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM. Either way every mined block is already on
/// disk: this only stops serving cleanly.
async fn shutdown_signal() -> eyre::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .wrap_err("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.wrap_err("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
