//! API keys (`swk_...`): long-lived credentials for scripts, with the admin or viewer role.
//!
//! Managing keys needs a person (an admin or owner's access token): a leaked key must not be
//! able to mint more keys.

use super::{
    admin::PageParams,
    auth::AuthUser,
    error::{ApiResult, Problem},
    extract::{ApiJson, ApiPath, ApiQuery, Validation},
};
use crate::app::AppError;
use crate::app::{AppState, pagination};
use crate::{
    auth::token::{self, TokenKind},
    db,
    domain::{DisplayName, Role},
    store::{
        self,
        api_keys::{self, ApiKey},
    },
};
use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    #[schema(example = "nightly export")]
    pub name: String,
    /// `admin` or `viewer`.
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The secret, shown this once. Only its hash is stored.
    #[schema(example = "swk_Ab3dEfGh...")]
    pub key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKey>,
    pub next_cursor: Option<String>,
}

/// Lists the tenant's API keys (revoked ones included, with `revoked_at`).
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", security(("bearer" = [])), params(PageParams), responses(
    (status = 200, description = "One page of API keys", body = ApiKeyList),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
))]
async fn list_keys(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<ApiKeyList>> {
    auth.require(Role::Admin)?;
    let mut v = Validation::new();
    let limit = pagination::parse_limit(&mut v, q.limit.as_deref());
    let after = pagination::parse_cursor(&mut v, q.cursor.as_deref(), "id");
    v.finish()?;
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    let rows = store::list::<ApiKey>(&mut tx, auth.tenant_id, after.map(|c| c.id), limit).await?;
    tx.commit().await?;
    let (items, next_cursor) = pagination::page(rows, limit, "id", |k| (String::new(), k.id));
    Ok(Json(ApiKeyList { items, next_cursor }))
}

/// Creates an API key. The secret is in the response once and never again.
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", security(("bearer" = [])), request_body = CreateApiKey, responses(
    (status = 201, description = "Created; keep `key` now", body = CreatedApiKey),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner, or the caller is an API key", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
))]
async fn create_key(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    auth.require(Role::Admin)?;
    let user_id = auth.require_user()?;
    let mut v = Validation::new();
    let name = v.check("/name", body.name.as_str(), DisplayName::parse);
    if body.role == Role::Owner {
        v.push("/role", "an API key's role is 'admin' or 'viewer'");
    }
    v.finish()?;
    let Some(name) = name else {
        return Err(AppError::invalid("/name", "is required").into());
    };
    let secret = token::generate(TokenKind::ApiKey);
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    let api_key = api_keys::insert(
        &mut tx,
        auth.tenant_id,
        name.as_str(),
        body.role,
        &secret,
        Some(user_id),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            api_key,
            key: secret.plain,
        }),
    ))
}

/// Revokes an API key at once. Revoking a revoked key is harmless.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys", security(("bearer" = [])), params(("id" = Uuid, Path, description = "API key id")), responses(
    (status = 204, description = "Revoked"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not an admin or owner, or the caller is an API key", body = Problem, content_type = "application/problem+json"),
    (status = 404, description = "No such key in this tenant", body = Problem, content_type = "application/problem+json"),
))]
async fn revoke_key(
    auth: AuthUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    auth.require(Role::Admin)?;
    auth.require_user()?;
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    if !api_keys::revoke(&mut tx, auth.tenant_id, id).await? {
        return Err(AppError::NotFound.into());
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
