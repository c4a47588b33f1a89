//! A license's status, derived at read time (SPEC section 4): the stored instance rows and
//! camera reports fed to the pure rules of `domain::status`. The JSON status APIs and the
//! Activity Status page both read it here.

use super::{
    AppError, AppResult, AppState,
    quiet::{QuietCalendar, snooze_of},
};
use crate::{
    db,
    domain::{
        quiet::Quiet,
        status::{self, AgentClock, CameraState, HealthGrade, LicenseFacts, LicenseStatus},
    },
    ingest::batch::{offset_from_ms, on_server_clock},
    store::{
        self,
        episodes::{self, EpisodeView},
        instances::{self, Bucket, Instance},
        licenses::LicenseRow,
        tenants,
    },
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use streamwatch_protocol::{CameraReport, PictureReport, redact_url, redact_urls_in_text};
use utoipa::ToSchema;
use uuid::Uuid;

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
    /// The latest failed delivery, as the agent reported it; URLs in it redacted.
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
    /// The source URL without credentials, its query and fragment replaced by `?[redacted]` and
    /// `#[redacted]`.
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
    /// The camera's latest error, as the agent reported it; URLs in it redacted.
    pub last_error: Option<String>,
    /// -1 unknown.
    pub bytes_received: i64,
    pub packet_loss_pct: f64,
    pub jitter_ms: f64,
    pub file_processing: FileProgress,
    pub timezone: Option<String>,
    /// Picture health (SPEC section 7), its times on the server clock; `null` when the agent
    /// takes no snapshots of this camera. A `black`, `uniform` or `frozen` picture makes a
    /// live camera `degraded`. The latest snapshot is at
    /// `/api/v1/licenses/{id}/cameras/{camera_id}/snapshot`.
    pub picture: Option<PictureReport>,
}

/// The Activity Status of a license.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityStatus {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    /// The license's tags (SPEC section 5b).
    pub tags: Vec<String>,
    /// Why the license is quiet now (a maintenance window or a snooze, SPEC section 5b), and
    /// until when; `null` when it is not. `status` is unchanged by it.
    pub quiet: Option<Quiet>,
    /// The open alert episode (SPEC section 5a), with who acknowledged it and when; `null`
    /// when no alert is open.
    pub alert: Option<EpisodeView>,
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
pub struct Evaluated {
    pub status: LicenseStatus,
    pub reasons: Vec<String>,
    pub last_activity_at: Option<DateTime<Utc>>,
    pub agents: Vec<AgentView>,
    /// (camera view, the report it came from), in camera id order.
    pub cameras: Vec<(CameraView, CameraReport)>,
}

fn is_fresh(at: DateTime<Utc>, now: DateTime<Utc>, interval: i32) -> bool {
    status::is_fresh(Some(at), now, i64::from(interval))
}

/// Applies the rules to one license's instances and camera owners.
pub fn evaluate(
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
        let offset = offset_from_ms(instance.clock_offset_ms);
        let mut report = report.clone();
        let correct = |t: Option<DateTime<Utc>>| t.map(|t| on_server_clock(t, offset));
        report.last_frame_at = correct(report.last_frame_at);
        report.last_restart_at = correct(report.last_restart_at);
        report.started_at = correct(report.started_at);
        if let Some(picture) = report.picture.as_mut() {
            picture.since = on_server_clock(picture.since, offset);
            picture.checked_at = on_server_clock(picture.checked_at, offset);
        }
        let mut r = status::CameraReport::from_wire(camera_id, &report, instance.last_observed_at);
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
        // Redacted again on the way out: reports stored by an older server kept query strings.
        url: r.url.as_deref().map(redact_url),
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
            last_error: r.webhooks.last_error.as_deref().map(redact_urls_in_text),
        },
        started_at: r.started_at,
        restart_count: r.restart_count,
        last_restart_at: r.last_restart_at,
        last_error: r.last_error.as_deref().map(redact_urls_in_text),
        bytes_received: r.bytes_received,
        packet_loss_pct: r.packet_loss_pct,
        jitter_ms: r.jitter_ms,
        file_processing: FileProgress {
            processed_seconds: r.file_processing.processed_seconds,
            total_seconds: r.file_processing.total_seconds,
        },
        timezone: r.timezone.clone(),
        picture: r.picture.clone(),
    }
}

/// Loads and evaluates one license (404 if it is not the caller's), with the tenant's time zone.
pub async fn load(
    state: &AppState,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<(LicenseRow, Evaluated, String)> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let license = store::get::<LicenseRow>(&mut tx, tenant_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let instances = instances::list(&mut tx, tenant_id, Some(id)).await?;
    let owners = instances::camera_owners(&mut tx, tenant_id, Some(id)).await?;
    let tenant = tenants::get(&mut tx, tenant_id)
        .await?
        .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    let owners: Vec<(String, Uuid)> = owners.into_iter().map(|(_, c, i)| (c, i)).collect();
    let refs: Vec<&Instance> = instances.iter().collect();
    let evaluated = evaluate(&license, &refs, &owners, state.clock.now());
    Ok((license, evaluated, tenant.timezone))
}

/// The Activity Status of one license of `tenant_id`, and the tenant's time zone (the API and
/// the web UI share it).
pub async fn activity_status(
    state: &AppState,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<(ActivityStatus, String)> {
    let (license, e, tz) = load(state, tenant_id, id).await?;
    let now = state.clock.now();
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let calendar = QuietCalendar::load(&mut tx, tenant_id, now).await?;
    let alert = episodes::open(&mut tx, tenant_id, id).await?;
    tx.commit().await?;
    let quiet = calendar.quiet(
        license.id,
        &license.tags,
        snooze_of(license.snoozed_at, license.snoozed_until),
    );
    let status = ActivityStatus {
        id: license.id,
        key: license.key,
        name: license.name,
        tags: license.tags,
        quiet,
        alert,
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

/// Every camera of the tenant, evaluated license by license, in license and camera order.
pub async fn every_camera(
    state: &AppState,
    tenant_id: Uuid,
) -> AppResult<Vec<(LicenseRow, CameraView)>> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let instances = instances::list(&mut tx, tenant_id, None).await?;
    let owners = instances::camera_owners(&mut tx, tenant_id, None).await?;
    let mut licenses: BTreeMap<Uuid, LicenseRow> = BTreeMap::new();
    for (license_id, _, _) in &owners {
        if !licenses.contains_key(license_id)
            && let Some(l) = store::get::<LicenseRow>(&mut tx, tenant_id, *license_id).await?
        {
            licenses.insert(*license_id, l);
        }
    }
    tx.commit().await?;
    let now = state.clock.now();
    let mut items = Vec::new();
    for (license_id, license) in licenses {
        let refs: Vec<&Instance> = instances
            .iter()
            .filter(|i| i.license_id == license_id)
            .collect();
        let own: Vec<(String, Uuid)> = owners
            .iter()
            .filter(|o| o.0 == license_id)
            .map(|o| (o.1.clone(), o.2))
            .collect();
        for (view, _) in evaluate(&license, &refs, &own, now).cameras {
            items.push((license.clone(), view));
        }
    }
    Ok(items)
}

/// The license's activity timeline: heartbeats and active cameras per `bucket_seconds` bucket
/// from `since` to `until` (404 if the license is not the tenant's).
pub async fn activity(
    state: &AppState,
    tenant_id: Uuid,
    id: Uuid,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    bucket_seconds: i64,
) -> AppResult<Vec<Bucket>> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    store::get::<LicenseRow>(&mut tx, tenant_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let rows = instances::activity(&mut tx, tenant_id, id, since, until, bucket_seconds).await?;
    tx.commit().await?;
    Ok(rows)
}

/// License counts per status for the tenant.
pub async fn summary(state: &AppState, tenant_id: Uuid) -> AppResult<Vec<(LicenseStatus, i64)>> {
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let counts = crate::store::status::summary(&mut tx, tenant_id, state.clock.now()).await?;
    tx.commit().await?;
    Ok(counts)
}
