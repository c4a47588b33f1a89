//! Licenses: the create and edit form (with the license's tags), delete, and the license's agent tokens (created with
//! the agent's config snippet, shown once).

use super::{
    form::{self, FieldErrors, FormInput, Rejected},
    page::{
        CsrfForm, Nav, failure, forbidden, license_row, license_to_change, not_found, with_tenant,
    },
    session::UiSession,
};
use crate::{
    app::{self, AppError, AppState},
    auth::token::{self, TokenKind},
    domain::{CheckInterval, DisplayName, LicenseKey, LicenseKind, Role, quiet},
    store::{
        self, agent_tokens,
        licenses::{LicensePatch, LicenseRow, NewLicense},
    },
};
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use uuid::Uuid;

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
    /// Comma-separated.
    pub tags: String,
    pub errors: FieldErrors,
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
        tags: String::new(),
        errors: FieldErrors::default(),
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
            tags: l.tags.join(", "),
            errors: FieldErrors::default(),
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
    /// Comma-separated; missing (a form from before tags) means none.
    #[serde(default)]
    tags: String,
}

/// The tags typed into the form: comma-separated, checked by the domain's rules (sorted,
/// duplicates dropped). The message names the first bad tag.
fn parse_tags(raw: &str) -> Result<Vec<String>, String> {
    let typed: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    quiet::parse_tags(&typed).map_err(|problems| {
        problems
            .into_iter()
            .next()
            .map(|(_, message)| message)
            .unwrap_or_default()
    })
}

impl FormInput for LicenseForm {
    type Value = NewLicense;

    fn csrf(&self) -> &str {
        &self.csrf
    }

    fn fields(&self, errors: &mut FieldErrors) -> Option<NewLicense> {
        let key = errors.check("key", LicenseKey::parse(self.key.trim()));
        let name = errors.check("name", DisplayName::parse(&self.name));
        let kind = errors.check("kind", LicenseKind::parse(&self.kind));
        let minutes = self
            .check_minutes
            .trim()
            .parse::<i64>()
            .map_err(|_| "must be a whole number of minutes".to_owned())
            .and_then(|m| {
                CheckInterval::from_seconds(m * 60)
                    .map_err(|_| "must be between 1 and 1440 minutes (24 h)".to_owned())
            });
        let interval = errors.check("check_minutes", minutes);
        let tags = errors.check("tags", parse_tags(&self.tags));
        Some(NewLicense {
            key: key?,
            name: name?,
            kind: kind?,
            check_interval: interval?,
            tags: tags?,
        })
    }
}

/// The database's answer to a key another license of the tenant has.
fn key_taken() -> FieldErrors {
    FieldErrors::one("key", "a license with this key already exists")
}

fn license_form_again(
    s: &UiSession,
    id: Option<Uuid>,
    f: LicenseForm,
    errors: FieldErrors,
) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        LicenseFormPage {
            nav: Some(Nav::new(s, "monitoring")),
            id,
            key: f.key,
            name: f.name,
            kind: f.kind,
            check_minutes: f.check_minutes,
            tags: f.tags,
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
    let new = match form::submit(&s, Role::Admin, &f) {
        Ok(new) => new,
        Err(Rejected::Refused(page)) => return page,
        Err(Rejected::Invalid(errors)) => return license_form_again(&s, None, f, errors),
    };
    match app::licenses::create(&state, s.tenant_id, &new).await {
        Ok(license) => Redirect::to(&format!("/licenses/{}", license.id)).into_response(),
        Err(AppError::Conflict { .. }) => license_form_again(&s, None, f, key_taken()),
        Err(e) => failure(e),
    }
}

pub async fn update_license(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<LicenseForm>,
) -> Response {
    let license = match license_to_change(&state, &s, f.csrf(), Role::Admin, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let new = match form::parse(&f) {
        Ok(new) => new,
        Err(errors) => return license_form_again(&s, Some(license.id), f, errors),
    };
    let patch = LicensePatch {
        key: Some(new.key),
        name: Some(new.name),
        kind: Some(new.kind),
        check_interval: Some(new.check_interval),
        tags: Some(new.tags),
    };
    // Through the use case: new tags may put the license into a maintenance window or take it
    // out of one, which the notification sweep must look at again.
    match app::licenses::update(&state, s.tenant_id, license.id, &patch).await {
        Ok(_) => Redirect::to(&format!("/licenses/{}", license.id)).into_response(),
        Err(AppError::Conflict { .. }) => license_form_again(&s, Some(license.id), f, key_taken()),
        // Deleted meanwhile.
        Err(AppError::NotFound) => not_found(&s),
        Err(e) => failure(e),
    }
}

pub async fn delete_license(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let license = match license_to_change(&state, &s, &f.csrf, Role::Admin, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    // Already gone is as good as deleted.
    let result = with_tenant(&state, &s, async |tx| {
        store::delete::<LicenseRow>(tx, s.tenant_id, license.id).await?;
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
    let license = match license_to_change(&state, &s, &f.csrf, Role::Admin, &id).await {
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
    let license = match license_to_change(&state, &s, &f.csrf, Role::Admin, &id).await {
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
