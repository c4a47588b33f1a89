//! Authentication as extractors (SPEC section 2).
//!
//! * [`AuthUser`]: a tenant user (JWT access token) or an API key (`swk_...`). The tenant comes
//!   from the credential, never from the path or body.
//! * [`PlatformAdmin`]: the platform admin token from configuration.
//!
//! Agent tokens (`swa_...`) authenticate only heartbeat ingest; everywhere else they are
//! verified and then refused with 403, and the admin token is refused on tenant routes.

use super::error::{ApiError, ApiResult};
use crate::app::{AppError, AppState};
use crate::{
    app::identity::{self, IdentityError},
    auth::token::{self, TokenKind},
    domain::Role,
    store::credentials,
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
        Err(AppError::Forbidden(match required {
            Role::Owner => "this action needs the owner role",
            Role::Admin => "this action needs the admin or owner role",
            Role::Viewer => "this action needs a tenant role",
        })
        .into())
    }

    /// The user behind the request; 403 for API keys (for actions only people may take).
    pub fn require_user(&self) -> ApiResult<Uuid> {
        match self.principal {
            Principal::User(id) => Ok(id),
            Principal::ApiKey(_) => Err(AppError::Forbidden(
                "this action needs a user's access token, not an API key",
            )
            .into()),
        }
    }
}

/// The raw Bearer credential, or 401.
pub fn bearer(parts: &Parts) -> ApiResult<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(AppError::Unauthorized(
            "missing 'Authorization: Bearer' credential",
        ))?
        .to_str()
        .map_err(|_| AppError::Unauthorized("malformed Authorization header"))?;
    let (scheme, credential) = value
        .split_once(' ')
        .ok_or(AppError::Unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || credential.trim().is_empty() {
        return Err(
            AppError::Unauthorized("the Authorization header must use the Bearer scheme").into(),
        );
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
                    AppError::Forbidden("agent tokens may only be used for heartbeat ingest").into()
                } else {
                    AppError::Unauthorized("invalid or revoked agent token").into()
                });
            }
            None if is_admin_token(state, credential) => {
                return Err(AppError::Forbidden(
                    "the platform admin token has no tenant; use a tenant user's token",
                )
                .into());
            }
            None => access_token(state, credential).await?,
        };
        if suspended.is_some() {
            return Err(AppError::Forbidden("this tenant is suspended").into());
        }
        Ok(auth)
    }
}

async fn api_key(
    state: &AppState,
    credential: &str,
) -> ApiResult<(AuthUser, Option<DateTime<Utc>>)> {
    let key = credentials::api_key(&state.pool, &token::hash(credential))
        .await?
        .ok_or(AppError::Unauthorized("invalid or revoked API key"))?;
    // `last_used_at` is for people ("is this key still in use?"); minute precision is plenty
    // and spares a write on every request of a busy script.
    if key
        .last_used_at
        .is_none_or(|t| Utc::now() - t > chrono::Duration::seconds(60))
    {
        credentials::touch_api_key(&state.pool, key.tenant_id, key.id).await?;
    }
    Ok((
        AuthUser {
            tenant_id: key.tenant_id,
            role: key.role,
            principal: Principal::ApiKey(key.id),
        },
        key.suspended_at,
    ))
}

async fn agent_token_exists(state: &AppState, credential: &str) -> ApiResult<bool> {
    Ok(credentials::agent_token_exists(&state.pool, &token::hash(credential)).await?)
}

async fn access_token(
    state: &AppState,
    credential: &str,
) -> ApiResult<(AuthUser, Option<DateTime<Utc>>)> {
    let claims = state.jwt.verify(credential).map_err(|e| {
        tracing::debug!(reason = %e, "access token refused");
        AppError::Unauthorized("invalid or expired access token")
    })?;
    let user = identity::current_user(state, &claims)
        .await
        .map_err(|e| match e {
            IdentityError::UserGone => AppError::Unauthorized("the token's user no longer exists"),
            IdentityError::Revoked => {
                AppError::Unauthorized("the access token was revoked; log in again")
            }
            IdentityError::Suspended => AppError::Forbidden("this tenant is suspended"),
            IdentityError::Failed(e) => e,
        })?;
    Ok((
        AuthUser {
            tenant_id: user.tenant_id,
            role: user.role,
            principal: Principal::User(user.user_id),
        },
        None,
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
            return Err(AppError::NotFound.into());
        }
        let credential = bearer(parts)?;
        if is_admin_token(state, credential) {
            Ok(Self)
        } else {
            Err(AppError::Unauthorized("the admin API needs the platform admin token").into())
        }
    }
}
