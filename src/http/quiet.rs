//! Quiet periods (SPEC section 5b): maintenance windows and snoozes. The checks and the rules
//! are `app::quiet`'s; this module reads the bodies and renders.

use super::{
    admin::PageParams,
    auth::AuthUser,
    error::{ApiResult, Problem},
    extract::{ApiJson, ApiPath, ApiQuery, Validation},
};
use crate::{
    app::{
        AppState, pagination,
        quiet::{self, SnoozeView},
        windows::{self, ScopeDraft, WindowDraft, WindowView},
    },
    domain::Role,
};
use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_windows, create_window))
        .routes(routes!(get_window, update_window, delete_window))
        .routes(routes!(snooze, end_snooze))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnoozeBody {
    /// After now, at most 31 days ahead.
    pub until: DateTime<Utc>,
}

/// Snoozes a license until `until`: no episode opens and reminders wait meanwhile (SPEC
/// section 5b). A snooze in force is extended or shortened (and keeps its start).
#[utoipa::path(post, path = "/licenses/{id}/snooze", tag = "quiet", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id")), request_body = SnoozeBody, responses(
    (status = 200, description = "Snoozed", body = SnoozeView),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "`until` is not in the next 31 days", body = Problem, content_type = "application/problem+json"),
))]
async fn snooze(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SnoozeBody>,
) -> ApiResult<Json<SnoozeView>> {
    auth.require(Role::Admin)?;
    Ok(Json(
        quiet::snooze(&state, auth.tenant_id, id, body.until).await?,
    ))
}

/// Ends the license's snooze now (nothing happens when none is in force).
#[utoipa::path(delete, path = "/licenses/{id}/snooze", tag = "quiet", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id")), responses(
    (status = 204, description = "Not snoozed (any more)"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
))]
async fn end_snooze(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    auth.require(Role::Admin)?;
    quiet::end_snooze(&state, auth.tenant_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which licenses a window mutes: exactly one of the three.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowScope {
    /// The tenant's own licenses, 1..1000.
    pub license_ids: Option<Vec<Uuid>>,
    /// Licenses carrying any of these tags, 1..1000.
    #[schema(example = json!(["region:eu"]))]
    pub tags: Option<Vec<String>>,
    /// `true`: every license of the tenant.
    pub all: Option<bool>,
}

impl From<WindowScope> for ScopeDraft {
    fn from(s: WindowScope) -> Self {
        Self {
            license_ids: s.license_ids,
            tags: s.tags,
            all: s.all,
        }
    }
}

/// A one-off window (`starts_at`, `ends_at`, at most 31 days) or a recurring one (`rrule`,
/// `duration_seconds`, `timezone`, and optionally `starts_at` as the rule's DTSTART, by
/// default the start of the current day in `timezone`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWindow {
    /// 1..200 characters.
    #[schema(example = "Sunday patching")]
    pub name: String,
    pub scope: WindowScope,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// An RFC 5545 RRULE (with or without `RRULE:`), repeating at most hourly.
    #[schema(example = "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2")]
    pub rrule: Option<String>,
    /// Each occurrence's length, 1..2678400 (31 days).
    #[schema(example = 7200)]
    pub duration_seconds: Option<i64>,
    /// The IANA time zone the rule is read in.
    #[schema(example = "Europe/Berlin")]
    pub timezone: Option<String>,
}

/// The fields to change. `ends_at` makes the window one-off; any of `rrule`,
/// `duration_seconds` and `timezone` makes it recurring (mixing them is refused).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWindow {
    pub name: Option<String>,
    pub scope: Option<WindowScope>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub rrule: Option<String>,
    pub duration_seconds: Option<i64>,
    pub timezone: Option<String>,
}

impl From<CreateWindow> for WindowDraft {
    fn from(b: CreateWindow) -> Self {
        Self {
            name: Some(b.name),
            scope: Some(b.scope.into()),
            starts_at: b.starts_at,
            ends_at: b.ends_at,
            rrule: b.rrule,
            duration_seconds: b.duration_seconds,
            timezone: b.timezone,
        }
    }
}

impl From<UpdateWindow> for WindowDraft {
    fn from(b: UpdateWindow) -> Self {
        Self {
            name: b.name,
            scope: b.scope.map(Into::into),
            starts_at: b.starts_at,
            ends_at: b.ends_at,
            rrule: b.rrule,
            duration_seconds: b.duration_seconds,
            timezone: b.timezone,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WindowList {
    pub items: Vec<WindowView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Lists the tenant's maintenance windows in creation order, each with whether it is in force
/// now and its next occurrences.
#[utoipa::path(get, path = "/maintenance-windows", tag = "quiet", security(("bearer" = [])), params(PageParams), responses(
    (status = 200, description = "One page of windows", body = WindowList),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
))]
async fn list_windows(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<WindowList>> {
    let mut v = Validation::new();
    let limit = pagination::parse_limit(&mut v, q.limit.as_deref());
    let after = pagination::parse_cursor(&mut v, q.cursor.as_deref(), "id");
    v.finish()?;
    let (items, next_cursor) =
        windows::list_windows(&state, auth.tenant_id, after.map(|c| c.id), limit).await?;
    Ok(Json(WindowList { items, next_cursor }))
}

/// Creates a maintenance window. Every invalid field is a 422 with its pointer.
#[utoipa::path(post, path = "/maintenance-windows", tag = "quiet", security(("bearer" = [])), request_body = CreateWindow, responses(
    (status = 201, description = "Created", body = WindowView),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
async fn create_window(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateWindow>,
) -> ApiResult<(StatusCode, Json<WindowView>)> {
    auth.require(Role::Admin)?;
    let window = windows::create_window(&state, auth.tenant_id, &body.into()).await?;
    Ok((StatusCode::CREATED, Json(window)))
}

/// Reads one maintenance window.
#[utoipa::path(get, path = "/maintenance-windows/{id}", tag = "quiet", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Window id")), responses(
    (status = 200, description = "The window", body = WindowView),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such window in this tenant", body = Problem, content_type = "application/problem+json"),
))]
async fn get_window(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<WindowView>> {
    Ok(Json(windows::get_window(&state, auth.tenant_id, id).await?))
}

/// Changes a maintenance window; the fields left out keep their values.
#[utoipa::path(patch, path = "/maintenance-windows/{id}", tag = "quiet", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Window id")), request_body = UpdateWindow, responses(
    (status = 200, description = "The changed window", body = WindowView),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such window in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
async fn update_window(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateWindow>,
) -> ApiResult<Json<WindowView>> {
    auth.require(Role::Admin)?;
    Ok(Json(
        windows::update_window(&state, auth.tenant_id, id, &body.into()).await?,
    ))
}

/// Deletes a maintenance window.
#[utoipa::path(delete, path = "/maintenance-windows/{id}", tag = "quiet", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Window id")), responses(
    (status = 204, description = "Deleted"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such window in this tenant", body = Problem, content_type = "application/problem+json"),
))]
async fn delete_window(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    auth.require(Role::Admin)?;
    windows::delete_window(&state, auth.tenant_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
