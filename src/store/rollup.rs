//! The two derived counts the license list reads instead of `camera_state` and the instance
//! rows: each agent instance's camera counts (migration `instance_camera_counts`) and each
//! license's roll-up of its instances (migration `license_rollup`).
//!
//! The ingest writer keeps both exact, in the transaction that changed what they count
//! (`ingest::batch::write_batch`). The benchmarks that seed rows directly in SQL call the same
//! functions afterwards, so that their rows have exactly the shape the writer gives them. (The
//! two migrations computed them once for existing rows with their own, older copies of these
//! statements; migrations are append-only.)

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// Recounts the cameras each instance of `licenses` (tenant, license) owns, by the state they would
/// have if fresh: `cameras_total`, `cameras_active_if_fresh`, `cameras_working_if_fresh`. Every
/// instance of those licenses, because a camera taken over moves from a sibling instance. Only rows
/// whose counts differ are written.
///
/// It writes instance rows without locking them one by one: the writer calls it holding these
/// licenses' locks (`store::ingest::lock_licenses`), which every writer of their instance rows
/// takes first. Any other caller must be alone with these licenses (a seed).
pub async fn recount_instances(
    conn: &mut PgConnection,
    licenses: &[(Uuid, Uuid)],
) -> Result<(), sqlx::Error> {
    let (t, l): (Vec<Uuid>, Vec<Uuid>) = licenses.iter().copied().unzip();
    sqlx::query(
        "UPDATE agent_instances a
         SET cameras_total = n.total, cameras_active_if_fresh = n.active,
             cameras_working_if_fresh = n.working
         FROM (SELECT i.tenant_id, i.license_id, i.instance_id,
                      count(c.camera_id)::int AS total,
                      count(*) FILTER (WHERE c.state_if_fresh = 'active')::int AS active,
                      count(*) FILTER (WHERE c.state_if_fresh IN ('active', 'degraded'))::int AS working
               FROM agent_instances i
               LEFT JOIN camera_state c
                 ON c.tenant_id = i.tenant_id AND c.license_id = i.license_id
                AND c.instance_id = i.instance_id
               WHERE (i.tenant_id, i.license_id) IN
                     (SELECT DISTINCT u.t, u.l FROM unnest($1::uuid[], $2::uuid[]) AS u(t, l))
               GROUP BY i.tenant_id, i.license_id, i.instance_id) n
         WHERE a.tenant_id = n.tenant_id AND a.license_id = n.license_id
           AND a.instance_id = n.instance_id
           AND (a.cameras_total, a.cameras_active_if_fresh, a.cameras_working_if_fresh)
               IS DISTINCT FROM (n.total, n.active, n.working)",
    )
    .bind(&t)
    .bind(&l)
    .execute(conn)
    .await?;
    Ok(())
}

/// Recomputes the roll-up on the rows of `licenses` (tenant, license) from all their instances: the
/// number of instances, the newest and the oldest activity, and the sums of their camera and
/// webhook counts. A license without instances is left as it is.
///
/// The writer calls it as the last statement of its transaction, after [`recount_instances`]
/// when cameras changed, holding the license locks (`store::ingest::lock_licenses`).
pub async fn refresh_licenses(
    conn: &mut PgConnection,
    licenses: &[(Uuid, Uuid)],
) -> Result<(), sqlx::Error> {
    let mut keys = licenses.to_vec();
    keys.sort();
    keys.dedup();
    let (t, l): (Vec<Uuid>, Vec<Uuid>) = keys.into_iter().unzip();
    sqlx::query(
        "UPDATE licenses l
         SET instances = r.instances, activity_newest = r.newest, activity_oldest = r.oldest,
             cameras_total = r.total, cameras_active_if_fresh = r.active,
             cameras_working_if_fresh = r.working, webhooks_failing = r.failing,
             webhooks_cached = r.cached
         FROM (SELECT a.tenant_id, a.license_id, count(*)::int AS instances,
                      max(a.last_activity_at) AS newest, min(a.last_activity_at) AS oldest,
                      sum(a.cameras_total)::int AS total,
                      sum(a.cameras_active_if_fresh)::int AS active,
                      sum(a.cameras_working_if_fresh)::int AS working,
                      sum(a.webhooks_failing)::int AS failing,
                      sum(a.webhooks_cached)::int8 AS cached
               FROM agent_instances a
               JOIN unnest($1::uuid[], $2::uuid[]) AS u(t, l)
                 ON a.tenant_id = u.t AND a.license_id = u.l
               GROUP BY a.tenant_id, a.license_id) r
         WHERE l.tenant_id = r.tenant_id AND l.id = r.license_id",
    )
    .bind(&t)
    .bind(&l)
    .execute(conn)
    .await?;
    Ok(())
}

/// What one instance row contributes to its license's roll-up: the columns
/// [`refresh_licenses`] aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceTotals {
    pub last_activity_at: DateTime<Utc>,
    pub cameras_total: i32,
    pub cameras_active: i32,
    pub cameras_working: i32,
    pub webhooks_failing: i32,
    pub webhooks_cached: i64,
}

/// A license's roll-up of its instances, as [`refresh_licenses`] computes it in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LicenseTotals {
    pub instances: i32,
    pub newest: DateTime<Utc>,
    pub oldest: DateTime<Utc>,
    pub cameras_total: i32,
    pub cameras_active: i32,
    pub cameras_working: i32,
    pub webhooks_failing: i32,
    pub webhooks_cached: i64,
}

impl LicenseTotals {
    /// The roll-up of `instances` (all of a license's instances); `None` for none, where
    /// [`refresh_licenses`] leaves the license as it is. The same aggregates as its SQL:
    /// count, max and min of the activity, sums (saturating, where SQL's `int` sum would fail
    /// the transaction: four billion cameras do not happen).
    pub fn of<'a>(instances: impl IntoIterator<Item = &'a InstanceTotals>) -> Option<Self> {
        let mut it = instances.into_iter();
        let first = it.next()?;
        let mut sum = LicenseTotals {
            instances: 1,
            newest: first.last_activity_at,
            oldest: first.last_activity_at,
            cameras_total: first.cameras_total,
            cameras_active: first.cameras_active,
            cameras_working: first.cameras_working,
            webhooks_failing: first.webhooks_failing,
            webhooks_cached: first.webhooks_cached,
        };
        for i in it {
            sum.instances = sum.instances.saturating_add(1);
            sum.newest = sum.newest.max(i.last_activity_at);
            sum.oldest = sum.oldest.min(i.last_activity_at);
            sum.cameras_total = sum.cameras_total.saturating_add(i.cameras_total);
            sum.cameras_active = sum.cameras_active.saturating_add(i.cameras_active);
            sum.cameras_working = sum.cameras_working.saturating_add(i.cameras_working);
            sum.webhooks_failing = sum.webhooks_failing.saturating_add(i.webhooks_failing);
            sum.webhooks_cached = sum.webhooks_cached.saturating_add(i.webhooks_cached);
        }
        Some(sum)
    }
}

/// The `UPDATE` of [`write_licenses`], with the row condition `$where`.
macro_rules! write_licenses_sql {
    ($where:literal) => {
        concat!(
            "UPDATE licenses l
             SET instances = r.instances, activity_newest = r.newest, activity_oldest = r.oldest,
                 cameras_total = r.total, cameras_active_if_fresh = r.active,
                 cameras_working_if_fresh = r.working, webhooks_failing = r.failing,
                 webhooks_cached = r.cached
             FROM unnest($1::uuid[], $2::uuid[], $3::int4[], $4::timestamptz[], $5::timestamptz[],
                         $6::int4[], $7::int4[], $8::int4[], $9::int4[], $10::int8[],
                         $11::text[]::tid[])
                  AS r(tenant_id, license_id, instances, newest, oldest, total, active, working,
                       failing, cached, tid)
             WHERE l.tenant_id = r.tenant_id AND l.id = r.license_id AND ",
            $where,
            " RETURNING l.tenant_id, l.id"
        )
    };
}

/// A license's roll-up for [`write_licenses`]: its key, where its row is (its `ctid` as the
/// lock statement returned it, as text), and the roll-up.
pub type LicenseRollupRow<'a> = ((Uuid, Uuid), Option<&'a str>, LicenseTotals);

/// Writes roll-ups the caller computed (the writer's steady state: it read every instance row
/// of these licenses under their locks and knows what it wrote to them, so the aggregate of
/// [`refresh_licenses`], which reads those rows again, is spared). The license rows must be
/// locked by the caller, like there.
///
/// Rows are addressed by their `ctid` when the caller has it (a TID scan, one heap page, instead
/// of a primary-key lookup; the lock keeps the address valid, as in
/// `store::ingest::update_instances`), checked against the key; a miss is written by key.
pub async fn write_licenses(
    conn: &mut PgConnection,
    rows: &[LicenseRollupRow<'_>],
) -> Result<(), sqlx::Error> {
    let by_tid: Vec<&LicenseRollupRow<'_>> = rows.iter().filter(|r| r.1.is_some()).collect();
    let mut done = std::collections::HashSet::new();
    if !by_tid.is_empty() {
        done = bind_license_rows(
            sqlx::query_as(write_licenses_sql!("l.ctid = r.tid")),
            &by_tid,
        )
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    }
    let by_key: Vec<&LicenseRollupRow<'_>> = rows.iter().filter(|r| !done.contains(&r.0)).collect();
    if !by_key.is_empty() {
        bind_license_rows(sqlx::query_as(write_licenses_sql!("TRUE")), &by_key)
            .fetch_all(&mut *conn)
            .await?;
    }
    Ok(())
}

type LicenseKeyQuery<'q> =
    sqlx::query::QueryAs<'q, sqlx::Postgres, (Uuid, Uuid), sqlx::postgres::PgArguments>;

fn bind_license_rows<'q>(
    query: LicenseKeyQuery<'q>,
    rows: &[&LicenseRollupRow<'q>],
) -> LicenseKeyQuery<'q> {
    fn col<'r, 'q, T>(
        rows: &[&'r LicenseRollupRow<'q>],
        f: impl Fn(&'r LicenseRollupRow<'q>) -> T,
    ) -> Vec<T> {
        rows.iter().map(|r| f(r)).collect()
    }
    query
        .bind(col(rows, |r| r.0.0))
        .bind(col(rows, |r| r.0.1))
        .bind(col(rows, |r| r.2.instances))
        .bind(col(rows, |r| r.2.newest))
        .bind(col(rows, |r| r.2.oldest))
        .bind(col(rows, |r| r.2.cameras_total))
        .bind(col(rows, |r| r.2.cameras_active))
        .bind(col(rows, |r| r.2.cameras_working))
        .bind(col(rows, |r| r.2.webhooks_failing))
        .bind(col(rows, |r| r.2.webhooks_cached))
        .bind(col(rows, |r| r.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn instance(activity: i64, cameras: i32, failing: i32, cached: i64) -> InstanceTotals {
        InstanceTotals {
            last_activity_at: Utc.timestamp_opt(1_800_000_000 + activity, 0).unwrap(),
            cameras_total: cameras,
            cameras_active: cameras - 1,
            cameras_working: cameras,
            webhooks_failing: failing,
            webhooks_cached: cached,
        }
    }

    #[test]
    fn no_instances_roll_up_to_nothing() {
        assert_eq!(LicenseTotals::of(&[]), None);
    }

    #[test]
    fn instances_roll_up_to_count_newest_oldest_and_sums() {
        let a = instance(10, 4, 1, 7);
        let b = instance(-5, 2, 0, 3);
        let c = instance(3, 1, 2, 0);
        let r = LicenseTotals::of(&[a, b, c]).unwrap();
        assert_eq!(r.instances, 3);
        assert_eq!(r.newest, a.last_activity_at);
        assert_eq!(r.oldest, b.last_activity_at);
        assert_eq!(
            (r.cameras_total, r.cameras_active, r.cameras_working),
            (7, 4, 7)
        );
        assert_eq!((r.webhooks_failing, r.webhooks_cached), (3, 10));
    }
}
