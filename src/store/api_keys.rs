use super::TenantRow;
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

impl TenantRow for ApiKey {
    const TABLE: &'static str = "api_keys";
    const COLUMNS: &'static str = "id, name, role, prefix, created_at, last_used_at, revoked_at";
}

pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    name: &str,
    role: Role,
    secret: &NewToken,
    created_by: Option<Uuid>,
) -> Result<ApiKey, sqlx::Error> {
    sqlx::query_as(super::returning::<ApiKey>(
        "INSERT INTO api_keys (tenant_id, id, name, role, secret_hash, prefix, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    ))
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
