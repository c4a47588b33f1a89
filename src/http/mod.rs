//! The JSON API adapter. Each resource module owns its routes (`router()`); this module merges
//! them and adds the layers. Handlers parse the request, call one use case of `crate::app` (or
//! one store function for plain CRUD), and render; `error.rs` maps every error to HTTP.

pub mod admin;
pub mod agent_tokens;
pub mod api_keys;
pub mod auth;
pub mod channels;
pub mod error;
pub mod extract;
pub mod health;
pub mod ingest;
pub mod licenses;
pub mod notifications;
pub mod openapi;
pub mod quiet;
pub mod session;
pub mod snapshots;
pub mod status;
pub mod users;

use crate::app::{AppError, AppState};
use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderName, StatusCode},
    middleware::{self, Next},
    response::Response,
};
use std::time::Duration;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};
use utoipa_axum::router::OpenApiRouter;

/// JSON bodies of the management API are small; 64 KiB leaves room for long names and lists
/// while keeping a hostile client from making us buffer megabytes.
const API_BODY_LIMIT: usize = 64 * 1024;

/// Every route, with its OpenAPI description. `openapi::document()` and `router()` are both
/// built from this one list, so the two cannot drift apart.
pub fn routes() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .merge(admin::router())
        .merge(session::router())
        .merge(users::router())
        .merge(api_keys::router())
        .merge(licenses::router())
        .merge(agent_tokens::router())
        .merge(ingest::router())
        .merge(snapshots::router())
        .merge(status::router())
        .merge(notifications::router())
        .merge(quiet::router())
        .merge(channels::router());
    OpenApiRouter::with_openapi(openapi::base())
        .merge(health::router())
        .merge(notifications::public_router())
        .nest("/api/v1", api)
}

/// The API's router merged with `pages` (the web UI's router, which `startup` passes in so that
/// `http` does not depend on `ui`), with all layers, ready to serve.
pub fn router_with(state: AppState, pages: Router<AppState>) -> Router {
    let (router, _) = routes().split_for_parts();
    let router = router.merge(pages);
    let request_id = HeaderName::from_static("x-request-id");
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .layer(middleware::from_fn(record_metrics))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(state.settings.http.request_timeout_seconds),
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // The path template, never the raw URI: ids and query strings stay out of spans.
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("http", method = %req.method(), route, request_id = id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> error::ApiError {
    AppError::NotFound.into()
}

/// `http_requests_total` and `http_request_duration_seconds`, by route template and status.
async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
