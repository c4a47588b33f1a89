//! The Channels page (SPEC section 5a): the tenant's alert channels (name, kind, where they
//! send to), a form per kind to create or change one, delete with a confirmation step, and a
//! "Send test" button whose outcome shows on the page.
//!
//! The form's fields become the JSON config `app::channels` checks for the API, so the rules
//! (and their messages) are the same; each problem's pointer (`/config/url`) is shown next to
//! the form field it names. Secrets and URLs are never shown back: an edit form leaves them
//! empty with the stored value's redacted form as placeholder, and a field left empty keeps
//! what is stored.

use super::{
    form::FieldErrors,
    page::{CsrfForm, Nav, failure, guard, not_found},
    session::UiSession,
};
use crate::{
    app::{
        self, AppError, AppState,
        channels::{ChannelPatch, ChannelTestOutcome, ChannelTestResult, ChannelView},
        pagination,
    },
    domain::{
        FieldError, Role, Validation,
        channel::{ChannelKind, PAGERDUTY_EVENTS_URL, REDACTED},
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
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// Channels per page of the list.
const PAGE_SIZE: i64 = 100;

pub struct ChannelItem {
    pub id: Uuid,
    pub name: String,
    pub kind: &'static str,
    /// Where it sends to: the URL's origin, or the e-mail addresses.
    pub target: String,
}

/// A kind in the "New channel" chooser.
pub struct KindOption {
    pub value: &'static str,
    pub label: &'static str,
}

/// The outcome of a test send, as the page shows it.
pub struct TestShown {
    pub channel: String,
    pub ok: bool,
    pub text: String,
}

/// A delete waiting for its confirmation.
pub struct ConfirmDelete {
    pub id: Uuid,
    pub name: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "channels.html")]
pub struct ChannelsPage {
    pub nav: Option<Nav>,
    pub channels: Vec<ChannelItem>,
    pub next_url: Option<String>,
    pub first_url: Option<String>,
    pub kinds: Vec<KindOption>,
    pub test: Option<TestShown>,
    pub confirm: Option<ConfirmDelete>,
    /// A delete that was refused, and why.
    pub refused: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "channel_form.html")]
pub struct ChannelFormPage {
    pub nav: Option<Nav>,
    /// `None` for a new channel.
    pub id: Option<Uuid>,
    pub kind: &'static str,
    pub kind_label: &'static str,
    /// The form, as typed (secrets never filled in).
    pub f: ChannelForm,
    /// The stored values' redacted forms, as placeholders of an edit form, by field.
    pub stored: Stored,
    pub errors: FieldErrors,
}

/// What an edit form shows as placeholders of its secret and URL fields.
#[derive(Debug, Default)]
pub struct Stored {
    pub url: String,
    pub secret: String,
    pub webhook_url: String,
    pub routing_key: String,
    pub events_url: String,
    pub token: String,
}

/// The create and edit form of every kind: only the fields of the channel's kind are read.
/// Every field is text as typed, so that the form shows again as it was.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChannelForm {
    /// Missing counts as wrong (403), not as a malformed form.
    pub csrf: String,
    pub name: String,
    /// The kind (a hidden field; an edit cannot change it).
    pub kind: String,
    /// E-mail: addresses separated by commas, spaces or lines.
    pub recipients: String,
    /// Webhook, ntfy.
    pub url: String,
    /// Webhook.
    pub secret: String,
    /// Slack, Teams.
    pub webhook_url: String,
    /// PagerDuty.
    pub routing_key: String,
    pub events_url: String,
    /// ntfy.
    pub token: String,
    /// Checked: remove the stored secret or token (edit only).
    pub remove_secret: String,
}

fn kinds() -> Vec<KindOption> {
    ChannelKind::ALL
        .into_iter()
        .map(|k| KindOption {
            value: k.as_str(),
            label: k.label(),
        })
        .collect()
}

/// Where a channel sends to, in a few words (the redacted config has origins only).
fn target(c: &ChannelView) -> String {
    let origin = |v: &Value| {
        v.as_str().map_or_else(String::new, |s| {
            s.strip_suffix(&format!("/{REDACTED}"))
                .unwrap_or(s)
                .to_owned()
        })
    };
    match c.kind {
        ChannelKind::Email => c.config["recipients"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default(),
        ChannelKind::Webhook | ChannelKind::Ntfy => origin(&c.config["url"]),
        ChannelKind::Slack | ChannelKind::Teams => origin(&c.config["webhook_url"]),
        ChannelKind::Pagerduty => match &c.config["events_url"] {
            Value::Null => origin(&Value::from(PAGERDUTY_EVENTS_URL)),
            v => origin(v),
        },
    }
}

fn item(c: ChannelView) -> ChannelItem {
    ChannelItem {
        target: target(&c),
        id: c.id,
        kind: c.kind.label(),
        name: c.name,
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
}

pub async fn channels_page(
    State(state): State<AppState>,
    s: UiSession,
    Query(q): Query<ListQuery>,
) -> Response {
    render_list(
        &state,
        &s,
        q.cursor.as_deref(),
        StatusCode::OK,
        None,
        None,
        None,
    )
    .await
}

/// The list (one page from `cursor`), with a test outcome, a delete to confirm or a refusal.
async fn render_list(
    state: &AppState,
    s: &UiSession,
    cursor: Option<&str>,
    status: StatusCode,
    test: Option<TestShown>,
    confirm: Option<ConfirmDelete>,
    refused: Option<String>,
) -> Response {
    // A cursor that does not parse shows the first page.
    let after = pagination::parse_cursor(&mut Validation::new(), cursor, "id").map(|c| c.id);
    let (channels, next) = match app::channels::list(state, s.tenant_id, after, PAGE_SIZE).await {
        Ok(page) => page,
        Err(e) => return failure(e),
    };
    let page = ChannelsPage {
        nav: Some(Nav::new(s, "channels")),
        channels: channels.into_iter().map(item).collect(),
        next_url: next.map(|c| format!("/channels?cursor={c}")),
        first_url: after.map(|_| "/channels".to_owned()),
        kinds: kinds(),
        test,
        confirm,
        refused,
    };
    (status, page).into_response()
}

#[derive(Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    kind: String,
}

/// The form for a new channel of the kind chosen on the list page.
pub async fn new_channel(
    State(_state): State<AppState>,
    s: UiSession,
    Query(q): Query<NewQuery>,
) -> Response {
    if !s.can_edit() {
        return super::page::forbidden(&s, "Your role does not allow this change.");
    }
    let Some(kind) = ChannelKind::parse(&q.kind) else {
        return not_found(&s);
    };
    let f = ChannelForm {
        kind: kind.as_str().to_owned(),
        ..ChannelForm::default()
    };
    form_page(
        &s,
        None,
        kind,
        f,
        Stored::default(),
        FieldErrors::default(),
        StatusCode::OK,
    )
}

fn form_page(
    s: &UiSession,
    id: Option<Uuid>,
    kind: ChannelKind,
    f: ChannelForm,
    stored: Stored,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let page = ChannelFormPage {
        nav: Some(Nav::new(s, "channels")),
        id,
        kind: kind.as_str(),
        kind_label: kind.label(),
        f,
        stored,
        errors,
    };
    (status, page).into_response()
}

/// The config JSON of a form. `editing`: an empty secret or URL field keeps what is stored
/// (it is left out of the change), and `remove_secret` removes the stored secret or token.
fn config_of(kind: ChannelKind, f: &ChannelForm, editing: bool) -> Value {
    let mut m = Map::new();
    let mut put = |key: &str, raw: &str, optional: bool| {
        let v = raw.trim();
        if !v.is_empty() {
            m.insert(key.to_owned(), Value::from(v));
        } else if !editing && !optional {
            // Missing on a create: the check names the field.
            m.insert(key.to_owned(), Value::from(""));
        }
    };
    match kind {
        ChannelKind::Email => {
            let addresses: Vec<&str> = f
                .recipients
                .split([',', ';', ' ', '\n', '\r', '\t'])
                .filter(|a| !a.is_empty())
                .collect();
            m.insert("recipients".to_owned(), json!(addresses));
        }
        ChannelKind::Webhook => {
            put("url", &f.url, false);
            put("secret", &f.secret, true);
        }
        ChannelKind::Slack | ChannelKind::Teams => put("webhook_url", &f.webhook_url, false),
        ChannelKind::Pagerduty => {
            put("routing_key", &f.routing_key, false);
            put("events_url", &f.events_url, true);
        }
        ChannelKind::Ntfy => {
            put("url", &f.url, false);
            put("token", &f.token, true);
        }
    }
    if editing && !f.remove_secret.is_empty() {
        match kind {
            ChannelKind::Webhook => {
                m.insert("secret".to_owned(), Value::Null);
            }
            ChannelKind::Ntfy => {
                m.insert("token".to_owned(), Value::Null);
            }
            _ => {}
        }
    }
    Value::Object(m)
}

/// The form field that shows the problem at a JSON pointer.
fn field_of(pointer: &str) -> &'static str {
    let mut parts = pointer.trim_start_matches('/').split('/');
    match (parts.next(), parts.next()) {
        (Some("name"), _) => "name",
        (Some("kind"), _) => "kind",
        (Some("config"), Some("recipients")) => "recipients",
        (Some("config"), Some("url")) => "url",
        (Some("config"), Some("secret")) => "secret",
        (Some("config"), Some("webhook_url")) => "webhook_url",
        (Some("config"), Some("routing_key")) => "routing_key",
        (Some("config"), Some("events_url")) => "events_url",
        (Some("config"), Some("token")) => "token",
        _ => "form",
    }
}

/// Notes each problem next to its field. For an address in the recipients field, the
/// message names the address (the pointer's index means nothing on the page).
fn note_problems(errors: &mut FieldErrors, problems: Vec<FieldError>, f: &ChannelForm) {
    let addresses: Vec<&str> = f
        .recipients
        .split([',', ';', ' ', '\n', '\r', '\t'])
        .filter(|a| !a.is_empty())
        .collect();
    for p in problems {
        let field = field_of(&p.pointer);
        let message = match (field, p.pointer.rsplit('/').next()) {
            ("recipients", Some(i)) if p.pointer.matches('/').count() == 3 => {
                match i.parse::<usize>().ok().and_then(|i| addresses.get(i)) {
                    Some(a) => format!("{a}: {}", p.message),
                    None => p.message,
                }
            }
            _ => p.message,
        };
        errors.note(field, message);
    }
}

pub async fn create_channel(
    State(state): State<AppState>,
    s: UiSession,
    Form(f): Form<ChannelForm>,
) -> Response {
    if let Err(page) = guard(&s, &f.csrf, Role::Admin) {
        return page;
    }
    let Some(kind) = ChannelKind::parse(&f.kind) else {
        return not_found(&s);
    };
    let config = config_of(kind, &f, false);
    match app::channels::create(&state, s.tenant_id, &f.name, kind, &config).await {
        Ok(_) => Redirect::to("/channels").into_response(),
        Err(AppError::Invalid(problems)) => {
            let mut errors = FieldErrors::default();
            note_problems(&mut errors, problems, &f);
            // Secrets typed into a form that failed are not sent back to the browser.
            let f = ChannelForm {
                secret: String::new(),
                token: String::new(),
                routing_key: String::new(),
                ..f
            };
            form_page(
                &s,
                None,
                kind,
                f,
                Stored::default(),
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e) => failure(e),
    }
}

/// The channel a path names: not a UUID, or not in the session's tenant, is a 404.
async fn channel(state: &AppState, s: &UiSession, id: &str) -> Result<ChannelView, Response> {
    let Ok(id) = id.parse::<Uuid>() else {
        return Err(not_found(s));
    };
    match app::channels::get(state, s.tenant_id, id).await {
        Ok(c) => Ok(c),
        Err(AppError::NotFound) => Err(not_found(s)),
        Err(e) => Err(failure(e)),
    }
}

/// The placeholders of an edit form: what is stored, redacted.
fn stored_of(c: &ChannelView) -> Stored {
    let text = |key: &str| match &c.config[key] {
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    Stored {
        url: text("url"),
        secret: text("secret"),
        webhook_url: text("webhook_url"),
        routing_key: text("routing_key"),
        events_url: match c.kind {
            ChannelKind::Pagerduty if c.config["events_url"].is_null() => {
                PAGERDUTY_EVENTS_URL.to_owned()
            }
            _ => text("events_url"),
        },
        token: text("token"),
    }
}

/// The edit form, with the name and (for e-mail) the recipients filled in.
fn edit_form(c: &ChannelView) -> ChannelForm {
    ChannelForm {
        name: c.name.clone(),
        kind: c.kind.as_str().to_owned(),
        recipients: c.config["recipients"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default(),
        ..ChannelForm::default()
    }
}

pub async fn edit_channel(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
) -> Response {
    if !s.can_edit() {
        return super::page::forbidden(&s, "Your role does not allow this change.");
    }
    let c = match channel(&state, &s, &id).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    form_page(
        &s,
        Some(c.id),
        c.kind,
        edit_form(&c),
        stored_of(&c),
        FieldErrors::default(),
        StatusCode::OK,
    )
}

pub async fn update_channel(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<ChannelForm>,
) -> Response {
    if let Err(page) = guard(&s, &f.csrf, Role::Admin) {
        return page;
    }
    let c = match channel(&state, &s, &id).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let patch = ChannelPatch {
        name: Some(f.name.clone()),
        kind: None,
        config: Some(config_of(c.kind, &f, true)),
    };
    match app::channels::update(&state, s.tenant_id, c.id, &patch).await {
        Ok(_) => Redirect::to("/channels").into_response(),
        Err(AppError::Invalid(problems)) => {
            let mut errors = FieldErrors::default();
            note_problems(&mut errors, problems, &f);
            let f = ChannelForm {
                secret: String::new(),
                token: String::new(),
                routing_key: String::new(),
                ..f
            };
            form_page(
                &s,
                Some(c.id),
                c.kind,
                f,
                stored_of(&c),
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(AppError::NotFound) => not_found(&s),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    /// `yes` once the operator confirmed; otherwise the page asks first.
    #[serde(default)]
    confirm: String,
}

/// Asks for a confirmation, then deletes. A delete the use case refuses (the channel is an
/// enabled license's only target) shows why on the list.
pub async fn delete_channel(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<DeleteForm>,
) -> Response {
    if let Err(page) = guard(&s, &f.csrf, Role::Admin) {
        return page;
    }
    let c = match channel(&state, &s, &id).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    if f.confirm != "yes" {
        let confirm = ConfirmDelete {
            id: c.id,
            name: c.name,
        };
        return render_list(&state, &s, None, StatusCode::OK, None, Some(confirm), None).await;
    }
    match app::channels::delete(&state, s.tenant_id, c.id).await {
        Ok(()) => Redirect::to("/channels").into_response(),
        Err(AppError::NotFound) => not_found(&s),
        Err(AppError::Conflict { detail, .. }) => {
            let why = format!("“{}” was not deleted: {detail}", c.name);
            render_list(
                &state,
                &s,
                None,
                StatusCode::CONFLICT,
                None,
                None,
                Some(why),
            )
            .await
        }
        Err(e) => failure(e),
    }
}

/// Sends a test and shows its outcome above the list.
pub async fn test_channel(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(page) = guard(&s, &f.csrf, Role::Admin) {
        return page;
    }
    let c = match channel(&state, &s, &id).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let (status, shown) = match app::channels::test(&state, s.tenant_id, c.id).await {
        Ok(r) => (StatusCode::OK, shown(&c.name, &r)),
        Err(AppError::TooManyRequests(wait)) => (
            StatusCode::TOO_MANY_REQUESTS,
            TestShown {
                channel: c.name,
                ok: false,
                text: format!(
                    "not sent: too many tests from this organisation; try again in {} s",
                    wait.as_secs().max(1)
                ),
            },
        ),
        Err(AppError::NotFound) => return not_found(&s),
        Err(e) => return failure(e),
    };
    render_list(&state, &s, None, status, Some(shown), None, None).await
}

fn shown(name: &str, r: &ChannelTestResult) -> TestShown {
    let text = match r.outcome {
        ChannelTestOutcome::Delivered => match r.status {
            Some(code) => format!("delivered (HTTP {code})"),
            None => "delivered".to_owned(),
        },
        ChannelTestOutcome::Retry => format!(
            "not delivered, a temporary failure (alerts would be retried): {}",
            r.error.as_deref().unwrap_or("no detail")
        ),
        ChannelTestOutcome::Failed => format!(
            "not delivered: {}",
            r.error.as_deref().unwrap_or("no detail")
        ),
    };
    TestShown {
        channel: name.to_owned(),
        ok: r.outcome == ChannelTestOutcome::Delivered,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_land_next_to_the_field_they_name() {
        assert_eq!(field_of("/name"), "name");
        assert_eq!(field_of("/config/recipients/2"), "recipients");
        assert_eq!(field_of("/config/webhook_url"), "webhook_url");
        assert_eq!(field_of("/config"), "form");
        assert_eq!(field_of(""), "form");
        let f = ChannelForm {
            recipients: "a@x.test, nope".to_owned(),
            ..ChannelForm::default()
        };
        let mut errors = FieldErrors::default();
        note_problems(
            &mut errors,
            vec![FieldError::new("/config/recipients/1", "is not an address")],
            &f,
        );
        assert_eq!(errors.get("recipients"), Some("nope: is not an address"));
    }

    #[test]
    fn an_edit_leaves_out_the_secrets_not_typed_again() {
        let f = ChannelForm {
            url: "https://a.example/x".to_owned(),
            ..ChannelForm::default()
        };
        assert_eq!(
            config_of(ChannelKind::Webhook, &f, true),
            json!({"url": "https://a.example/x"})
        );
        assert_eq!(
            config_of(ChannelKind::Webhook, &ChannelForm::default(), false),
            json!({"url": ""})
        );
        let remove = ChannelForm {
            remove_secret: "on".to_owned(),
            ..ChannelForm::default()
        };
        assert_eq!(
            config_of(ChannelKind::Ntfy, &remove, true),
            json!({"token": null})
        );
    }
}
