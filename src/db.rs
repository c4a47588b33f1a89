//! The connection pool, migrations, and tenant-scoped transactions.
//!
//! Every request-scoped query runs inside [`begin_tenant`]: the transaction switches to the
//! role `streamwatch_app` and sets `streamwatch.tenant_id`, so PostgreSQL's row-level security
//! hides other tenants' rows even if a query forgot its `WHERE tenant_id = $1`. Both settings
//! are transaction-local and vanish at commit or rollback, so a pooled connection never
//! carries one request's tenant into the next.

use crate::config::Settings;
use anyhow::Context;
use sqlx::{PgPool, Postgres, Transaction, postgres::PgPoolOptions};
use std::time::Duration;
use uuid::Uuid;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let url = settings.database_url()?;
    PgPoolOptions::new()
        .max_connections(settings.database.max_connections)
        .acquire_timeout(Duration::from_secs(
            settings.database.acquire_timeout_seconds,
        ))
        .connect(url)
        .await
        .context("connecting to PostgreSQL (STREAMWATCH__DATABASE__URL)")
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("applying database migrations")
}

/// Whether every migration this binary knows has been applied (for `/readyz`).
pub async fn migrations_applied(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .all(|m| applied.contains(&m.version)))
}

/// Starts a transaction confined to `tenant_id` by row-level security.
pub async fn begin_tenant(
    pool: &PgPool,
    tenant_id: Uuid,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // `set_config(.., true)` is `SET LOCAL`; one round trip sets them all. Besides role and
    // tenant, for this transaction only: no JIT (it added ~35 ms to every status query) and
    // custom plans (after five runs a cached generic plan of the status query computed every
    // license of the tenant). docs/BENCHMARKS.md has the measurements.
    sqlx::query(
        "SELECT set_config('role', 'streamwatch_app', true), set_config('streamwatch.tenant_id', $1, true),
                set_config('jit', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true)",
    )
        .bind(tenant_id.to_string())
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Names of constraints whose violation is the client's mistake, for mapping at the query site.
pub fn violated_constraint(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}
