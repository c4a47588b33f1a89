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

/// Whether `err` means that no writable primary is reachable right now: PostgreSQL is down or
/// unreachable, the connection broke, or it reached a server that cannot take writes. During a
/// failover (docs/OPERATIONS.md, "High availability") every one of these passes within seconds,
/// so callers answer 503 with `Retry-After` rather than 500, and nothing was committed.
///
/// SQLSTATEs: `25006` read_only_sql_transaction (a standby, or a primary being demoted),
/// `57P01`/`57P02`/`57P03` admin_shutdown, crash_shutdown, cannot_connect_now (a server stopping
/// or starting), class `08` connection exceptions; and a connection that cannot be opened.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| failover_sqlstate(&code)),
        // Opening a connection through a proxy that has no server for it (HAProxy while no
        // node is primary accepts and closes at once): sqlx reports the TLS negotiation's
        // missing answer as a protocol error. (Seen in scripts/ha-drill.)
        sqlx::Error::Protocol(message) => message.contains("SSLRequest"),
        _ => false,
    }
}

fn failover_sqlstate(code: &str) -> bool {
    matches!(code, "25006" | "57P01" | "57P02" | "57P03") || code.starts_with("08")
}

/// Whether `err` happened on a connection that must not be used again: it broke, or it reaches a
/// server that cannot take writes (it stays up, so the pool's liveness check would hand it out
/// again). The statement may be retried on a fresh connection; waiting for one (a pool timeout)
/// is not such an error.
pub fn is_stale_connection(err: &sqlx::Error) -> bool {
    is_unavailable(err) && !matches!(err, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed)
}

/// What `/readyz` reports of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writable {
    /// A writable primary answers.
    Yes,
    /// The server answers but cannot take writes: a standby (during a failover, before the
    /// proxy switches), or `default_transaction_read_only`.
    ReadOnly,
}

/// Whether the primary the pool reaches takes writes. A read-only connection is closed rather
/// than returned to the pool, so that the next one is opened afresh (through the proxy, to the
/// new primary).
pub async fn writable(pool: &PgPool) -> Result<Writable, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let read_only: bool = sqlx::query_scalar(
        "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'",
    )
    .fetch_one(&mut *conn)
    .await?;
    if read_only {
        conn.close_on_drop();
        return Ok(Writable::ReadOnly);
    }
    Ok(Writable::Yes)
}

/// Names of constraints whose violation is the client's mistake, for mapping at the query site.
pub fn violated_constraint(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_errors_of_a_failover_are_unavailability_and_others_are_not() {
        for code in [
            "25006", "57P01", "57P02", "57P03", "08000", "08006", "08001",
        ] {
            assert!(failover_sqlstate(code), "{code}");
        }
        // A constraint violation, a serialization failure, a syntax error: not a failover.
        for code in ["23505", "40001", "42601", "25P02"] {
            assert!(!failover_sqlstate(code), "{code}");
        }
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::Protocol(
            "unexpected response from SSLRequest: 0x00".to_owned()
        )));
        assert!(!is_unavailable(&sqlx::Error::Protocol(
            "license was deleted".to_owned()
        )));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        // Waiting for a connection is not a reason to drop one.
        assert!(!is_stale_connection(&sqlx::Error::PoolTimedOut));
        assert!(is_stale_connection(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))));
    }
}
