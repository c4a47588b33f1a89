//! The Setup Notification page of one license (SPEC section 5): invalid input is shown next to
//! its field and nothing is saved.

use super::{
    form::{self, FieldErrors, FormInput},
    page::{Nav, failure, license_row, license_to_change},
    session::UiSession,
};
use crate::{
    app::{self, AppState},
    domain::{
        Role,
        notify_settings::{
            self, MAX_INTERVAL_SECONDS, MAX_RECIPIENTS, MIN_INTERVAL_SECONDS, NotifySettings,
            SettingsDraft, SettingsField, SettingsProblem,
        },
    },
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
    let settings = match app::notifications::settings(&state, s.tenant_id, license.id).await {
        Ok(settings) => settings,
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

/// Hours from the form, as seconds in steps of a minute. Only the number is checked here; the
/// bounds are the domain's ([`notify_settings::parse`]).
fn parse_hours(raw: &str) -> Result<i64, String> {
    let h: f64 = raw
        .trim()
        .replace(',', ".")
        .parse()
        .map_err(|_| format!("'{raw}' is not a number of hours"))?;
    // `as` saturates, so a huge or non-finite number lands outside the bounds.
    Ok((h * 60.0).round() as i64 * 60)
}

/// The form's wording of a settings problem, and the field it shows next to.
fn field_message(field: SettingsField, problem: SettingsProblem) -> (&'static str, String) {
    let name = match field {
        SettingsField::InactivityInterval => "inactivity_hours",
        SettingsField::NotificationInterval => "notification_hours",
        SettingsField::Recipient(_) | SettingsField::Recipients => "recipients",
    };
    let message = match problem {
        SettingsProblem::IntervalOutOfRange(_) => format!(
            "must be at least {} hour and at most {} days ({} hours)",
            MIN_INTERVAL_SECONDS / 3600,
            MAX_INTERVAL_SECONDS / 86_400,
            MAX_INTERVAL_SECONDS / 3600
        ),
        SettingsProblem::BadAddress(why) => why,
        SettingsProblem::TooManyRecipients(_) => format!("at most {MAX_RECIPIENTS} addresses"),
        SettingsProblem::NoRecipients => {
            "add at least one address to turn notifications on".to_owned()
        }
    };
    (name, message)
}

impl FormInput for NotificationForm {
    type Value = NotifySettings;

    fn csrf(&self) -> &str {
        &self.csrf
    }

    fn fields(&self, errors: &mut FieldErrors) -> Option<NotifySettings> {
        let inactivity = errors.check("inactivity_hours", parse_hours(&self.inactivity_hours));
        let notification =
            errors.check("notification_hours", parse_hours(&self.notification_hours));
        let draft = SettingsDraft {
            enabled: self.enabled.is_some(),
            // A field that is not a number already has its message; check the others anyway.
            inactivity_interval_seconds: inactivity.unwrap_or(MIN_INTERVAL_SECONDS),
            notification_interval_seconds: notification.unwrap_or(MIN_INTERVAL_SECONDS),
            recipients: self
                .recipients
                .split(['\n', ',', ';'])
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            notify_on_recovery: self.notify_on_recovery.is_some(),
        };
        match notify_settings::parse(&draft) {
            Ok(settings) => Some(settings).filter(|_| errors.is_empty()),
            Err(problems) => {
                for (field, problem) in problems {
                    let (name, message) = field_message(field, problem);
                    errors.note(name, message);
                }
                None
            }
        }
    }
}

pub async fn save_notifications(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<NotificationForm>,
) -> Response {
    let license = match license_to_change(&state, &s, f.csrf(), Role::Admin, &id).await {
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
    match app::notifications::save_settings(&state, s.tenant_id, license.id, settings).await {
        Ok(_) => {
            Redirect::to(&format!("/licenses/{}/notifications?saved=1", license.id)).into_response()
        }
        Err(e) => failure(e),
    }
}
