//! `metalayer-validator`: the validator daemon and its operator commands.
//!
//! Exit codes: 0 never in normal operation (the daemon runs until stopped),
//! 1 for bad configuration, keys or an unreachable dependency at start,
//! 2 when signing stopped on a merkle root mismatch or a raised reorg flag,
//! 3 when the double-sign protection refused to sign.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use metalayer_agent::{
    config::ConfigLoader,
    telemetry::{Health, Metrics, TelemetryServer, init_tracing},
};
use metalayer_validator::{
    ValidatorError,
    protection::{Interchange, ProtectionError, SigningProtection},
    settings::ValidatorSettings,
    validator::Validator,
};

/// jemalloc, with [`metalayer_agent::telemetry::JEMALLOC_CONF`]: over a
/// 100k-checkpoint backlog it holds the resident set about 20 MiB lower than
/// the system allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
#[used]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 69] = metalayer_agent::telemetry::JEMALLOC_CONF;

#[derive(Debug, Parser)]
#[command(
    name = "metalayer-validator",
    version,
    about = "Signs checkpoints of a Metalayer origin Mailbox"
)]
struct Cli {
    /// The TOML configuration file (also `METALAYER_CONFIG`).
    #[arg(long, short, env = "METALAYER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Overrides one setting, e.g. `--set interval_ms=500`; repeatable; wins
    /// over the file and `METALAYER_*` variables.
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    sets: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the validator (the default).
    Run,
    /// Writes the double-sign protection record as JSON.
    ExportProtection {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Merges a JSON protection record into this validator's, all or nothing.
    ImportProtection {
        /// Input file.
        #[arg(long = "in")]
        input: PathBuf,
    },
}

/// A failure and its exit code.
struct Failure(u8, String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Self(1, e.to_string())
    }
}

fn load(cli: &Cli) -> Result<ValidatorSettings, Failure> {
    let mut loader = ConfigLoader::new();
    if let Some(file) = &cli.config {
        loader = loader.file(file);
    }
    Ok(loader.process_env()?.sets(&cli.sets)?.load()?)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let mut settings = load(&cli)?;
    init_tracing(&settings.log)?;
    let origin = settings.origin_chain()?.clone();
    let key = settings.validator_key.load()?;
    let chain_signer = settings.chain_signer.as_ref().map(|k| k.load()).transpose()?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {}
        Command::ExportProtection { out } => {
            let protection = SigningProtection::open(&settings.db.join("signing_protection"))?;
            let json = serde_json::to_string_pretty(&protection.export(key.address())?)?;
            std::fs::write(&out, json).map_err(|e| format!("writing {}: {e}", out.display()))?;
            return Ok(());
        }
        Command::ImportProtection { input } => {
            let protection = SigningProtection::open(&settings.db.join("signing_protection"))?;
            let bytes =
                std::fs::read(&input).map_err(|e| format!("reading {}: {e}", input.display()))?;
            let interchange: Interchange = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not a protection record: {e}", input.display()))?;
            let added = protection.import(key.address(), &interchange)?;
            println!("imported {added} new records");
            return Ok(());
        }
    }
    let storage = settings.checkpoint_storage.open()?;
    let metrics = Metrics::new("validator")?;
    let health = Health::default();
    let server =
        TelemetryServer::start(settings.metrics_listen, metrics.clone(), health.clone()).await?;
    tracing::info!(metrics = %server.local_addr(), validator = %key.address(), origin = %origin.name, "starting");
    let (signer, _) = key.into_parts();
    let validator = Validator::new(
        origin,
        &settings,
        signer,
        chain_signer.map(|k| k.into_parts().1),
        storage,
        metrics.registry(),
    )
    .await?;
    let result = tokio::select! {
        result = validator.run() => result,
        _ = tokio::signal::ctrl_c() => return Ok(()),
    };
    let error = match result {
        Ok(()) => return Ok(()),
        Err(error) => error,
    };
    health.set_unhealthy(error.to_string());
    let code = match &error {
        ValidatorError::RootMismatch(_) | ValidatorError::ReorgFlagRaised { .. } => 2,
        ValidatorError::Protection(
            ProtectionError::Conflict(_) | ProtectionError::Pruned { .. },
        ) => 3,
        _ => 1,
    };
    Err(Failure(code, error.to_string()))
}

/// Threads of tokio's blocking pool (file I/O).
const BLOCKING_THREADS: usize = 8;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Checkpoint files are written on tokio's blocking pool; a small pool
    // bounds the threads (and their allocator caches) a backlog starts.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}
