//! Reading licenses with their status (SPEC section 4).
//!
//! Status is derived at read time from stored state. For one license the pure rules of
//! `domain::status` decide from the full camera reports (`load_license_facts`). A list of
//! thousands of licenses cannot open every report, so [`STATUS_CTE`] computes the same rules in
//! SQL from the per-camera `state_if_fresh` (written at ingest by the same pure function) and
//! the instances' activity times. `tests/api/status.rs` checks that both agree in every case
//! of the SPEC's tables.

use crate::{
    domain::{LicenseKind, status::LicenseStatus},
    store::licenses::Sort,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AssertSqlSafe, PgConnection};
use utoipa::ToSchema;
use uuid::Uuid;

/// A license with its status (SPEC section 4) and counts, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct License {
    pub id: Uuid,
    #[schema(example = "LIC-001")]
    pub key: String,
    #[schema(example = "Depot 7")]
    pub name: String,
    pub kind: LicenseKind,
    #[schema(example = 600)]
    pub check_interval_seconds: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status: LicenseStatus,
    /// ✅ ⚠️ ❌ ✘
    #[sqlx(skip)]
    #[schema(example = "✅")]
    pub symbol: String,
    /// Activity time of the newest accepted heartbeat; `null` if never installed.
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Cameras in the newest heartbeats of the license's agents.
    pub cameras_total: i64,
    /// Cameras that are `active` now.
    pub cameras_active: i64,
    /// Cameras whose webhooks are failing.
    pub webhooks_failing: i64,
    /// Webhook deliveries cached on the agents, waiting for a retry.
    pub webhooks_cached: i64,
}

/// The status rules in SQL. Parameters: `$1` tenant, `$2` now. Yields one row per license of
/// the tenant, with the columns of [`License`] and `status_rank` (for sorting by urgency).
/// Freshness is inclusive, like `domain::status::is_fresh`.
pub const STATUS_CTE: &str = "
WITH v AS (
    SELECT l.id, l.key, l.name, l.kind, l.check_interval_seconds, l.created_at, l.updated_at,
           i.last_activity_at,
           COALESCE(c.total, 0) AS cameras_total,
           COALESCE(c.active, 0) AS cameras_active,
           COALESCE(c.working, 0) AS cameras_working,
           COALESCE(i.webhooks_failing, 0) AS webhooks_failing,
           COALESCE(i.webhooks_cached, 0) AS webhooks_cached,
           i.last_activity_at >= $2 - make_interval(secs => l.check_interval_seconds) AS fresh
    FROM licenses l
    LEFT JOIN LATERAL (
        SELECT max(a.last_activity_at) AS last_activity_at,
               sum(a.webhooks_failing)::int8 AS webhooks_failing,
               sum(a.webhooks_cached)::int8 AS webhooks_cached
        FROM agent_instances a
        WHERE a.tenant_id = l.tenant_id AND a.license_id = l.id
    ) i ON true
    LEFT JOIN LATERAL (
        SELECT count(*) AS total,
               count(*) FILTER (WHERE cs.state_if_fresh = 'active'
                   AND a.last_activity_at >= $2 - make_interval(secs => l.check_interval_seconds)) AS active,
               count(*) FILTER (WHERE cs.state_if_fresh IN ('active', 'degraded')
                   AND a.last_activity_at >= $2 - make_interval(secs => l.check_interval_seconds)) AS working
        FROM camera_state cs
        JOIN agent_instances a
          ON a.tenant_id = cs.tenant_id AND a.license_id = cs.license_id AND a.instance_id = cs.instance_id
        WHERE cs.tenant_id = l.tenant_id AND cs.license_id = l.id
    ) c ON true
    WHERE l.tenant_id = $1
), s AS (
    SELECT v.*,
           CASE WHEN v.last_activity_at IS NULL THEN 'not_installed'
                WHEN NOT v.fresh OR v.cameras_working = 0 THEN 'inactive'
                WHEN v.cameras_active = v.cameras_total THEN 'all_active'
                ELSE 'partially_active' END AS status
    FROM v
), ranked AS (
    -- Most urgent first: inactive, partially active, not installed, all active.
    SELECT s.*, CASE s.status WHEN 'inactive' THEN 0 WHEN 'partially_active' THEN 1
                              WHEN 'not_installed' THEN 2 ELSE 3 END AS status_rank,
           COALESCE(s.last_activity_at, '-infinity') AS activity_key
    FROM s
)";

const COLUMNS: &str =
    "id, key, name, kind, check_interval_seconds, created_at, updated_at, status, last_activity_at,
    cameras_total, cameras_active, webhooks_failing, webhooks_cached";

fn finish(mut rows: Vec<License>) -> Vec<License> {
    for r in &mut rows {
        r.symbol = r.status.symbol().to_owned();
    }
    rows
}

pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<License>, sqlx::Error> {
    let sql = format!("{STATUS_CTE} SELECT {COLUMNS} FROM ranked WHERE id = $3");
    let rows = sqlx::query_as(AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(now)
        .bind(id)
        .fetch_all(conn)
        .await?;
    Ok(finish(rows).into_iter().next())
}

/// Filters and one page of the license list.
pub struct ListQuery {
    pub status: Option<LicenseStatus>,
    pub kind: Option<LicenseKind>,
    /// Case-insensitive substring of the name or key.
    pub text: Option<String>,
    pub sort: Sort,
    /// The previous page's last row: its sort value (as the cursor carries it) and id.
    pub after: Option<(String, Uuid)>,
    pub limit: i64,
}

/// One page, fetching `limit + 1` rows so the caller knows if there is more.
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    now: DateTime<Utc>,
    q: &ListQuery,
) -> Result<Vec<License>, sqlx::Error> {
    // Column and type come from the Sort enum, never from the request.
    let (column, ty) = q.sort.column();
    let (cmp, dir) = if q.sort.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let sql = format!(
        "{STATUS_CTE}
         SELECT {COLUMNS} FROM ranked
         WHERE ($3::text IS NULL OR status = $3)
           AND ($4::text IS NULL OR kind = $4)
           AND ($5::text IS NULL OR name ILIKE $5 OR key ILIKE $5)
           AND ($6::uuid IS NULL OR ({column}, id) {cmp} ($7::text::{ty}, $6))
         ORDER BY {column} {dir}, id {dir}
         LIMIT $8"
    );
    let rows = sqlx::query_as(AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(now)
        .bind(q.status.map(LicenseStatus::as_str))
        .bind(q.kind.map(LicenseKind::as_str))
        .bind(q.text.as_deref().map(|t| format!("%{}%", like_escape(t))))
        .bind(q.after.as_ref().map(|a| a.1))
        .bind(q.after.as_ref().map(|a| a.0.clone()))
        .bind(q.limit + 1)
        .fetch_all(conn)
        .await?;
    Ok(finish(rows))
}

/// License counts per status for the tenant.
pub async fn summary(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<(LicenseStatus, i64)>, sqlx::Error> {
    let sql = format!("{STATUS_CTE} SELECT status, count(*) FROM ranked GROUP BY status");
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(now)
        .fetch_all(conn)
        .await
}

/// Escapes LIKE's wildcards so that a search for `50%` finds "50%", not everything.
pub fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_escape(r"50%_a\b"), r"50\%\_a\\b");
    }
}
