//! The status APIs (SPEC sections 4 and 6): a license's Activity Status, its heartbeat in the
//! edge Heartbeat API's shape, one camera, every camera of the tenant, the activity timeline,
//! and the per-status summary. Everything is derived at read time from stored state by the
//! pure rules of `domain::status`.

use super::{
    AppState,
    auth::AuthUser,
    error::{ApiError, ApiResult, Problem},
    extract::{ApiPath, ApiQuery, Validation},
};
use crate::{
    db,
    domain::status::{self, AgentClock, CameraState, HealthGrade, LicenseFacts, LicenseStatus},
    ingest::writer::to_status_report,
    store::{
        instances::{self, Instance},
        licenses::{self, LicenseRow},
        tenants,
    },
};
use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use streamwatch_protocol::{CameraReport, EdgeCamera, EdgeStatus};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(license_status))
        .routes(routes!(license_heartbeat))
        .routes(routes!(camera_status))
        .routes(routes!(streams_status))
        .routes(routes!(license_activity))
        .routes(routes!(summary))
}

/// A clock offset above this is shown (SPEC section 3).
const CLOCK_WARNING_SECONDS: f64 = 30.0;

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    pub instance_id: Uuid,
    pub hostname: String,
    pub version: String,
    pub first_seen_at: DateTime<Utc>,
    /// Server receive time of the agent's newest request.
    pub last_seen_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    /// The agent's clock minus the server's, in seconds (positive: ahead).
    pub clock_offset_seconds: f64,
    /// The offset is over 30 s.
    pub clock_warning: bool,
    /// Reported within the check interval.
    pub fresh: bool,
    pub heartbeats_total: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VideoFeed {
    /// A frame within the last 3 s, in a fresh report.
    pub live: bool,
    pub last_frame_at: Option<DateTime<Utc>>,
    /// Frames per second; -1 unknown.
    pub received_fps: f64,
    pub expected_fps: f64,
    pub processed_fps: f64,
    /// kbit/s; -1 unknown.
    pub bitrate_kbps: f64,
    pub buffered_frames: f64,
    /// Buffered frames as a share of one second of video (expected fps), 0..100; -1 unknown.
    pub buffered_pct: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhooksView {
    /// `ok`, `failing` or `none` (no webhook configured).
    pub status: String,
    /// Deliveries cached on the agent, waiting for a retry.
    pub cached: i64,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileProgress {
    /// Seconds of the file processed; -1 unknown (not a file source).
    pub processed_seconds: f64,
    pub total_seconds: f64,
}

/// One camera, as of the newest heartbeat that listed it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CameraView {
    pub camera_id: String,
    /// `active`, `degraded`, `starving`, `starting` or `inactive` (SPEC section 4).
    pub state: CameraState,
    /// `active` or `degraded`: the camera works.
    pub active: bool,
    /// The status the agent reported: starting, running, stopped, offline, error.
    pub reported_status: String,
    /// 0..100; -1 unknown.
    pub health: i32,
    pub health_grade: HealthGrade,
    /// The source URL, credentials removed.
    pub url: Option<String>,
    pub source: Option<String>,
    /// Activity time of the heartbeat that last listed the camera.
    pub last_activity_at: DateTime<Utc>,
    /// When the agent observed this report (server clock).
    pub observed_at: DateTime<Utc>,
    pub instance_id: Uuid,
    pub video_feed: VideoFeed,
    pub webhooks: WebhooksView,
    pub started_at: Option<DateTime<Utc>>,
    pub restart_count: i64,
    pub last_restart_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// -1 unknown.
    pub bytes_received: i64,
    pub packet_loss_pct: f64,
    pub jitter_ms: f64,
    pub file_processing: FileProgress,
    pub timezone: Option<String>,
}

/// The Activity Status of a license.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityStatus {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub status: LicenseStatus,
    #[schema(example = "✅")]
    pub symbol: String,
    /// Sentences an operator can act on.
    pub reasons: Vec<String>,
    pub check_interval_seconds: i32,
    pub last_activity_at: Option<DateTime<Utc>>,
    pub agents: Vec<AgentView>,
    pub cameras: Vec<CameraView>,
}

/// What one license's stored state says, evaluated at `now`.
struct Evaluated {
    status: LicenseStatus,
    reasons: Vec<String>,
    last_activity_at: Option<DateTime<Utc>>,
    agents: Vec<AgentView>,
    /// (camera view, the report it came from), in camera id order.
    cameras: Vec<(CameraView, CameraReport)>,
}

fn is_fresh(at: DateTime<Utc>, now: DateTime<Utc>, interval: i32) -> bool {
    status::is_fresh(Some(at), now, i64::from(interval))
}

/// Applies the rules to one license's instances and camera owners.
fn evaluate(
    license: &LicenseRow,
    instances: &[&Instance],
    owners: &[(String, Uuid)],
    now: DateTime<Utc>,
) -> Evaluated {
    let interval = license.check_interval_seconds;
    let by_id: BTreeMap<Uuid, &Instance> = instances.iter().map(|i| (i.instance_id, *i)).collect();
    let mut reports = Vec::new();
    let mut sources = Vec::new();
    for (camera_id, instance_id) in owners {
        let Some(instance) = by_id.get(instance_id) else {
            continue;
        };
        let Some(report) = instance.cameras.0.get(camera_id) else {
            continue;
        };
        // Reports carry the agent's clock; correct it like the observation time.
        let offset = chrono::Duration::milliseconds(instance.clock_offset_ms);
        let mut report = report.clone();
        report.last_frame_at = report.last_frame_at.map(|t| t - offset);
        report.last_restart_at = report.last_restart_at.map(|t| t - offset);
        report.started_at = report.started_at.map(|t| t - offset);
        let mut r = to_status_report(camera_id, &report, instance.last_observed_at);
        r.reported_at = instance.last_activity_at;
        reports.push(r);
        sources.push((*instance, report));
    }
    let last_activity_at = instances.iter().map(|i| i.last_activity_at).max();
    let clocks: Vec<AgentClock> = instances
        .iter()
        .filter(|i| is_fresh(i.last_activity_at, now, interval))
        .map(|i| AgentClock {
            instance_id: i.instance_id.to_string(),
            hostname: i.hostname.clone(),
            clock_offset_seconds: i.clock_offset_ms as f64 / 1000.0,
            last_seen_at: i.last_received_at,
        })
        .collect();
    let facts = LicenseFacts {
        now,
        check_interval_seconds: i64::from(interval),
        last_activity_at,
        cameras: &reports,
        agents: &clocks,
    };
    let evaluation = status::evaluate(&facts);
    let states: BTreeMap<&str, CameraState> = evaluation
        .cameras
        .iter()
        .map(|(id, s)| (id.as_str(), *s))
        .collect();
    let mut cameras: Vec<(CameraView, CameraReport)> = reports
        .iter()
        .zip(sources)
        .map(|(r, (instance, report))| {
            let state = states
                .get(r.camera_id.as_str())
                .copied()
                .unwrap_or(CameraState::Inactive);
            let fresh = is_fresh(instance.last_activity_at, now, interval);
            (
                camera_view(&r.camera_id, &report, state, fresh, instance),
                report,
            )
        })
        .collect();
    cameras.sort_by(|a, b| a.0.camera_id.cmp(&b.0.camera_id));
    let agents = instances
        .iter()
        .map(|i| {
            let offset = i.clock_offset_ms as f64 / 1000.0;
            AgentView {
                instance_id: i.instance_id,
                hostname: i.hostname.clone(),
                version: i.version.clone(),
                first_seen_at: i.first_seen_at,
                last_seen_at: i.last_received_at,
                last_activity_at: i.last_activity_at,
                clock_offset_seconds: offset,
                clock_warning: offset.abs() > CLOCK_WARNING_SECONDS,
                fresh: is_fresh(i.last_activity_at, now, interval),
                heartbeats_total: i.heartbeats_total,
            }
        })
        .collect();
    Evaluated {
        status: evaluation.status,
        reasons: evaluation.reasons,
        last_activity_at,
        agents,
        cameras,
    }
}

fn camera_view(
    camera_id: &str,
    r: &CameraReport,
    state: CameraState,
    fresh: bool,
    instance: &Instance,
) -> CameraView {
    let buffered_pct = if r.buffered_frames >= 0.0 && r.expected_fps > 0.0 {
        (r.buffered_frames / r.expected_fps * 100.0).min(100.0)
    } else {
        -1.0
    };
    CameraView {
        camera_id: camera_id.to_owned(),
        state,
        active: state.is_working(),
        reported_status: r.status.as_str().to_owned(),
        health: r.health,
        health_grade: status::health_grade(r.health),
        url: r.url.clone(),
        source: r.source.clone(),
        last_activity_at: instance.last_activity_at,
        observed_at: instance.last_observed_at,
        instance_id: instance.instance_id,
        video_feed: VideoFeed {
            live: fresh && r.is_live,
            last_frame_at: r.last_frame_at,
            received_fps: r.received_fps,
            expected_fps: r.expected_fps,
            processed_fps: r.processed_fps,
            bitrate_kbps: r.bitrate_kbps,
            buffered_frames: r.buffered_frames,
            buffered_pct,
        },
        webhooks: WebhooksView {
            status: r.webhooks.status.as_str().to_owned(),
            cached: r.webhooks.cached,
            last_error: r.webhooks.last_error.clone(),
        },
        started_at: r.started_at,
        restart_count: r.restart_count,
        last_restart_at: r.last_restart_at,
        last_error: r.last_error.clone(),
        bytes_received: r.bytes_received,
        packet_loss_pct: r.packet_loss_pct,
        jitter_ms: r.jitter_ms,
        file_processing: FileProgress {
            processed_seconds: r.file_processing.processed_seconds,
            total_seconds: r.file_processing.total_seconds,
        },
        timezone: r.timezone.clone(),
    }
}

/// Loads and evaluates one license (404 if it is not the caller's).
async fn load(
    state: &AppState,
    tenant_id: Uuid,
    id: Uuid,
) -> ApiResult<(LicenseRow, Evaluated, String)> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let license = licenses::get(&mut tx, tenant_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let instances = instances::list(&mut tx, tenant_id, Some(id)).await?;
    let owners = instances::camera_owners(&mut tx, tenant_id, Some(id)).await?;
    let tenant = tenants::get(&mut tx, tenant_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    let owners: Vec<(String, Uuid)> = owners.into_iter().map(|(_, c, i)| (c, i)).collect();
    let refs: Vec<&Instance> = instances.iter().collect();
    let evaluated = evaluate(&license, &refs, &owners, state.clock.now());
    Ok((license, evaluated, tenant.timezone))
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
    Ok(Json(activity_status(&state, auth.tenant_id, id).await?.0))
}

/// The Activity Status of one license of `tenant_id`, and the tenant's time zone (the API and
/// the web UI share it).
pub async fn activity_status(
    state: &AppState,
    tenant_id: Uuid,
    id: Uuid,
) -> ApiResult<(ActivityStatus, String)> {
    let (license, e, tz) = load(state, tenant_id, id).await?;
    let status = ActivityStatus {
        id: license.id,
        key: license.key,
        name: license.name,
        status: e.status,
        symbol: e.status.symbol().to_owned(),
        reasons: e.reasons,
        check_interval_seconds: license.check_interval_seconds,
        last_activity_at: e.last_activity_at,
        agents: e.agents,
        cameras: e.cameras.into_iter().map(|(v, _)| v).collect(),
    };
    Ok((status, tz))
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
        .ok_or(ApiError::NotFound)?;
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
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    let instances = instances::list(&mut tx, auth.tenant_id, None).await?;
    let owners = instances::camera_owners(&mut tx, auth.tenant_id, None).await?;
    let mut licenses: BTreeMap<Uuid, LicenseRow> = BTreeMap::new();
    for (license_id, _, _) in &owners {
        if !licenses.contains_key(license_id)
            && let Some(l) = licenses::get(&mut tx, auth.tenant_id, *license_id).await?
        {
            licenses.insert(*license_id, l);
        }
    }
    tx.commit().await?;
    let now = state.clock.now();
    let mut items = Vec::new();
    for (license_id, license) in &licenses {
        let refs: Vec<&Instance> = instances
            .iter()
            .filter(|i| i.license_id == *license_id)
            .collect();
        let own: Vec<(String, Uuid)> = owners
            .iter()
            .filter(|o| o.0 == *license_id)
            .map(|o| (o.1.clone(), o.2))
            .collect();
        for (view, _) in evaluate(license, &refs, &own, now).cameras {
            items.push(StreamItem {
                license_id: *license_id,
                license_key: license.key.clone(),
                license_name: license.name.clone(),
                status: short(view),
            });
        }
    }
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
        return Err(ApiError::invalid("/query", "invalid range"));
    };
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    licenses::get(&mut tx, auth.tenant_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let rows = instances::activity(&mut tx, auth.tenant_id, id, since, until, bucket).await?;
    tx.commit().await?;
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
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    let counts = crate::store::status::summary(&mut tx, auth.tenant_id, state.clock.now()).await?;
    tx.commit().await?;
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
