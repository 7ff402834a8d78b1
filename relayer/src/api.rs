//! The operator API, served beside `/metrics` and `/health` on the metrics
//! port:
//!
//! - `GET /messages?stage=prepare&reason=GasPaymentNotFound&destination=2&limit=100`:
//!   messages by stage (default: prepare), optionally by retry reason and
//!   destination domain;
//! - `GET /messages/{id}`: one message and its whole history;
//! - `POST /messages/{id}/retry`: due at once with a fresh retry count (if
//!   it waits in prepare, or is parked or dropped);
//! - `POST /retry` with a matching list as JSON: the same for every waiting,
//!   parked or dropped message that matches.

use std::{net::SocketAddr, sync::Arc};

use alloy::primitives::B256;
use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use metalayer_agent::telemetry::{Health, HealthReport, Metrics};
use serde::Deserialize;
use serde_json::json;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::{matching::MatchingList, op::Stage, relayer::Context};

#[derive(Clone)]
struct ApiState {
    ctx: Arc<Context>,
    metrics: Metrics,
    health: Health,
}

/// The router: `/metrics`, `/health` and the operator API.
pub fn router(ctx: Arc<Context>, metrics: Metrics, health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/health", get(health_handler))
        .route("/messages", get(list))
        .route("/messages/{id}", get(show))
        .route("/messages/{id}/retry", post(retry_one))
        .route("/retry", post(retry_matching))
        .with_state(ApiState { ctx, metrics, health })
}

/// Binds `addr` (port 0 picks one) and serves the router in the background.
pub async fn serve(
    addr: SocketAddr,
    ctx: Arc<Context>,
    metrics: Metrics,
    health: Health,
) -> std::io::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router(ctx, metrics, health);
    Ok((addr, tokio::spawn(async move { axum::serve(listener, app).await })))
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

async fn metrics_handler(State(s): State<ApiState>) -> Response {
    match s.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn health_handler(State(s): State<ApiState>) -> Response {
    let reason = s.health.problem();
    let status = if reason.is_some() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let report = HealthReport {
        status: if reason.is_some() { "unhealthy" } else { "ok" }.to_owned(),
        agent: s.metrics.agent().to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        reason,
    };
    (status, Json(report)).into_response()
}

/// Query of `GET /messages`.
#[derive(Debug, Deserialize)]
struct ListQuery {
    stage: Option<String>,
    reason: Option<String>,
    destination: Option<u32>,
    limit: Option<usize>,
}

async fn list(State(s): State<ApiState>, Query(q): Query<ListQuery>) -> Response {
    let stage = match q.stage.as_deref() {
        None => Stage::Prepare,
        Some(name) => match Stage::parse(name) {
            Some(stage) => stage,
            None => return error(StatusCode::BAD_REQUEST, format!("unknown stage {name:?}")),
        },
    };
    let limit = q.limit.unwrap_or(100).min(10_000);
    let mut out = Vec::new();
    for domain in s.ctx.destinations.keys() {
        if q.destination.is_some_and(|d| d != *domain) {
            continue;
        }
        let ops = match s.ctx.queue.list(*domain, stage, 0, usize::MAX) {
            Ok(ops) => ops,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
        };
        out.extend(
            ops.into_iter()
                .filter(|op| {
                    q.reason
                        .as_deref()
                        .is_none_or(|r| op.reason.is_some_and(|o| format!("{o:?}") == r))
                })
                .take(limit - out.len().min(limit)),
        );
    }
    Json(json!({ "stage": stage, "count": out.len(), "messages": out })).into_response()
}

fn parse_id(id: &str) -> Result<B256, Box<Response>> {
    id.parse().map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not a 32-byte 0x hex message id"),
        ))
    })
}

async fn show(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match (s.ctx.queue.get(id), s.ctx.queue.history(id)) {
        (Ok(Some(op)), Ok(history)) => {
            Json(json!({ "message": op, "history": history })).into_response()
        }
        (Ok(None), _) => error(StatusCode::NOT_FOUND, format!("no message {id}")),
        (Err(e), _) | (_, Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn retry_one(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match s.ctx.retry_now(id) {
        Ok(retried) => Json(json!({ "retried": u8::from(retried) })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn retry_matching(State(s): State<ApiState>, Json(list): Json<MatchingList>) -> Response {
    let mut retried = 0usize;
    for domain in s.ctx.destinations.keys() {
        for stage in [Stage::Prepare, Stage::Parked, Stage::Dropped] {
            let ops = match s.ctx.queue.list(*domain, stage, 0, usize::MAX) {
                Ok(ops) => ops,
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
            };
            for op in ops {
                let Some(message) = op.decoded() else { continue };
                if list.matches(op.id, &message).unwrap_or(false) {
                    match s.ctx.retry_now(op.id) {
                        Ok(true) => retried += 1,
                        Ok(false) => {}
                        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
                    }
                }
            }
        }
    }
    Json(json!({ "retried": retried })).into_response()
}
