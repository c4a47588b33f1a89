//! Users of the caller's tenant. Anyone in the tenant may read; only owners may change.

use super::{
    admin::PageParams,
    auth::AuthUser,
    error::{ApiResult, Problem},
    extract::{ApiJson, ApiPath, ApiQuery, Validation},
};
use crate::app::AppError;
use crate::app::{AppState, pagination};
use crate::{
    accounts,
    auth::password,
    db,
    domain::{EmailAddress, Password, Role},
    store::{
        self,
        users::{self, User},
    },
};
use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(example = "viewer@acme.test")]
    pub email: String,
    /// 10..1024 characters.
    pub password: String,
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub role: Option<Role>,
    /// A new password; it revokes the user's access tokens.
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<User>,
    pub next_cursor: Option<String>,
}

const LAST_OWNER: &str = "a tenant must keep at least one owner";

/// Lists the tenant's users, oldest first.
#[utoipa::path(get, path = "/users", tag = "users", security(("bearer" = [])), params(PageParams), responses(
    (status = 200, description = "One page of users", body = UserList),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
))]
async fn list_users(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<UserList>> {
    let mut v = Validation::new();
    let limit = pagination::parse_limit(&mut v, q.limit.as_deref());
    let after = pagination::parse_cursor(&mut v, q.cursor.as_deref(), "id");
    v.finish()?;
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    let rows = store::list::<User>(&mut tx, auth.tenant_id, after.map(|c| c.id), limit).await?;
    tx.commit().await?;
    let (items, next_cursor) = pagination::page(rows, limit, "id", |u| (String::new(), u.id));
    Ok(Json(UserList { items, next_cursor }))
}

/// Adds a user to the tenant (owner only).
#[utoipa::path(post, path = "/users", tag = "users", security(("bearer" = [])), request_body = CreateUser, responses(
    (status = 201, description = "Created", body = User),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an owner", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "The e-mail address already has an account", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
async fn create_user(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    auth.require(Role::Owner)?;
    let mut v = Validation::new();
    let email = v.check("/email", body.email.as_str(), EmailAddress::parse);
    let password = v.check("/password", body.password.as_str(), Password::parse);
    v.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(AppError::Internal(anyhow::anyhow!("validation passed without values")).into());
    };
    // A taken address maps to 409 at /email (`From<AccountError> for ApiError`).
    let user =
        accounts::create_user(&state.pool, auth.tenant_id, &email, &password, body.role).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Reads one user of the tenant.
#[utoipa::path(get, path = "/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path, description = "User id")), responses(
    (status = 200, description = "The user", body = User),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such user in this tenant", body = Problem, content_type = "application/problem+json"),
))]
async fn get_user(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<User>> {
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    let user = store::get::<User>(&mut tx, auth.tenant_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(Json(user))
}

/// Changes a user's role or password (owner only). The last owner cannot be demoted.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path, description = "User id")), request_body = UpdateUser, responses(
    (status = 200, description = "The updated user", body = User),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such user in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "It would leave the tenant without an owner", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
async fn update_user(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<Json<User>> {
    auth.require(Role::Owner)?;
    let mut v = Validation::new();
    let password = body
        .password
        .as_deref()
        .and_then(|p| v.check("/password", p, Password::parse));
    v.finish()?;
    let hash = match password {
        Some(p) => Some(password::hash(p.expose().to_owned()).await?),
        None => None,
    };
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    let current = store::get::<User>(&mut tx, auth.tenant_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if current.role == Role::Owner
        && body.role.is_some_and(|r| r != Role::Owner)
        && users::lock_owner_count(&mut tx, auth.tenant_id).await? <= 1
    {
        return Err(AppError::Conflict {
            detail: LAST_OWNER.to_owned(),
            pointer: "/role".to_owned(),
        }
        .into());
    }
    let user = users::update(&mut tx, auth.tenant_id, id, body.role, hash.as_deref())
        .await?
        .ok_or(AppError::NotFound)?;
    tx.commit().await?;
    Ok(Json(user))
}

/// Removes a user (owner only). The last owner cannot be removed.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path, description = "User id")), responses(
    (status = 204, description = "Deleted"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an owner", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such user in this tenant", body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "It would leave the tenant without an owner", body = Problem, content_type = "application/problem+json"),
))]
async fn delete_user(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    auth.require(Role::Owner)?;
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    let current = store::get::<User>(&mut tx, auth.tenant_id, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if current.role == Role::Owner && users::lock_owner_count(&mut tx, auth.tenant_id).await? <= 1 {
        return Err(AppError::Conflict {
            detail: LAST_OWNER.to_owned(),
            pointer: String::new(),
        }
        .into());
    }
    store::delete::<User>(&mut tx, auth.tenant_id, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
