//! API keys of the organisation: admins and owners create them (the secret is shown once) and
//! revoke them.

use super::{
    form::{self, FieldErrors, FormInput, Rejected},
    page::{CsrfForm, Nav, ago, failure, forbidden, guard, not_found, with_tenant},
    session::UiSession,
};
use crate::{
    app::AppState,
    auth::token::{self, TokenKind},
    domain::{DisplayName, Role},
    store::{
        self,
        api_keys::{self, ApiKey},
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
    pub errors: FieldErrors,
}

async fn keys_page(
    state: &AppState,
    s: &UiSession,
    created: Option<String>,
    name: String,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    if !s.can_edit() {
        return forbidden(s, "API keys are managed by admins and owners.");
    }
    let now = state.clock.now();
    let rows = with_tenant(state, s, async |tx| {
        store::list::<ApiKey>(tx, s.tenant_id, None, 500).await
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
        FieldErrors::default(),
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

/// A new API key, as the form's fields parse.
pub struct NewKey {
    name: DisplayName,
    role: Role,
}

impl FormInput for KeyForm {
    type Value = NewKey;

    fn csrf(&self) -> &str {
        &self.csrf
    }

    fn fields(&self, errors: &mut FieldErrors) -> Option<NewKey> {
        let name = errors.check("name", DisplayName::parse(&self.name));
        let role = match self.role.as_str() {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            _ => Err("choose admin or viewer"),
        };
        let role = errors.check("role", role);
        Some(NewKey {
            name: name?,
            role: role?,
        })
    }
}

pub async fn create_api_key(
    State(state): State<AppState>,
    s: UiSession,
    Form(f): Form<KeyForm>,
) -> Response {
    let NewKey { name, role } = match form::submit(&s, Role::Admin, &f) {
        Ok(new) => new,
        Err(Rejected::Refused(page)) => return page,
        Err(Rejected::Invalid(errors)) => {
            return keys_page(
                &state,
                &s,
                None,
                f.name,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
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
                FieldErrors::default(),
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
