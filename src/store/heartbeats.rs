//! Maintenance of the `heartbeats` history: daily partitions created ahead of time, and
//! retention that drops whole partitions (SPEC section 5: retention of old heartbeats).
//!
//! Rows whose day has no partition (replays older than the first partition) land in
//! `heartbeats_default`, which retention trims with a DELETE. Partitions are only ever created
//! for today and later, so the default partition never holds rows of a range being created.
//! Several replicas may run this at once: a transaction-level advisory lock serialises them.

use chrono::{DateTime, Days, NaiveDate, Utc};
use sqlx::{PgPool, Postgres, Transaction};

/// Any constant works; it only has to be the same in every replica.
const PARTITION_LOCK: i64 = 0x5354_5741_5443_4801;

fn partition_name(day: NaiveDate) -> String {
    format!("heartbeats_p{}", day.format("%Y%m%d"))
}

/// Begins a maintenance transaction: the lock that serialises the replicas first, then the names
/// of the daily partitions that exist.
async fn begin_with_partitions(
    pool: &PgPool,
) -> Result<(Transaction<'static, Postgres>, Vec<String>), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PARTITION_LOCK)
        .execute(&mut *tx)
        .await?;
    let partitions = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'heartbeats'::regclass AND c.relname ~ '^heartbeats_p[0-9]{8}$'",
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok((tx, partitions))
}

/// Creates the daily partitions for `today` and the `days_ahead` days after it (those that do
/// not exist yet). Returns how many it created.
pub async fn ensure_partitions(
    pool: &PgPool,
    today: NaiveDate,
    days_ahead: u64,
) -> Result<usize, sqlx::Error> {
    let (mut tx, existing) = begin_with_partitions(pool).await?;
    let mut created = 0;
    for offset in 0..=days_ahead {
        let Some(day) = today.checked_add_days(Days::new(offset)) else {
            break;
        };
        let Some(next) = day.succ_opt() else { break };
        let name = partition_name(day);
        if existing.contains(&name) {
            continue;
        }
        // Rows of that day already in the default partition (written before the partition
        // existed) would make CREATE fail; leave that day to the default partition.
        let (from, to) = (
            day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
            next.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
        );
        let occupied: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM heartbeats_default WHERE activity_at >= $1 AND activity_at < $2)")
            .bind(from)
            .bind(to)
            .fetch_one(&mut *tx)
            .await?;
        if occupied {
            tracing::warn!(day = %day, "heartbeats of this day are in the default partition; not creating its partition");
            continue;
        }
        // The name and bounds come from dates, never from input.
        let ddl = format!(
            "CREATE TABLE {name} PARTITION OF heartbeats FOR VALUES FROM ('{day}T00:00:00Z') TO ('{next}T00:00:00Z')"
        );
        sqlx::query(sqlx::AssertSqlSafe(ddl))
            .execute(&mut *tx)
            .await?;
        created += 1;
    }
    tx.commit().await?;
    Ok(created)
}

/// Deletes history older than `cutoff`: drops every daily partition that ends at or before it,
/// and deletes older rows from the default partition. Returns the partitions dropped.
pub async fn apply_retention(pool: &PgPool, cutoff: DateTime<Utc>) -> Result<usize, sqlx::Error> {
    let (mut tx, partitions) = begin_with_partitions(pool).await?;
    let mut dropped = 0;
    for name in partitions {
        let Some(day) = name
            .strip_prefix("heartbeats_p")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        else {
            continue;
        };
        let Some(end) = day.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)) else {
            continue;
        };
        if end.and_utc() <= cutoff {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {name}")))
                .execute(&mut *tx)
                .await?;
            dropped += 1;
        }
    }
    sqlx::query("DELETE FROM heartbeats_default WHERE activity_at < $1")
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(dropped)
}

/// One maintenance pass: partitions for the coming week, then retention.
pub async fn maintain(
    pool: &PgPool,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<(), sqlx::Error> {
    let created = ensure_partitions(pool, now.date_naive(), 7).await?;
    let dropped = apply_retention(
        pool,
        now - chrono::Duration::days(i64::from(retention_days)),
    )
    .await?;
    if created + dropped > 0 {
        tracing::info!(created, dropped, "heartbeat history partitions maintained");
    }
    Ok(())
}
