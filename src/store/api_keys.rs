use crate::{auth::token::NewToken, domain::Role};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// An API key as listed: never the secret, only its first characters.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    #[schema(example = "nightly export")]
    pub name: String,
    pub role: Role,
    /// The first characters of the key, to tell keys apart.
    #[schema(example = "swk_Ab3dEf")]
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    name: &str,
    role: Role,
    secret: &NewToken,
    created_by: Option<Uuid>,
) -> Result<ApiKey, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO api_keys (tenant_id, id, name, role, secret_hash, prefix, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, name, role, prefix, created_at, last_used_at, revoked_at",
    )
    .bind(tenant_id)
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(role)
    .bind(&secret.hash)
    .bind(&secret.display_prefix)
    .bind(created_by)
    .fetch_one(conn)
    .await
}

pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ApiKey>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, role, prefix, created_at, last_used_at, revoked_at FROM api_keys
         WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
    )
    .bind(tenant_id)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(conn)
    .await
}

pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, role, prefix, created_at, last_used_at, revoked_at FROM api_keys WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Revokes a key; revoking twice keeps the first time. `false` if there is no such key.
pub async fn revoke(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
