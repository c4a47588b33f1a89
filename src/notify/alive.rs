//! The control plane's own uptime. Every sweep (in every replica) records that the service is
//! alive now; the gaps between the recorded spans are time when no replica could reach
//! PostgreSQL (or none ran), and do not count toward inactivity (SPEC section 5).

use crate::domain::notify_policy::AliveSpan;
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

/// Sweeps run every minute; a silence longer than this means the service (or PostgreSQL) was
/// down.
pub const MAX_GAP: Duration = Duration::seconds(150);

const ALIVE_LOCK: i64 = 0x5354_5741_5443_4802;

/// Extends the newest span to `now` if it ended within [`MAX_GAP`] (or at/after `continues_from`
/// when given: a simulated clock jump that counts as alive time), else starts a new span.
pub async fn record(
    pool: &PgPool,
    now: DateTime<Utc>,
    continues_from: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ALIVE_LOCK)
        .execute(&mut *tx)
        .await?;
    let since = continues_from.unwrap_or(now) - MAX_GAP;
    let extended = sqlx::query(
        "UPDATE control_plane_alive SET ended_at = GREATEST(ended_at, $1)
         WHERE id = (SELECT id FROM control_plane_alive ORDER BY ended_at DESC LIMIT 1) AND ended_at >= $2",
    )
    .bind(now)
    .bind(since)
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
