//! Authentication as extractors (SPEC section 2).
//!
//! * [`AuthUser`]: a tenant user (JWT access token) or an API key (`swk_...`). The tenant comes
//!   from the credential, never from the path or body.
//! * [`PlatformAdmin`]: the platform admin token from configuration.
//!
//! Agent tokens (`swa_...`) authenticate only heartbeat ingest; everywhere else they are
//! verified and then refused with 403, and the admin token is refused on tenant routes.

use super::{
    AppState,
    error::{ApiError, ApiResult},
};
use crate::{
    auth::token::{self, TokenKind},
    domain::Role,
};
use axum::{extract::FromRequestParts, http::request::Parts};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use uuid::Uuid;

/// Who made a tenant request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    User(Uuid),
    ApiKey(Uuid),
}

/// An authenticated tenant user or API key.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub tenant_id: Uuid,
    /// The role as stored now (not as it was when a token was issued): a demotion takes
    /// effect on the next request.
    pub role: Role,
    pub principal: Principal,
}

impl AuthUser {
    /// 403 unless the caller's role is at least `required`.
    pub fn require(&self, required: Role) -> ApiResult<()> {
        if self.role.at_least(required) {
            return Ok(());
        }
        Err(ApiError::Forbidden(match required {
            Role::Owner => "this action needs the owner role",
            Role::Admin => "this action needs the admin or owner role",
            Role::Viewer => "this action needs a tenant role",
        }))
    }

    /// The user behind the request; 403 for API keys (for actions only people may take).
    pub fn require_user(&self) -> ApiResult<Uuid> {
        match self.principal {
            Principal::User(id) => Ok(id),
            Principal::ApiKey(_) => Err(ApiError::Forbidden(
                "this action needs a user's access token, not an API key",
            )),
        }
    }
}

/// The raw Bearer credential, or 401.
pub fn bearer(parts: &Parts) -> ApiResult<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized(
            "missing 'Authorization: Bearer' credential",
        ))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header"))?;
    let (scheme, credential) = value
        .split_once(' ')
        .ok_or(ApiError::Unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || credential.trim().is_empty() {
        return Err(ApiError::Unauthorized(
            "the Authorization header must use the Bearer scheme",
        ));
    }
    Ok(credential.trim())
}

fn is_admin_token(state: &AppState, credential: &str) -> bool {
    state.admin_token.as_ref().is_some_and(|admin| {
        token::constant_time_eq(admin.expose_secret().as_bytes(), credential.as_bytes())
    })
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let credential = bearer(parts)?;
        let (auth, suspended) = match TokenKind::of(credential) {
            Some(TokenKind::ApiKey) => api_key(state, credential).await?,
            Some(TokenKind::Agent) => {
                return Err(if agent_token_exists(state, credential).await? {
                    ApiError::Forbidden("agent tokens may only be used for heartbeat ingest")
                } else {
                    ApiError::Unauthorized("invalid or revoked agent token")
                });
            }
            None if is_admin_token(state, credential) => {
                return Err(ApiError::Forbidden(
                    "the platform admin token has no tenant; use a tenant user's token",
                ));
            }
            None => access_token(state, credential).await?,
        };
        if suspended.is_some() {
            return Err(ApiError::Forbidden("this tenant is suspended"));
        }
        Ok(auth)
    }
}

async fn api_key(
    state: &AppState,
    credential: &str,
) -> ApiResult<(AuthUser, Option<DateTime<Utc>>)> {
    type Row = (
        Uuid,
        Uuid,
        Role,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT k.tenant_id, k.id, k.role, k.last_used_at, t.suspended_at
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
         WHERE k.secret_hash = $1 AND k.revoked_at IS NULL",
    )
    .bind(token::hash(credential))
    .fetch_optional(&state.pool)
    .await?;
    let (tenant_id, key_id, role, last_used_at, suspended) =
        row.ok_or(ApiError::Unauthorized("invalid or revoked API key"))?;
    // `last_used_at` is for people ("is this key still in use?"); minute precision is plenty
    // and spares a write on every request of a busy script.
    if last_used_at.is_none_or(|t| Utc::now() - t > chrono::Duration::seconds(60)) {
        sqlx::query("UPDATE api_keys SET last_used_at = now() WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(key_id)
            .execute(&state.pool)
            .await?;
    }
    Ok((
        AuthUser {
            tenant_id,
            role,
            principal: Principal::ApiKey(key_id),
        },
        suspended,
    ))
}

async fn agent_token_exists(state: &AppState, credential: &str) -> ApiResult<bool> {
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM agent_tokens WHERE secret_hash = $1 AND revoked_at IS NULL",
    )
    .bind(token::hash(credential))
    .fetch_optional(&state.pool)
    .await?;
    Ok(found.is_some())
}

async fn access_token(
    state: &AppState,
    credential: &str,
) -> ApiResult<(AuthUser, Option<DateTime<Utc>>)> {
    let claims = state.jwt.verify(credential).map_err(|e| {
        tracing::debug!(reason = %e, "access token refused");
        ApiError::Unauthorized("invalid or expired access token")
    })?;
    let row: Option<(Role, i32, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT u.role, u.token_version, t.suspended_at
         FROM users u JOIN tenants t ON t.id = u.tenant_id
         WHERE u.tenant_id = $1 AND u.id = $2",
    )
    .bind(claims.tid)
    .bind(claims.sub)
    .fetch_optional(&state.pool)
    .await?;
    let (role, version, suspended) =
        row.ok_or(ApiError::Unauthorized("the token's user no longer exists"))?;
    if version != claims.ver {
        return Err(ApiError::Unauthorized(
            "the access token was revoked; log in again",
        ));
    }
    Ok((
        AuthUser {
            tenant_id: claims.tid,
            role,
            principal: Principal::User(claims.sub),
        },
        suspended,
    ))
}

/// The platform operator, by the admin token of configuration. Without a configured token the
/// admin API does not exist (404).
#[derive(Debug, Clone, Copy)]
pub struct PlatformAdmin;

impl FromRequestParts<AppState> for PlatformAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.admin_token.is_none() {
            return Err(ApiError::NotFound);
        }
        let credential = bearer(parts)?;
        if is_admin_token(state, credential) {
            Ok(Self)
        } else {
            Err(ApiError::Unauthorized(
                "the admin API needs the platform admin token",
            ))
        }
    }
}
