//! The Setup Notification page of one license (SPEC sections 5 and 5a): intervals, recipients,
//! the tenant's channels, up to 3 escalation steps and camera-level alerts. Invalid input is
//! shown next to its field and nothing is saved.
//!
//! Channels are checkboxes that share a name (`channels`, `escalation_N_channels`), so the
//! form is read from its raw pairs: a plain `Form` cannot hold a repeated field.

use super::{
    form::{self, FieldErrors, FormInput},
    page::{Nav, failure, license_row, license_to_change},
    session::UiSession,
};
use crate::{
    app::{self, AppState, notifications::Saved},
    domain::{
        Role,
        notify_settings::{
            self, DEFAULT_PARTIAL_AFTER_SECONDS, MAX_CHANNELS, MAX_DELAY_SECONDS,
            MAX_ESCALATION_STEPS, MAX_INTERVAL_SECONDS, MAX_RECIPIENTS, MIN_DELAY_SECONDS,
            MIN_INTERVAL_SECONDS, NotifySettings, SettingsDraft, SettingsField, SettingsProblem,
            StepDraft,
        },
    },
    store::notifications::{ChannelChoice, NotificationSettings},
};
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, Query, RawForm, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use uuid::Uuid;

/// The form's field names of the escalation rows (errors are noted by field name).
const STEP_HOURS: [&str; MAX_ESCALATION_STEPS] = [
    "escalation_1_hours",
    "escalation_2_hours",
    "escalation_3_hours",
];
const STEP_CHANNELS: [&str; MAX_ESCALATION_STEPS] = [
    "escalation_1_channels",
    "escalation_2_channels",
    "escalation_3_channels",
];

/// One channel checkbox.
pub struct ChannelBox {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub checked: bool,
}

/// One escalation row: after how many hours, to which channels.
pub struct StepRow {
    /// 1-based.
    pub n: usize,
    pub hours_field: &'static str,
    pub channels_field: &'static str,
    pub hours: String,
    pub channels: Vec<ChannelBox>,
}

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
    /// The tenant's channels, those chosen checked.
    pub channels: Vec<ChannelBox>,
    /// Always [`MAX_ESCALATION_STEPS`] rows; unused ones are empty.
    pub steps: Vec<StepRow>,
    pub partial_enabled: bool,
    pub partial_minutes: String,
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

fn minutes(seconds: i32) -> String {
    let m = f64::from(seconds) / 60.0;
    if m.fract() == 0.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

/// The tenant's channels as checkboxes, checked when `chosen` names them (as text, so that a
/// form shows again as posted).
fn boxes(choices: &[ChannelChoice], chosen: &[String]) -> Vec<ChannelBox> {
    choices
        .iter()
        .map(|c| ChannelBox {
            id: c.id,
            name: c.name.clone(),
            kind: c.kind.clone(),
            checked: chosen.iter().any(|id| id.trim() == c.id.to_string()),
        })
        .collect()
}

fn ids(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
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
    let choices = match app::notifications::channel_choices(&state, s.tenant_id).await {
        Ok(c) => c,
        Err(e) => return failure(e),
    };
    let f = NotificationForm::from_settings(&settings);
    f.page(&s, license.id, license.name, license.key, &choices)
        .with(FieldErrors::default(), q.saved.is_some())
        .into_response()
}

/// The posted form, every field as typed.
#[derive(Debug, Default)]
pub struct NotificationForm {
    /// Missing counts as wrong (403), not as a malformed form.
    csrf: String,
    enabled: bool,
    inactivity_hours: String,
    notification_hours: String,
    recipients: String,
    notify_on_recovery: bool,
    /// Channel ids, as posted.
    channels: Vec<String>,
    /// Per escalation row: hours and channel ids, as posted.
    step_hours: [String; MAX_ESCALATION_STEPS],
    step_channels: [Vec<String>; MAX_ESCALATION_STEPS],
    partial_enabled: bool,
    partial_minutes: String,
}

impl NotificationForm {
    /// Reads the `application/x-www-form-urlencoded` pairs; unknown names are ignored.
    fn parse(body: &[u8]) -> Self {
        let mut f = Self::default();
        for (name, value) in form_urlencoded::parse(body) {
            let value = value.into_owned();
            match name.as_ref() {
                "csrf" => f.csrf = value,
                "enabled" => f.enabled = true,
                "inactivity_hours" => f.inactivity_hours = value,
                "notification_hours" => f.notification_hours = value,
                "recipients" => f.recipients = value,
                "notify_on_recovery" => f.notify_on_recovery = true,
                "channels" => f.channels.push(value),
                "partial_enabled" => f.partial_enabled = true,
                "partial_minutes" => f.partial_minutes = value,
                other => {
                    if let Some(i) = STEP_HOURS.iter().position(|n| *n == other) {
                        f.step_hours[i] = value;
                    } else if let Some(i) = STEP_CHANNELS.iter().position(|n| *n == other) {
                        f.step_channels[i].push(value);
                    }
                }
            }
        }
        f
    }

    /// The saved settings, as the form shows them.
    fn from_settings(settings: &NotificationSettings) -> Self {
        let mut f = Self {
            csrf: String::new(),
            enabled: settings.enabled,
            inactivity_hours: hours(settings.inactivity_interval_seconds),
            notification_hours: hours(settings.notification_interval_seconds),
            recipients: settings.recipients.join("\n"),
            notify_on_recovery: settings.notify_on_recovery,
            channels: ids(&settings.channels),
            partial_enabled: settings.partial.enabled,
            partial_minutes: minutes(settings.partial.after_seconds),
            ..Self::default()
        };
        for (i, step) in settings
            .escalation
            .iter()
            .take(MAX_ESCALATION_STEPS)
            .enumerate()
        {
            f.step_hours[i] = hours(step.after_seconds);
            f.step_channels[i] = ids(&step.channels);
        }
        f
    }

    /// The page showing this form (errors and the saved notice are added by [`PageParts::with`]).
    fn page(
        self,
        s: &UiSession,
        id: Uuid,
        name: String,
        key: String,
        choices: &[ChannelChoice],
    ) -> PageParts {
        let steps = (0..MAX_ESCALATION_STEPS)
            .map(|i| StepRow {
                n: i + 1,
                hours_field: STEP_HOURS[i],
                channels_field: STEP_CHANNELS[i],
                hours: self.step_hours[i].clone(),
                channels: boxes(choices, &self.step_channels[i]),
            })
            .collect();
        PageParts(NotificationPage {
            nav: Some(Nav::new(s, "monitoring")),
            id,
            name,
            key,
            enabled: self.enabled,
            inactivity_hours: self.inactivity_hours,
            notification_hours: self.notification_hours,
            recipients: self.recipients,
            notify_on_recovery: self.notify_on_recovery,
            channels: boxes(choices, &self.channels),
            steps,
            partial_enabled: self.partial_enabled,
            partial_minutes: self.partial_minutes,
            errors: FieldErrors::default(),
            saved: false,
        })
    }

    /// The escalation rows in use (hours typed or a channel chosen), by row index.
    fn used_steps(&self) -> Vec<usize> {
        (0..MAX_ESCALATION_STEPS)
            .filter(|&i| !self.step_hours[i].trim().is_empty() || !self.step_channels[i].is_empty())
            .collect()
    }
}

/// A page being built: everything but the messages.
struct PageParts(NotificationPage);

impl PageParts {
    fn with(mut self, errors: FieldErrors, saved: bool) -> NotificationPage {
        self.0.errors = errors;
        self.0.saved = saved;
        self.0
    }
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

/// Minutes from the form, as whole seconds.
fn parse_minutes(raw: &str) -> Result<i64, String> {
    let m: f64 = raw
        .trim()
        .replace(',', ".")
        .parse()
        .map_err(|_| format!("'{raw}' is not a number of minutes"))?;
    Ok((m * 60.0).round() as i64)
}

/// Channel ids from checkboxes; one that is not an id is no channel of the tenant.
fn parse_ids(raw: &[String], field: &'static str, errors: &mut FieldErrors) -> Vec<Uuid> {
    raw.iter()
        .filter_map(|id| {
            errors.check(
                field,
                id.trim()
                    .parse::<Uuid>()
                    .map_err(|_| "no such channel: reload the page".to_owned()),
            )
        })
        .collect()
}

/// The form's wording of a settings problem, and the field it shows next to. `rows` maps a
/// step's index in the draft to its row on the page.
fn field_message(
    field: SettingsField,
    problem: SettingsProblem,
    rows: &[usize],
) -> (&'static str, String) {
    let row = |i: usize| rows.get(i).copied().unwrap_or(0);
    let name = match field {
        SettingsField::InactivityInterval => "inactivity_hours",
        SettingsField::NotificationInterval => "notification_hours",
        SettingsField::Recipient(_) | SettingsField::Recipients => "recipients",
        SettingsField::Channel(_) | SettingsField::Channels => "channels",
        SettingsField::Escalation => STEP_HOURS[0],
        SettingsField::StepAfter(i) => STEP_HOURS[row(i)],
        SettingsField::StepChannel(i, _) | SettingsField::StepChannels(i) => STEP_CHANNELS[row(i)],
        SettingsField::PartialAfter => "partial_minutes",
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
        SettingsProblem::NoTarget => {
            "add at least one address or choose a channel to turn notifications on".to_owned()
        }
        SettingsProblem::TooManyChannels(_) => format!("at most {MAX_CHANNELS} channels"),
        SettingsProblem::DuplicateChannel => "a channel is chosen twice".to_owned(),
        SettingsProblem::NoSuchChannel => {
            "no such channel (deleted meanwhile?): reload the page".to_owned()
        }
        SettingsProblem::TooManySteps(_) => format!("at most {MAX_ESCALATION_STEPS} steps"),
        SettingsProblem::DelayOutOfRange(_) if field == SettingsField::PartialAfter => format!(
            "must be at least {} and at most {} minutes (30 days)",
            MIN_DELAY_SECONDS / 60,
            MAX_DELAY_SECONDS / 60
        ),
        SettingsProblem::DelayOutOfRange(_) => format!(
            "must be at least {} minutes ({:.2} hours) and at most 30 days ({} hours)",
            MIN_DELAY_SECONDS / 60,
            MIN_DELAY_SECONDS as f64 / 3600.0,
            MAX_DELAY_SECONDS / 3600
        ),
        SettingsProblem::NotAfterPrevious(_) => "must be later than the step above".to_owned(),
        SettingsProblem::NoStepChannels => "choose at least one channel for this step".to_owned(),
    };
    (name, message)
}

impl FormInput for NotificationForm {
    type Value = (NotifySettings, Vec<usize>);

    fn csrf(&self) -> &str {
        &self.csrf
    }

    fn fields(&self, errors: &mut FieldErrors) -> Option<(NotifySettings, Vec<usize>)> {
        let inactivity = errors.check("inactivity_hours", parse_hours(&self.inactivity_hours));
        let notification =
            errors.check("notification_hours", parse_hours(&self.notification_hours));
        let rows = self.used_steps();
        let escalation = rows
            .iter()
            .map(|&i| {
                let after = if self.step_hours[i].trim().is_empty() {
                    errors.note(STEP_HOURS[i], "after how many hours?");
                    None
                } else {
                    errors.check(STEP_HOURS[i], parse_hours(&self.step_hours[i]))
                };
                StepDraft {
                    // A bad number already has its message; the domain checks the rest.
                    after_seconds: after.unwrap_or(MIN_DELAY_SECONDS + i as i64),
                    channels: parse_ids(&self.step_channels[i], STEP_CHANNELS[i], errors),
                }
            })
            .collect();
        let partial_after = if self.partial_minutes.trim().is_empty() {
            Some(DEFAULT_PARTIAL_AFTER_SECONDS.into())
        } else {
            errors.check("partial_minutes", parse_minutes(&self.partial_minutes))
        };
        let draft = SettingsDraft {
            enabled: self.enabled,
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
            notify_on_recovery: self.notify_on_recovery,
            channels: parse_ids(&self.channels, "channels", errors),
            escalation,
            partial_enabled: self.partial_enabled,
            partial_after_seconds: partial_after.unwrap_or(DEFAULT_PARTIAL_AFTER_SECONDS.into()),
        };
        match notify_settings::parse(&draft) {
            Ok(settings) => Some((settings, rows)).filter(|_| errors.is_empty()),
            Err(problems) => {
                for (field, problem) in problems {
                    let (name, message) = field_message(field, problem, &rows);
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
    RawForm(body): RawForm,
) -> Response {
    let f = NotificationForm::parse(&body);
    let license = match license_to_change(&state, &s, f.csrf(), Role::Admin, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let choices = match app::notifications::channel_choices(&state, s.tenant_id).await {
        Ok(c) => c,
        Err(e) => return failure(e),
    };
    let again = |f: NotificationForm, errors: FieldErrors| {
        let page = f
            .page(
                &s,
                license.id,
                license.name.clone(),
                license.key.clone(),
                &choices,
            )
            .with(errors, false);
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    };
    let (settings, rows) = match form::parse(&f) {
        Ok(parsed) => parsed,
        Err(errors) => return again(f, errors),
    };
    match app::notifications::save_settings(&state, s.tenant_id, license.id, settings).await {
        Ok(Saved::Saved(_)) => {
            Redirect::to(&format!("/licenses/{}/notifications?saved=1", license.id)).into_response()
        }
        Ok(Saved::Refused(problems)) => {
            let mut errors = FieldErrors::default();
            for (field, problem) in problems {
                let (name, message) = field_message(field, problem, &rows);
                errors.note(name, message);
            }
            again(f, errors)
        }
        Err(e) => failure(e),
    }
}
