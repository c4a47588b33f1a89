//! Logging in (`POST /auth/token`), the current identity (`/me`), password change and
//! "log out everywhere".

use super::{
    auth::{AuthUser, Principal},
    error::{ApiResult, Problem},
    extract::{ApiJson, ClientAddr, Validation},
};
use crate::app::{AppError, AppState};
use crate::{
    app::login::{self, LoginError, PasswordChangeError},
    db,
    domain::{EmailAddress, Password, Role},
    store::{
        self,
        api_keys::ApiKey,
        tenants::{self, Tenant},
        users::{self, User},
    },
};
use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue_token))
        .routes(routes!(logout_everywhere))
        .routes(routes!(me))
        .routes(routes!(change_password))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[schema(example = "ops@acme.test")]
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the token expires (at most 3600).
    #[schema(example = 3600)]
    pub expires_in: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub tenant: Tenant,
    /// The role in force for this credential.
    pub role: Role,
    /// Set when the credential is a user's access token.
    pub user: Option<User>,
    /// Set when the credential is an API key.
    pub api_key: Option<ApiKey>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    /// 10..1024 characters.
    pub new_password: String,
}

const BAD_LOGIN: &str = "invalid e-mail address or password";

/// Exchanges e-mail and password for a JWT access token.
///
/// Rate limited per account (failed attempts) and per client address (all attempts): past
/// the limit the answer is 429 with `Retry-After`, even for the right password.
#[utoipa::path(post, path = "/auth/token", tag = "auth", request_body = TokenRequest, responses(
    (status = 200, description = "Logged in", body = TokenResponse),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Wrong e-mail address or password", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "The tenant is suspended", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Too many attempts; see Retry-After", body = Problem, content_type = "application/problem+json"),
))]
async fn issue_token(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(body): ApiJson<TokenRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let mut v = Validation::new();
    v.check("/email", body.email.as_str(), EmailAddress::parse);
    if body.password.is_empty() {
        v.push("/password", "must not be empty");
    }
    v.finish()?;
    let who = login::login(&state, &body.email, body.password, addr)
        .await
        .map_err(|e| match e {
            LoginError::BadCredentials => AppError::Unauthorized(BAD_LOGIN),
            LoginError::TooManyAttempts(wait) => AppError::TooManyRequests(wait),
            LoginError::Suspended => AppError::Forbidden("this tenant is suspended"),
            LoginError::Failed(e) => e,
        })?;
    let now = chrono::Utc::now().timestamp();
    let access_token =
        state
            .jwt
            .issue(who.user_id, who.tenant_id, who.role, who.token_version, now)?;
    Ok(Json(TokenResponse {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: state.jwt.ttl_seconds,
    }))
}

/// Revokes every access token of the calling user ("log out everywhere").
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth", security(("bearer" = [])), responses(
    (status = 204, description = "Every access token issued so far is revoked"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "An API key cannot log out", body = Problem, content_type = "application/problem+json"),
))]
async fn logout_everywhere(auth: AuthUser, State(state): State<AppState>) -> ApiResult<StatusCode> {
    let user_id = auth.require_user()?;
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    users::bump_token_version(&mut tx, auth.tenant_id, user_id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The calling identity: its tenant, role, and user or API key.
#[utoipa::path(get, path = "/me", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, description = "The current identity", body = Me),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "Not a tenant credential, or the tenant is suspended", body = Problem, content_type = "application/problem+json"),
))]
async fn me(auth: AuthUser, State(state): State<AppState>) -> ApiResult<Json<Me>> {
    let mut tx = db::begin_tenant(&state.pool, auth.tenant_id).await?;
    let tenant = tenants::get(&mut tx, auth.tenant_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let (user, api_key) = match auth.principal {
        Principal::User(id) => (store::get::<User>(&mut tx, auth.tenant_id, id).await?, None),
        Principal::ApiKey(id) => (
            None,
            store::get::<ApiKey>(&mut tx, auth.tenant_id, id).await?,
        ),
    };
    tx.commit().await?;
    Ok(Json(Me {
        tenant,
        role: auth.role,
        user,
        api_key,
    }))
}

/// Changes the caller's password. Every access token issued before stops working, including
/// the one used for this request.
#[utoipa::path(put, path = "/me/password", tag = "auth", security(("bearer" = [])), request_body = ChangePassword, responses(
    (status = 204, description = "Changed; log in again"),
    (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
    (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
    (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    (status = 403, description = "An API key has no password", body = Problem, content_type = "application/problem+json"),
    (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    (status = 422, description = "Invalid fields, or the current password is wrong", body = Problem, content_type = "application/problem+json"),
    (status = 429, description = "Too many wrong current passwords (the login limits); see Retry-After", body = Problem, content_type = "application/problem+json"),
))]
async fn change_password(
    auth: AuthUser,
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(body): ApiJson<ChangePassword>,
) -> ApiResult<StatusCode> {
    let user_id = auth.require_user()?;
    let mut v = Validation::new();
    let new = v.check("/new_password", body.new_password.as_str(), Password::parse);
    v.finish()?;
    let Some(new) = new else {
        return Err(AppError::invalid("/new_password", "is required").into());
    };

    login::change_password(
        &state,
        auth.tenant_id,
        user_id,
        body.current_password,
        &new,
        addr,
    )
    .await
    .map_err(|e| match e {
        PasswordChangeError::WrongCurrent => {
            AppError::invalid("/current_password", "is not the current password")
        }
        PasswordChangeError::TooManyAttempts(wait) => AppError::TooManyRequests(wait),
        PasswordChangeError::Failed(e) => e,
    })?;
    Ok(StatusCode::NO_CONTENT)
}
