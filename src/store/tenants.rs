use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Tenant {
    pub id: Uuid,
    #[schema(example = "Acme")]
    pub name: String,
    /// IANA time zone used for every display of time in this tenant.
    #[schema(example = "Europe/Berlin")]
    pub timezone: String,
    /// When the tenant was suspended; `null` while active.
    pub suspended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, timezone, suspended_at, created_at";

pub async fn insert(
    conn: &mut PgConnection,
    name: &str,
    timezone: &str,
) -> Result<Tenant, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tenants (id, name, timezone) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(timezone)
    .fetch_one(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Tenant>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Platform-wide list, oldest first (ids are UUIDv7, so id order is creation order).
pub async fn list(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Tenant>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(limit + 1)
    .fetch_all(conn)
    .await
}

pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    name: Option<&str>,
    timezone: Option<&str>,
    suspended: Option<bool>,
) -> Result<Option<Tenant>, sqlx::Error> {
    // `suspended`: true keeps the first suspension time; false clears it.
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE tenants SET
             name = COALESCE($2, name),
             timezone = COALESCE($3, timezone),
             suspended_at = CASE WHEN $4 IS NULL THEN suspended_at
                                 WHEN $4 THEN COALESCE(suspended_at, now())
                                 ELSE NULL END
         WHERE id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .bind(timezone)
    .bind(suspended)
    .fetch_optional(conn)
    .await
}
