//! The Setup Notification page of one license (SPEC section 5): invalid input is shown next to
//! its field and nothing is saved.

use super::{
    page::{Errors, Nav, failure, guard, license_row, with_tenant},
    session::UiSession,
};
use crate::{
    domain::{EmailAddress, Role},
    http::AppState,
    store::notifications::{self, NotificationSettings},
};
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use uuid::Uuid;

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
