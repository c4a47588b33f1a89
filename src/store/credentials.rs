//! Looking up credentials before their tenant is known: by the SHA-256 of an opaque token, or by
//! the ids in a verified JWT. These run on the connecting role (no row-level security), which is
//! why each is a single narrow query here and nowhere else.

use crate::domain::Role;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// The user a verified access token or session names, with what every request checks.
#[derive(Debug, sqlx::FromRow)]
pub struct TokenUser {
    pub role: Role,
    pub token_version: i32,
    pub email: String,
    pub tenant_name: String,
    pub timezone: String,
    pub suspended_at: Option<DateTime<Utc>>,
}

pub async fn token_user(
    pool: &PgPool,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<Option<TokenUser>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.role, u.token_version, u.email, t.name AS tenant_name, t.timezone, t.suspended_at
         FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.tenant_id = $1 AND u.id = $2",
    )
    .bind(tenant_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await
}

/// An unrevoked API key, by the hash of its secret.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyCredential {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub role: Role,
    pub last_used_at: Option<DateTime<Utc>>,
    pub suspended_at: Option<DateTime<Utc>>,
}

pub async fn api_key(pool: &PgPool, hash: &[u8]) -> Result<Option<KeyCredential>, sqlx::Error> {
    sqlx::query_as(
        "SELECT k.tenant_id, k.id, k.role, k.last_used_at, t.suspended_at
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
         WHERE k.secret_hash = $1 AND k.revoked_at IS NULL",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await
}

/// Marks the key as used now.
pub async fn touch_api_key(pool: &PgPool, tenant_id: Uuid, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_keys SET last_used_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Whether an unrevoked agent token has this hash.
pub async fn agent_token_exists(pool: &PgPool, hash: &[u8]) -> Result<bool, sqlx::Error> {
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM agent_tokens WHERE secret_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    Ok(found.is_some())
}

/// An unrevoked agent token, by the hash of its secret, with its license's check interval.
#[derive(Debug, sqlx::FromRow)]
pub struct AgentCredential {
    pub tenant_id: Uuid,
    pub license_id: Uuid,
    pub id: Uuid,
    pub last_used_at: Option<DateTime<Utc>>,
    pub suspended_at: Option<DateTime<Utc>>,
    pub check_interval_seconds: i32,
}

pub async fn agent_token(
    pool: &PgPool,
    hash: &[u8],
) -> Result<Option<AgentCredential>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.tenant_id, a.license_id, a.id, a.last_used_at, t.suspended_at, l.check_interval_seconds
         FROM agent_tokens a
         JOIN licenses l ON l.tenant_id = a.tenant_id AND l.id = a.license_id
         JOIN tenants t ON t.id = a.tenant_id
         WHERE a.secret_hash = $1 AND a.revoked_at IS NULL",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await
}

/// The channel on which the triggers of migration `agent_token_invalidation` announce every
/// change that can make a cached agent token wrong (`ingest::token_cache`).
pub const AGENT_TOKEN_CHANNEL: &str = "streamwatch_agent_tokens";

/// Sends `payload` on [`AGENT_TOKEN_CHANNEL`]: the token cache's listeners send themselves
/// probes this way, to check that notifications reach them.
pub async fn notify_agent_tokens(pool: &PgPool, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(AGENT_TOKEN_CHANNEL)
        .bind(payload)
        .execute(pool)
        .await?;
    Ok(())
}

/// Marks the agent token as used now, unless it was marked in the last minute: each replica's
/// cache decides on its own when to mark a token, and this keeps the writes at one a minute per
/// token however many replicas there are (a skipped row is read, not written).
pub async fn touch_agent_token(
    pool: &PgPool,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE agent_tokens SET last_used_at = now()
         WHERE tenant_id = $1 AND id = $2
           AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')",
    )
    .bind(tenant_id)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}
