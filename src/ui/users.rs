//! The users of the organisation: the owner adds them, changes their role or deletes them;
//! the organisation always keeps an owner.

use super::{
    form::{self, FieldErrors, FormInput, Rejected},
    page::{CsrfForm, Nav, ago, failure, forbidden, guard, not_found, with_tenant},
    session::UiSession,
};
use crate::{
    accounts::{self, AccountError},
    app::{AppError, AppState},
    domain::{EmailAddress, Password, Role},
    store::{
        self,
        users::{self, User},
    },
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
    pub errors: FieldErrors,
}

async fn users_page(
    state: &AppState,
    s: &UiSession,
    email: String,
    role: String,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let now = state.clock.now();
    let rows = with_tenant(state, s, async |tx| {
        store::list::<User>(tx, s.tenant_id, None, 500).await
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
        FieldErrors::default(),
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

/// A new user, as the form's fields parse.
pub struct NewUser {
    email: EmailAddress,
    password: Password,
    role: Role,
}

impl FormInput for UserForm {
    type Value = NewUser;

    fn csrf(&self) -> &str {
        &self.csrf
    }

    fn fields(&self, errors: &mut FieldErrors) -> Option<NewUser> {
        let email = errors.check("email", EmailAddress::parse(&self.email));
        let password = errors.check("password", Password::parse(&self.password));
        let role = errors.check("role", Role::parse(&self.role));
        Some(NewUser {
            email: email?,
            password: password?,
            role: role?,
        })
    }
}

/// The users page with the new-user form as typed and its messages (422).
async fn user_form_again(
    state: &AppState,
    s: &UiSession,
    f: UserForm,
    errors: FieldErrors,
) -> Response {
    users_page(
        state,
        s,
        f.email,
        f.role,
        errors,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

pub async fn create_user(
    State(state): State<AppState>,
    s: UiSession,
    Form(f): Form<UserForm>,
) -> Response {
    let new = match form::submit(&s, Role::Owner, &f) {
        Ok(new) => new,
        Err(Rejected::Refused(page)) => return page,
        Err(Rejected::Invalid(errors)) => return user_form_again(&state, &s, f, errors).await,
    };
    match accounts::create_user(
        &state.pool,
        s.tenant_id,
        &new.email,
        &new.password,
        new.role,
    )
    .await
    {
        Ok(_) => Redirect::to("/users").into_response(),
        Err(AccountError::EmailTaken) => {
            let taken = FieldErrors::one("email", "this e-mail address already has an account");
            user_form_again(&state, &s, f, taken).await
        }
        Err(AccountError::NoSuchTenant) => not_found(&s),
        Err(AccountError::Database(e)) => failure(e),
        Err(AccountError::Other(e)) => failure(AppError::Internal(e)),
    }
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
    let Some(user) = store::get::<User>(tx, s.tenant_id, id).await? else {
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
            store::delete::<User>(tx, s.tenant_id, id).await?;
        }
        Ok(target)
    })
    .await;
    user_change_result(&s, result)
}
