//! The SQL, by aggregate. Functions take a connection (usually a tenant transaction from
//! [`crate::db::begin_tenant`]) and always filter by `tenant_id` themselves as well: row-level
//! security is the second wall, not the first. The ingest writer and the notification sweep and
//! sender work across tenants by design: their statements ([`ingest`], [`rollup`],
//! [`notifications`], [`outbox`], [`alive`]) run on the owner's connection.
//!
//! The store depends on the domain types only, never on the engines that call it (`ingest`,
//! `notify`) or on HTTP: what it returns is defined here or in `domain`, and its errors are
//! `sqlx::Error`.

pub mod agent_tokens;
pub mod alive;
pub mod api_keys;
pub mod channels;
pub mod credentials;
pub mod episodes;
pub mod heartbeats;
pub mod ingest;
pub mod instances;
pub mod licenses;
pub mod notifications;
pub mod outbox;
pub mod rollup;
pub mod snapshots;
pub mod status;
pub mod tenants;
pub mod users;
pub mod windows;

use sqlx::{FromRow, PgConnection, postgres::PgRow};
use uuid::Uuid;

/// The row type of a tenant's table keyed by `id` ([`users::User`], [`api_keys::ApiKey`],
/// [`licenses::LicenseRow`]): where [`get`], [`list`] and [`delete`] find it and how they read
/// it, e.g. `store::get::<User>(tx, tenant_id, id)`.
pub trait TenantRow: for<'r> FromRow<'r, PgRow> + Send + Unpin {
    const TABLE: &'static str;
    /// The columns it is read from, for a `SELECT` or a `RETURNING`.
    const COLUMNS: &'static str;
}

/// `statement` (an `INSERT` or `UPDATE` of `T`'s table) returning the row as `T` reads it.
fn returning<T: TenantRow>(statement: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("{statement} RETURNING {}", T::COLUMNS))
}

/// The tenant's row with this id.
pub async fn get<T: TenantRow>(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<T>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM {} WHERE tenant_id = $1 AND id = $2",
        T::COLUMNS,
        T::TABLE
    )))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The tenant's rows after `after` in id order (ids are UUIDv7, so creation order): one more
/// than `limit`, which tells the caller that another page follows.
pub async fn list<T: TenantRow>(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<T>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM {} WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        T::COLUMNS,
        T::TABLE
    )))
    .bind(tenant_id)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(conn)
    .await
}

/// Deletes the tenant's row with this id (a user's `login_emails` row goes with it: ON DELETE
/// CASCADE); `false` if there is none.
pub async fn delete<T: TenantRow>(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {} WHERE tenant_id = $1 AND id = $2",
        T::TABLE
    )))
    .bind(tenant_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
