//! The Activity Status page of one license: status and reasons, the open alert (with its
//! Acknowledge button), agents, cameras, the 24 h activity chart, recent notifications and
//! (for editors) the agent tokens.

use super::{
    login::safe_next,
    page::{
        CsrfForm, Nav, ago, failure, guard, license_row, local, message, not_found, status_class,
        with_tenant,
    },
    session::{self, UiSession},
};
use crate::{
    app::{self, AppError, AppState, alerts::Acknowledger},
    domain::{
        Role,
        quiet::{Quiet, QuietReason},
        snapshot::SnapshotKind,
        status::human_duration,
    },
    store::{agent_tokens, instances::Bucket},
};
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use uuid::Uuid;

pub struct AgentRow {
    pub hostname: String,
    pub instance: String,
    pub version: String,
    pub last_seen: String,
    pub offset: String,
    pub warning: bool,
}

pub struct CameraRow {
    pub id: String,
    pub url: String,
    pub last_activity: String,
    pub health: String,
    pub grade: String,
    pub state: String,
    pub active: bool,
    pub feed: String,
    pub webhooks: String,
    pub fps: String,
    pub buffered: String,
    pub bitrate: String,
    pub last_error: String,
    /// The picture state ("frozen since 10:42", "ok", "not checked").
    pub picture: String,
    /// The picture is black, uniform or frozen.
    pub picture_bad: bool,
    /// The latest snapshot's URL (with its ETag as a cache buster), if one was uploaded.
    pub snapshot: Option<String>,
    /// The URL of the snapshot taken when the last bad picture began, if any.
    pub bad_snapshot: Option<String>,
}

pub struct NotificationRow {
    pub when: String,
    pub kind: String,
    /// The channel's name and kind, or the e-mail address of a plain recipient.
    pub channel: String,
    pub state: String,
    pub attempts: i32,
    pub detail: String,
}

/// The open alert episode, as the page shows it.
pub struct AlertBox {
    /// "Inactive" or "Some cameras not active".
    pub kind: &'static str,
    pub opened_at: String,
    /// "Acknowledged by … at …", or `None` while nobody has.
    pub acknowledged: Option<String>,
}

pub struct TokenRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "activity.html")]
pub struct ActivityPage {
    pub nav: Option<Nav>,
    pub id: Uuid,
    pub name: String,
    pub key: String,
    pub symbol: String,
    pub label: String,
    pub class: &'static str,
    pub reasons: Vec<String>,
    pub tags: Vec<Tag>,
    /// "Snoozed until …" or "In maintenance until … (window)", when the license is quiet.
    pub quiet: Option<String>,
    /// A snooze is in force (editors get "End snooze").
    pub snoozed: bool,
    /// The open alert, if any (editors get "Acknowledge" while nobody has).
    pub alert: Option<AlertBox>,
    pub check_interval: String,
    pub last_activity: String,
    pub last_activity_abs: String,
    pub agents: Vec<AgentRow>,
    pub cameras: Vec<CameraRow>,
    pub chart: Chart,
    pub notifications: Vec<NotificationRow>,
    pub tokens: Vec<TokenRow>,
    pub refreshed: String,
}

fn num(x: f64, unit: &str) -> String {
    if x < 0.0 {
        "unknown".to_owned()
    } else {
        format!("{x:.1}{unit}")
    }
}

pub async fn activity(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&s);
    };
    let now = state.clock.now();
    let (a, _) = match app::status::activity_status(&state, s.tenant_id, id).await {
        Ok(x) => x,
        Err(AppError::NotFound) => return not_found(&s),
        Err(e) => return failure(e),
    };
    let since = now - chrono::Duration::hours(24);
    let buckets = match app::status::activity(&state, s.tenant_id, id, since, now, 900).await {
        Ok(b) => b,
        Err(e) => return failure(e),
    };
    let notes = match app::notifications::history(&state, s.tenant_id, id, 20).await {
        Ok(n) => n,
        Err(e) => return failure(e),
    };
    let row = match license_row(&state, &s, &id.to_string()).await {
        Ok(row) => row,
        Err(page) => return page,
    };
    let snoozed =
        matches!((row.snoozed_at, row.snoozed_until), (Some(a), Some(u)) if a <= now && now < u);
    let quiet = match &a.quiet {
        Some(q) => Some(quiet_text(&state, &s, q).await),
        None => None,
    };
    let snapshots = match app::snapshots::of_license(&state, s.tenant_id, id).await {
        Ok(rows) => rows,
        Err(e) => return failure(e),
    };
    let snapshot_url = |camera: &str, kind: SnapshotKind| {
        snapshots
            .iter()
            .find(|m| m.camera_id == camera && m.kind == kind.as_str())
            .map(|m| {
                // The ETag's start in the URL: a new picture is a new URL, so the browser's
                // cached copy (max-age) never hides it.
                let version = hex::encode(m.sha256.get(..8).unwrap_or_default());
                let query = match kind {
                    SnapshotKind::Latest => format!("v={version}"),
                    SnapshotKind::Bad => format!("kind=bad&v={version}"),
                };
                format!("/licenses/{id}/cameras/{camera}/snapshot?{query}")
            })
    };
    let tokens = if s.can_edit() {
        match with_tenant(&state, &s, async |tx| {
            agent_tokens::list(tx, s.tenant_id, id).await
        })
        .await
        {
            Ok(t) => t,
            Err(e) => return failure(e),
        }
    } else {
        Vec::new()
    };
    let page = ActivityPage {
        nav: Some(Nav::new(&s, "monitoring")),
        id: a.id,
        name: a.name,
        key: a.key,
        symbol: a.symbol,
        label: a.status.label().to_owned(),
        class: status_class(a.status),
        reasons: a.reasons,
        tags: a.tags.iter().map(|t| Tag::new(t)).collect(),
        quiet,
        snoozed,
        alert: a.alert.map(|e| AlertBox {
            kind: if e.kind == "partial" {
                "Some cameras not active"
            } else {
                "Inactive"
            },
            opened_at: format!(
                "{} ({})",
                local(e.opened_at, s.tz),
                ago(Some(e.opened_at), now)
            ),
            acknowledged: e.acknowledged_at.map(|at| {
                format!(
                    "Acknowledged by {} at {}",
                    e.acknowledged_by.as_deref().unwrap_or("someone"),
                    local(at, s.tz)
                )
            }),
        }),
        check_interval: human_duration(i64::from(a.check_interval_seconds)),
        last_activity: ago(a.last_activity_at, now),
        last_activity_abs: a
            .last_activity_at
            .map_or_else(|| "never".to_owned(), |t| local(t, s.tz)),
        agents: a
            .agents
            .into_iter()
            .map(|g| AgentRow {
                hostname: if g.hostname.is_empty() {
                    "(unnamed)".to_owned()
                } else {
                    g.hostname
                },
                instance: g.instance_id.to_string(),
                version: g.version,
                last_seen: format!(
                    "{} ({})",
                    ago(Some(g.last_seen_at), now),
                    local(g.last_seen_at, s.tz)
                ),
                offset: format!("{:+.1} s", g.clock_offset_seconds),
                warning: g.clock_warning,
            })
            .collect(),
        cameras: a
            .cameras
            .into_iter()
            .map(|c| CameraRow {
                url: c.url.unwrap_or_default(),
                last_activity: ago(Some(c.last_activity_at), now),
                health: if c.health < 0 {
                    "unknown".to_owned()
                } else {
                    c.health.to_string()
                },
                grade: c.health_grade.as_str().to_owned(),
                state: c.state.as_str().to_owned(),
                active: c.active,
                feed: if c.video_feed.live {
                    "live".to_owned()
                } else {
                    c.video_feed.last_frame_at.map_or_else(
                        || "no frames".to_owned(),
                        |t| format!("stalled, last frame {}", ago(Some(t), now)),
                    )
                },
                webhooks: format!("{} ({} cached)", c.webhooks.status, c.webhooks.cached),
                fps: format!(
                    "{} / {}",
                    num(c.video_feed.received_fps, ""),
                    num(c.video_feed.expected_fps, "")
                ),
                buffered: num(c.video_feed.buffered_pct, " %"),
                bitrate: num(c.video_feed.bitrate_kbps, " kbit/s"),
                last_error: c.last_error.unwrap_or_default(),
                picture: match &c.picture {
                    None => "not checked".to_owned(),
                    Some(p) if p.state.is_bad() => format!(
                        "{} since {} ({})",
                        p.state,
                        local(p.since, s.tz),
                        ago(Some(p.since), now)
                    ),
                    Some(p) => p.state.to_string(),
                },
                picture_bad: c.picture.as_ref().is_some_and(|p| p.state.is_bad()),
                snapshot: snapshot_url(&c.camera_id, SnapshotKind::Latest),
                bad_snapshot: snapshot_url(&c.camera_id, SnapshotKind::Bad),
                id: c.camera_id,
            })
            .collect(),
        chart: Chart::new(&buckets, s.tz),
        notifications: notes
            .into_iter()
            .map(|n| NotificationRow {
                when: local(n.created_at, s.tz),
                kind: if n.kind == "reminder" {
                    format!("reminder {}", n.k)
                } else {
                    n.kind
                },
                channel: match (&n.channel_id, &n.channel_name) {
                    (None, _) => n.recipient,
                    (Some(_), Some(name)) => format!("{name} ({})", n.channel_kind),
                    (Some(_), None) => format!("a deleted channel ({})", n.channel_kind),
                },
                detail: match (&n.sent_at, &n.last_error) {
                    (Some(t), _) => format!("sent {}", local(*t, s.tz)),
                    (None, Some(e)) => e.clone(),
                    (None, None) => String::new(),
                },
                attempts: n.attempts,
                state: n.state,
            })
            .collect(),
        tokens: tokens
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name,
                prefix: t.prefix,
                created: local(t.created_at, s.tz),
                last_used: ago(t.last_used_at, now),
                revoked: t.revoked_at.is_some(),
            })
            .collect(),
        refreshed: local(now, s.tz),
    };
    page.into_response()
}

/// A tag chip: the tag and the Monitoring page filtered by it.
pub struct Tag {
    pub name: String,
    pub href: String,
}

impl Tag {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            href: format!("/?tag={}", session::urlencode(name)),
        }
    }
}

/// Why the license is quiet, in words, with the window's name for a maintenance window.
async fn quiet_text(state: &AppState, s: &UiSession, q: &Quiet) -> String {
    let until = local(q.until, s.tz);
    match (q.reason, q.window_id) {
        (QuietReason::Snooze, _) => format!("Snoozed until {until}"),
        (QuietReason::Maintenance, Some(w)) => {
            let name = match app::windows::get_window(state, s.tenant_id, w).await {
                Ok(w) => w.name,
                // Deleted since the calendar was read: the quiet time is still the truth.
                Err(_) => "a window deleted since".to_owned(),
            };
            format!("In maintenance until {until} ({name})")
        }
        (QuietReason::Maintenance, None) => format!("In maintenance until {until}"),
    }
}

/// Acknowledges the license's open alert (admin or owner), as the session's user.
pub async fn acknowledge(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(page) = guard(&s, &f.csrf, Role::Admin) {
        return page;
    }
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return not_found(&s);
    };
    match app::alerts::acknowledge(&state, s.tenant_id, id, Acknowledger::User(s.user_id)).await {
        Ok(_) => Redirect::to(&format!("/licenses/{id}")).into_response(),
        Err(AppError::NotFound) => not_found(&s),
        Err(AppError::Conflict { .. }) => message(
            StatusCode::CONFLICT,
            Some(Nav::new(&s, "monitoring")),
            "Nothing to acknowledge",
            "The license has no open alert: it recovered already.",
        ),
        Err(e) => failure(e),
    }
}

/// The snooze lengths the UI offers (SPEC section 5b).
pub const SNOOZE_HOURS: [i64; 3] = [1, 8, 24];

#[derive(Deserialize)]
pub struct SnoozeForm {
    /// Missing counts as wrong (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    hours: String,
    /// Where to go afterwards (a local path; the Activity Status page by default).
    #[serde(default)]
    next: Option<String>,
}

/// Where a snooze button sends the browser back to: the page it was pressed on.
fn back(next: Option<&str>, id: uuid::Uuid) -> Redirect {
    match next.filter(|n| !n.is_empty()) {
        Some(n) => Redirect::to(&safe_next(Some(n))),
        None => Redirect::to(&format!("/licenses/{id}")),
    }
}

/// Snoozes the license for 1, 8 or 24 hours from now.
pub async fn snooze(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<SnoozeForm>,
) -> Response {
    if let Err(page) = guard(&s, &f.csrf, Role::Admin) {
        return page;
    }
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return not_found(&s);
    };
    let Some(hours) = f
        .hours
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|h| SNOOZE_HOURS.contains(h))
    else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(Nav::new(&s, "monitoring")),
            "Not snoozed",
            "A snooze lasts 1, 8 or 24 hours.",
        );
    };
    let until = state.clock.now() + chrono::Duration::hours(hours);
    match app::quiet::snooze(&state, s.tenant_id, id, until).await {
        Ok(_) => back(f.next.as_deref(), id).into_response(),
        Err(AppError::NotFound) => not_found(&s),
        Err(e) => failure(e),
    }
}

/// Ends the license's snooze now.
pub async fn end_snooze(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(page) = guard(&s, &f.csrf, Role::Admin) {
        return page;
    }
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return not_found(&s);
    };
    match app::quiet::end_snooze(&state, s.tenant_id, id).await {
        Ok(()) => Redirect::to(&format!("/licenses/{id}")).into_response(),
        Err(AppError::NotFound) => not_found(&s),
        Err(e) => failure(e),
    }
}

/// The 24 h activity chart, inline SVG (`templates/chart.svg`): heartbeats per 15 min (bars)
/// and the most cameras active in each quarter-hour (line), with the figures of its caption.
#[derive(Template)]
#[template(path = "chart.svg")]
pub struct Chart {
    width: f64,
    height: f64,
    bars: Vec<Bar>,
    /// The points of the line.
    line: Vec<(f64, f64)>,
    /// A time every 16 quarter-hours (4 h), in the tenant's time zone.
    ticks: Vec<Tick>,
    /// Heartbeats over the 24 h.
    pub heartbeats: i64,
    /// Quarter-hours without any heartbeat.
    pub silent: usize,
    pub quarter_hours: usize,
}

struct Bar {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

struct Tick {
    x: f64,
    time: String,
}

impl Chart {
    fn new(buckets: &[Bucket], tz: chrono_tz::Tz) -> Self {
        let (w, h) = (960.0_f64, 160.0_f64);
        let n = buckets.len().max(1) as f64;
        let max_hb = buckets
            .iter()
            .map(|b| b.heartbeats)
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let max_cam = buckets
            .iter()
            .map(|b| b.cameras.max(b.active_cameras))
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let bw = w / n;
        Self {
            width: w,
            height: h,
            bars: buckets
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let bh = b.heartbeats as f64 / max_hb * h;
                    Bar {
                        x: i as f64 * bw,
                        y: h - bh,
                        width: (bw - 1.0).max(0.5),
                        height: bh,
                    }
                })
                .collect(),
            line: buckets
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    (
                        i as f64 * bw + bw / 2.0,
                        h - b.active_cameras as f64 / max_cam * (h - 4.0),
                    )
                })
                .collect(),
            ticks: buckets
                .iter()
                .enumerate()
                .step_by(16)
                .map(|(i, b)| Tick {
                    x: i as f64 * bw,
                    time: b.start.with_timezone(&tz).format("%H:%M").to_string(),
                })
                .collect(),
            heartbeats: buckets.iter().map(|b| b.heartbeats).sum(),
            silent: buckets.iter().filter(|b| b.heartbeats == 0).count(),
            quarter_hours: buckets.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn the_chart_draws_a_bar_and_a_point_per_quarter_hour_and_a_time_every_four_hours() {
        let start = Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap();
        let buckets: Vec<Bucket> = [(0, 0), (5, 1), (3, 2)]
            .into_iter()
            .enumerate()
            .map(|(i, (heartbeats, active_cameras))| Bucket {
                start: start + chrono::Duration::minutes(15 * i as i64),
                heartbeats,
                active_cameras,
                cameras: 4,
            })
            .collect();
        let chart = Chart::new(&buckets, chrono_tz::Europe::Berlin);
        assert_eq!(
            chart.to_string(),
            "<svg class=\"chart\" viewBox=\"0 0 960 180\" role=\"img\" aria-labelledby=\"chart-title\" preserveAspectRatio=\"none\">\
             <title id=\"chart-title\">Heartbeats (bars) and active cameras (line) per 15 minutes, last 24 hours</title>\
             <rect class=\"bar\" x=\"0.0\" y=\"160.0\" width=\"319.0\" height=\"0.0\"/>\
             <rect class=\"bar\" x=\"320.0\" y=\"0.0\" width=\"319.0\" height=\"160.0\"/>\
             <rect class=\"bar\" x=\"640.0\" y=\"64.0\" width=\"319.0\" height=\"96.0\"/>\
             <polyline class=\"line\" points=\"160.0,160.0 480.0,121.0 800.0,82.0\"/>\
             <text class=\"axis\" x=\"0.0\" y=\"175\">09:00</text></svg>"
        );
        assert_eq!(
            (chart.heartbeats, chart.silent, chart.quarter_hours),
            (8, 1, 3)
        );
        assert_eq!(
            Chart::new(&[], chrono_tz::UTC).to_string(),
            "<svg class=\"chart\" viewBox=\"0 0 960 180\" role=\"img\" aria-labelledby=\"chart-title\" preserveAspectRatio=\"none\">\
             <title id=\"chart-title\">Heartbeats (bars) and active cameras (line) per 15 minutes, last 24 hours</title>\
             <polyline class=\"line\" points=\"\"/></svg>"
        );
    }
}

#[derive(Debug, Deserialize)]
pub struct SnapshotQuery {
    kind: Option<String>,
}

/// A camera's snapshot for the page's thumbnails and their full-size view, with the session's
/// tenant (the same answer and caching as the API's
/// `GET /api/v1/licenses/{id}/cameras/{camera_id}/snapshot`).
pub async fn camera_snapshot(
    State(state): State<AppState>,
    s: UiSession,
    Path((id, camera_id)): Path<(String, String)>,
    Query(q): Query<SnapshotQuery>,
    headers: HeaderMap,
) -> Response {
    let (Ok(id), Ok(kind)) = (
        id.parse::<Uuid>(),
        SnapshotKind::parse(q.kind.as_deref().unwrap_or("latest")),
    ) else {
        return not_found(&s);
    };
    let snapshot = match app::snapshots::read(&state, s.tenant_id, id, &camera_id, kind).await {
        Ok(snapshot) => snapshot,
        Err(AppError::NotFound) => return not_found(&s),
        Err(e) => return failure(e),
    };
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let answer = app::snapshots::answer(snapshot, if_none_match);
    let mut response = match answer.jpeg {
        Some(jpeg) => Response::new(Body::from(jpeg)),
        None => StatusCode::NOT_MODIFIED.into_response(),
    };
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(&value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
