//! The pages and form handlers. Data is prepared here as display strings; the templates in
//! `templates/` only lay it out (askama escapes everything they print).

// A handler's early exit is the page to show; it is built once per request, so its size does
// not matter.
#![allow(clippy::result_large_err, reason = "the error is the response page")]

use super::session::{self, COOKIE, LOGIN_CSRF_COOKIE, UiSession};
use crate::app::AppError;
use crate::{
    accounts::{self, AccountError},
    app::AppState,
    auth::{
        password,
        token::{self, TokenKind, constant_time_eq},
    },
    db,
    domain::{
        CheckInterval, DisplayName, EmailAddress, LicenseKey, LicenseKind, Password, Role,
        status::{LicenseStatus, human_duration},
    },
    http::{error::ApiError, extract::ClientAddr},
    store::{
        agent_tokens, api_keys,
        licenses::{self, LicensePatch, NewLicense, Sort},
        notifications::{self, NotificationSettings},
        status::{self, ListQuery},
        users,
    },
};
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Deserialize;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use std::time::Instant;
use uuid::Uuid;

type Errors = BTreeMap<String, String>;

/// What every page's navigation needs.
#[derive(Debug, Clone)]
pub struct Nav {
    pub tenant: String,
    pub email: String,
    pub role: String,
    pub can_edit: bool,
    pub is_owner: bool,
    pub csrf: String,
    /// Which menu entry is current.
    pub current: &'static str,
}

impl Nav {
    fn new(s: &UiSession, current: &'static str) -> Self {
        Self {
            tenant: s.tenant_name.clone(),
            email: s.email.clone(),
            role: s.role.as_str().to_owned(),
            can_edit: s.can_edit(),
            is_owner: s.is_owner(),
            csrf: s.csrf.clone(),
            current,
        }
    }
}

fn local(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    t.map_or_else(
        || "never".to_owned(),
        |t| format!("{} ago", human_duration((now - t).num_seconds())),
    )
}

fn status_class(s: LicenseStatus) -> &'static str {
    match s {
        LicenseStatus::AllActive => "ok",
        LicenseStatus::PartiallyActive => "warn",
        LicenseStatus::Inactive => "bad",
        LicenseStatus::NotInstalled => "none",
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub nav: Option<Nav>,
    pub title: String,
    pub message: String,
}

fn message(status: StatusCode, nav: Option<Nav>, title: &str, text: &str) -> Response {
    (
        status,
        MessagePage {
            nav,
            title: title.to_owned(),
            message: text.to_owned(),
        },
    )
        .into_response()
}

fn not_found(s: &UiSession) -> Response {
    message(
        StatusCode::NOT_FOUND,
        Some(Nav::new(s, "")),
        "Not found",
        "There is no such page in your organisation.",
    )
}

fn forbidden(s: &UiSession, why: &str) -> Response {
    message(
        StatusCode::FORBIDDEN,
        Some(Nav::new(s, "")),
        "Not allowed",
        why,
    )
}

/// A failed database call, as a page (the cause goes to the log).
fn failure(e: impl Into<ApiError>) -> Response {
    let e: ApiError = e.into();
    let status = e.status();
    if status.is_server_error() {
        tracing::error!(error = ?e, "page failed");
    }
    message(
        status,
        None,
        "Something went wrong",
        "The page could not be shown. Try again in a moment.",
    )
}

/// Refuses a POST whose CSRF token is wrong (403) or whose role is too low (403).
fn guard(s: &UiSession, csrf: &str, needs: Role) -> Result<(), Response> {
    if !s.check_csrf(csrf) {
        return Err(forbidden(
            s,
            "The form expired or did not come from this site. Reload the page and try again.",
        ));
    }
    if !s.role.at_least(needs) {
        return Err(forbidden(s, "Your role does not allow this change."));
    }
    Ok(())
}

/// Runs `work` in a transaction of the session's tenant and commits it. An error from `work`
/// drops the transaction, which rolls it back. The error stays a `sqlx::Error` because some
/// handlers turn a violated constraint into a form error rather than [`failure`].
async fn with_tenant<T>(
    state: &AppState,
    s: &UiSession,
    work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
) -> Result<T, sqlx::Error> {
    let mut tx = db::begin_tenant(&state.pool, s.tenant_id).await?;
    let value = work(&mut tx).await?;
    tx.commit().await?;
    Ok(value)
}

// ---- login ---------------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub nav: Option<Nav>,
    pub error: Option<String>,
    pub email: String,
    pub next: String,
    pub csrf: String,
}

#[derive(Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

/// Only local paths: `next` must not send people to another site after login.
fn safe_next(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines from URLs, so `/\t/evil.test` would become
        // `//evil.test`: refuse any control or white-space character.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn login_form(
    state: &AppState,
    error: Option<String>,
    email: String,
    next: String,
    status: StatusCode,
) -> Response {
    // Login CSRF: a random nonce in a cookie, its MAC in the form (double submit).
    let mut nonce = [0u8; 16];
    rand::rng().fill_bytes(&mut nonce);
    let nonce = hex::encode(nonce);
    let page = LoginPage {
        nav: None,
        error,
        email,
        next,
        csrf: state.ui.csrf_for(&nonce),
    };
    let mut response = (status, page).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        state.ui.cookie(LOGIN_CSRF_COOKIE, &nonce, 3600),
    );
    response
}

pub async fn login_page(State(state): State<AppState>, Query(q): Query<NextParam>) -> Response {
    login_form(
        &state,
        None,
        String::new(),
        safe_next(q.next.as_deref()),
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
    /// Missing counts as wrong (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    let nonce = session::read_cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if nonce.is_empty() || !constant_time_eq(state.ui.csrf_for(nonce).as_bytes(), f.csrf.as_bytes())
    {
        return login_form(
            &state,
            Some("The form expired. Please try again.".to_owned()),
            f.email,
            next,
            StatusCode::FORBIDDEN,
        );
    }
    let bad = |state: &AppState, email: String| {
        login_form(
            state,
            Some("Wrong e-mail address or password.".to_owned()),
            email,
            next.clone(),
            StatusCode::UNAUTHORIZED,
        )
    };
    let Ok(email) = EmailAddress::parse(&f.email) else {
        return bad(&state, f.email);
    };
    if let Err(wait) = state
        .login_limiter
        .check(email.as_str(), addr, Instant::now())
    {
        let text = format!(
            "Too many attempts. Try again in {}.",
            human_duration(wait.as_secs() as i64)
        );
        return login_form(
            &state,
            Some(text),
            f.email,
            next,
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let record = match state.pool.acquire().await {
        Ok(mut conn) => match users::find_login(&mut conn, email.as_str()).await {
            Ok(r) => r,
            Err(e) => return failure(e),
        },
        Err(e) => return failure(e),
    };
    let ok = password::verify(f.password, record.as_ref().map(|r| r.password_hash.clone()))
        .await
        .unwrap_or(false);
    let Some(record) = record.filter(|_| ok) else {
        state
            .login_limiter
            .record_failure(email.as_str(), Instant::now());
        return bad(&state, f.email);
    };
    state.login_limiter.record_success(email.as_str());
    if record.suspended_at.is_some() {
        return login_form(
            &state,
            Some("Your organisation is suspended.".to_owned()),
            f.email,
            next,
            StatusCode::FORBIDDEN,
        );
    }
    let Ok(token) = state.ui.sessions.issue(
        record.id,
        record.tenant_id,
        record.role,
        record.token_version,
        Utc::now().timestamp(),
    ) else {
        return failure(AppError::Internal(anyhow::anyhow!("issuing a session")));
    };
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        state
            .ui
            .cookie(COOKIE, &token, session::SESSION_TTL_SECONDS),
    );
    headers.append(
        header::SET_COOKIE,
        state.ui.cookie(LOGIN_CSRF_COOKIE, "", 0),
    );
    response
}

#[derive(Deserialize)]
pub struct CsrfForm {
    /// Missing counts as wrong (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    s: UiSession,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Viewer) {
        return r;
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, state.ui.cookie(COOKIE, "", 0));
    response
}

// ---- Monitoring ----------------------------------------------------------------------------

pub struct MonitoringRow {
    pub id: Uuid,
    pub name: String,
    pub key: String,
    pub kind: String,
    pub check_interval: String,
    pub last_activity: String,
    pub last_activity_abs: String,
    pub symbol: String,
    pub label: String,
    pub class: &'static str,
    pub cameras: String,
    pub webhooks: String,
    pub webhooks_bad: bool,
}

pub struct Count {
    pub status: &'static str,
    pub label: &'static str,
    pub symbol: &'static str,
    pub class: &'static str,
    pub count: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "monitoring.html")]
pub struct MonitoringPage {
    pub nav: Option<Nav>,
    pub total: i64,
    pub counts: Vec<Count>,
    pub rows: Vec<MonitoringRow>,
    pub status: String,
    pub q: String,
    pub sort: String,
    pub next_url: Option<String>,
    pub first_url: Option<String>,
    pub error: Option<String>,
    pub refreshed: String,
}

#[derive(Deserialize)]
pub struct MonitoringQuery {
    status: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
}

const PAGE_SIZE: i64 = 50;

pub async fn monitoring(
    State(state): State<AppState>,
    s: UiSession,
    Query(q): Query<MonitoringQuery>,
) -> Response {
    let now = state.clock.now();
    let mut error = None;
    let status_filter = q
        .status
        .as_deref()
        .filter(|v| !v.is_empty())
        .and_then(|v| LicenseStatus::parse(v).map_err(|e| error = Some(e)).ok());
    let sort = q
        .sort
        .as_deref()
        .filter(|v| !v.is_empty())
        .map_or(Ok(Sort::parse("status").unwrap_or_default()), Sort::parse)
        .unwrap_or_else(|e| {
            error = Some(e);
            Sort::default()
        });
    let text =
        q.q.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.chars().take(200).collect::<String>());
    let after = q
        .cursor
        .as_deref()
        .and_then(|c| crate::app::pagination::Cursor::decode(c).ok())
        .filter(|c| c.sort == sort.as_param())
        .map(|c| (c.value, c.id));
    let query = ListQuery {
        status: status_filter,
        kind: None,
        text: text.clone(),
        sort,
        after: after.clone(),
        limit: PAGE_SIZE,
    };
    let result = with_tenant(&state, &s, async |tx| {
        status::list_with_summary(tx, s.tenant_id, now, &query).await
    })
    .await;
    let (rows, summary) = match result {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let (rows, next_cursor) =
        crate::app::pagination::page(rows, PAGE_SIZE, &sort.as_param(), |l| {
            (sort.value_of(l), l.id)
        });
    let n = |st: LicenseStatus| {
        summary
            .iter()
            .find(|(x, _)| *x == st)
            .map_or(0, |(_, c)| *c)
    };
    let counts = [
        LicenseStatus::AllActive,
        LicenseStatus::PartiallyActive,
        LicenseStatus::Inactive,
        LicenseStatus::NotInstalled,
    ]
    .into_iter()
    .map(|st| Count {
        status: st.as_str(),
        label: st.label(),
        symbol: st.symbol(),
        class: status_class(st),
        count: n(st),
    })
    .collect();
    let base = |cursor: Option<&str>| {
        let mut parts = Vec::new();
        if let Some(st) = status_filter {
            parts.push(format!("status={}", st.as_str()));
        }
        if let Some(t) = &text {
            parts.push(format!("q={}", session::urlencode(t)));
        }
        parts.push(format!("sort={}", session::urlencode(&sort.as_param())));
        if let Some(c) = cursor {
            parts.push(format!("cursor={c}"));
        }
        format!("/?{}", parts.join("&"))
    };
    let page = MonitoringPage {
        nav: Some(Nav::new(&s, "monitoring")),
        total: summary.iter().map(|(_, c)| c).sum(),
        counts,
        rows: rows
            .into_iter()
            .map(|l| MonitoringRow {
                id: l.id,
                name: l.name,
                key: l.key,
                kind: l.kind.as_str().to_owned(),
                check_interval: human_duration(i64::from(l.check_interval_seconds)),
                last_activity: ago(l.last_activity_at, now),
                last_activity_abs: l
                    .last_activity_at
                    .map_or_else(|| "never".to_owned(), |t| local(t, s.tz)),
                symbol: l.status.symbol().to_owned(),
                label: l.status.label().to_owned(),
                class: status_class(l.status),
                cameras: format!("{}/{}", l.cameras_active, l.cameras_total),
                webhooks: if l.webhooks_failing > 0 {
                    format!(
                        "{} failing, {} cached",
                        l.webhooks_failing, l.webhooks_cached
                    )
                } else if l.webhooks_cached > 0 {
                    format!("ok, {} cached", l.webhooks_cached)
                } else {
                    "ok".to_owned()
                },
                webhooks_bad: l.webhooks_failing > 0,
            })
            .collect(),
        status: status_filter
            .map(|st| st.as_str().to_owned())
            .unwrap_or_default(),
        q: text.clone().unwrap_or_default(),
        sort: sort.as_param(),
        next_url: next_cursor.as_deref().map(|c| base(Some(c))),
        first_url: after.map(|_| base(None)),
        error,
        refreshed: local(now, s.tz),
    };
    page.into_response()
}

// ---- Activity Status -----------------------------------------------------------------------

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
}

pub struct NotificationRow {
    pub when: String,
    pub kind: String,
    pub recipient: String,
    pub state: String,
    pub detail: String,
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
    pub check_interval: String,
    pub last_activity: String,
    pub last_activity_abs: String,
    pub agents: Vec<AgentRow>,
    pub cameras: Vec<CameraRow>,
    pub chart: String,
    pub chart_summary: String,
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
    let (a, _) = match crate::app::status::activity_status(&state, s.tenant_id, id).await {
        Ok(x) => x,
        Err(crate::app::AppError::NotFound) => return not_found(&s),
        Err(e) => return failure(e),
    };
    let extra = with_tenant(&state, &s, async |tx| {
        let since = now - chrono::Duration::hours(24);
        let buckets = crate::store::instances::activity(tx, s.tenant_id, id, since, now, 900).await?;
        type NoteRow = (DateTime<Utc>, String, i32, String, String, Option<String>, Option<DateTime<Utc>>, i32);
        let notes: Vec<NoteRow> = sqlx::query_as(
            "SELECT created_at, kind, k, recipient, state, last_error, sent_at, attempts FROM notification_outbox
             WHERE tenant_id = $1 AND license_id = $2 ORDER BY created_at DESC, id DESC LIMIT 20",
        )
        .bind(s.tenant_id)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let tokens = if s.can_edit() { agent_tokens::list(tx, s.tenant_id, id).await? } else { Vec::new() };
        Ok((buckets, notes, tokens))
    })
    .await;
    let (buckets, notes, tokens) = match extra {
        Ok(x) => x,
        Err(e) => return failure(e),
    };
    let (chart, chart_summary) = chart(&buckets, s.tz);
    let page = ActivityPage {
        nav: Some(Nav::new(&s, "monitoring")),
        id: a.id,
        name: a.name,
        key: a.key,
        symbol: a.symbol,
        label: a.status.label().to_owned(),
        class: status_class(a.status),
        reasons: a.reasons,
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
                id: c.camera_id,
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
            })
            .collect(),
        chart,
        chart_summary,
        notifications: notes
            .into_iter()
            .map(
                |(at, kind, k, recipient, state, error, sent, attempts)| NotificationRow {
                    when: local(at, s.tz),
                    kind: if kind == "reminder" {
                        format!("reminder {k}")
                    } else {
                        kind
                    },
                    recipient,
                    detail: match (&sent, &error) {
                        (Some(t), _) => format!("sent {}", local(*t, s.tz)),
                        (None, Some(e)) => format!("{attempts} attempt(s): {e}"),
                        (None, None) => String::new(),
                    },
                    state,
                },
            )
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

/// The 24 h activity chart as inline SVG: heartbeats per 15 min (bars) and the most cameras
/// active in each bucket (line). Only numbers go into the markup.
fn chart(buckets: &[crate::store::instances::Bucket], tz: chrono_tz::Tz) -> (String, String) {
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
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {}\" role=\"img\" aria-labelledby=\"chart-title\" preserveAspectRatio=\"none\"><title id=\"chart-title\">Heartbeats (bars) and active cameras (line) per 15 minutes, last 24 hours</title>",
        h + 20.0
    );
    for (i, b) in buckets.iter().enumerate() {
        let bh = b.heartbeats as f64 / max_hb * h;
        svg.push_str(&format!(
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
            i as f64 * bw,
            h - bh,
            (bw - 1.0).max(0.5),
            bh
        ));
    }
    let points: Vec<String> = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * bw + bw / 2.0,
                h - b.active_cameras as f64 / max_cam * (h - 4.0)
            )
        })
        .collect();
    svg.push_str(&format!(
        "<polyline class=\"line\" points=\"{}\"/>",
        points.join(" ")
    ));
    for (i, b) in buckets.iter().enumerate().step_by(16) {
        svg.push_str(&format!(
            "<text class=\"axis\" x=\"{:.1}\" y=\"{}\">{}</text>",
            i as f64 * bw,
            h + 15.0,
            b.start.with_timezone(&tz).format("%H:%M")
        ));
    }
    svg.push_str("</svg>");
    let total: i64 = buckets.iter().map(|b| b.heartbeats).sum();
    let silent = buckets.iter().filter(|b| b.heartbeats == 0).count();
    (
        svg,
        format!(
            "{total} heartbeats in the last 24 hours; {silent} of {} quarter-hours without any.",
            buckets.len()
        ),
    )
}

// ---- Setup Notification --------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "notifications.html")]
pub struct NotificationPage {
    pub nav: Option<Nav>,
    pub id: Uuid,
    pub name: String,
    pub key: String,
    pub enabled: bool,
    pub inactivity_hours: String,
    pub notification_hours: String,
    pub recipients: String,
    pub notify_on_recovery: bool,
    pub errors: Errors,
    pub saved: bool,
}

async fn license_row(
    state: &AppState,
    s: &UiSession,
    id: &str,
) -> Result<licenses::LicenseRow, Response> {
    let Ok(id) = id.parse::<Uuid>() else {
        return Err(not_found(s));
    };
    let result = with_tenant(state, s, async |tx| {
        licenses::get(tx, s.tenant_id, id).await
    })
    .await;
    match result {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(not_found(s)),
        Err(e) => Err(failure(e)),
    }
}

fn hours(seconds: i32) -> String {
    let h = f64::from(seconds) / 3600.0;
    if h.fract() == 0.0 {
        format!("{h:.0}")
    } else {
        format!("{h:.2}")
    }
}

#[derive(Deserialize)]
pub struct SavedParam {
    saved: Option<String>,
}

pub async fn notification_page(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Query(q): Query<SavedParam>,
) -> Response {
    let license = match license_row(&state, &s, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let settings = with_tenant(&state, &s, async |tx| {
        notifications::get_settings(tx, s.tenant_id, license.id).await
    })
    .await;
    let settings = match settings {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => return failure(e),
    };
    NotificationPage {
        nav: Some(Nav::new(&s, "monitoring")),
        id: license.id,
        name: license.name,
        key: license.key,
        enabled: settings.enabled,
        inactivity_hours: hours(settings.inactivity_interval_seconds),
        notification_hours: hours(settings.notification_interval_seconds),
        recipients: settings.recipients.join("\n"),
        notify_on_recovery: settings.notify_on_recovery,
        errors: Errors::new(),
        saved: q.saved.is_some(),
    }
    .into_response()
}

#[derive(Deserialize)]
pub struct NotificationForm {
    /// Missing counts as wrong (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    enabled: Option<String>,
    inactivity_hours: String,
    notification_hours: String,
    recipients: String,
    notify_on_recovery: Option<String>,
}

/// Hours from the form: at least 1, at most 30 days, in steps of a minute.
fn parse_hours(raw: &str) -> Result<i32, String> {
    let h: f64 = raw
        .trim()
        .replace(',', ".")
        .parse()
        .map_err(|_| format!("'{raw}' is not a number of hours"))?;
    if !(1.0..=720.0).contains(&h) {
        return Err("must be at least 1 hour and at most 30 days (720 hours)".to_owned());
    }
    Ok((h * 60.0).round() as i32 * 60)
}

pub async fn save_notifications(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<NotificationForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Admin) {
        return r;
    }
    let license = match license_row(&state, &s, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let mut errors = Errors::new();
    let enabled = f.enabled.is_some();
    let inactivity = parse_hours(&f.inactivity_hours)
        .map_err(|e| errors.insert("inactivity_hours".to_owned(), e))
        .ok();
    let notification = parse_hours(&f.notification_hours)
        .map_err(|e| errors.insert("notification_hours".to_owned(), e))
        .ok();
    let mut recipients: Vec<String> = Vec::new();
    for line in f
        .recipients
        .split(['\n', ',', ';'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        match EmailAddress::parse(line) {
            Ok(e) if !recipients.contains(&e.as_str().to_owned()) => {
                recipients.push(e.as_str().to_owned());
            }
            Ok(_) => {}
            Err(e) => {
                errors.entry("recipients".to_owned()).or_insert(e);
            }
        }
    }
    if recipients.len() > 20 {
        errors.insert("recipients".to_owned(), "at most 20 addresses".to_owned());
    } else if enabled && recipients.is_empty() && !errors.contains_key("recipients") {
        errors.insert(
            "recipients".to_owned(),
            "add at least one address to turn notifications on".to_owned(),
        );
    }
    if let (true, Some(inactivity), Some(notification)) =
        (errors.is_empty(), inactivity, notification)
    {
        let now = state.clock.now();
        let settings = NotificationSettings {
            enabled,
            inactivity_interval_seconds: inactivity,
            notification_interval_seconds: notification,
            recipients,
            notify_on_recovery: f.notify_on_recovery.is_some(),
        };
        let saved = with_tenant(&state, &s, async |tx| {
            notifications::upsert_settings(tx, s.tenant_id, license.id, &settings, now).await
        })
        .await;
        return match saved {
            Ok(_) => Redirect::to(&format!("/licenses/{}/notifications?saved=1", license.id))
                .into_response(),
            Err(e) => failure(e),
        };
    }
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        NotificationPage {
            nav: Some(Nav::new(&s, "monitoring")),
            id: license.id,
            name: license.name,
            key: license.key,
            enabled,
            inactivity_hours: f.inactivity_hours,
            notification_hours: f.notification_hours,
            recipients: f.recipients,
            notify_on_recovery: f.notify_on_recovery.is_some(),
            errors,
            saved: false,
        },
    )
        .into_response()
}

// ---- licenses ------------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "license_form.html")]
pub struct LicenseFormPage {
    pub nav: Option<Nav>,
    /// `Some` when editing.
    pub id: Option<Uuid>,
    pub key: String,
    pub name: String,
    pub kind: String,
    pub check_minutes: String,
    pub errors: Errors,
}

pub async fn new_license(s: UiSession) -> Response {
    if !s.can_edit() {
        return forbidden(&s, "Your role does not allow creating licenses.");
    }
    LicenseFormPage {
        nav: Some(Nav::new(&s, "monitoring")),
        id: None,
        key: String::new(),
        name: String::new(),
        kind: "direct".to_owned(),
        check_minutes: "10".to_owned(),
        errors: Errors::new(),
    }
    .into_response()
}

pub async fn edit_license(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
) -> Response {
    if !s.can_edit() {
        return forbidden(&s, "Your role does not allow editing licenses.");
    }
    match license_row(&state, &s, &id).await {
        Ok(l) => LicenseFormPage {
            nav: Some(Nav::new(&s, "monitoring")),
            id: Some(l.id),
            key: l.key,
            name: l.name,
            kind: l.kind.as_str().to_owned(),
            check_minutes: (l.check_interval_seconds / 60).to_string(),
            errors: Errors::new(),
        }
        .into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct LicenseForm {
    /// Missing counts as wrong (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    key: String,
    name: String,
    kind: String,
    check_minutes: String,
}

fn parse_license(f: &LicenseForm, errors: &mut Errors) -> Option<NewLicense> {
    let key = LicenseKey::parse(f.key.trim())
        .map_err(|e| errors.insert("key".to_owned(), e))
        .ok();
    let name = DisplayName::parse(&f.name)
        .map_err(|e| errors.insert("name".to_owned(), e))
        .ok();
    let kind = LicenseKind::parse(&f.kind)
        .map_err(|e| errors.insert("kind".to_owned(), e))
        .ok();
    let interval = f
        .check_minutes
        .trim()
        .parse::<i64>()
        .map_err(|_| "must be a whole number of minutes".to_owned())
        .and_then(|m| {
            CheckInterval::from_seconds(m * 60)
                .map_err(|_| "must be between 1 and 1440 minutes (24 h)".to_owned())
        })
        .map_err(|e| errors.insert("check_minutes".to_owned(), e))
        .ok();
    Some(NewLicense {
        key: key?,
        name: name?,
        kind: kind?,
        check_interval: interval?,
    })
}

fn license_form_again(s: &UiSession, id: Option<Uuid>, f: LicenseForm, errors: Errors) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        LicenseFormPage {
            nav: Some(Nav::new(s, "monitoring")),
            id,
            key: f.key,
            name: f.name,
            kind: f.kind,
            check_minutes: f.check_minutes,
            errors,
        },
    )
        .into_response()
}

pub async fn create_license(
    State(state): State<AppState>,
    s: UiSession,
    Form(f): Form<LicenseForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Admin) {
        return r;
    }
    let mut errors = Errors::new();
    let Some(new) = parse_license(&f, &mut errors) else {
        return license_form_again(&s, None, f, errors);
    };
    let result = with_tenant(&state, &s, async |tx| {
        licenses::insert(tx, s.tenant_id, &new).await
    })
    .await;
    match result {
        Ok(row) => Redirect::to(&format!("/licenses/{}", row.id)).into_response(),
        Err(e) if db::violated_constraint(&e) == Some("licenses_key_unique") => {
            errors.insert(
                "key".to_owned(),
                "a license with this key already exists".to_owned(),
            );
            license_form_again(&s, None, f, errors)
        }
        Err(e) => failure(e),
    }
}

pub async fn update_license(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<LicenseForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Admin) {
        return r;
    }
    let license = match license_row(&state, &s, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let mut errors = Errors::new();
    let Some(new) = parse_license(&f, &mut errors) else {
        return license_form_again(&s, Some(license.id), f, errors);
    };
    let patch = LicensePatch {
        key: Some(new.key),
        name: Some(new.name),
        kind: Some(new.kind),
        check_interval: Some(new.check_interval),
    };
    // A license deleted meanwhile still redirects: its page then answers 404.
    let result = with_tenant(&state, &s, async |tx| {
        licenses::update(tx, s.tenant_id, license.id, &patch).await?;
        Ok(())
    })
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/licenses/{}", license.id)).into_response(),
        Err(e) if db::violated_constraint(&e) == Some("licenses_key_unique") => {
            errors.insert(
                "key".to_owned(),
                "a license with this key already exists".to_owned(),
            );
            license_form_again(&s, Some(license.id), f, errors)
        }
        Err(e) => failure(e),
    }
}

pub async fn delete_license(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Admin) {
        return r;
    }
    let license = match license_row(&state, &s, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    // Already gone is as good as deleted.
    let result = with_tenant(&state, &s, async |tx| {
        licenses::delete(tx, s.tenant_id, license.id).await?;
        Ok(())
    })
    .await;
    match result {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => failure(e),
    }
}

// ---- agent tokens --------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "token_created.html")]
pub struct TokenCreatedPage {
    pub nav: Option<Nav>,
    pub id: Uuid,
    pub name: String,
    pub token: String,
    pub snippet: String,
}

#[derive(Deserialize)]
pub struct TokenForm {
    /// Missing counts as wrong (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    name: Option<String>,
}

pub async fn create_agent_token(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Admin) {
        return r;
    }
    let license = match license_row(&state, &s, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let name = DisplayName::parse(
        f.name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or("agent token"),
    )
    .unwrap_or_else(|_| {
        DisplayName::parse("agent token").unwrap_or_else(|_| unreachable!("a constant valid name"))
    });
    let secret = token::generate(TokenKind::Agent);
    let result = with_tenant(&state, &s, async |tx| {
        agent_tokens::insert(tx, s.tenant_id, license.id, name.as_str(), &secret).await
    })
    .await;
    if let Err(e) = result {
        return failure(e);
    }
    let snippet = crate::app::agent_tokens::config_snippet(
        &state.settings.public_url(),
        &license,
        &secret.plain,
    );
    // Shown once: never cache this page.
    let mut response = TokenCreatedPage {
        nav: Some(Nav::new(&s, "monitoring")),
        id: license.id,
        name: license.name,
        token: secret.plain,
        snippet,
    }
    .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

pub async fn revoke_agent_token(
    State(state): State<AppState>,
    s: UiSession,
    Path((id, token_id)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Admin) {
        return r;
    }
    let license = match license_row(&state, &s, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let Ok(token_id) = token_id.parse::<Uuid>() else {
        return not_found(&s);
    };
    let result = with_tenant(&state, &s, async |tx| {
        agent_tokens::revoke(tx, s.tenant_id, license.id, token_id).await
    })
    .await;
    match result {
        Ok(true) => Redirect::to(&format!("/licenses/{}", license.id)).into_response(),
        Ok(false) => not_found(&s),
        Err(e) => failure(e),
    }
}

// ---- users ---------------------------------------------------------------------------------

pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub last_login: String,
    pub is_me: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "users.html")]
pub struct UsersPage {
    pub nav: Option<Nav>,
    pub users: Vec<UserRow>,
    pub email: String,
    pub role: String,
    pub errors: Errors,
}

async fn users_page(
    state: &AppState,
    s: &UiSession,
    email: String,
    role: String,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let now = state.clock.now();
    let rows = with_tenant(state, s, async |tx| {
        users::list(tx, s.tenant_id, None, 500).await
    })
    .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let page = UsersPage {
        nav: Some(Nav::new(s, "users")),
        users: rows
            .into_iter()
            .map(|u| UserRow {
                id: u.id,
                is_me: u.id == s.user_id,
                email: u.email,
                role: u.role.as_str().to_owned(),
                last_login: ago(u.last_login_at, now),
            })
            .collect(),
        email,
        role,
        errors,
    };
    (status, page).into_response()
}

pub async fn users(State(state): State<AppState>, s: UiSession) -> Response {
    users_page(
        &state,
        &s,
        String::new(),
        "viewer".to_owned(),
        Errors::new(),
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub struct UserForm {
    /// Missing counts as wrong (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    email: String,
    password: String,
    role: String,
}

pub async fn create_user(
    State(state): State<AppState>,
    s: UiSession,
    Form(f): Form<UserForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Owner) {
        return r;
    }
    let mut errors = Errors::new();
    let email = EmailAddress::parse(&f.email)
        .map_err(|e| errors.insert("email".to_owned(), e))
        .ok();
    let password = Password::parse(&f.password)
        .map_err(|e| errors.insert("password".to_owned(), e))
        .ok();
    let role = Role::parse(&f.role)
        .map_err(|e| errors.insert("role".to_owned(), e))
        .ok();
    if let (Some(email), Some(password), Some(role)) = (email, password, role) {
        match accounts::create_user(&state.pool, s.tenant_id, &email, &password, role).await {
            Ok(_) => return Redirect::to("/users").into_response(),
            Err(AccountError::EmailTaken) => {
                errors.insert(
                    "email".to_owned(),
                    "this e-mail address already has an account".to_owned(),
                );
            }
            Err(AccountError::NoSuchTenant) => return not_found(&s),
            Err(AccountError::Database(e)) => return failure(e),
            Err(AccountError::Other(e)) => return failure(AppError::Internal(e)),
        }
    }
    users_page(
        &state,
        &s,
        f.email,
        f.role,
        errors,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

#[derive(Deserialize)]
pub struct RoleForm {
    /// Missing counts as wrong (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    role: String,
}

/// What a change to a user may do: the tenant must keep an owner (like the API).
enum UserTarget {
    Missing,
    LastOwner,
    Changeable,
}

async fn user_target(
    tx: &mut sqlx::PgConnection,
    s: &UiSession,
    id: Uuid,
    new_role: Option<Role>,
) -> Result<UserTarget, sqlx::Error> {
    let Some(user) = users::get(tx, s.tenant_id, id).await? else {
        return Ok(UserTarget::Missing);
    };
    if user.role == Role::Owner
        && new_role != Some(Role::Owner)
        && users::lock_owner_count(tx, s.tenant_id).await? <= 1
    {
        return Ok(UserTarget::LastOwner);
    }
    Ok(UserTarget::Changeable)
}

fn user_change_result(s: &UiSession, result: Result<UserTarget, sqlx::Error>) -> Response {
    match result {
        Ok(UserTarget::Missing) => not_found(s),
        Ok(UserTarget::LastOwner) => forbidden(s, "The organisation must keep at least one owner."),
        Ok(UserTarget::Changeable) => Redirect::to("/users").into_response(),
        Err(e) => failure(e),
    }
}

pub async fn change_role(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<RoleForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Owner) {
        return r;
    }
    let (Ok(id), Ok(role)) = (id.parse::<Uuid>(), Role::parse(&f.role)) else {
        return not_found(&s);
    };
    let result = with_tenant(&state, &s, async |tx| {
        let target = user_target(tx, &s, id, Some(role)).await?;
        if let UserTarget::Changeable = target {
            users::update(tx, s.tenant_id, id, Some(role), None).await?;
        }
        Ok(target)
    })
    .await;
    user_change_result(&s, result)
}

pub async fn delete_user(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Owner) {
        return r;
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&s);
    };
    let result = with_tenant(&state, &s, async |tx| {
        let target = user_target(tx, &s, id, None).await?;
        if let UserTarget::Changeable = target {
            users::delete(tx, s.tenant_id, id).await?;
        }
        Ok(target)
    })
    .await;
    user_change_result(&s, result)
}

// ---- API keys ------------------------------------------------------------------------------

pub struct KeyRow {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub prefix: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "api_keys.html")]
pub struct ApiKeysPage {
    pub nav: Option<Nav>,
    pub keys: Vec<KeyRow>,
    /// The secret of a key just created, shown once.
    pub created: Option<String>,
    pub name: String,
    pub errors: Errors,
}

async fn keys_page(
    state: &AppState,
    s: &UiSession,
    created: Option<String>,
    name: String,
    errors: Errors,
    status: StatusCode,
) -> Response {
    if !s.can_edit() {
        return forbidden(s, "API keys are managed by admins and owners.");
    }
    let now = state.clock.now();
    let rows = with_tenant(state, s, async |tx| {
        api_keys::list(tx, s.tenant_id, None, 500).await
    })
    .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let page = ApiKeysPage {
        nav: Some(Nav::new(s, "api-keys")),
        keys: rows
            .into_iter()
            .map(|k| KeyRow {
                id: k.id,
                name: k.name,
                role: k.role.as_str().to_owned(),
                prefix: k.prefix,
                last_used: ago(k.last_used_at, now),
                revoked: k.revoked_at.is_some(),
            })
            .collect(),
        created,
        name,
        errors,
    };
    let mut response = (status, page).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

pub async fn api_keys(State(state): State<AppState>, s: UiSession) -> Response {
    keys_page(
        &state,
        &s,
        None,
        String::new(),
        Errors::new(),
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub struct KeyForm {
    /// Missing counts as wrong (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    name: String,
    role: String,
}

pub async fn create_api_key(
    State(state): State<AppState>,
    s: UiSession,
    Form(f): Form<KeyForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Admin) {
        return r;
    }
    let mut errors = Errors::new();
    let name = DisplayName::parse(&f.name)
        .map_err(|e| errors.insert("name".to_owned(), e))
        .ok();
    let role = match f.role.as_str() {
        "admin" => Some(Role::Admin),
        "viewer" => Some(Role::Viewer),
        _ => {
            errors.insert("role".to_owned(), "choose admin or viewer".to_owned());
            None
        }
    };
    let (Some(name), Some(role)) = (name, role) else {
        return keys_page(
            &state,
            &s,
            None,
            f.name,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let secret = token::generate(TokenKind::ApiKey);
    let result = with_tenant(&state, &s, async |tx| {
        api_keys::insert(
            tx,
            s.tenant_id,
            name.as_str(),
            role,
            &secret,
            Some(s.user_id),
        )
        .await
    })
    .await;
    match result {
        Ok(_) => {
            keys_page(
                &state,
                &s,
                Some(secret.plain),
                String::new(),
                Errors::new(),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => failure(e),
    }
}

pub async fn revoke_api_key(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Admin) {
        return r;
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&s);
    };
    let result = with_tenant(&state, &s, async |tx| {
        api_keys::revoke(tx, s.tenant_id, id).await
    })
    .await;
    match result {
        Ok(true) => Redirect::to("/api-keys").into_response(),
        Ok(false) => not_found(&s),
        Err(e) => failure(e),
    }
}

// ---- assets --------------------------------------------------------------------------------

pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/app.css"),
    )
        .into_response()
}

pub async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/app.js"),
    )
        .into_response()
}
