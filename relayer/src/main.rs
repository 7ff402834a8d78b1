//! `metalayer-relayer`: the relayer daemon.
//!
//! Exit codes: 0 when stopped by Ctrl-C, 1 for bad configuration, keys or an
//! unreachable dependency at start.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use metalayer_agent::{
    config::ConfigLoader,
    telemetry::{Health, Metrics, init_tracing},
};
use metalayer_relayer::{Relayer, api, settings::RelayerSettings};

#[derive(Debug, Parser)]
#[command(
    name = "metalayer-relayer",
    version,
    about = "Delivers Metalayer messages between chains"
)]
struct Cli {
    /// The TOML configuration file (also `METALAYER_CONFIG`).
    #[arg(long, short, env = "METALAYER_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides one setting, e.g. `--set max_retries=10`; repeatable; wins
    /// over the file and `METALAYER_*` variables.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

async fn run(cli: Cli) -> eyre::Result<()> {
    let mut loader = ConfigLoader::new();
    if let Some(file) = &cli.config {
        loader = loader.file(file);
    }
    let settings: RelayerSettings = loader.process_env()?.sets(&cli.sets)?.load()?;
    init_tracing(&settings.log)?;
    let key = settings.signer.load()?;
    let (_, tx_signer) = key.into_parts();
    let metrics = Metrics::new("relayer")?;
    let health = Health::default();
    let listen = settings.metrics_listen;
    let relayer = Relayer::new(settings, tx_signer.clone(), metrics.registry()).await?;
    let (addr, _server) = api::serve(listen, relayer.context(), metrics, health).await?;
    tracing::info!(api = %addr, signer = %tx_signer.address(), "relayer running");
    tokio::select! {
        () = relayer.run() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// jemalloc, with [`metalayer_agent::telemetry::JEMALLOC_CONF`].
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
#[used]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 69] = metalayer_agent::telemetry::JEMALLOC_CONF;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
