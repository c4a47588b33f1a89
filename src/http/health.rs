//! `/healthz` (the process is up), `/readyz` (a writable PostgreSQL primary answers and the schema
//! is current) and `/metrics` (Prometheus text format).

use crate::app::AppState;
use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or what is wrong.
    #[schema(example = "ok")]
    pub status: String,
    /// Readiness only: each component's state, `ok` or what is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<Components>,
}

/// The parts the server needs to do its work.
#[derive(Serialize, ToSchema)]
pub struct Components {
    /// A writable PostgreSQL primary answers (not a standby: during a failover this is
    /// `database is read-only (no writable primary)` or `database unavailable`) and every
    /// migration of this build is applied.
    #[schema(example = "ok")]
    pub database: String,
    /// Every heartbeat writer takes work (`restarting` while one waits out its backoff after a
    /// failure).
    #[schema(example = "ok")]
    pub ingest_writers: String,
    /// The last per-minute tick (sweep and delivery) succeeded.
    #[schema(example = "ok")]
    pub scheduler: String,
    /// Informational, never a reason for 503: `ok` while the agent token cache hears about
    /// revocations, `bypassed` while its listener is reconnecting (every ingest request reads
    /// the database meanwhile, so revocations still act at once), `disabled` by configuration.
    #[schema(example = "ok")]
    pub agent_token_cache: String,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process is up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        components: None,
    })
}

/// Readiness: a writable PostgreSQL primary answers, every migration of this build is applied,
/// every ingest writer takes work and the scheduler's last tick succeeded. 503 while any of
/// them cannot work, with each component's state.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready to serve", body = Health),
    (status = 503, description = "A component cannot work: PostgreSQL is unreachable or read-only (a failover), or the schema is behind, an ingest writer is restarting, or the scheduler's last tick failed", body = Health),
))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let database = match crate::db::writable(&state.pool).await {
        Ok(crate::db::Writable::Yes) => match crate::db::migrations_applied(&state.pool).await {
            Ok(true) => "ok",
            Ok(false) => "database migrations are pending",
            Err(e) => {
                tracing::warn!(error = %e, "readiness check: database unavailable");
                "database unavailable"
            }
        },
        Ok(crate::db::Writable::ReadOnly) => {
            tracing::warn!("readiness check: the database is read-only (no writable primary)");
            "database is read-only (no writable primary)"
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unavailable");
            "database unavailable"
        }
    };
    let ingest_writers = if state.ingest.health().is_ready() {
        "ok"
    } else {
        "restarting"
    };
    let scheduler = if state.scheduler.is_ready() {
        "ok"
    } else {
        "the last tick failed"
    };
    // Not among the problems: while its listener is down the cache is bypassed, which costs
    // database reads but nothing of correctness.
    let agent_token_cache = if !state.settings.ingest.agent_token_cache {
        "disabled"
    } else if state.agent_tokens.is_listening() {
        "ok"
    } else {
        "bypassed"
    };
    let problems: Vec<&str> = [database, ingest_writers, scheduler]
        .into_iter()
        .filter(|s| *s != "ok")
        .collect();
    let code = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let status = if problems.is_empty() {
        "ok".to_owned()
    } else {
        problems.join("; ")
    };
    let components = Components {
        database: database.to_owned(),
        ingest_writers: ingest_writers.to_owned(),
        scheduler: scheduler.to_owned(),
        agent_token_cache: agent_token_cache.to_owned(),
    };
    (
        code,
        Json(Health {
            status,
            components: Some(components),
        }),
    )
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health", responses(
    (status = 200, description = "Metrics in the Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
