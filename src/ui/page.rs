//! What every page shares: the navigation, the message pages (not found, not allowed, failed),
//! the CSRF and role check of a POST, the tenant transaction, and how times are shown.

use super::session::UiSession;
use crate::{
    app::{AppError, AppState},
    db,
    domain::{
        Role,
        status::{LicenseStatus, human_duration},
    },
    store::{self, licenses::LicenseRow},
};
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

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
    pub(super) fn new(s: &UiSession, current: &'static str) -> Self {
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

/// An absolute time in the tenant's time zone.
pub(super) fn local(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// A relative time: "5 min ago", or "never".
pub(super) fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    t.map_or_else(
        || "never".to_owned(),
        |t| format!("{} ago", human_duration((now - t).num_seconds())),
    )
}

/// The CSS class of a status symbol.
pub(super) fn status_class(s: LicenseStatus) -> &'static str {
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

pub(super) fn message(status: StatusCode, nav: Option<Nav>, title: &str, text: &str) -> Response {
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

pub(super) fn not_found(s: &UiSession) -> Response {
    message(
        StatusCode::NOT_FOUND,
        Some(Nav::new(s, "")),
        "Not found",
        "There is no such page in your organisation.",
    )
}

pub(super) fn forbidden(s: &UiSession, why: &str) -> Response {
    message(
        StatusCode::FORBIDDEN,
        Some(Nav::new(s, "")),
        "Not allowed",
        why,
    )
}

/// A failed use case or database call, as a page (the cause goes to the log).
pub(super) fn failure(e: impl Into<AppError>) -> Response {
    message(
        super::error::logged_status(&e.into()),
        None,
        "Something went wrong",
        "The page could not be shown. Try again in a moment.",
    )
}

/// A form that carries nothing but its CSRF token (logout, delete and revoke buttons).
#[derive(Deserialize)]
pub struct CsrfForm {
    /// Missing counts as wrong (403), not as a malformed form.
    #[serde(default)]
    pub(super) csrf: String,
}

/// Refuses a POST whose CSRF token is wrong (403) or whose role is too low (403).
#[expect(clippy::result_large_err, reason = "the error is the response page")]
pub(super) fn guard(s: &UiSession, csrf: &str, needs: Role) -> Result<(), Response> {
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
pub(super) async fn with_tenant<T>(
    state: &AppState,
    s: &UiSession,
    work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
) -> Result<T, sqlx::Error> {
    let mut tx = db::begin_tenant(&state.pool, s.tenant_id).await?;
    let value = work(&mut tx).await?;
    tx.commit().await?;
    Ok(value)
}

/// The license a page's path names: not a UUID, or not in the session's tenant, is a 404.
pub(super) async fn license_row(
    state: &AppState,
    s: &UiSession,
    id: &str,
) -> Result<LicenseRow, Response> {
    let Ok(id) = id.parse::<Uuid>() else {
        return Err(not_found(s));
    };
    let result = with_tenant(state, s, async |tx| {
        store::get::<LicenseRow>(tx, s.tenant_id, id).await
    })
    .await;
    match result {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(not_found(s)),
        Err(e) => Err(failure(e)),
    }
}

/// The license a POST changes: the [`guard`] first (403, before anything is read), then the
/// license its path names ([`license_row`], 404).
pub(super) async fn license_to_change(
    state: &AppState,
    s: &UiSession,
    csrf: &str,
    needs: Role,
    id: &str,
) -> Result<LicenseRow, Response> {
    guard(s, csrf, needs)?;
    license_row(state, s, id).await
}
