//! `/healthz` (the process is up), `/readyz` (PostgreSQL answers and the schema is current) and
//! `/metrics` (Prometheus text format).

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
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process is up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// Readiness: PostgreSQL answers and every migration of this build is applied.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready to serve", body = Health),
    (status = 503, description = "PostgreSQL is unreachable or the schema is behind", body = Health),
))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let status = match crate::db::migrations_applied(&state.pool).await {
        Ok(true) => {
            return (
                StatusCode::OK,
                Json(Health {
                    status: "ok".to_owned(),
                }),
            );
        }
        Ok(false) => "database migrations are pending",
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unavailable");
            "database unavailable"
        }
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Health {
            status: status.to_owned(),
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
