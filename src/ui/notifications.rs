//! The Setup Notification page of one license (SPEC section 5): invalid input is shown next to
//! its field and nothing is saved.

use super::{
    form::{self, FieldErrors, FormInput},
    page::{Nav, failure, guard, license_row, with_tenant},
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
    pub errors: FieldErrors,
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
        errors: FieldErrors::default(),
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

impl FormInput for NotificationForm {
    type Value = NotificationSettings;

    fn csrf(&self) -> &str {
        &self.csrf
    }

    fn fields(&self, errors: &mut FieldErrors) -> Option<NotificationSettings> {
        let enabled = self.enabled.is_some();
        let inactivity = errors.check("inactivity_hours", parse_hours(&self.inactivity_hours));
        let notification =
            errors.check("notification_hours", parse_hours(&self.notification_hours));
        let mut recipients: Vec<String> = Vec::new();
        for line in self
            .recipients
            .split(['\n', ',', ';'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            if let Some(e) = errors.check("recipients", EmailAddress::parse(line))
                && !recipients.contains(&e.as_str().to_owned())
            {
                recipients.push(e.as_str().to_owned());
            }
        }
        if recipients.len() > 20 {
            errors.insert("recipients", "at most 20 addresses");
        } else if enabled && recipients.is_empty() && !errors.contains("recipients") {
            errors.insert(
                "recipients",
                "add at least one address to turn notifications on",
            );
        }
        Some(NotificationSettings {
            enabled,
            inactivity_interval_seconds: inactivity?,
            notification_interval_seconds: notification?,
            recipients,
            notify_on_recovery: self.notify_on_recovery.is_some(),
        })
    }
}

pub async fn save_notifications(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<NotificationForm>,
) -> Response {
    if let Err(r) = guard(&s, f.csrf(), Role::Admin) {
        return r;
    }
    let license = match license_row(&state, &s, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let settings = match form::parse(&f) {
        Ok(settings) => settings,
        Err(errors) => {
            let page = NotificationPage {
                nav: Some(Nav::new(&s, "monitoring")),
                id: license.id,
                name: license.name,
                key: license.key,
                enabled: f.enabled.is_some(),
                inactivity_hours: f.inactivity_hours,
                notification_hours: f.notification_hours,
                recipients: f.recipients,
                notify_on_recovery: f.notify_on_recovery.is_some(),
                errors,
                saved: false,
            };
            return (StatusCode::UNPROCESSABLE_ENTITY, page).into_response();
        }
    };
    let now = state.clock.now();
    let saved = with_tenant(&state, &s, async |tx| {
        notifications::upsert_settings(tx, s.tenant_id, license.id, &settings, now).await
    })
    .await;
    match saved {
        Ok(_) => {
            Redirect::to(&format!("/licenses/{}/notifications?saved=1", license.id)).into_response()
        }
        Err(e) => failure(e),
    }
}
