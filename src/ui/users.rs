//! The users of the organisation: the owner adds them, changes their role or deletes them;
//! the organisation always keeps an owner.

use super::{
    page::{CsrfForm, Errors, Nav, ago, failure, forbidden, guard, not_found, with_tenant},
    session::UiSession,
};
use crate::{
    accounts::{self, AccountError},
    domain::{EmailAddress, Password, Role},
    http::{AppState, error::ApiError},
    store::users,
};
use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use uuid::Uuid;

pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub last_login: String,
    pub is_me: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "users.html")]
pub struct UsersPage {
    pub nav: Option<Nav>,
    pub users: Vec<UserRow>,
    pub email: String,
    pub role: String,
    pub errors: Errors,
}

async fn users_page(
    state: &AppState,
    s: &UiSession,
    email: String,
    role: String,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let now = state.clock.now();
    let rows = with_tenant(state, s, async |tx| {
        users::list(tx, s.tenant_id, None, 500).await
    })
    .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let page = UsersPage {
        nav: Some(Nav::new(s, "users")),
        users: rows
            .into_iter()
            .map(|u| UserRow {
                id: u.id,
                is_me: u.id == s.user_id,
                email: u.email,
                role: u.role.as_str().to_owned(),
                last_login: ago(u.last_login_at, now),
            })
            .collect(),
        email,
        role,
        errors,
    };
    (status, page).into_response()
}

pub async fn users(State(state): State<AppState>, s: UiSession) -> Response {
    users_page(
        &state,
        &s,
        String::new(),
        "viewer".to_owned(),
        Errors::new(),
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub struct UserForm {
    /// Missing counts as wrong (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    email: String,
    password: String,
    role: String,
}

pub async fn create_user(
    State(state): State<AppState>,
    s: UiSession,
    Form(f): Form<UserForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Owner) {
        return r;
    }
    let mut errors = Errors::new();
    let email = EmailAddress::parse(&f.email)
        .map_err(|e| errors.insert("email".to_owned(), e))
        .ok();
    let password = Password::parse(&f.password)
        .map_err(|e| errors.insert("password".to_owned(), e))
        .ok();
    let role = Role::parse(&f.role)
        .map_err(|e| errors.insert("role".to_owned(), e))
        .ok();
    if let (Some(email), Some(password), Some(role)) = (email, password, role) {
        match accounts::create_user(&state.pool, s.tenant_id, &email, &password, role).await {
            Ok(_) => return Redirect::to("/users").into_response(),
            Err(AccountError::EmailTaken) => {
                errors.insert(
                    "email".to_owned(),
                    "this e-mail address already has an account".to_owned(),
                );
            }
            Err(AccountError::NoSuchTenant) => return not_found(&s),
            Err(AccountError::Database(e)) => return failure(e),
            Err(AccountError::Other(e)) => return failure(ApiError::Internal(e)),
        }
    }
    users_page(
        &state,
        &s,
        f.email,
        f.role,
        errors,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

#[derive(Deserialize)]
pub struct RoleForm {
    /// Missing counts as wrong (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    role: String,
}

/// What a change to a user may do: the tenant must keep an owner (like the API).
enum UserTarget {
    Missing,
    LastOwner,
    Changeable,
}

async fn user_target(
    tx: &mut sqlx::PgConnection,
    s: &UiSession,
    id: Uuid,
    new_role: Option<Role>,
) -> Result<UserTarget, sqlx::Error> {
    let Some(user) = users::get(tx, s.tenant_id, id).await? else {
        return Ok(UserTarget::Missing);
    };
    if user.role == Role::Owner
        && new_role != Some(Role::Owner)
        && users::lock_owner_count(tx, s.tenant_id).await? <= 1
    {
        return Ok(UserTarget::LastOwner);
    }
    Ok(UserTarget::Changeable)
}

fn user_change_result(s: &UiSession, result: Result<UserTarget, sqlx::Error>) -> Response {
    match result {
        Ok(UserTarget::Missing) => not_found(s),
        Ok(UserTarget::LastOwner) => forbidden(s, "The organisation must keep at least one owner."),
        Ok(UserTarget::Changeable) => Redirect::to("/users").into_response(),
        Err(e) => failure(e),
    }
}

pub async fn change_role(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<RoleForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Owner) {
        return r;
    }
    let (Ok(id), Ok(role)) = (id.parse::<Uuid>(), Role::parse(&f.role)) else {
        return not_found(&s);
    };
    let result = with_tenant(&state, &s, async |tx| {
        let target = user_target(tx, &s, id, Some(role)).await?;
        if let UserTarget::Changeable = target {
            users::update(tx, s.tenant_id, id, Some(role), None).await?;
        }
        Ok(target)
    })
    .await;
    user_change_result(&s, result)
}

pub async fn delete_user(
    State(state): State<AppState>,
    s: UiSession,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&s, &f.csrf, Role::Owner) {
        return r;
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&s);
    };
    let result = with_tenant(&state, &s, async |tx| {
        let target = user_target(tx, &s, id, None).await?;
        if let UserTarget::Changeable = target {
            users::delete(tx, s.tenant_id, id).await?;
        }
        Ok(target)
    })
    .await;
    user_change_result(&s, result)
}
