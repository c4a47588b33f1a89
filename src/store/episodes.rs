//! A license's alert episodes as people see and acknowledge them (SPEC section 5a). The sweep
//! opens, reminds, escalates and closes episodes (`store::notifications`); what is here only
//! reads them and records an acknowledgement, which the sweep then honours (no more reminders
//! or escalations in that episode).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// An alert episode: from the moment the license counted as inactive (or, for `partial`,
/// Partially Active for long enough) until it recovered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct EpisodeView {
    pub id: Uuid,
    /// `inactive` (no activity) or `partial` (some cameras not active).
    #[schema(example = "inactive")]
    pub kind: String,
    pub opened_at: DateTime<Utc>,
    /// When it was first acknowledged; `null` while nobody has.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who acknowledged it: a user's e-mail, `API key <name>`, or `link via <recipient or
    /// channel>` for the signed link in an alert.
    pub acknowledged_by: Option<String>,
}

const COLUMNS: &str = "id, kind, opened_at, acknowledged_at, acknowledged_by";

/// The license's open episode, if any.
pub async fn open(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
) -> Result<Option<EpisodeView>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notification_episodes
         WHERE tenant_id = $1 AND license_id = $2 AND closed_at IS NULL"
    )))
    .bind(tenant_id)
    .bind(license_id)
    .fetch_optional(conn)
    .await
}

/// Acknowledges the license's open episode at `now` by `by`, unless it was acknowledged
/// before (the first acknowledgement stays); returns the episode, or `None` if none is open.
pub async fn acknowledge_open(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Option<EpisodeView>, sqlx::Error> {
    // One statement: two people acknowledging at once serialise on the row, and the second
    // finds the first's acknowledgement in place.
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE notification_episodes
            SET acknowledged_at = coalesce(acknowledged_at, $3),
                acknowledged_by = coalesce(acknowledged_by, $4)
          WHERE tenant_id = $1 AND license_id = $2 AND closed_at IS NULL
          RETURNING {COLUMNS}"
    )))
    .bind(tenant_id)
    .bind(license_id)
    .bind(now)
    .bind(by)
    .fetch_optional(conn)
    .await
}

/// One episode of the license by id, and whether it is closed.
pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
    episode_id: Uuid,
) -> Result<Option<(EpisodeView, bool)>, sqlx::Error> {
    let row: Option<EpisodeRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, closed_at IS NOT NULL AS closed FROM notification_episodes
         WHERE tenant_id = $1 AND license_id = $2 AND id = $3"
    )))
    .bind(tenant_id)
    .bind(license_id)
    .bind(episode_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.episode, r.closed)))
}

/// Acknowledges this episode (the first acknowledgement stays) if it is still open; returns
/// it, or `None` if it is closed or gone.
pub async fn acknowledge(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    license_id: Uuid,
    episode_id: Uuid,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Option<EpisodeView>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE notification_episodes
            SET acknowledged_at = coalesce(acknowledged_at, $4),
                acknowledged_by = coalesce(acknowledged_by, $5)
          WHERE tenant_id = $1 AND license_id = $2 AND id = $3 AND closed_at IS NULL
          RETURNING {COLUMNS}"
    )))
    .bind(tenant_id)
    .bind(license_id)
    .bind(episode_id)
    .bind(now)
    .bind(by)
    .fetch_optional(conn)
    .await
}

#[derive(sqlx::FromRow)]
struct EpisodeRow {
    #[sqlx(flatten)]
    episode: EpisodeView,
    closed: bool,
}
