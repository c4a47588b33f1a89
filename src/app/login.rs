//! Logging in with e-mail and password: one function for the JSON API (`POST /auth/token`) and
//! the web UI's login form, so both apply the same rate limits, spend the same time on unknown
//! addresses, refuse suspended tenants and record `last_login_at`. Changing a password goes
//! through the same limiter.

use super::AppState;
use crate::{
    auth::password,
    db,
    domain::{EmailAddress, Password, Role},
    store::users,
};
use std::{net::IpAddr, time::Duration, time::Instant};
use uuid::Uuid;

/// Who logged in. The adapter turns it into its credential (an access token or a session).
#[derive(Debug, Clone, Copy)]
pub struct LoggedIn {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub role: Role,
    pub token_version: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown address or wrong password: the two are indistinguishable on purpose.
    #[error("invalid e-mail address or password")]
    BadCredentials,
    /// Past the per-account or per-address limit; retry after the duration.
    #[error("too many login attempts")]
    TooManyAttempts(Duration),
    #[error("the tenant is suspended")]
    Suspended,
    #[error(transparent)]
    Failed(#[from] super::AppError),
}

impl From<sqlx::Error> for LoginError {
    fn from(err: sqlx::Error) -> Self {
        Self::Failed(err.into())
    }
}

/// Checks the e-mail address and password. The address is taken as typed: one that does not
/// parse is simply a wrong login (the JSON API reports its format before calling this).
///
/// No database connection is held while argon2 runs: a burst of logins must not empty the pool
/// that heartbeats and status reads need.
pub async fn login(
    state: &AppState,
    email: &str,
    password: String,
    client: Option<IpAddr>,
) -> Result<LoggedIn, LoginError> {
    let Ok(email) = EmailAddress::parse(email) else {
        return Err(LoginError::BadCredentials);
    };
    let account = email.as_str();
    // Counts as in flight until it ends, so parallel guesses cannot outrun the limit.
    let attempt = state
        .login_limiter
        .begin(account, client, Instant::now())
        .map_err(LoginError::TooManyAttempts)?;
    let record = {
        let mut conn = state.pool.acquire().await?;
        users::find_login(&mut conn, account).await?
    };
    let ok = password::verify(password, record.as_ref().map(|r| r.password_hash.clone()))
        .await
        .map_err(super::AppError::Internal)?;
    let Some(record) = record.filter(|_| ok) else {
        attempt.failed(Instant::now());
        tracing::info!(email = %email.masked(), "login failed");
        return Err(LoginError::BadCredentials);
    };
    attempt.succeeded();
    if record.suspended_at.is_some() {
        return Err(LoginError::Suspended);
    }
    let mut conn = state.pool.acquire().await?;
    users::record_login(&mut conn, record.tenant_id, record.id).await?;
    Ok(LoggedIn {
        user_id: record.id,
        tenant_id: record.tenant_id,
        role: record.role,
        token_version: record.token_version,
    })
}

/// Why a password change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("the current password is wrong")]
    WrongCurrent,
    #[error("too many attempts")]
    TooManyAttempts(Duration),
    #[error(transparent)]
    Failed(#[from] super::AppError),
}

impl From<sqlx::Error> for PasswordChangeError {
    fn from(err: sqlx::Error) -> Self {
        Self::Failed(err.into())
    }
}

/// Changes a user's password after checking the current one. Guesses of the current password
/// go through the login limiter like logins (per user and per client address), and no
/// database connection is held while argon2 runs.
pub async fn change_password(
    state: &AppState,
    tenant_id: Uuid,
    user_id: Uuid,
    current: String,
    new: &Password,
    client: Option<IpAddr>,
) -> Result<(), PasswordChangeError> {
    let account = format!("user:{user_id}");
    let attempt = state
        .login_limiter
        .begin(&account, client, Instant::now())
        .map_err(PasswordChangeError::TooManyAttempts)?;
    let stored = {
        let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
        let stored = users::password_hash(&mut tx, tenant_id, user_id).await?;
        tx.commit().await?;
        stored.ok_or(super::AppError::NotFound)?
    };
    let ok = password::verify(current, Some(stored))
        .await
        .map_err(super::AppError::Internal)?;
    if !ok {
        attempt.failed(Instant::now());
        return Err(PasswordChangeError::WrongCurrent);
    }
    attempt.succeeded();
    let hash = password::hash(new.expose().to_owned())
        .await
        .map_err(super::AppError::Internal)?;
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    users::update(&mut tx, tenant_id, user_id, None, Some(&hash)).await?;
    tx.commit().await?;
    Ok(())
}
