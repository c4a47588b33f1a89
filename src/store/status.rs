//! Reading licenses with their status (SPEC section 4).
//!
//! Status is derived at read time from stored state. For one license the pure rules of
//! `domain::status` decide from the full camera reports (`load_license_facts`). A list of
//! thousands of licenses cannot open every report, so [`status_cte`] computes the same rules in
//! SQL from per-instance counts of the cameras' `state_if_fresh` (written at ingest by the same
//! pure function) and the instances' activity times. `tests/api/status.rs` checks that both agree in every case
//! of the SPEC's tables.

use crate::domain::{LicenseKind, quiet::Quiet, status::LicenseStatus};
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
    /// Sorted, without duplicates (SPEC section 5b).
    #[schema(example = json!(["region:eu"]))]
    pub tags: Vec<String>,
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
    /// Why the license is quiet now (a maintenance window or a snooze, SPEC section 5b), and
    /// until when; `null` when it is not. Its status is unchanged by it.
    #[sqlx(skip)]
    pub quiet: Option<Quiet>,
    /// The latest snooze, for computing `quiet` (`app::quiet`).
    #[serde(skip)]
    pub snoozed_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub snoozed_until: Option<DateTime<Utc>>,
}

/// A count of the cameras of license row `v` that are `state` now, from the roll-up the ingest
/// writer keeps on the license (migration `license_rollup`; `{state}` is `active` or
/// `working`): if the oldest instance is fresh, every instance is and the roll-up's sum is the
/// count; if the newest is stale, none is; only a license with instances on both sides of its
/// check interval is counted from its instance rows.
fn fresh_cameras(state: &str) -> String {
    format!(
        "CASE WHEN v.activity_oldest >= v.cutoff THEN v.cameras_{state}_if_fresh::int8
              WHEN v.last_activity_at IS NULL OR v.last_activity_at < v.cutoff THEN 0::int8
              ELSE (SELECT COALESCE(sum(a.cameras_{state}_if_fresh), 0)::int8
                    FROM agent_instances a
                    WHERE a.tenant_id = v.tenant_id AND a.license_id = v.id
                      AND a.last_activity_at >= v.cutoff) END"
    )
}

/// The license status rules of SPEC section 4 over the columns of `v` (freshness is
/// inclusive, like `domain::status::is_fresh`).
const STATUS_CASE: &str = "
    CASE WHEN last_activity_at IS NULL THEN 'not_installed'
         WHEN last_activity_at < cutoff OR cameras_working = 0 THEN 'inactive'
         WHEN cameras_active = cameras_total THEN 'all_active'
         ELSE 'partially_active' END";

/// The status rules in SQL. Parameters: `$1` tenant, `$2` now. Yields one row per license of
/// the tenant, with the columns of [`License`] and `status_rank` (for sorting by urgency).
///
/// Each license's status comes from its own row (the writer's roll-up): no join and no
/// aggregate, so a page in index order stops early and the whole tenant is one scan.
fn status_cte() -> String {
    status_cte_where("l.tenant_id = $1")
}

/// [`status_cte`] over the licenses `filter` (a condition on `licenses l`) selects; `$2` is now.
fn status_cte_where(filter: &str) -> String {
    format!(
        "
WITH v AS (
    SELECT l.tenant_id, l.id, l.key, l.name, l.kind, l.check_interval_seconds, l.tags,
           l.snoozed_at, l.snoozed_until, l.created_at, l.updated_at, l.activity_newest AS last_activity_at, l.activity_oldest,
           l.cameras_total::int8 AS cameras_total, l.cameras_active_if_fresh,
           l.cameras_working_if_fresh, l.webhooks_failing::int8 AS webhooks_failing,
           l.webhooks_cached, $2 - make_interval(secs => l.check_interval_seconds) AS cutoff
    FROM licenses l
    WHERE {filter}
), c AS (
    SELECT v.*, {active} AS cameras_active, {working} AS cameras_working
    FROM v
), s AS (
    SELECT c.*, {STATUS_CASE} AS status
    FROM c
), ranked AS (
    -- Most urgent first: inactive, partially active, not installed, all active.
    SELECT s.*, CASE s.status WHEN 'inactive' THEN 0 WHEN 'partially_active' THEN 1
                              WHEN 'not_installed' THEN 2 ELSE 3 END AS status_rank,
           COALESCE(s.last_activity_at, '-infinity') AS activity_key
    FROM s
)",
        active = fresh_cameras("active"),
        working = fresh_cameras("working"),
    )
}

const COLUMNS: &str =
    "id, key, name, kind, check_interval_seconds, tags, snoozed_at, snoozed_until, created_at,
    updated_at, status, last_activity_at, cameras_total, cameras_active, webhooks_failing,
    webhooks_cached";

fn finish(mut rows: Vec<License>) -> Vec<License> {
    for r in &mut rows {
        r.symbol = r.status.symbol().to_owned();
    }
    rows
}

/// The statuses of some licenses of any tenants, by the same rules as [`list`]: `(tenant,
/// license, status)` for those of `keys` that exist. The notification sweep reads them for the
/// licenses with camera-level alerts (SPEC section 5a), so that an alert says exactly what
/// the Monitoring page shows.
pub async fn statuses_of(
    conn: &mut PgConnection,
    keys: &[(Uuid, Uuid)],
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, Uuid, LicenseStatus)>, sqlx::Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let (t, l): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
    let sql = format!(
        "{} SELECT tenant_id, id, status FROM ranked",
        status_cte_where("(l.tenant_id, l.id) IN (SELECT * FROM unnest($1::uuid[], $3::uuid[]))")
    );
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(&t)
        .bind(now)
        .bind(&l)
        .fetch_all(conn)
        .await
}

pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<License>, sqlx::Error> {
    let sql = format!(
        "{} SELECT {COLUMNS} FROM ranked WHERE id = $3",
        status_cte()
    );
    let rows = sqlx::query_as(AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(now)
        .bind(id)
        .fetch_all(conn)
        .await?;
    Ok(finish(rows).into_iter().next())
}

/// The orders the license list can be sorted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Key,
    CreatedAt,
    /// By urgency: inactive, partially active, not installed, all active.
    Status,
    /// By last activity; never-installed licenses count as the oldest.
    LastActivity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Sort {
    /// `name`, `-name`, `key`, `-key`, `created_at`, `-created_at`.
    pub fn parse(input: &str) -> Result<Self, String> {
        let (descending, field) = match input.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, input),
        };
        let key = match field {
            "name" => SortKey::Name,
            "key" => SortKey::Key,
            "created_at" => SortKey::CreatedAt,
            "status" => SortKey::Status,
            "last_activity" => SortKey::LastActivity,
            _ => {
                return Err(format!(
                    "must be one of name, key, created_at, status, last_activity (prefix '-' for descending), not '{input}'"
                ));
            }
        };
        Ok(Self { key, descending })
    }

    pub fn as_param(self) -> String {
        let field = match self.key {
            SortKey::Name => "name",
            SortKey::Key => "key",
            SortKey::CreatedAt => "created_at",
            SortKey::Status => "status",
            SortKey::LastActivity => "last_activity",
        };
        if self.descending {
            format!("-{field}")
        } else {
            field.to_owned()
        }
    }

    /// The SQL column of [`status_cte`] this sort orders by, and its type.
    pub fn column(self) -> (&'static str, &'static str) {
        match self.key {
            SortKey::Name => ("name", "text"),
            SortKey::Key => ("key", "text"),
            SortKey::CreatedAt => ("created_at", "timestamptz"),
            SortKey::Status => ("status_rank", "int4"),
            SortKey::LastActivity => ("activity_key", "timestamptz"),
        }
    }

    /// The value of the sort column of `l`, as a cursor carries it (text PostgreSQL casts back).
    pub fn value_of(self, l: &License) -> String {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        match self.key {
            SortKey::Name => l.name.clone(),
            SortKey::Key => l.key.clone(),
            SortKey::CreatedAt => time(l.created_at),
            SortKey::Status => l.status.rank().to_string(),
            SortKey::LastActivity => l
                .last_activity_at
                .map_or_else(|| "-infinity".to_owned(), time),
        }
    }
}

impl Default for Sort {
    fn default() -> Self {
        Self {
            key: SortKey::Name,
            descending: false,
        }
    }
}

/// What mutes licenses at the moment of a list: the scopes of the maintenance windows in force
/// (computed from the windows by `app::quiet`); snoozes are read from the rows themselves.
#[derive(Debug, Clone, Default)]
pub struct QuietNow {
    /// A tenant-wide window is in force.
    pub all: bool,
    pub license_ids: Vec<Uuid>,
    /// Licenses carrying any of these.
    pub tags: Vec<String>,
}

/// Filters and one page of the license list.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub status: Option<LicenseStatus>,
    pub kind: Option<LicenseKind>,
    /// Case-insensitive substring of the name or key.
    pub text: Option<String>,
    /// Tags the license must all carry (none: no tag filter).
    pub tags: Vec<String>,
    /// Only licenses that are quiet now (`true`) or that are not (`false`).
    pub quiet: Option<bool>,
    /// What is quiet now, for the `quiet` filter (filled by `app::licenses` from the tenant's
    /// windows; unread without the filter).
    pub quiet_now: QuietNow,
    pub sort: Sort,
    /// The previous page's last row: its sort value (as the cursor carries it) and id.
    pub after: Option<(String, Uuid)>,
    pub limit: i64,
}

/// The SQL of one page of [`ListQuery`], with `extra` as one more selected expression (it may
/// refer to the CTE's `s`). `$1` tenant, `$2` now, `$3`..`$13` the query's values (see
/// [`bind_list`]).
fn page_sql(q: &ListQuery, extra: &str) -> String {
    // `tags @> $9` can use the GIN index (the CTEs are inlined into one scan when `ranked` is
    // read once). Written only when there are tags: with `OR cardinality($9) = 0` the planner
    // could not use the index, and a generic plan might scan it for every list.
    let tags = if q.tags.is_empty() {
        "$9::text[] IS NULL"
    } else {
        "tags @> $9::text[]"
    };
    // Column and type come from the Sort enum, never from the request.
    let (column, ty) = q.sort.column();
    let (cmp, dir) = if q.sort.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    format!(
        "{cte}
         SELECT {COLUMNS}{extra} FROM ranked
         WHERE ($3::text IS NULL OR status = $3)
           AND ($4::text IS NULL OR kind = $4)
           AND ($5::text IS NULL OR name ILIKE $5 OR key ILIKE $5)
           AND ($6::uuid IS NULL OR ({column}, id) {cmp} ($7::text::{ty}, $6))
           AND {tags}
           -- Quiet now: the same test as `domain::quiet::quiet_at` (start inclusive, end
           -- exclusive), with the windows in force given as their scopes.
           AND ($10::bool IS NULL OR $10 = ($11::bool OR id = ANY($12::uuid[])
                OR tags && $13::text[]
                OR (snoozed_at IS NOT NULL AND snoozed_at <= $2 AND snoozed_until > $2)))
         ORDER BY {column} {dir}, id {dir}
         LIMIT $8",
        cte = status_cte()
    )
}

fn bind_list<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    tenant_id: Uuid,
    now: DateTime<Utc>,
    q: &ListQuery,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(tenant_id)
        .bind(now)
        .bind(q.status.map(LicenseStatus::as_str))
        .bind(q.kind.map(LicenseKind::as_str))
        .bind(q.text.as_deref().map(|t| format!("%{}%", like_escape(t))))
        .bind(q.after.as_ref().map(|a| a.1))
        .bind(q.after.as_ref().map(|a| a.0.clone()))
        .bind(q.limit + 1)
        .bind((!q.tags.is_empty()).then(|| q.tags.clone()))
        .bind(q.quiet)
        .bind(q.quiet_now.all)
        .bind(q.quiet_now.license_ids.clone())
        .bind(q.quiet_now.tags.clone())
}

/// One page, fetching `limit + 1` rows so the caller knows if there is more.
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    now: DateTime<Utc>,
    q: &ListQuery,
) -> Result<Vec<License>, sqlx::Error> {
    let sql = page_sql(q, "");
    let rows = bind_list(sqlx::query_as(AssertSqlSafe(sql)), tenant_id, now, q)
        .fetch_all(conn)
        .await?;
    Ok(finish(rows))
}

#[derive(sqlx::FromRow)]
struct PageRow {
    #[sqlx(flatten)]
    license: License,
    counts: sqlx::types::Json<Vec<(LicenseStatus, i64)>>,
}

/// One page as [`list`] gives it and the tenant's counts per status as [`summary`] gives
/// them, from one evaluation of the status rules (the Monitoring page shows both; computed
/// separately, every license's status would be computed twice).
pub async fn list_with_summary(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    now: DateTime<Utc>,
    q: &ListQuery,
) -> Result<(Vec<License>, Vec<(LicenseStatus, i64)>), sqlx::Error> {
    // `s` is read twice, so PostgreSQL computes it once (a CTE referenced twice is
    // materialized); the uncorrelated sub-select runs once, not per row.
    let sql = page_sql(
        q,
        ", (SELECT COALESCE(jsonb_agg(jsonb_build_array(status, n)), '[]')
            FROM (SELECT status, count(*) AS n FROM s GROUP BY status) g) AS counts",
    );
    let rows: Vec<PageRow> = bind_list(sqlx::query_as(AssertSqlSafe(sql)), tenant_id, now, q)
        .fetch_all(&mut *conn)
        .await?;
    let Some(first) = rows.first() else {
        // An empty page carries no counts.
        return Ok((Vec::new(), summary(conn, tenant_id, now).await?));
    };
    let counts = first.counts.0.clone();
    Ok((
        finish(rows.into_iter().map(|r| r.license).collect()),
        counts,
    ))
}

/// License counts per status for the tenant.
pub async fn summary(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<(LicenseStatus, i64)>, sqlx::Error> {
    let sql = format!(
        "{} SELECT status, count(*) FROM s GROUP BY status",
        status_cte()
    );
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(now)
        .fetch_all(conn)
        .await
}

/// How many of the tenant's licenses are quiet now: in one of the windows in force (given as
/// their scopes) or snoozed. The same test as the list's `quiet` filter ([`page_sql`]).
pub async fn count_quiet(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    now: DateTime<Utc>,
    quiet_now: &QuietNow,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM licenses
          WHERE tenant_id = $1
            AND ($3::bool OR id = ANY($4::uuid[]) OR tags && $5::text[]
                 OR (snoozed_at IS NOT NULL AND snoozed_at <= $2 AND snoozed_until > $2))",
    )
    .bind(tenant_id)
    .bind(now)
    .bind(quiet_now.all)
    .bind(&quiet_now.license_ids)
    .bind(&quiet_now.tags)
    .fetch_one(conn)
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
    fn sort_parses_direction_and_field() {
        assert_eq!(
            Sort::parse("-created_at"),
            Ok(Sort {
                key: SortKey::CreatedAt,
                descending: true
            })
        );
        assert_eq!(
            Sort::parse("name").map(Sort::as_param),
            Ok("name".to_owned())
        );
        assert!(Sort::parse("password_hash").is_err());
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_escape(r"50%_a\b"), r"50\%\_a\\b");
    }
}
