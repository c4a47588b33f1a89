//! The status APIs (SPEC sections 4 and 6): a license's Activity Status, its heartbeat in the
//! edge Heartbeat API's shape, one camera, every camera of the tenant, the activity timeline,
//! and the per-status summary. The evaluation is `app::status`'s; this module renders it.

use super::{
    auth::AuthUser,
    error::{ApiResult, Problem},
    extract::{ApiPath, ApiQuery, Validation},
};
use crate::app::AppError;
use crate::{
    app::{AppState, status::load},
    domain::status::LicenseStatus,
};
use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use streamwatch_protocol::{EdgeCamera, EdgeStatus};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

// The views are the service layer's; re-exported so the API's paths to them stay the same.
pub use crate::app::status::{
    ActivityStatus, AgentView, CameraView, FileProgress, VideoFeed, WebhooksView,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(license_status))
        .routes(routes!(license_heartbeat))
        .routes(routes!(camera_status))
        .routes(routes!(streams_status))
        .routes(routes!(license_activity))
        .routes(routes!(summary))
}

/// The license's Activity Status: status, symbol, reasons, agents and every camera.
#[utoipa::path(get, path = "/licenses/{id}/status", tag = "status", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id")), responses(
    (status = 200, description = "The Activity Status", body = ActivityStatus),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
))]
async fn license_status(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ActivityStatus>> {
    Ok(Json(
        crate::app::status::activity_status(&state, auth.tenant_id, id)
            .await?
            .0,
    ))
}

/// The license's latest state in the edge Heartbeat API's own shape (`GET /status/` of an
/// agent), so that any uptime monitor can poll it: 200 when the license is fresh and every
/// camera is functional (not stopped, offline or error), 500 otherwise.
#[utoipa::path(get, path = "/licenses/{id}/heartbeat", tag = "status", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id")), responses(
    (status = 200, description = "Every camera is functional", body = EdgeStatus),
    (status = 500, description = "Not fresh, no cameras, or a camera is not functional (same body shape)", body = EdgeStatus),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
))]
async fn license_heartbeat(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<EdgeStatus>)> {
    let (_, e, tenant_tz) = load(&state, auth.tenant_id, id).await?;
    let tenant_tz: chrono_tz::Tz = tenant_tz.parse().unwrap_or(chrono_tz::UTC);
    let version = e
        .agents
        .iter()
        .max_by_key(|a| a.last_activity_at)
        .map(|a| a.version.clone())
        .unwrap_or_default();
    let mut cameras = BTreeMap::new();
    let mut functional = e.status != LicenseStatus::NotInstalled && !e.cameras.is_empty();
    for (view, report) in &e.cameras {
        let tz: chrono_tz::Tz = report
            .timezone
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(tenant_tz);
        let instance_fresh = e
            .agents
            .iter()
            .any(|a| a.instance_id == view.instance_id && a.fresh);
        functional &= instance_fresh && report.status.is_functional();
        cameras.insert(
            view.camera_id.clone(),
            EdgeCamera {
                health: report.health,
                status: report.status,
                last_checked: streamwatch_protocol::format_last_checked(
                    &view.observed_at.with_timezone(&tz),
                ),
                received_fps: report.received_fps,
                buffered_frames: report.buffered_frames,
                file_processing: report.file_processing.clone(),
            },
        );
    }
    let code = if functional {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    Ok((code, Json(EdgeStatus { version, cameras })))
}

/// The short form of a camera's status, as the edge `/api/streams/{id}/status` gives it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CameraStatusResponse {
    pub is_live: bool,
    /// kbit/s; -1 unknown.
    pub bitrate: f64,
    /// Unix seconds of the last frame; 0 if never.
    pub last_frame_time: i64,
    pub camera: CameraView,
}

fn short(view: CameraView) -> CameraStatusResponse {
    CameraStatusResponse {
        is_live: view.video_feed.live,
        bitrate: view.video_feed.bitrate_kbps,
        last_frame_time: view.video_feed.last_frame_at.map_or(0, |t| t.timestamp()),
        camera: view,
    }
}

/// One camera of a license.
#[utoipa::path(get, path = "/licenses/{id}/cameras/{camera_id}/status", tag = "status", security(("bearer" = [])), params(
    ("id" = Uuid, Path, description = "License id"),
    ("camera_id" = String, Path, description = "Camera id"),
), responses(
    (status = 200, description = "The camera", body = CameraStatusResponse),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant, or no such camera", body = Problem, content_type = "application/problem+json"),
))]
async fn camera_status(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath((id, camera_id)): ApiPath<(Uuid, String)>,
) -> ApiResult<Json<CameraStatusResponse>> {
    let (_, e, _) = load(&state, auth.tenant_id, id).await?;
    let view = e
        .cameras
        .into_iter()
        .map(|(v, _)| v)
        .find(|v| v.camera_id == camera_id)
        .ok_or(AppError::NotFound)?;
    Ok(Json(short(view)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamItem {
    pub license_id: Uuid,
    pub license_key: String,
    pub license_name: String,
    #[serde(flatten)]
    pub status: CameraStatusResponse,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamsStatus {
    pub items: Vec<StreamItem>,
}

/// Every camera of the tenant with its license and status, in one request.
#[utoipa::path(get, path = "/streams/-/status", tag = "status", security(("bearer" = [])), responses(
    (status = 200, description = "Every camera", body = StreamsStatus),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
))]
async fn streams_status(
    auth: AuthUser,
    State(state): State<AppState>,
) -> ApiResult<Json<StreamsStatus>> {
    let items = crate::app::status::every_camera(&state, auth.tenant_id)
        .await?
        .into_iter()
        .map(|(license, view)| StreamItem {
            license_id: license.id,
            license_key: license.key,
            license_name: license.name,
            status: short(view),
        })
        .collect();
    Ok(Json(StreamsStatus { items }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// Start (RFC 3339); default 24 h before `until`.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub since: Option<String>,
    /// End (RFC 3339, exclusive); default now.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub until: Option<String>,
    /// Bucket size in seconds, 60..86400; default 300. At most 2000 buckets.
    #[param(value_type = Option<u32>)]
    pub bucket: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityBucket {
    pub start: DateTime<Utc>,
    /// Heartbeats whose activity time falls in the bucket.
    pub heartbeats: i64,
    /// Most cameras active in one heartbeat of the bucket.
    pub active_cameras: i32,
    /// Most cameras listed in one heartbeat of the bucket.
    pub cameras: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityTimeline {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub bucket_seconds: i64,
    pub buckets: Vec<ActivityBucket>,
}

/// The activity timeline behind the UI's chart: heartbeats and active cameras per bucket.
#[utoipa::path(get, path = "/licenses/{id}/activity", tag = "status", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id"), ActivityParams), responses(
    (status = 200, description = "The timeline", body = ActivityTimeline),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
))]
async fn license_activity(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<ActivityParams>,
) -> ApiResult<Json<ActivityTimeline>> {
    let mut v = Validation::new();
    let time = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| format!("must be an RFC 3339 timestamp, not '{s}'"))
    };
    let until = q.until.as_deref().map_or(Some(state.clock.now()), |s| {
        v.check("/query/until", s, time)
    });
    let bucket = q.bucket.as_deref().map_or(Some(300), |s| {
        v.check("/query/bucket", s, |s| match s.parse::<i64>() {
            Ok(n) if (60..=86_400).contains(&n) => Ok(n),
            _ => Err(format!(
                "must be an integer from 60 to 86400 seconds, not '{s}'"
            )),
        })
    });
    let since = match (q.since.as_deref(), until) {
        (Some(s), _) => v.check("/query/since", s, time),
        (None, Some(u)) => Some(u - chrono::Duration::hours(24)),
        (None, None) => None,
    };
    if let (Some(s), Some(u), Some(b)) = (since, until, bucket) {
        if s >= u {
            v.push("/query/since", "must be before until");
        } else if (u - s).num_seconds() / b > 2000 {
            v.push(
                "/query/bucket",
                "the range would have more than 2000 buckets; use a larger bucket",
            );
        }
    }
    v.finish()?;
    let (Some(since), Some(until), Some(bucket)) = (since, until, bucket) else {
        return Err(AppError::invalid("/query", "invalid range").into());
    };
    let rows =
        crate::app::status::activity(&state, auth.tenant_id, id, since, until, bucket).await?;
    let buckets = rows
        .into_iter()
        .map(|b| ActivityBucket {
            start: b.start,
            heartbeats: b.heartbeats,
            active_cameras: b.active_cameras,
            cameras: b.cameras,
        })
        .collect();
    Ok(Json(ActivityTimeline {
        since,
        until,
        bucket_seconds: bucket,
        buckets,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    pub total: i64,
    pub all_active: i64,
    pub partially_active: i64,
    pub inactive: i64,
    pub not_installed: i64,
}

/// License counts per status for the tenant.
#[utoipa::path(get, path = "/summary", tag = "status", security(("bearer" = [])), responses(
    (status = 200, description = "Counts per status", body = Summary),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
))]
async fn summary(auth: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Summary>> {
    let counts = crate::app::status::summary(&state, auth.tenant_id).await?;
    let mut s = Summary {
        total: 0,
        all_active: 0,
        partially_active: 0,
        inactive: 0,
        not_installed: 0,
    };
    for (status, n) in counts {
        s.total += n;
        match status {
            LicenseStatus::AllActive => s.all_active = n,
            LicenseStatus::PartiallyActive => s.partially_active = n,
            LicenseStatus::Inactive => s.inactive = n,
            LicenseStatus::NotInstalled => s.not_installed = n,
        }
    }
    Ok(Json(s))
}
