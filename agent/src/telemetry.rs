//! Operator-facing telemetry: a Prometheus registry, one HTTP port serving
//! `/metrics` and `/health`, and `tracing` logs in human or JSON form.
//!
//! Every metric an agent registers is named `metalayer_…` and carries the
//! constant label `agent` (`validator`, `relayer`), so one Prometheus can
//! scrape several agents on a host without clashes.

use std::{
    collections::HashMap,
    io,
    net::SocketAddr,
    sync::{Arc, RwLock},
};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use prometheus::{Encoder, Registry, TextEncoder};
use serde::{Deserialize, Serialize};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

/// The prefix of every metric name.
pub const METRICS_NAMESPACE: &str = "metalayer";

/// Why telemetry could not be set up or served.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The registry refused a metric or the encoder failed.
    #[error("metrics: {0}")]
    Prometheus(#[from] prometheus::Error),
    /// The HTTP port could not be bound or the server failed.
    #[error("metrics server on {addr}: {source}")]
    Server {
        /// The address.
        addr: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The log filter does not parse.
    #[error(
        "log level {filter:?} is not a valid filter (e.g. \"info\" or \"info,metalayer_agent=debug\"): {reason}"
    )]
    LogFilter {
        /// The filter as configured.
        filter: String,
        /// The parser's message.
        reason: String,
    },
    /// A global logger was already installed.
    #[error("logging was already initialised")]
    LoggerInstalled,
}

/// An agent's metric registry: names prefixed `metalayer_`, labelled with
/// the agent. Cloning shares the registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    agent: String,
}

impl Metrics {
    /// A registry for `agent` (e.g. `validator`).
    pub fn new(agent: &str) -> Result<Self, TelemetryError> {
        let labels = HashMap::from([("agent".to_owned(), agent.to_owned())]);
        let registry = Registry::new_custom(Some(METRICS_NAMESPACE.to_owned()), Some(labels))?;
        Ok(Self { registry, agent: agent.to_owned() })
    }

    /// The registry, to register collectors with.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The agent name the metrics are labelled with.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// Every metric in Prometheus text format.
    pub fn render(&self) -> Result<String, TelemetryError> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        // The text encoder writes only UTF-8 (names, labels and numbers).
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Whether the agent considers itself healthy; `/health` reports it.
/// Cloning shares the state.
#[derive(Clone, Debug, Default)]
pub struct Health {
    problem: Arc<RwLock<Option<String>>>,
}

impl Health {
    /// Marks the agent healthy.
    pub fn set_healthy(&self) {
        *self.problem.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    /// Marks the agent unhealthy, saying why.
    pub fn set_unhealthy(&self, reason: impl Into<String>) {
        *self.problem.write().unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some(reason.into());
    }

    /// `None` when healthy, else why not.
    pub fn problem(&self) -> Option<String> {
        self.problem.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// The `/health` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// `ok` or `unhealthy`.
    pub status: String,
    /// The agent's name.
    pub agent: String,
    /// The agent's version.
    pub version: String,
    /// Why it is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone)]
struct ServerState {
    metrics: Metrics,
    health: Health,
}

async fn metrics_handler(State(state): State<ServerState>) -> Response {
    match state.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn health_handler(State(state): State<ServerState>) -> Response {
    let reason = state.health.problem();
    let status = if reason.is_some() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let report = HealthReport {
        status: if reason.is_some() { "unhealthy" } else { "ok" }.to_owned(),
        agent: state.metrics.agent().to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        reason,
    };
    (status, Json(report)).into_response()
}

/// A running `/metrics` + `/health` server.
#[derive(Debug)]
pub struct TelemetryServer {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl TelemetryServer {
    /// Binds `addr` (port 0 picks a free port) and serves in the background.
    pub async fn start(
        addr: SocketAddr,
        metrics: Metrics,
        health: Health,
    ) -> Result<Self, TelemetryError> {
        let server_error = |source| TelemetryError::Server { addr: addr.to_string(), source };
        let listener = TcpListener::bind(addr).await.map_err(server_error)?;
        let addr = listener.local_addr().map_err(server_error)?;
        let router = Router::new()
            .route("/metrics", get(metrics_handler))
            .route("/health", get(health_handler))
            .with_state(ServerState { metrics, health });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    // A dropped sender stops the server too.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self { addr, shutdown, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests and waits for the server to finish.
    pub async fn shutdown(self) -> Result<(), TelemetryError> {
        let server_error = |source| TelemetryError::Server { addr: self.addr.to_string(), source };
        let _ = self.shutdown.send(());
        match self.task.await {
            Ok(result) => result.map_err(server_error),
            Err(e) => Err(server_error(io::Error::other(e.to_string()))),
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines, for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for a log collector.
    Json,
}

/// Log settings, as configuration says (`[log]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// Human or JSON.
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter: `info`, `debug`, `info,metalayer_agent=debug`, …
    #[serde(default = "default_level")]
    pub level: String,
}

fn default_level() -> String {
    "info".to_owned()
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: LogFormat::Human, level: default_level() }
    }
}

type BoxedSubscriber = Box<dyn tracing::Subscriber + Send + Sync>;

/// A subscriber writing to `writer` as `settings` say; human logs are
/// coloured when `ansi` is set.
pub fn subscriber<W>(
    settings: &LogSettings,
    writer: W,
    ansi: bool,
) -> Result<BoxedSubscriber, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&settings.level).map_err(|e| TelemetryError::LogFilter {
        filter: settings.level.clone(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    Ok(match settings.format {
        LogFormat::Human => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Box::new(builder.with_ansi(false).json().flatten_event(true).finish()),
    })
}

/// Installs the process-wide logger, writing to standard error (coloured
/// when that is a terminal).
pub fn init_tracing(settings: &LogSettings) -> Result<(), TelemetryError> {
    use std::io::IsTerminal;
    let subscriber = subscriber(settings, io::stderr, io::stderr().is_terminal())?;
    tracing::subscriber::set_global_default(subscriber).map_err(|_| TelemetryError::LoggerInstalled)
}

/// jemalloc settings for the agent binaries, which use jemalloc as reth
/// and lighthouse do (it fragments less than the system allocator under many
/// threads): one arena (the agents are I/O-bound, so lock contention is
/// low) and dirty pages handed back within half a second by a background
/// thread. A binary exports it as `_rjem_malloc_conf`;
/// `_RJEM_MALLOC_CONF` in the environment overrides it.
pub const JEMALLOC_CONF: &[u8; 69] =
    b"narenas:1,dirty_decay_ms:500,muzzy_decay_ms:0,background_thread:true\0";

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn metrics_are_prefixed_and_labelled() {
        let metrics = Metrics::new("validator").unwrap();
        let gauge =
            prometheus::IntGauge::new("latest_signed_index", "Latest index signed.").unwrap();
        metrics.registry().register(Box::new(gauge.clone())).unwrap();
        gauge.set(41);
        let text = metrics.render().unwrap();
        assert!(text.contains("metalayer_latest_signed_index{agent=\"validator\"} 41"), "{text}");
        assert!(text.contains("# HELP metalayer_latest_signed_index Latest index signed."));
        let again = prometheus::IntGauge::new("latest_signed_index", "dup").unwrap();
        assert!(metrics.registry().register(Box::new(again)).is_err());
    }

    #[test]
    fn health_flips_and_back() {
        let health = Health::default();
        assert_eq!(health.problem(), None);
        let shared = health.clone();
        shared.set_unhealthy("reorg flag raised");
        assert_eq!(health.problem().as_deref(), Some("reorg flag raised"));
        health.set_healthy();
        assert_eq!(health.problem(), None);
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    fn log_with(settings: &LogSettings) -> String {
        let buffer = Buffer::default();
        let subscriber = subscriber(settings, buffer.clone(), false).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(index = 7, "checkpoint signed");
            tracing::debug!("hidden at info");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_logs_are_one_object_per_line() {
        let out = log_with(&LogSettings { format: LogFormat::Json, level: "info".into() });
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let event: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(event["message"], "checkpoint signed");
        assert_eq!(event["index"], 7);
        assert_eq!(event["level"], "INFO");
    }

    #[test]
    fn human_logs_are_plain_lines_and_filtered() {
        let out = log_with(&LogSettings::default());
        assert!(out.contains("checkpoint signed") && out.contains("index=7"), "{out}");
        assert!(!out.contains("hidden") && !out.trim_start().starts_with('{'), "{out}");
        let out = log_with(&LogSettings { format: LogFormat::Human, level: "debug".into() });
        assert!(out.contains("hidden at info"), "{out}");
    }

    #[test]
    fn bad_filters_are_refused() {
        let settings = LogSettings { format: LogFormat::Human, level: "info,=[".into() };
        let err = subscriber(&settings, io::sink, false).err().unwrap();
        assert!(matches!(err, TelemetryError::LogFilter { .. }), "{err}");
    }
}
