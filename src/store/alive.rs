//! The control plane's recorded uptime (`control_plane_alive`): spans of time in which some
//! replica ran its sweep. When a span continues and when a new one starts is decided by the
//! caller (`notify::alive`, SPEC section 5).

use crate::domain::notify_policy::AliveSpan;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Any constant works; it only has to be the same in every replica.
const ALIVE_LOCK: i64 = 0x5354_5741_5443_4802;

/// Extends the newest span to `now` if it ended at or after `continues_after`, else starts a
/// new span at `now`. Replicas are serialised by a transaction-level advisory lock, so two of
/// them never both start a span.
pub async fn extend_or_start(
    pool: &PgPool,
    now: DateTime<Utc>,
    continues_after: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ALIVE_LOCK)
        .execute(&mut *tx)
        .await?;
    let extended = sqlx::query(
        "UPDATE control_plane_alive SET ended_at = GREATEST(ended_at, $1)
         WHERE id = (SELECT id FROM control_plane_alive ORDER BY ended_at DESC LIMIT 1) AND ended_at >= $2",
    )
    .bind(now)
    .bind(continues_after)
    .execute(&mut *tx)
    .await?;
    if extended.rows_affected() == 0 {
        sqlx::query("INSERT INTO control_plane_alive (started_at, ended_at) VALUES ($1, $1)")
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// The alive spans that end at or after `since`, oldest first.
pub async fn spans_since(
    pool: &PgPool,
    since: DateTime<Utc>,
) -> Result<Vec<AliveSpan>, sqlx::Error> {
    let rows: Vec<(DateTime<Utc>, DateTime<Utc>)> =
        sqlx::query_as("SELECT started_at, ended_at FROM control_plane_alive WHERE ended_at >= $1 ORDER BY started_at")
            .bind(since)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(start, end)| AliveSpan { start, end })
        .collect())
}
