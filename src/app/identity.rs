//! Who is calling: the user behind a verified access token or UI session. One lookup for the
//! JSON API's extractor and the web UI's session, so that a deleted user, a bumped token
//! version (password change, "log out everywhere") and a suspended tenant act the same on both.

use super::{AppError, AppState};
use crate::{auth::jwt::Claims, domain::Role, store::credentials};
use uuid::Uuid;

/// The user a token names, as stored now.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// The role as stored now (not as it was when the token was issued): a demotion takes
    /// effect on the next request.
    pub role: Role,
    pub email: String,
    pub tenant_name: String,
    /// The tenant's IANA time zone, for displays.
    pub timezone: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("the token's user no longer exists")]
    UserGone,
    #[error("the token was revoked")]
    Revoked,
    #[error("the tenant is suspended")]
    Suspended,
    #[error(transparent)]
    Failed(#[from] AppError),
}

/// The user behind verified `claims`, if the token is still good.
pub async fn current_user(state: &AppState, claims: &Claims) -> Result<CurrentUser, IdentityError> {
    let row = credentials::token_user(&state.pool, claims.tid, claims.sub)
        .await
        .map_err(AppError::from)?
        .ok_or(IdentityError::UserGone)?;
    if row.token_version != claims.ver {
        return Err(IdentityError::Revoked);
    }
    if row.suspended_at.is_some() {
        return Err(IdentityError::Suspended);
    }
    Ok(CurrentUser {
        tenant_id: claims.tid,
        user_id: claims.sub,
        role: row.role,
        email: row.email,
        tenant_name: row.tenant_name,
        timezone: row.timezone,
    })
}
