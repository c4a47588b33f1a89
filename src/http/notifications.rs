//! Notification settings (routing included) and history of a license (SPEC sections 5, 5a and
//! 6), acknowledging its open alert, the simulated clock's admin routes, and the public pages
//! of the one-click unsubscribe and acknowledgement links.

use super::{
    auth::{AuthUser, PlatformAdmin, Principal},
    error::{ApiResult, Problem},
    extract::{ApiJson, ApiPath, ApiQuery, Validation},
};
use crate::app::{AppError, AppState};
use crate::{
    app::{
        self,
        alerts::{Acknowledger, LinkTarget},
        notifications::Saved,
    },
    db,
    domain::{
        EmailAddress, FieldError, Role,
        notify_settings::{
            self, DEFAULT_INACTIVITY_SECONDS, DEFAULT_NOTIFICATION_SECONDS,
            DEFAULT_PARTIAL_AFTER_SECONDS, MAX_CHANNELS, MAX_DELAY_SECONDS, MAX_ESCALATION_STEPS,
            MAX_INTERVAL_SECONDS, MAX_RECIPIENTS, MIN_DELAY_SECONDS, MIN_INTERVAL_SECONDS,
            SettingsDraft, SettingsField, SettingsProblem, StepDraft,
        },
    },
    notify::scheduler,
    store::episodes::EpisodeView,
};
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Json,
    body::Bytes,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(list_notifications))
        .routes(routes!(acknowledge))
        .routes(routes!(advance_clock))
        .routes(routes!(run_sweep))
}

/// The unsubscribe and acknowledgement pages live outside `/api/v1`: people open them from
/// alerts. They need no session and no CSRF token: the signed token is the credential.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(unsubscribe_page, unsubscribe))
        .routes(routes!(acknowledge_page, acknowledge_by_link))
}

// Defined beside their SQL in the store; re-exported so the API's path to them stays the same.
pub use crate::store::{notifications::NotificationSettings, outbox::NotificationView};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSettings {
    pub enabled: bool,
    #[schema(example = 3600)]
    pub inactivity_interval_seconds: Option<i64>,
    #[schema(example = 28800)]
    pub notification_interval_seconds: Option<i64>,
    #[serde(default)]
    pub recipients: Vec<String>,
    pub notify_on_recovery: Option<bool>,
    /// Channels of the tenant that get every alert besides the recipients (default none).
    #[serde(default)]
    pub channels: Vec<Uuid>,
    /// Up to 3 escalation steps (default none).
    #[serde(default)]
    pub escalation: Vec<PutStep>,
    /// Camera-level alerts (default off).
    pub partial: Option<PutPartial>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutStep {
    /// 300..2592000 s after the episode opened, later than the step before.
    #[schema(example = 14400)]
    pub after_seconds: i64,
    /// 1..20 channels of the tenant.
    pub channels: Vec<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPartial {
    pub enabled: bool,
    /// 300..2592000 s (default 3600).
    #[schema(example = 3600)]
    pub after_seconds: Option<i64>,
}

/// The license's notification settings (defaults if never set).
#[utoipa::path(get, path = "/licenses/{id}/notification-settings", tag = "notifications", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id")), responses(
    (status = 200, description = "The settings", body = NotificationSettings),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
))]
async fn get_settings(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<NotificationSettings>> {
    Ok(Json(
        app::notifications::settings(&state, auth.tenant_id, id).await?,
    ))
}

/// Replaces the license's notification settings. Invalid input is a 422 with a pointer to each
/// bad field, and nothing is saved.
#[utoipa::path(put, path = "/licenses/{id}/notification-settings", tag = "notifications", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id")), request_body = PutSettings, responses(
    (status = 200, description = "Saved", body = NotificationSettings),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
async fn put_settings(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PutSettings>,
) -> ApiResult<Json<NotificationSettings>> {
    auth.require(Role::Admin)?;
    let draft = SettingsDraft {
        enabled: body.enabled,
        inactivity_interval_seconds: body
            .inactivity_interval_seconds
            .unwrap_or(DEFAULT_INACTIVITY_SECONDS.into()),
        notification_interval_seconds: body
            .notification_interval_seconds
            .unwrap_or(DEFAULT_NOTIFICATION_SECONDS.into()),
        recipients: body.recipients,
        notify_on_recovery: body.notify_on_recovery.unwrap_or(true),
        channels: body.channels,
        escalation: body
            .escalation
            .into_iter()
            .map(|step| StepDraft {
                after_seconds: step.after_seconds,
                channels: step.channels,
            })
            .collect(),
        partial_enabled: body.partial.as_ref().is_some_and(|p| p.enabled),
        partial_after_seconds: body
            .partial
            .and_then(|p| p.after_seconds)
            .unwrap_or(DEFAULT_PARTIAL_AFTER_SECONDS.into()),
    };
    let invalid =
        |problems: Vec<_>| AppError::Invalid(problems.into_iter().map(field_error).collect());
    let settings = notify_settings::parse(&draft).map_err(invalid)?;
    match app::notifications::save_settings(&state, auth.tenant_id, id, settings).await? {
        Saved::Saved(saved) => Ok(Json(saved)),
        Saved::Refused(problems) => Err(invalid(problems).into()),
    }
}

/// The API's wording of a settings problem, at the pointer of its field.
fn field_error((field, problem): (SettingsField, SettingsProblem)) -> FieldError {
    let pointer = match field {
        SettingsField::InactivityInterval => "/inactivity_interval_seconds".to_owned(),
        SettingsField::NotificationInterval => "/notification_interval_seconds".to_owned(),
        SettingsField::Recipient(i) => format!("/recipients/{i}"),
        SettingsField::Recipients => "/recipients".to_owned(),
        SettingsField::Channel(i) => format!("/channels/{i}"),
        SettingsField::Channels => "/channels".to_owned(),
        SettingsField::Escalation => "/escalation".to_owned(),
        SettingsField::StepAfter(i) => format!("/escalation/{i}/after_seconds"),
        SettingsField::StepChannel(i, j) => format!("/escalation/{i}/channels/{j}"),
        SettingsField::StepChannels(i) => format!("/escalation/{i}/channels"),
        SettingsField::PartialAfter => "/partial/after_seconds".to_owned(),
    };
    let message = match problem {
        SettingsProblem::IntervalOutOfRange(s) => format!(
            "must be between {MIN_INTERVAL_SECONDS} (1 h) and {MAX_INTERVAL_SECONDS} (30 days) seconds, not {s}"
        ),
        SettingsProblem::BadAddress(why) => why,
        SettingsProblem::TooManyRecipients(n) => {
            format!("must hold at most {MAX_RECIPIENTS} addresses, not {n}")
        }
        SettingsProblem::NoTarget => {
            "must hold at least one address, or a channel be chosen, when notifications are enabled"
                .to_owned()
        }
        SettingsProblem::TooManyChannels(n) => {
            format!("must hold at most {MAX_CHANNELS} channels, not {n}")
        }
        SettingsProblem::DuplicateChannel => "this channel is listed twice".to_owned(),
        SettingsProblem::NoSuchChannel => "no such channel".to_owned(),
        SettingsProblem::TooManySteps(n) => {
            format!("must hold at most {MAX_ESCALATION_STEPS} steps, not {n}")
        }
        SettingsProblem::DelayOutOfRange(s) => format!(
            "must be between {MIN_DELAY_SECONDS} (5 min) and {MAX_DELAY_SECONDS} (30 days) seconds, not {s}"
        ),
        SettingsProblem::NotAfterPrevious(previous) => {
            format!("must be greater than the previous step's {previous}")
        }
        SettingsProblem::NoStepChannels => "must hold at least one channel".to_owned(),
    };
    FieldError::new(pointer, message)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationList {
    pub items: Vec<NotificationView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationParams {
    /// How many, newest first: 1..500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
}

/// What was sent for the license, when, to whom or through which channel, and the delivery
/// state; newest first.
#[utoipa::path(get, path = "/licenses/{id}/notifications", tag = "notifications", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id"), NotificationParams), responses(
    (status = 200, description = "The deliveries", body = NotificationList),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
))]
async fn list_notifications(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<NotificationParams>,
) -> ApiResult<Json<NotificationList>> {
    let mut v = Validation::new();
    let limit = q.limit.as_deref().map_or(Some(100), |l| {
        v.check("/query/limit", l, |s| match s.parse::<i64>() {
            Ok(n) if (1..=500).contains(&n) => Ok(n),
            _ => Err(format!("must be an integer from 1 to 500, not '{s}'")),
        })
    });
    v.finish()?;
    let items =
        app::notifications::history(&state, auth.tenant_id, id, limit.unwrap_or(100)).await?;
    Ok(Json(NotificationList { items }))
}

/// Acknowledges the license's open alert (admin or owner): no more reminders or escalations
/// in this episode; the recovery is still sent. Acknowledging again keeps the first
/// acknowledgement.
#[utoipa::path(post, path = "/licenses/{id}/acknowledge", tag = "notifications", security(("bearer" = [])), params(("id" = Uuid, Path, description = "License id")), responses(
    (status = 200, description = "The acknowledged episode (also when it was acknowledged before)", body = EpisodeView),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such license in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The license has no open alert", body = Problem, content_type = "application/problem+json"),
))]
async fn acknowledge(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<EpisodeView>> {
    auth.require(Role::Admin)?;
    let who = match auth.principal {
        Principal::User(user) => Acknowledger::User(user),
        Principal::ApiKey(key) => Acknowledger::ApiKey(key),
    };
    Ok(Json(
        app::alerts::acknowledge(&state, auth.tenant_id, id, who).await?,
    ))
}

fn require_simulated(state: &AppState) -> ApiResult<()> {
    if state.clock.is_simulated() {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "the simulated clock is disabled (STREAMWATCH__CLOCK__SIMULATED; never in production)",
        )
        .into())
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceClock {
    /// Seconds to move the simulated clock forward: 1..31536000.
    #[schema(example = 7200)]
    pub advance_seconds: i64,
    /// `true` simulates the control plane being down meanwhile: the skipped time does not count
    /// toward inactivity. Default `false`: the time passes as if the service ran.
    #[serde(default)]
    pub control_plane_down: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClockView {
    /// The simulated now.
    pub now: DateTime<Utc>,
}

/// Moves the simulated clock forward (simulated clock only; platform admin).
#[utoipa::path(post, path = "/admin/clock", tag = "admin", security(("admin_token" = [])), request_body = AdvanceClock, responses(
    (status = 200, description = "The new simulated time", body = ClockView),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "The simulated clock is disabled", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "The admin API is disabled", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
async fn advance_clock(
    _: PlatformAdmin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AdvanceClock>,
) -> ApiResult<Json<ClockView>> {
    require_simulated(&state)?;
    if !(1..=31_536_000).contains(&body.advance_seconds) {
        return Err(AppError::invalid(
            "/advance_seconds",
            format!(
                "must be between 1 and 31536000, not {}",
                body.advance_seconds
            ),
        )
        .into());
    }
    state.clock.refresh(&state.pool).await?;
    let before = state.clock.now();
    if !body.control_plane_down {
        // Alive now, so that the jump below extends a span even on a fresh database.
        crate::notify::alive::record(&state.pool, before, None).await?;
    }
    let now = state
        .clock
        .advance(&state.pool, chrono::Duration::seconds(body.advance_seconds))
        .await?
        .unwrap_or(before);
    if !body.control_plane_down {
        // The service "ran" through the skipped time: extend its alive span across it.
        crate::notify::alive::record(&state.pool, now, Some(before)).await?;
    }
    Ok(Json(ClockView { now }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SweepView {
    pub now: DateTime<Utc>,
    /// Another replica held the sweep lock; its sweep decides instead.
    pub skipped: bool,
    pub examined: usize,
    pub opened: usize,
    pub reminders: usize,
    pub closed: usize,
    /// Outbox rows written by this sweep.
    pub emails_decided: usize,
    /// E-mails handed to SMTP (a digest counts once) in the send pass that followed.
    pub emails_sent: usize,
    pub send_failures: usize,
}

/// Runs one sweep now, then one pass of the sender over every due outbox row (retries
/// included); answers once those sends were attempted (simulated clock only; platform admin).
#[utoipa::path(post, path = "/admin/sweep", tag = "admin", security(("admin_token" = [])), responses(
    (status = 200, description = "Swept and sent", body = SweepView),
    (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "The simulated clock is disabled", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "The admin API is disabled", body = Problem, content_type = "application/problem+json"),
))]
async fn run_sweep(_: PlatformAdmin, State(state): State<AppState>) -> ApiResult<Json<SweepView>> {
    require_simulated(&state)?;
    let report = scheduler::tick(&state.scheduler_deps()).await?;
    Ok(Json(SweepView {
        now: state.clock.now(),
        skipped: report.sweep.skipped,
        examined: report.sweep.examined,
        opened: report.sweep.opened,
        reminders: report.sweep.reminders,
        closed: report.sweep.closed,
        emails_decided: report.sweep.emails,
        emails_sent: report.delivery.emails_sent,
        send_failures: report.delivery.rows_failed_attempt,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnsubscribeParams {
    /// The signed token from the e-mail's link. Missing, it is an invalid link like any other
    /// (the HTML page, not a plain-text 400: people open these links).
    #[serde(default)]
    pub token: Option<String>,
}

/// The public pages of an unsubscribe link (`templates/unsubscribe.html`).
#[derive(Template, WebTemplate)]
#[template(path = "unsubscribe.html")]
struct UnsubscribePage<'a> {
    title: &'a str,
    body: UnsubscribeBody<'a>,
}

enum UnsubscribeBody<'a> {
    /// One paragraph of text.
    Says(&'a str),
    /// Asks to confirm stopping the e-mails to `recipient` about `licenses` licenses.
    Asks { recipient: &'a str, licenses: usize },
}

fn page(status: StatusCode, title: &str, body: UnsubscribeBody<'_>) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        UnsubscribePage { title, body },
    )
        .into_response()
}

/// The page an unsubscribe link opens: it asks for a click, because link scanners prefetch
/// GETs. Mail clients use the one-click POST (RFC 8058) instead.
#[utoipa::path(get, path = "/unsubscribe", tag = "notifications", params(UnsubscribeParams), responses(
    (status = 200, description = "A confirmation page", body = String, content_type = "text/html"),
    (status = 400, description = "An invalid or tampered link", body = String, content_type = "text/html"),
))]
async fn unsubscribe_page(
    State(state): State<AppState>,
    Query(q): Query<UnsubscribeParams>,
) -> Response {
    let Some(u) = state
        .sender
        .unsubscribe
        .verify(q.token.as_deref().unwrap_or_default())
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "Invalid link",
            UnsubscribeBody::Says(
                "This unsubscribe link is not valid. Copy the whole link from the e-mail.",
            ),
        );
    };
    page(
        StatusCode::OK,
        "Unsubscribe",
        UnsubscribeBody::Asks {
            recipient: &u.recipient,
            licenses: u.licenses.len(),
        },
    )
}

/// One-click unsubscribe (RFC 8058): removes the recipient from the licenses the link names.
/// A license left without recipients has notifications turned off.
#[utoipa::path(post, path = "/unsubscribe", tag = "notifications", params(UnsubscribeParams), responses(
    (status = 200, description = "Unsubscribed (also when already unsubscribed)", body = String, content_type = "text/html"),
    (status = 400, description = "An invalid or tampered link", body = String, content_type = "text/html"),
))]
async fn unsubscribe(
    State(state): State<AppState>,
    Query(q): Query<UnsubscribeParams>,
) -> ApiResult<Response> {
    let Some(u) = state
        .sender
        .unsubscribe
        .verify(q.token.as_deref().unwrap_or_default())
    else {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Invalid link",
            UnsubscribeBody::Says("This unsubscribe link is not valid."),
        ));
    };
    let mut tx = db::begin_tenant(&state.pool, u.tenant_id).await?;
    sqlx::query(
        "UPDATE notification_settings
            SET recipients = array_remove(recipients, $3),
                enabled = enabled AND cardinality(array_remove(recipients, $3)) > 0,
                next_check_at = $4, updated_at = $4
          WHERE tenant_id = $1 AND license_id = ANY($2)",
    )
    .bind(u.tenant_id)
    .bind(&u.licenses)
    .bind(&u.recipient)
    .bind(state.clock.now())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(recipient = %EmailAddress::parse(&u.recipient).map(|e| e.masked()).unwrap_or_default(), licenses = u.licenses.len(), "unsubscribed");
    Ok(page(
        StatusCode::OK,
        "Unsubscribed",
        UnsubscribeBody::Says("You will no longer receive these e-mails."),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AcknowledgeParams {
    /// The signed token from the alert's link. Missing, it is an invalid link like any other.
    #[serde(default)]
    pub token: Option<String>,
}

/// The form the acknowledgement page posts.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AcknowledgeForm {
    /// The signed token from the alert's link.
    pub token: String,
}

/// The public pages of an acknowledgement link (`templates/acknowledge.html`).
#[derive(Template, WebTemplate)]
#[template(path = "acknowledge.html")]
struct AcknowledgePage<'a> {
    title: &'a str,
    body: AcknowledgeBody<'a>,
}

enum AcknowledgeBody<'a> {
    /// One paragraph of text.
    Says(&'a str),
    /// The alert, and what became of it (`asks`: a button to acknowledge it, with the token).
    Alert {
        license: String,
        kind: &'a str,
        opened_at: String,
        status: String,
        asks: Option<&'a str>,
    },
}

fn ack_page(status: StatusCode, title: &str, body: AcknowledgeBody<'_>) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        AcknowledgePage { title, body },
    )
        .into_response()
}

/// How the link pages show a time: UTC, as a person reading any time zone can place it.
fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The page for what a verified link points at; `asks` is the token when it may still be
/// acknowledged (the page then offers the button).
fn alert_page(target: LinkTarget, asks: Option<&str>) -> Response {
    let LinkTarget::Episode {
        license_name,
        license_key,
        episode,
        open,
    } = target
    else {
        return ack_page(
            StatusCode::NOT_FOUND,
            "License deleted",
            AcknowledgeBody::Says(
                "This alert's license no longer exists, so there is nothing to acknowledge.",
            ),
        );
    };
    let kind = if episode.kind == "partial" {
        "some cameras not active"
    } else {
        "inactive"
    };
    let license = format!("{license_name} ({license_key})");
    let opened_at = utc(episode.opened_at);
    if !open {
        return ack_page(
            StatusCode::CONFLICT,
            "Already recovered",
            AcknowledgeBody::Alert {
                license,
                kind,
                opened_at,
                status: "Nothing to acknowledge: the license recovered already and this alert is closed."
                    .to_owned(),
                asks: None,
            },
        );
    }
    let (title, status, asks) = match (&episode.acknowledged_at, &episode.acknowledged_by) {
        (Some(at), by) => (
            "Acknowledged",
            format!(
                "Acknowledged by {} at {}. No more reminders or escalations for this alert; the recovery will still be sent.",
                by.as_deref().unwrap_or("someone"),
                utc(*at)
            ),
            None,
        ),
        (None, _) => (
            "Acknowledge alert",
            "Not acknowledged yet. Acknowledging stops the reminders and escalations of this alert; the recovery will still be sent."
                .to_owned(),
            asks,
        ),
    };
    ack_page(
        StatusCode::OK,
        title,
        AcknowledgeBody::Alert {
            license,
            kind,
            opened_at,
            status,
            asks,
        },
    )
}

fn invalid_ack_link() -> Response {
    ack_page(
        StatusCode::BAD_REQUEST,
        "Invalid link",
        AcknowledgeBody::Says(
            "This acknowledgement link is not valid. Copy the whole link from the alert.",
        ),
    )
}

/// The page an acknowledgement link opens: the license and its alert, and one button. Opening
/// it changes nothing, because chat unfurlers and mail scanners fetch links; the button posts.
#[utoipa::path(get, path = "/acknowledge", tag = "notifications", params(AcknowledgeParams), responses(
    (status = 200, description = "The alert, with a button to acknowledge it (or who did)", body = String, content_type = "text/html"),
    (status = 400, description = "An invalid or tampered link", body = String, content_type = "text/html"),
    (status = 404, description = "The license was deleted", body = String, content_type = "text/html"),
    (status = 409, description = "The alert closed: the license recovered already", body = String, content_type = "text/html"),
))]
async fn acknowledge_page(
    State(state): State<AppState>,
    Query(q): Query<AcknowledgeParams>,
) -> ApiResult<Response> {
    let token_text = q.token.unwrap_or_default();
    let Some(token) = state.ack.verify(&token_text) else {
        return Ok(invalid_ack_link());
    };
    let target = app::alerts::link_target(&state, &token).await?;
    Ok(alert_page(target, Some(&token_text)))
}

/// Acknowledges the alert of a signed link (the page's button; no login: the token is the
/// credential), recorded as `link via <recipient or channel>`.
#[utoipa::path(post, path = "/acknowledge", tag = "notifications", params(AcknowledgeParams), request_body(content = AcknowledgeForm, content_type = "application/x-www-form-urlencoded"), responses(
    (status = 200, description = "Acknowledged (also when it was acknowledged before)", body = String, content_type = "text/html"),
    (status = 400, description = "An invalid or tampered link", body = String, content_type = "text/html"),
    (status = 404, description = "The license was deleted", body = String, content_type = "text/html"),
    (status = 409, description = "The alert closed: the license recovered already", body = String, content_type = "text/html"),
))]
async fn acknowledge_by_link(
    State(state): State<AppState>,
    Query(q): Query<AcknowledgeParams>,
    body: Bytes,
) -> ApiResult<Response> {
    // The form's hidden field; the query as well, for a client that posts the link as it is.
    let token_text = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .or(q.token)
        .unwrap_or_default();
    let Some(token) = state.ack.verify(&token_text) else {
        return Ok(invalid_ack_link());
    };
    let target = app::alerts::acknowledge_link(&state, &token).await?;
    Ok(alert_page(target, None))
}
