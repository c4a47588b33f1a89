use crate::auth::token::NewToken;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// An agent token as listed: never the secret. Several may be valid at once, so that a
/// rotation can roll out to the site before the old token is revoked.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct AgentToken {
    pub id: Uuid,
    pub license_id: Uuid,
    #[schema(example = "site box 2026-11")]
    pub name: String,
    #[schema(example = "swa_x7Yz0q")]
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, license_id, name, prefix, created_at, last_used_at, revoked_at";

pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
    name: &str,
    secret: &NewToken,
) -> Result<AgentToken, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO agent_tokens (tenant_id, id, license_id, name, secret_hash, prefix)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING {COLUMNS}"
    )))
    .bind(tenant_id)
    .bind(Uuid::now_v7())
    .bind(license_id)
    .bind(name)
    .bind(&secret.hash)
    .bind(&secret.display_prefix)
    .fetch_one(conn)
    .await
}

pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
) -> Result<Vec<AgentToken>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM agent_tokens WHERE tenant_id = $1 AND license_id = $2 ORDER BY id"
    )))
    .bind(tenant_id)
    .bind(license_id)
    .fetch_all(conn)
    .await
}

pub async fn revoke(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE agent_tokens SET revoked_at = COALESCE(revoked_at, now())
         WHERE tenant_id = $1 AND license_id = $2 AND id = $3",
    )
    .bind(tenant_id)
    .bind(license_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every token of the license that is not revoked yet.
pub async fn revoke_all(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE agent_tokens SET revoked_at = now()
         WHERE tenant_id = $1 AND license_id = $2 AND revoked_at IS NULL",
    )
    .bind(tenant_id)
    .bind(license_id)
    .execute(conn)
    .await?;
    Ok(())
}
